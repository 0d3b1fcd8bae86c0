// push/: `/mutate`. The handler reads and checks the request; the processor applies each
// mutation exactly once, in order, in transactions with a savepoint each; the table writer
// is the server's `tx.mutate`, recording each write for the changelog; the write guard
// checks each of its writes against the app's write policy. CRUD operations (the crud/
// endpoint's and `client.crud`'s `_crud.*` mutations) are validated here too.

import {
  type AnyMutators,
  type AnySchema,
  type CustomMutation,
  describeIssues,
  encodeRich,
  isStorableText,
  type MutationResponse,
  PUSH_VERSION,
  type PushFailed,
  type PushFailedReason,
  type PushResponse,
  pushQuerySchema,
  pushRequestSchema,
  readPushRequest,
  toPlainJSON,
} from '@reprise/shared';
import type { Database, IsolationLevel } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../db/retry';
import { mustGetShards, type ZeroModeOptions } from '../db/zero-shard';
import { contentTypeProblem, decodeBody, notJSONResponse, readBody } from '../http/request-body';
import type { JobQueue } from '../jobs/job-queue';
import { observePush, type PushObservation } from '../telemetry';
import { withCrudMutators } from './crud-mutators';
import { type PushConfig, processPush } from './push-processor';
import type { ScopeKey, WritePolicy } from './write-policy';
import { processZeroPush, zeroFailed } from './zero-mode';

/** Options shared by both entry points. */
export interface MutateOptions {
  readonly db: Database<any>;
  /** The app's schema; it gives `tx.mutate` its tables. */
  readonly schema: AnySchema;
  /** The named mutators, usually `overrideMutators(shared, serverOnly)` or the shared ones. */
  readonly mutators: AnyMutators;
  /** Passed to every mutator as `ctx`. */
  readonly context?: unknown;
  /** The authenticated user. A client group belongs to the first user that pushes to it. */
  readonly userID?: string | undefined;
  /** Where the engine's own tables live (default `reprise`). Run `migrate` for it first. */
  readonly engineSchema?: string;
  /**
   * Isolation of each push transaction (default `serializable`), so read-modify-write
   * mutators are safe under concurrency; conflicts are retried.
   */
  readonly isolation?: IsolationLevel;
  /** Most mutations accepted in one push (default 100); more gets a 413. */
  readonly maxMutations?: number;
  /** Largest body accepted, in bytes (default 5 MiB); more gets a 413. */
  readonly maxBodyBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly logger?: Logger;
  /**
   * On pg-mem, which has no triggers, record tx.mutate writes in the changelog (default
   * true; pull needs it). Elsewhere the capture triggers `migrate` installs record every
   * write, and this has no effect.
   */
  readonly changelog?: boolean;
  /**
   * Who may write which rows (`defineWritePolicy`), checked on every `tx.mutate` write; a
   * refused write fails its mutation with a `forbidden` app error. Without it, mutators
   * alone decide.
   */
  readonly writePolicy?: WritePolicy<any>;
  /**
   * The scope keys writes are checked against (default: `userID`): a key, several (the
   * user's tenants), or a function of the mutation being applied.
   */
  readonly scopeKey?: ScopeKey<CustomMutation>;
  /**
   * Accept `client.crud.*` row writes (the `_crud.put`, `_crud.patch`, `_crud.delete`
   * mutations), checked against the schema as the CRUD endpoint checks them. Off by
   * default, and only with a `writePolicy`: without one any client could write any row.
   */
  readonly crud?: boolean;
  /**
   * Zero mode, for zero-cache and Zero's client: LMIDs and app-error results are kept in
   * the named shards' `clients` and `mutations` tables (create them with `migrate`'s
   * `zero` option), which zero-cache replicates; the shard is the `schema` query parameter
   * zero-cache appends. Answers follow Zero 1.9's: every PushFailed is HTTP 200, missing
   * `schema`/`appID` is a `parse` failure, a shard not named here a `database` failure.
   */
  readonly zero?: ZeroModeOptions;
  /**
   * The job queue (`createJobQueue`) that `tx.enqueue` adds jobs to, in the mutation's own
   * transaction. Without it, `tx.enqueue` fails the mutation.
   */
  readonly jobs?: JobQueue;
}

