import {
  ApplicationError,
  decodeRich,
  encodeRich,
  isEnvelope,
  type JSONValue,
  type MutationResponse,
  type MutationResult,
  PULL_VERSION,
  PUSH_VERSION,
  type PullResponse,
  type PushRequest,
  pullResponseSchema,
  pushResponseSchema,
} from '@reprise/shared';
import type { QueuedMutation } from './storage';
import type { AuthOption, MutationOutcome } from './types';

// One push or pull over HTTP, and what the server's answer means: the sync loop decides
// what to do next from these replies and never looks at a Response itself.

export interface Endpoints {
  readonly mutate: string;
  readonly pull: string;
  readonly poke?: string | undefined;
}

export interface Transport {
  readonly endpoints: Endpoints;
  readonly fetch: typeof fetch;
  readonly auth: AuthOption | undefined;
}

/** A push's answer. `failed` carries the status to act on (a 5xx retries, a 401 stops). */
export type PushReply =
  | { readonly kind: 'ok'; readonly mutations: readonly MutationResponse[] }
  | { readonly kind: 'unreachable' }
  | { readonly kind: 'tooLarge' }
  | { readonly kind: 'outOfOrder' }
  | { readonly kind: 'failed'; readonly status: number };

export type PullReply =
  | { readonly kind: 'ok'; readonly response: PullResponse }
  | { readonly kind: 'unreachable' }
  | { readonly kind: 'failed'; readonly status: number };

/** The outcome a mutation's result reports, or undefined for `alreadyProcessed`. */
export function toOutcome(result: MutationResult): MutationOutcome | undefined {
  if (!('error' in result)) return { ok: true, data: result.data };
  if (result.error === 'alreadyProcessed') return undefined;
  return {
    ok: false,
    error: new ApplicationError(result.message ?? 'The server refused the mutation', {
      details: result.details as JSONValue,
    }),
  };
}

/** The headers of every request: JSON, and `Authorization` when `auth` gives one. */
export async function requestHeaders(
  auth: AuthOption | undefined,
): Promise<Record<string, string>> {
  const value = typeof auth === 'function' ? await auth() : auth;
  return value === undefined
    ? { 'content-type': 'application/json' }
    : { 'content-type': 'application/json', authorization: value };
}

async function readJSON(response: Response): Promise<unknown> {
  const body: unknown = await response.json();
  return isEnvelope(body) ? decodeRich(body) : body;
}

async function post(transport: Transport, url: string, body: unknown): Promise<Response> {
  return transport.fetch(url, {
    method: 'POST',
    headers: await requestHeaders(transport.auth),
    body: JSON.stringify(encodeRich(body)),
  });
}

/**
 * Pushes `batch` of the group's mutations: each client's in id order, under its own id.
 *
 * @example
 * const reply = await sendPush(transport, state.clientGroupID, [{clientID, mutation}]);
 */
export async function sendPush(
  transport: Transport,
  clientGroupID: string,
  batch: readonly QueuedMutation[],
): Promise<PushReply> {
  const request: PushRequest = {
    clientGroupID,
    pushVersion: PUSH_VERSION,
    timestamp: Date.now(),
    requestID: globalThis.crypto.randomUUID(),
    mutations: batch.map(({ clientID, mutation: m }) => ({
      type: 'custom' as const,
      id: m.id,
      clientID,
      name: m.name,
      args: [m.args],
      timestamp: m.timestamp,
    })),
  };
  let response: Response;
  try {
    response = await post(transport, transport.endpoints.mutate, request);
  } catch {
    return { kind: 'unreachable' };
  }
  if (response.status === 413) return { kind: 'tooLarge' };
  let parsed: ReturnType<typeof pushResponseSchema.safeParse>;
  try {
    parsed = pushResponseSchema.safeParse(await readJSON(response));
  } catch {
    return { kind: 'failed', status: response.status >= 400 ? response.status : 502 };
  }
  if (!response.ok && !(parsed.success && parsed.data.kind === 'PushFailed')) {
    return { kind: 'failed', status: response.status };
  }
  if (!parsed.success) return { kind: 'failed', status: 502 };
  const body = parsed.data;
  if (body.kind === 'PushFailed') {
    if (body.reason === 'oooMutation') return { kind: 'outOfOrder' };
    return { kind: 'failed', status: response.status === 200 ? 500 : response.status };
  }
  return { kind: 'ok', mutations: body.mutations };
}

/**
 * Pulls the changes since `cookie`.
 *
 * @example
 * const reply = await sendPull(transport, {clientGroupID, cookie: null});
 */
export async function sendPull(
  transport: Transport,
  from: { readonly clientGroupID: string; readonly cookie: string | null },
): Promise<PullReply> {
  let response: Response;
  try {
    response = await post(transport, transport.endpoints.pull, {
      clientGroupID: from.clientGroupID,
      cookie: from.cookie,
      pullVersion: PULL_VERSION,
    });
  } catch {
    return { kind: 'unreachable' };
  }
  let parsed: ReturnType<typeof pullResponseSchema.safeParse> | undefined;
  try {
    if (response.ok) parsed = pullResponseSchema.safeParse(await readJSON(response));
  } catch {}
  if (!parsed?.success) return { kind: 'failed', status: response.ok ? 502 : response.status };
  return { kind: 'ok', response: parsed.data };
}
