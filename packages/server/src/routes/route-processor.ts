import {
  type AnySchema,
  ApplicationError,
  type JSONValue,
  type Mutator,
  runMutator,
  type ServerTransaction,
  toPlainJSON,
  ValidationError,
} from '@reprise/shared';
import { announceCommit } from '../changes/announcer';
import { originStatement } from '../changes/capture';
import { type ChangeOrigin, type RecordedChange, writeChanges } from '../changes/changelog';
import { conflictGateOf } from '../db/conflict-gate';
import {
  type Database,
  type DatabaseTransaction,
  databaseErrorMessage,
  type IsolationLevel,
  isTransientError,
} from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { type RetryPolicy, withRetries } from '../db/retry';
import { collectJobs, type JobQueue, queueInternals } from '../jobs/job-queue';
import { createSchemaMutate } from '../push/schema-mutate';
import { RowInputError, type WriteCapture } from '../push/table-writer';
import { createWriteGuard } from '../push/write-guard';
import { resolveScopeKeys, type ScopeKey, type WritePolicy } from '../push/write-policy';
import { runQuery } from '../query/run-query';

// routes/: one call of a mapped route, applied through the engine as a push applies a
// mutation: one transaction (retried on transient failures), `tx.mutate` through the
// write guard and change capture, after-commit hooks only once it committed. A call with
// an idempotency key claims the key first, in the same transaction: a retry, or a
// concurrent twin waiting on the key's row lock, finds the first answer and replays it.

/** One call of a route, after its body was read and validated. */
export interface RouteCall {
  /** `METHOD path`, as the route was defined: the key's namespace. */
  readonly route: string;
  readonly args: unknown;
  readonly idempotencyKey?: string | undefined;
  /** A digest of the method, path and body, so a key reused for another call is refused. */
  readonly requestHash: string;
}

/** Everything the processor needs, with defaults filled in. */
export interface RouteConfig {
  readonly db: Database;
  readonly schema: AnySchema;
  readonly tables: EngineTables;
  readonly isolation: IsolationLevel;
  readonly retry: RetryPolicy;
  readonly logger: Logger;
  readonly userID: string | undefined;
  readonly context: unknown;
  readonly changelog: boolean;
  readonly writePolicy: WritePolicy | undefined;
  readonly scopeKey: ScopeKey<RouteCall> | undefined;
  readonly jobs: JobQueue | undefined;
  /** Turns the mutator's return value into the response body (inside the transaction). */
  readonly respond: (result: unknown) => unknown;
}

/** The answer to a call: a status and a JSON text, replayed byte for byte. */
export interface RouteOutcome {
  readonly status: number;
  readonly json: string;
  readonly replayed: boolean;
}

/** The app refused the call; with a key, this answer is stored and replayed too. */
class Refused extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly error: unknown,
  ) {
    super('refused');
  }
}

/** Why an `ApplicationError` is a 4xx, by its `details.reason` (default 400). */
const STATUS_BY_REASON: Record<string, number> = {
  notFound: 404,
  forbidden: 403,
  ambiguous: 409,
};

/**
 * Applies a route call once. Answers 200 with the shaped result, 4xx for an app refusal
 * (an `ApplicationError`, a failed validator, a write policy, a database constraint), and
 * throws for anything else (the caller answers 500 or 503; no receipt is kept for those).
 */
export async function processRoute(
  call: RouteCall,
  mutator: Mutator,
  config: RouteConfig,
): Promise<RouteOutcome> {
  let hooks: Array<() => unknown> = [];
  let outcome: RouteOutcome;
  try {
    outcome = await withRetries(
      config.retry,
      () =>
        config.db.transaction(
          async (tx) => {
            hooks = [];
            return applyCall(tx, call, mutator, config, hooks);
          },
          { isolation: config.isolation },
        ),
      conflictGateOf(config.db),
    );
    if (!outcome.replayed) announceCommit(config.db, config.tables, config.logger);
  } catch (error) {
    if (!(error instanceof Refused)) {
      // A 500 or 503: the call failed too, though nothing is stored for a retry to replay.
      await runHooks(failureHooks(mutator, error, call, config), call, config);
      throw error;
    }
    // No key: the refusal rolled everything back and is answered, not stored.
    outcome = { status: error.status, json: JSON.stringify(error.body), replayed: false };
    hooks = failureHooks(mutator, error.error, call, config);
  }
  await runHooks(hooks, call, config);
  return outcome;
}

async function runHooks(hooks: Array<() => unknown>, call: RouteCall, config: RouteConfig) {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      config.logger.error({ event: 'route.afterCommit', route: call.route, error });
    }
  }
}