/** The status and JSON body of a push response, for frameworks without Web `Response`. */
export interface MutateResult {
  readonly status: number;
  readonly body: unknown;
}

const DEFAULT_MAX_MUTATIONS = 100;
const UNSTORABLE_USER =
  'the authenticated user id must not contain U+0000 or an unpaired UTF-16 surrogate';
const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

function failed(
  status: number,
  reason: PushFailedReason,
  message: string,
  mutations: readonly Pick<CustomMutation, 'id' | 'clientID'>[] = [],
): MutateResult {
  const body: PushFailed = {
    kind: 'PushFailed',
    origin: 'server',
    reason,
    message,
    mutationIDs: mutations.map((m) => ({ id: m.id, clientID: m.clientID })),
  };
  return { status, body };
}

/** The query string: URLSearchParams, or a parsed object such as Express's `req.query`. */
type QueryInput = URLSearchParams | Readonly<Record<string, unknown>>;

const NO_QUERY: QueryInput = Object.freeze({});
const QUERY_OK = { ok: true } as const;

function readQuery(query: QueryInput): { ok: true } | { ok: false; message: string } {
  if (query === NO_QUERY) return QUERY_OK;
  const entries: Record<string, string> = {};
  const pairs =
    query instanceof URLSearchParams
      ? [...query.keys()].map((key) => [key, query.getAll(key)] as const)
      : Object.entries(query);
  for (const [key, value] of pairs) {
    if (value === undefined) continue;
    const values = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) {
      // A parser such as qs turns `a[b]=c` into objects: no parameter here takes one.
      return { ok: false, message: `query parameter "${key}" must be a plain string` };
    }
    if (values.length !== 1) return { ok: false, message: `query parameter "${key}" is repeated` };
    entries[key] = values[0] as string;
  }
  // Both parameters are optional: no parameter, nothing to check.
  if (pairs.length === 0) return { ok: true };
  const parsed = pushQuerySchema.safeParse(entries);
  return parsed.success
    ? { ok: true }
    : { ok: false, message: `Bad query parameters: ${describeIssues(parsed.error.issues)}` };
}

/**
 * The framework-free core of `/mutate`: takes the parsed JSON body and the query
 * parameters, and returns the status and body to send.
 *
 * @example
 * app.post('/mutate', express.json(), async (req, res) => {
 *   const {status, body} = await processMutateRequest({db, schema, mutators, body: req.body, query: req.query});
 *   res.status(status).json(body);
 * });
 */
export function processMutateRequest(
  options: MutateOptions & { body: unknown; query?: QueryInput },
): Promise<MutateResult> {
  return processBody(options, options.body, options.query ?? NO_QUERY);
}

/** `processMutateRequest` with the body and query apart, so a handler need not copy options. */
function processBody(
  options: MutateOptions,
  body: unknown,
  query: QueryInput,
): Promise<MutateResult> {
  return observePush((observed) => processObservedPush(options, body, query, observed));
}

