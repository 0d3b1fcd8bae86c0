// pull/: `/pull`. The handler reads the request and the cookie (a Postgres snapshot); the
// processor claims the client group and sends the changes since the cookie as a patch, or
// a reset of every visible row.

import {
  type AnySchema,
  encodeRich,
  isStorableText,
  PULL_VERSION,
  type PullError,
  type PullErrorKind,
  pullRequestSchema,
  toPlainJSON,
} from '@reprise/shared';
import { CaptureMissingError, ensureCaptured } from '../changes/capture';
import type { Visibility } from '../changes/visibility';
import {
  type Database,
  DatabaseError,
  isTransientError,
  publicDatabaseReason,
} from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetries } from '../db/retry';
import { mustGetShards, type ZeroModeOptions } from '../db/zero-shard';
import { decodeBody, readBody, refuseUnlessJSON } from '../http/request-body';
import { observeAttempt, observePull, type RequestObservation } from '../telemetry';
import { fingerprint, parseCookie } from './pull-cookie';
import { type PullOutcome, processPull } from './pull-processor';

/** Options shared by both pull entry points. */
export interface PullOptions {
  readonly db: Database<any>;
  readonly schema: AnySchema;
  /** Who may see each table's rows: the same object given to `handleMutateRequest`. */
  readonly visibility: Visibility<any>;
  /** The authenticated user. A client group belongs to the first user that uses it. */
  readonly userID?: string | undefined;
  /**
   * The scopes the app grants this user now (from its auth). A row reaches the user when
   * one of its scopes is among them or it is `PUBLIC_SCOPE`. When they change, the
   * user's next pull is a reset.
   */
  readonly scopes: readonly string[];
  /** Where the engine's own tables live (default `reprise`). */
  readonly engineSchema?: string;
  /** Largest body accepted, in bytes (default 64 KiB); more gets a 413. */
  readonly maxBodyBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly logger?: Logger;
  /**
   * Zero mode (the same option `handleMutateRequest` takes): the LMIDs pull sends are read
   * from these shards' `clients` tables too, where Zero-mode pushes keep them.
   */
  readonly zero?: ZeroModeOptions;
}

/** The status and JSON body of a pull response, for frameworks without Web `Response`. */
export interface PullResult {
  readonly status: number;
  readonly body: unknown;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

function failed(status: number, error: PullErrorKind, message: string): PullResult {
  const body: PullError = { error, message };
  return { status, body };
}

/**
 * The framework-free core of `/pull`: takes the parsed JSON body and returns the status
 * and body to send. A null, expired or otherwise unusable cookie gets a reset (`clear`,
 * then every row the user may see); a malformed one gets a 400. Rows travel in superjson's
 * envelope when the request came in one, as plain JSON otherwise; errors are always plain
 * `{error, message}`.
 *
 * @example
 * app.post('/pull', express.json(), async (req, res) => {
 *   const {status, body} = await processPullRequest({
 *     db, schema, visibility, userID: req.user.id, scopes: req.user.scopes, body: req.body,
 *   });
 *   res.status(status).json(body);
 * });
 */
export function processPullRequest(options: PullOptions & { body: unknown }): Promise<PullResult> {
  return observePull((observed) => processObservedPull(options, observed));
}

async function processObservedPull(
  options: PullOptions & { body: unknown },
  observed: RequestObservation,
): Promise<PullResult> {
  const started = performance.now();
  const logger = options.logger ?? consoleLogger;
  // The user id comes from the app's auth, but usually from the request before that.
  if (options.userID !== undefined && !isStorableText(options.userID)) {
    return failed(
      400,
      'parse',
      'userID: the authenticated user id must not contain U+0000 or an unpaired UTF-16 surrogate',
    );
  }
  const decoded = decodeBody(options.body, pullRequestSchema, 'pull');
  if (!decoded.ok) return failed(400, 'parse', decoded.message);
  const { value: pull, rich } = decoded;
  observed.annotate({ 'reprise.client_group.id': pull.clientGroupID });
  if (pull.pullVersion !== undefined && pull.pullVersion !== PULL_VERSION) {
    return failed(
      400,
      'unsupportedPullVersion',
      `Pull version ${pull.pullVersion} is not supported; this server speaks ${PULL_VERSION}`,
    );
  }
  const cookie = pull.cookie === null ? null : parseCookie(pull.cookie);
  if (cookie?.kind === 'malformed')
    return failed(400, 'badCookie', `Bad pull body: ${cookie.message}`);

  const tables = engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA);
  const config = {
    db: options.db,
    schema: options.schema,
    visibility: options.visibility as Visibility,
    tables,
    userID: options.userID,
    granted: new Set(options.scopes),
    fingerprint: fingerprint(options.visibility as Visibility, options.scopes),
    shards: options.zero ? [...mustGetShards(options.zero).values()] : [],
  };
  let outcome: PullOutcome;
  try {
    const synced = Object.keys(options.visibility as Visibility);
    await ensureCaptured(options.db, tables, options.schema, synced);
    outcome = await withRetries({ ...DEFAULT_RETRY_POLICY, ...options.retry }, (attempt) =>
      observeAttempt('pull', attempt, () =>
        options.db.transaction((tx) => processPull(tx, pull.clientGroupID, cookie, config), {
          // The cookie's snapshot must be the one every read of the pull sees.
          isolation: 'repeatable read',
        }),
      ),
    );
  } catch (error) {
    if (error instanceof CaptureMissingError) {
      // A setup mistake, said plainly: incremental pulls would silently miss writes.
      logger.error({ event: 'pull.capture', error });
      return failed(500, 'internal', error.message);
    }
    if (error instanceof DatabaseError || isTransientError(error)) {
      logger.warn({ event: 'pull.database', clientGroupID: pull.clientGroupID, error });
      // The driver's message only: a DatabaseError's own message carries the SQL, which
      // stays in the server's log.
      const reason = publicDatabaseReason(error);
      return failed(503, 'database', `Database error; try the pull again: ${reason}`);
    }
    logger.error({ event: 'pull.internal', clientGroupID: pull.clientGroupID, error });
    return failed(500, 'internal', 'Internal error while processing the pull');
  }
  if (outcome.kind === 'forbidden') return failed(403, 'unauthorized', outcome.message);