async function applyCall(
  tx: DatabaseTransaction,
  call: RouteCall,
  mutator: Mutator,
  config: RouteConfig,
  hooks: Array<() => unknown>,
): Promise<RouteOutcome> {
  const key = call.idempotencyKey;
  if (key !== undefined) {
    const stored = await claimKey(tx, call, config, key);
    if (stored) return stored;
  }
  const changes: RecordedChange[] = [];
  const origin: ChangeOrigin = { clientGroupID: 'route', clientID: call.route, mutationID: null };
  const run = async (dbTx: DatabaseTransaction) => {
    const partialSQL = config.db.capabilities.partialSQL;
    if (!partialSQL) {
      const { text, params } = originStatement(origin);
      await dbTx.query(text, params);
    }
    const capture: WriteCapture | undefined =
      partialSQL && config.changelog ? { record: (change) => changes.push(change) } : undefined;
    const guard = config.writePolicy
      ? createWriteGuard({
          policy: config.writePolicy,
          schema: config.schema,
          scopeKeys: resolveScopeKeys(config.scopeKey ?? config.userID, call),
          partialSQL,
          isolation: config.isolation,
        })
      : undefined;
    const jobs = collectJobs(config.jobs, 'tx.enqueue needs a job queue: pass `jobs` to the route');
    const serverTx: ServerTransaction = {
      location: 'server',
      reason: 'authoritative',
      clientID: call.route,
      mutationID: 0,
      schema: config.schema,
      mutate: createSchemaMutate(dbTx, {
        schema: config.schema,
        partialSQL,
        capture,
        guard,
      }) as ServerTransaction['mutate'],
      run: (query) => runQuery(dbTx, config.schema, query, { partialSQL }),
      dbTransaction: { wrappedTransaction: dbTx.wrappedTransaction },
      afterCommit: (fn) => {
        hooks.push(fn);
      },
      enqueue: jobs.enqueue,
    };
    const result = await runMutator(mutator, {
      tx: serverTx,
      args: call.args,
      ctx: config.context,
    });
    if (jobs.count() > 0) {
      // Added in the call's transaction (its savepoint, with a key), with its writes.
      const specs = await jobs.specs();
      const queue = queueInternals(config.jobs!);
      const { text, params } = queue.statement(specs);
      await dbTx.query(text, params);
      hooks.push(() => queue.added());
    }
    return toPlainJSON(config.respond(result));
  };

  let status = 200;
  let body: unknown;
  try {
    // With a key the refusal is stored with it, so only the call's writes roll back.
    body = key === undefined ? await run(tx) : await tx.savepoint(run);
  } catch (error) {
    if (isTransientError(error)) throw error;
    const refusal = refusalOf(error);
    if (!refusal || key === undefined) throw refusal ?? error;
    hooks.length = 0;
    hooks.push(...failureHooks(mutator, error, call, config));
    changes.length = 0;
    status = refusal.status;
    body = refusal.body;
  }
  await writeChanges(
    tx,
    config.schema,
    config.tables,
    changes.map((change) => ({ ...change, origin })),
  );
  const json = JSON.stringify(body ?? null);
  if (key !== undefined) {
    await tx.query(
      `UPDATE ${config.tables.routeReceipts} SET "status" = $4, "body" = $5
       WHERE "userID" = $1 AND "route" = $2 AND "key" = $3`,
      [config.userID ?? '', call.route, key, status, json],
    );
  }
  return { status, json, replayed: false };
}

/** Claims the key; when an earlier call holds it, its answer (or a 422 for another body). */
async function claimKey(
  tx: DatabaseTransaction,
  call: RouteCall,
  config: RouteConfig,
  key: string,
): Promise<RouteOutcome | undefined> {
  const params = [config.userID ?? '', call.route, key, call.requestHash];
  const table = config.tables.routeReceipts;
  let claimed: boolean;
  if (config.db.capabilities.partialSQL) {
    // pg-mem: no concurrency, and no RETURNING after DO NOTHING.
    const found = await tx.query(
      `SELECT 1 FROM ${table} WHERE "userID" = $1 AND "route" = $2 AND "key" = $3`,
      params.slice(0, 3),
    );
    claimed = found.length === 0;
    if (claimed) {
      await tx.query(
        `INSERT INTO ${table} ("userID", "route", "key", "requestHash", "status", "body")
         VALUES ($1, $2, $3, $4, 0, '')`,
        params,
      );
    }
  } else {
    // A concurrent call with this key waits here until the first commits (under
    // serializable it then fails with 40001 and its retry finds the stored answer).
    const rows = await tx.query(
      `INSERT INTO ${table} ("userID", "route", "key", "requestHash", "status", "body")
       VALUES ($1, $2, $3, $4, 0, '') ON CONFLICT DO NOTHING RETURNING 1`,
      params,
    );
    claimed = rows.length > 0;
  }
  if (claimed) return undefined;
  const [row] = await tx.query<{ requestHash: string; status: number | string; body: string }>(
    `SELECT "requestHash", "status", "body" FROM ${table}
     WHERE "userID" = $1 AND "route" = $2 AND "key" = $3`,
    params.slice(0, 3),
  );
  if (row!.requestHash !== call.requestHash) {
    return {
      status: 422,
      json: JSON.stringify({
        error: 'This Idempotency-Key was already used for a request with another body',
      }),
      replayed: false,
    };
  }
  return { status: Number(row!.status), json: row!.body, replayed: true };
}

/** The 4xx answer for an error that is the call's own fault, or undefined for a 500. */
function refusalOf(error: unknown): Refused | undefined {
  if (error instanceof ValidationError) {
    const errors = error.issues.map((issue) =>
      issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
    );
    return new Refused(400, { errors }, error);
  }
  if (error instanceof ApplicationError) {
    const reason = (error.details as { reason?: unknown } | undefined)?.reason;
    const status = typeof reason === 'string' ? (STATUS_BY_REASON[reason] ?? 400) : 400;
    const body: { error: string; details?: JSONValue } = { error: error.message };
    if (error.details !== undefined) body.details = error.details;
    return new Refused(status, body, error);
  }
  // A body passed on to a write with a name that is not a column, or without the key.
  if (error instanceof RowInputError) return new Refused(400, { error: error.message }, error);
  // A constraint the database enforces (unique, foreign key, not null): its message, no SQL.
  const message = databaseErrorMessage(error);
  if (message !== undefined) return new Refused(409, { error: message }, error);
  return undefined;
}

function failureHooks(
  mutator: Mutator,
  error: unknown,
  call: RouteCall,
  config: RouteConfig,
): Array<() => unknown> {
  const onFailure = mutator.definition.onFailure;
  return onFailure ? [() => onFailure(error, { args: call.args, ctx: config.context })] : [];
}