async function processObservedPush(
  options: MutateOptions,
  body: unknown,
  queryInput: QueryInput,
  observed: PushObservation,
): Promise<MutateResult> {
  const started = performance.now();
  const logger = options.logger ?? consoleLogger;
  if (options.crud && !options.writePolicy) {
    // A setup mistake, loud at the first push rather than a silently writable database.
    throw new TypeError(
      "crud: true needs a writePolicy (mark the tables any client may write 'unrestricted')",
    );
  }
  if (options.zero) {
    return processZeroMutateRequest(
      options,
      body,
      queryInput,
      options.zero,
      logger,
      started,
      observed,
    );
  }
  const query = readQuery(queryInput);
  if (!query.ok) return failed(400, 'parse', query.message);
  // The user id comes from the app's auth, but usually from the request before that.
  if (options.userID !== undefined && !isStorableText(options.userID)) {
    return failed(400, 'parse', `userID: ${UNSTORABLE_USER}`);
  }

  const decoded = decodeBody(body, pushRequestSchema, 'push', readPushRequest);
  if (!decoded.ok) return failed(400, 'parse', decoded.message);
  const { value: push, rich } = decoded;
  observed.annotate({
    'reprise.client_group.id': push.clientGroupID,
    'reprise.push.mutations': push.mutations.length,
  });
  if (push.pushVersion !== PUSH_VERSION) {
    return failed(
      400,
      'unsupportedPushVersion',
      `Push version ${push.pushVersion} is not supported; this server speaks ${PUSH_VERSION}`,
      push.mutations,
    );
  }
  const maxMutations = options.maxMutations ?? DEFAULT_MAX_MUTATIONS;
  if (push.mutations.length > maxMutations) {
    return failed(
      413,
      'parse',
      `Push carries ${push.mutations.length} mutations; at most ${maxMutations} are accepted`,
      push.mutations,
    );
  }

  let outcome: Awaited<ReturnType<typeof processPush>>;
  try {
    outcome = await processPush(push, pushConfig(options, logger));
  } catch (error) {
    logger.error({ event: 'push.internal', clientGroupID: push.clientGroupID, error });
    return failed(500, 'internal', 'Internal error while processing the push', push.mutations);
  }
  if (outcome.kind === 'forbidden') {
    logger.debug({ event: 'push', clientGroupID: push.clientGroupID, outcome: outcome.kind });
    return failed(403, 'unauthorized', outcome.message, push.mutations);
  }

  logPush(logger, push, outcome, started, observed);

  let result: MutateResult;
  if (outcome.kind === 'ok') {
    const response: PushResponse = {
      kind: 'MutateResponse',
      ...(options.userID === undefined ? {} : { userID: options.userID }),
      mutations: outcome.mutations,
    };
    result = { status: 200, body: response };
  } else if (outcome.kind === 'ooo') {
    result = failed(200, 'oooMutation', outcome.message, outcome.unprocessed);
  } else {
    result = failed(503, 'database', outcome.message, outcome.unprocessed);
  }
  return { status: result.status, body: rich ? encodeRich(result.body) : toPlainJSON(result.body) };
}

function pushConfig(options: MutateOptions, logger: Logger): PushConfig {
  return {
    db: options.db,
    schema: options.schema,
    mutators: withCrudMutators(options.mutators, options.schema, options.crud ?? false),
    context: options.context,
    userID: options.userID,
    tables: engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA),
    isolation: options.isolation ?? 'serializable',
    retry: options.retry ? { ...DEFAULT_RETRY_POLICY, ...options.retry } : DEFAULT_RETRY_POLICY,
    logger,
    changelog: options.changelog ?? true,
    writePolicy: options.writePolicy as WritePolicy | undefined,
    scopeKey: options.scopeKey,
    jobs: options.jobs,
  };
}

function logPush(
  logger: Logger,
  push: { clientGroupID: string; requestID: string; mutations: readonly unknown[] },
  outcome: Awaited<ReturnType<typeof processPush>>,
  started: number,
  observed: PushObservation,
) {
  if (outcome.kind === 'forbidden') return;
  const counts = countResults(outcome.kind === 'ok' ? outcome.mutations : outcome.processed);
  observed.counted(counts);
  logger.debug({
    event: 'push',
    clientGroupID: push.clientGroupID,
    requestID: push.requestID,
    outcome: outcome.kind,
    received: push.mutations.length,
    ...counts,
    ms: Math.round((performance.now() - started) * 100) / 100,
  });
}