  const { response, reset } = outcome;
  observed.annotate({
    'reprise.pull.operations': response.patch.length,
    ...(reset ? { 'reprise.pull.reset': reset } : {}),
  });
  logger.debug({
    event: 'pull',
    clientGroupID: pull.clientGroupID,
    reset: reset ?? false,
    ops: response.patch.length,
    results: response.mutationResults.length,
    ms: Math.round((performance.now() - started) * 100) / 100,
  });
  return { status: 200, body: rich ? encodeRich(response) : toPlainJSON(response) };
}

/** A GET pull's query parameters as the body a POST would carry. */
function bodyFromQuery(params: URLSearchParams): Record<string, unknown> {
  const version = params.get('pullVersion');
  return {
    clientGroupID: params.get('clientGroupID'),
    cookie: params.get('cookie'),
    ...(version === null ? {} : { pullVersion: Number(version) }),
  };
}

/** Options of `handlePullRequest` beyond those of `processPullRequest`. */
export interface PullRequestOptions extends PullOptions {
  readonly request: Request;
  /**
   * Accept a `POST` body whatever its `Content-Type` says (default false: anything but
   * `application/json` gets a 415), as for `handleMutateRequest`.
   */
  readonly allowAnyContentType?: boolean;
}

/**
 * Handles a pull from a Web `Request`: `POST` with a JSON body `{clientGroupID, cookie}`
 * sent as `application/json` (415 otherwise; see `allowAnyContentType`), or `GET` with the
 * same as query parameters (omit `cookie` for a first pull). Returns the rows that changed
 * since the cookie and the user may see, the group's LMIDs and its mutation results, and
 * the next cookie.
 *
 * @example
 * app.post('/pull', (c) =>
 *   handlePullRequest({
 *     db, schema, visibility, request: c.req.raw,
 *     userID: c.get('userID'), scopes: [c.get('userID'), `team:${c.get('teamID')}`],
 *   }),
 * );
 */
export async function handlePullRequest(options: PullRequestOptions): Promise<Response> {
  const { request } = options;
  const reply = (result: PullResult) => Response.json(result.body, { status: result.status });
  if (request.method === 'GET') {
    return reply(
      await processPullRequest({
        ...options,
        body: bodyFromQuery(new URL(request.url).searchParams),
      }),
    );
  }
  if (request.method !== 'POST') {
    return Response.json(failed(405, 'parse', `Use POST or GET, not ${request.method}`).body, {
      status: 405,
      headers: { allow: 'GET, POST' },
    });
  }
  const refused = options.allowAnyContentType
    ? undefined
    : refuseUnlessJSON(request, (message) => failed(415, 'parse', message).body);
  if (refused) return refused;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const text = await readBody(request, limit);
  if (text === undefined)
    return reply(failed(413, 'parse', `Body is larger than the ${limit}-byte limit`));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return reply(failed(400, 'parse', `Body is not valid JSON: ${(error as Error).message}`));
  }
  return reply(await processPullRequest({ ...options, body }));
}
