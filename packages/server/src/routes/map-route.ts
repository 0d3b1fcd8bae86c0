import { createHash } from 'node:crypto';
import {
  type AnySchema,
  defineMutators,
  defineTransaction,
  filterOutput,
  isMutator,
  isStorableText,
  MAX_ID_LENGTH,
  type Mutator,
  type MutatorDefinition,
  type OperationInput,
} from '@reprise/shared';
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
import type { JobQueue } from '../jobs/job-queue';
import type { ScopeKey, WritePolicy } from '../push/write-policy';
import { processRoute, type RouteCall } from './route-processor';

// mapRoute: Nevr's routes for callers without a local store (webhooks, server-to-server,
// plain fetch), run through the same engine as pushes (see route-processor.ts).

export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A Standard Schema validator (zod, valibot, …), as much of it as a route uses. */
interface StandardValidator {
  readonly '~standard': {
    validate(value: unknown): StandardResult | Promise<StandardResult>;
  };
}
type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | {
      readonly issues: readonly {
        readonly message: string;
        readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
      }[];
    };

/** Nevr's validator: `{valid, errors}`; or any Standard Schema (zod), whose output is used. */
export type RouteValidate =
  | StandardValidator
  | ((body: any) => { readonly valid: boolean; readonly errors?: readonly string[] });

/** How the result becomes the response body. */
export interface RouteResponse {
  /** Answer with this result only (`results.user`): a table's name, or an operation's `as`. */
  readonly entity?: string;
  /** Keep only these columns of it (of each row, for a list). */
  readonly pick?: readonly string[];
  /** Drop these columns of it (of each row, for a list). */
  readonly omit?: readonly string[];
  /** The body, from the result (or from the `entity` one, after `pick`/`omit`). */
  readonly transform?: (result: any) => unknown;
}

/** What `mapRoute` takes. Give `mutator` (any mutator or transaction) or `operations`. */
export interface RouteDefinition {
  /** Matched against the end of the request's path; `:name` segments become body fields. */
  readonly path: string;
  readonly method: RouteMethod;
  readonly validate?: RouteValidate;
  readonly mutator?: Mutator | MutatorDefinition;
  /** Nevr's operations, as `defineTransaction({operations})` takes them. */
  readonly operations?: OperationInput | readonly OperationInput[];
  readonly response?: RouteResponse;
}

/** What each call of a route is given: the database and who is calling, as for pushes. */
export interface RouteOptions {
  readonly db: Database<any>;
  readonly schema: AnySchema;
  /** The authenticated caller, from your auth (undefined for a public route). */
  readonly userID?: string | undefined;
  /** The mutator's `ctx`. */
  readonly context?: unknown;
  /** Checked on every write, as for pushes; the scope keys are `userID` unless `scopeKey`. */
  readonly writePolicy?: WritePolicy<any>;
  readonly scopeKey?: ScopeKey<RouteCall>;
  /** Largest body accepted, in bytes (default 1 MiB); more gets a 413. */
  readonly maxBodyBytes?: number;
  /** Accept bodies not sent as `application/json` (see the README's Security notes). */
  readonly allowAnyContentType?: boolean;
  readonly engineSchema?: string;
  readonly isolation?: IsolationLevel;
  readonly retry?: Partial<RetryPolicy>;
  readonly logger?: Logger;
  /** On pg-mem, record the writes in the changelog (default true). */
  readonly changelog?: boolean;
  /** The job queue `tx.enqueue` adds jobs to, in the call's own transaction. */
  readonly jobs?: JobQueue;
}

/** A Web `Request` → `Response` handler for one route; `path` and `method` say which. */
export interface RouteHandler {
  (request: Request, options: RouteOptions): Promise<Response>;
  readonly path: string;
  readonly method: RouteMethod;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers });

/**
 * Maps a route to a mutator (a named one, a `defineTransaction`, or Nevr's `operations`)
 * and returns its Web handler. Each call runs through the engine as a push does: one
 * transaction, the write policy, change capture, after-commit hooks. A failed `validate`
 * answers 400 `{errors}`; an `ApplicationError` 4xx `{error, details}` (404 for `notFound`,
 * 403 for `forbidden`, 409 for `ambiguous` and database constraints); `returned: false`
 * columns never leave. With an `Idempotency-Key` header the call applies once: the answer
 * is stored with its writes, and a retry (or a concurrent twin) gets it again, marked
 * `Idempotent-Replayed: true`; the same key with another body is a 422.
 *
 * @example
 * const signUp = mapRoute({path: '/sign-up', method: 'POST', mutator: mutators.user.signUp,
 *   response: {entity: 'user', omit: ['password']}});
 * app.post('/sign-up', (c) => signUp(c.req.raw, {db, schema, userID: c.get('userID')}));
 */