/** `processMutateRequest` in Zero mode (zero-mode.ts): Zero's checks and answers. */
async function processZeroMutateRequest(
  options: MutateOptions,
  body: unknown,
  query: QueryInput,
  zero: ZeroModeOptions,
  logger: Logger,
  started: number,
  observed: PushObservation,
): Promise<MutateResult> {
  const shards = mustGetShards(zero);
  const config = pushConfig(options, logger);
  const result = await processZeroPush({
    body,
    query,
    shards,
    maxMutations: options.maxMutations ?? DEFAULT_MAX_MUTATIONS,
    badUserID:
      options.userID !== undefined && !isStorableText(options.userID) ? UNSTORABLE_USER : undefined,
    userID: options.userID,
    run: async (push, shard) => {
      try {
        const outcome = await processPush(push, { ...config, zero: { shard } });
        logPush(logger, push, outcome, started, observed);
        return outcome;
      } catch (error) {
        logger.error({ event: 'push.internal', clientGroupID: push.clientGroupID, error });
        return { kind: 'internal' } as const;
      }
    },
  });
  return {
    status: result.status,
    body: result.rich ? encodeRich(result.body) : toPlainJSON(result.body),
  };
}

function countResults(mutations: readonly MutationResponse[]) {
  let applied = 0;
  let alreadyProcessed = 0;
  let appErrors = 0;
  for (const { result } of mutations) {
    if (!('error' in result)) applied++;
    else if (result.error === 'alreadyProcessed') alreadyProcessed++;
    else appErrors++;
  }
  return { applied, alreadyProcessed, appErrors };
}

/** Options of `handleMutateRequest` beyond those of `processMutateRequest`. */
export interface MutateRequestOptions extends MutateOptions {
  readonly request: Request;
  /**
   * Accept a body whatever its `Content-Type` says (default false: anything but
   * `application/json` gets a 415). A `text/plain` or form body is a request any web page
   * can make a signed-in browser send, so turn this on only when no cookie or other
   * ambient credential authenticates pushes.
   */
  readonly allowAnyContentType?: boolean;
}

/**
 * Handles a push (`POST /mutate`) from a Web `Request`, returning a Web `Response`. Each
 * mutation runs in order, exactly once, inside a Postgres transaction; an error thrown by
 * a mutator becomes that mutation's result instead of failing the push. The body must be
 * sent as `application/json` (415 otherwise; see `allowAnyContentType`).
 *
 * @example
 * app.post('/mutate', (c) =>
 *   handleMutateRequest({db, schema, mutators, request: c.req.raw, userID: c.get('userID')}),
 * );
 */
export async function handleMutateRequest(options: MutateRequestOptions): Promise<Response> {
  const { request } = options;
  if (request.method !== 'POST') {
    return Response.json(failed(405, 'parse', `Use POST, not ${request.method}`).body, {
      status: 405,
      headers: { allow: 'POST' },
    });
  }
  // Zero mode answers every PushFailed with 200: zero-cache reads no other body.
  const refuse = (status: number, message: string) =>
    options.zero
      ? Response.json(zeroFailed('parse', message).body, { status: 200 })
      : Response.json(failed(status, 'parse', message).body, { status });
  const problem = options.allowAnyContentType ? undefined : contentTypeProblem(request);
  if (problem !== undefined) {
    if (options.zero) return refuse(415, problem);
    return notJSONResponse(problem, (message) => failed(415, 'parse', message).body);
  }
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const text = await readBody(request, limit);
  if (text === undefined) return refuse(413, `Body is larger than the ${limit}-byte limit`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    return options.zero
      ? refuse(400, `Failed to parse push body: ${message}`)
      : refuse(400, `Body is not valid JSON: ${message}`);
  }
  // Most pushes carry no query string: then there is no URL to parse.
  const query = request.url.includes('?') ? new URL(request.url).searchParams : NO_QUERY;
  const result = await processBody(options, body, query);
  return Response.json(result.body, { status: result.status });
}
