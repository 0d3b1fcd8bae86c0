import { type AnySchema, isStorableText } from '@reprise/shared';
import {
  type Database,
  DatabaseError,
  type IsolationLevel,
  isTransientError,
  publicDatabaseReason,
} from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../db/retry';
import { readBody, refuseUnlessJSON } from '../http/request-body';
import { type CrudOperation, readCrudBody } from '../push/crud-protocol';
import type { ScopeKey, WritePolicy } from '../push/write-policy';
import { type CrudOutcome, type CustomValidation, processCrud } from './crud-processor';

/** Options of the CRUD endpoint. */
export interface CrudOptions {
  readonly db: Database<any>;
  readonly schema: AnySchema;
  /**
   * Who may write which rows (`defineWritePolicy`): every operation is checked against it.
   * Required: a table it leaves out takes no CRUD writes at all.
   */
  readonly writePolicy: WritePolicy<any>;
  /** The authenticated user: the default scope key, and the owner of the receipts. */
  readonly userID?: string | undefined;
  /**
   * The scope keys writes are checked against (default: `userID`): a key, several (the
   * user's tenants), or a function of the operation, like Prisma IDB's `scopeKey`.
   */
  readonly scopeKey?: ScopeKey<CrudOperation>;
  /**
   * The app's own check, run in the operation's transaction before it writes; it may query.
   * Return (or resolve to) an error message to refuse the operation, or nothing.
   */
  readonly customValidation?: CustomValidation;
  /** Passed to `customValidation` as `ctx.context`. */
  readonly context?: unknown;
  /** Table names as clients send them, mapped to the schema's (e.g. `{Todo: 'todo'}`). */
  readonly tables?: Readonly<Record<string, string>>;
  /** Most operations accepted in one body (default 100); more gets a 413. */
  readonly maxOperations?: number;
  /** Largest body accepted, in bytes (default 5 MiB); more gets a 413. */
  readonly maxBodyBytes?: number;
  readonly engineSchema?: string;
  /** Isolation of each transaction (default `serializable`); conflicts are retried. */
  readonly isolation?: IsolationLevel;
  readonly retry?: Partial<RetryPolicy>;
  readonly logger?: Logger;
  /**
   * On pg-mem, which has no triggers, record the writes in the changelog (default true;
   * pull needs it). Elsewhere the capture triggers record every write.
   */
  readonly changelog?: boolean;
}

/** A PowerSync operation's result. */
export interface PowerSyncResult {
  readonly op_id?: number;
  readonly op: string;
  readonly table: string;
  readonly id: string | number;
  readonly status: CrudOutcome['status'];
  readonly reason?: string;
  readonly message?: string;
}

/** An outbox event's result, shaped as Prisma IDB's `PushResult` (plus `status`). */
export interface OutboxResult {
  readonly id: string;
  readonly status: CrudOutcome['status'];
  readonly appliedChangelogId: null;
  readonly error: null | {
    readonly type: string;
    readonly message: string;
    readonly retryable: false;
  };
}

const DEFAULT_MAX_OPERATIONS = 100;
const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

/** Prisma IDB's names for why an event failed. */
const OUTBOX_ERROR_TYPES: Record<string, string> = {
  unknownTable: 'INVALID_MODEL',
  invalid: 'RECORD_VALIDATION_FAILURE',
  forbidden: 'SCOPE_VIOLATION',
  custom: 'CUSTOM_VALIDATION_FAILED',
  conflict: 'UNKNOWN_ERROR',
};

const failed = (status: number, message: string) => ({ status, body: { error: message } });

/**
 * The framework-free core of the CRUD endpoint: takes the parsed JSON body and returns the
 * status and body to send. A PowerSync upload `{clientID?, batch}` is answered
 * `{results: [...]}`, a Prisma IDB push `{events}` with the array of `PushResult`s; every
 * operation gets one: `applied`, `refused` (with the reason) or `alreadyProcessed`.
 *
 * @example
 * app.post('/upload', express.json(), async (req, res) => {
 *   const {status, body} = await processCrudRequest({db, schema, writePolicy, body: req.body, userID: req.user.id});
 *   res.status(status).json(body);
 * });
 */