export function mapRoute(definition: RouteDefinition): RouteHandler {
  const { path, method } = definition;
  const pattern = path.split('/').filter(Boolean);
  const name = `${method} /${pattern.join('/')}`;
  const mutator = routeMutator(definition, name);
  const handle = async (request: Request, options: RouteOptions): Promise<Response> => {
    if (request.method !== method) {
      return answer(405, { error: `Use ${method}, not ${request.method}` }, { allow: method });
    }
    const url = new URL(request.url);
    const params = matchPath(pattern, url.pathname);
    if (!params) return answer(404, { error: `No route ${request.method} ${url.pathname}` });
    const logger = options.logger ?? consoleLogger;

    let args: unknown;
    let text = '';
    if (method === 'GET' || method === 'DELETE') {
      args = { ...Object.fromEntries(url.searchParams), ...params };
    } else {
      const refused = options.allowAnyContentType
        ? undefined
        : refuseUnlessJSON(request, (message) => ({ error: message }));
      if (refused) return refused;
      const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
      const read = await readBody(request, limit);
      if (read === undefined) {
        return answer(413, { error: `Body is larger than the ${limit}-byte limit` });
      }
      text = read;
      try {
        args = text === '' ? {} : JSON.parse(text);
      } catch (error) {
        return answer(400, { errors: [`Body is not valid JSON: ${(error as Error).message}`] });
      }
      if (typeof args === 'object' && args !== null && !Array.isArray(args)) {
        args = { ...args, ...params };
      }
    }
    const checked = await validate(definition.validate, args);
    if (!checked.ok) return answer(400, { errors: checked.errors });
    args = checked.value;

    if (options.userID !== undefined && !isStorableText(options.userID)) {
      return answer(400, { errors: ['userID must not contain U+0000 or an unpaired surrogate'] });
    }
    const key = request.headers.get('idempotency-key') ?? undefined;
    if (key !== undefined && (key === '' || key.length > MAX_ID_LENGTH || !isStorableText(key))) {
      return answer(400, {
        errors: [`Idempotency-Key must be 1 to ${MAX_ID_LENGTH} characters of storable text`],
      });
    }
    const call: RouteCall = {
      route: name,
      args,
      idempotencyKey: key,
      requestHash: createHash('sha256')
        .update(`${url.pathname}\n${url.search}\n${text}`)
        .digest('hex'),
    };
    try {
      const outcome = await processRoute(call, mutator, {
        db: options.db,
        schema: options.schema,
        tables: engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA),
        isolation: options.isolation ?? 'serializable',
        retry: { ...DEFAULT_RETRY_POLICY, ...options.retry },
        logger,
        userID: options.userID,
        context: options.context,
        changelog: options.changelog ?? true,
        writePolicy: options.writePolicy,
        scopeKey: options.scopeKey,
        jobs: options.jobs,
        respond: (result) => shapeResponse(options.schema, definition, result),
      });
      return new Response(outcome.json, {
        status: outcome.status,
        headers: {
          'content-type': 'application/json',
          ...(outcome.replayed ? { 'idempotent-replayed': 'true' } : {}),
        },
      });
    } catch (error) {
      if (error instanceof DatabaseError || isTransientError(error)) {
        logger.warn({ event: 'route.database', route: name, error });
        return answer(503, {
          error: `Database error; nothing was applied, send it again: ${publicDatabaseReason(error)}`,
        });
      }
      logger.error({ event: 'route.internal', route: name, error });
      return answer(500, { error: 'Internal error; nothing was applied' });
    }
  };
  return Object.assign(handle, { path, method });
}

function routeMutator(definition: RouteDefinition, name: string): Mutator {
  const given = definition.mutator;
  if (given !== undefined && definition.operations !== undefined) {
    throw new TypeError(`mapRoute ${name}: give mutator or operations, not both`);
  }
  if (given !== undefined && isMutator(given)) return given;
  const leaf =
    given ??
    (definition.operations === undefined
      ? undefined
      : defineTransaction({ operations: definition.operations as never }));
  if (leaf === undefined) throw new TypeError(`mapRoute ${name}: give mutator or operations`);
  return defineMutators({ route: leaf as MutatorDefinition }).route;
}

/** The `:name` segments' values when `pattern` matches the end of `pathname`. */
function matchPath(pattern: readonly string[], pathname: string) {
  const segments = pathname.split('/').filter(Boolean);
  if (segments.length < pattern.length) return undefined;
  const tail = segments.slice(segments.length - pattern.length);
  const params: Record<string, string> = {};
  for (const [i, part] of pattern.entries()) {
    let segment: string;
    try {
      segment = decodeURIComponent(tail[i]!);
    } catch {
      return undefined;
    }
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}

async function validate(
  validator: RouteValidate | undefined,
  body: unknown,
): Promise<{ ok: true; value: unknown } | { ok: false; errors: string[] }> {
  if (validator === undefined) return { ok: true, value: body };
  if (typeof validator === 'function') {
    const verdict = validator(body);
    if (verdict.valid) return { ok: true, value: body };
    const errors = [...(verdict.errors ?? [])];
    return { ok: false, errors: errors.length ? errors : ['The request is not valid'] };
  }
  const result = await validator['~standard'].validate(body);
  if (!result.issues) return { ok: true, value: (result as { value: unknown }).value };
  return {
    ok: false,
    errors: result.issues.map((issue) => {
      const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p));
      return path.length ? `${path.join('.')}: ${issue.message}` : issue.message;
    }),
  };
}

/** The response body: the `entity` result (columns that are `returned: false` dropped), picked, transformed. */
function shapeResponse(schema: AnySchema, definition: RouteDefinition, result: unknown): unknown {
  const { entity, pick, omit, transform } = definition.response ?? {};
  let value = result;
  if (entity !== undefined) {
    value = (result as Record<string, unknown> | null | undefined)?.[entity] ?? null;
    const table = schema.tableInfo.get(entity);
    const shape = (value: unknown) => {
      if (typeof value !== 'object' || value === null) return value;
      const row = value as Record<string, unknown>;
      // The one place a route's rows go out: `returned: false` columns never do.
      let out = table ? filterOutput(row, table) : { ...row };
      if (pick) out = Object.fromEntries(pick.filter((k) => k in out).map((k) => [k, out[k]]));
      if (omit) for (const column of omit) delete out[column];
      return out;
    };
    value = Array.isArray(value) ? value.map(shape) : shape(value);
  }
  return transform ? transform(value) : value;
}