export async function processCrudRequest(
  options: CrudOptions & { body: unknown },
): Promise<{ status: number; body: unknown }> {
  const logger = options.logger ?? consoleLogger;
  if (options.userID !== undefined && !isStorableText(options.userID)) {
    return failed(400, 'userID must not contain U+0000 or an unpaired UTF-16 surrogate');
  }
  const read = readCrudBody(options.body, options.maxOperations ?? DEFAULT_MAX_OPERATIONS);
  if (!read.ok) return failed(read.status, read.message);
  const unstorable = [read.clientID, ...read.operations.map((op) => op.opID ?? '')].find(
    (text) => !isStorableText(text),
  );
  if (unstorable !== undefined) {
    return failed(400, 'Client and operation ids must not contain U+0000 or an unpaired surrogate');
  }

  let outcomes: CrudOutcome[];
  try {
    outcomes = await processCrud(read.operations, {
      db: options.db,
      schema: options.schema,
      tables: engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA),
      isolation: options.isolation ?? 'serializable',
      retry: { ...DEFAULT_RETRY_POLICY, ...options.retry },
      userID: options.userID,
      clientID: read.clientID,
      writePolicy: (options.writePolicy ?? {}) as WritePolicy,
      scopeKey: options.scopeKey,
      customValidation: options.customValidation,
      context: options.context,
      changelog: options.changelog ?? true,
      aliases: options.tables,
      logger,
    });
  } catch (error) {
    if (error instanceof DatabaseError || isTransientError(error)) {
      logger.warn({ event: 'crud.database', clientID: read.clientID, error });
      return failed(
        503,
        `Database error; send the batch again (operations with ids apply once): ${publicDatabaseReason(error)}`,
      );
    }
    logger.error({ event: 'crud.internal', clientID: read.clientID, error });
    return failed(500, 'Internal error while applying the operations');
  }
  logger.debug({
    event: 'crud',
    shape: read.shape,
    received: read.operations.length,
    applied: outcomes.filter((o) => o.status === 'applied').length,
  });

  if (read.shape === 'powersync') {
    const results = read.operations.map((op, i): PowerSyncResult => {
      const outcome = outcomes[i]!;
      const source = op.source as { op_id?: number };
      return {
        ...(source.op_id === undefined ? {} : { op_id: source.op_id }),
        op: op.op,
        table: op.table,
        id: op.id!,
        ...outcome,
      };
    });
    return { status: 200, body: { results } };
  }
  const results = read.operations.map((op, i): OutboxResult => {
    const outcome = outcomes[i]!;
    return {
      id: op.opID!,
      status: outcome.status,
      appliedChangelogId: null,
      error:
        outcome.status === 'refused'
          ? {
              type: OUTBOX_ERROR_TYPES[outcome.reason] ?? 'UNKNOWN_ERROR',
              message: outcome.message,
              retryable: false,
            }
          : null,
    };
  });
  return { status: 200, body: results };
}

/** Options of `handleCrudRequest` beyond those of `processCrudRequest`. */
export interface CrudRequestOptions extends CrudOptions {
  readonly request: Request;
}

/**
 * The CRUD endpoint as a Web `Request` → `Response` handler: PowerSync uploads and Prisma
 * IDB outbox pushes, applied in order through the write policy, each operation once.
 * Refusals are per operation in a 200; 413 past `maxOperations`; 400 for a body of neither
 * shape; 503 only when the database failed (send again).
 *
 * @example
 * app.post('/upload', (c) =>
 *   handleCrudRequest({db, schema, writePolicy, request: c.req.raw, userID: c.get('userID')}),
 * );
 */
export async function handleCrudRequest(options: CrudRequestOptions): Promise<Response> {
  const { request } = options;
  if (request.method !== 'POST' && request.method !== 'PUT') {
    return Response.json(
      { error: `Use POST, not ${request.method}` },
      { status: 405, headers: { allow: 'POST, PUT' } },
    );
  }
  const refused = refuseUnlessJSON(request, (message) => ({ error: message }));
  if (refused) return refused;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const text = await readBody(request, limit);
  if (text === undefined) {
    return Response.json({ error: `Body is larger than the ${limit}-byte limit` }, { status: 413 });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return Response.json(
      { error: `Body is not valid JSON: ${(error as Error).message}` },
      { status: 400 },
    );
  }
  const result = await processCrudRequest({ ...options, body });
  return Response.json(result.body, { status: result.status });
}
