import type { AnyMutators, AnySchema, ApplicationError, Mutator } from '@reprise/shared';
import type { ClientClosedError } from './client-closed-error';
import type { ClientStorage } from './storage';

/**
 * What `server` resolves to: the mutator's return value, or why the server (or the
 * client-side validation) refused (`error.code === 'app'`), or a `ClientClosedError`
 * (`error.code === 'closed'`) when the client closed first. It never rejects.
 */
export type MutationOutcome<TReturn = unknown> =
  | { readonly ok: true; readonly data: TReturn }
  | { readonly ok: false; readonly error: ApplicationError | ClientClosedError };

/**
 * One mutate call. `client` resolves once the optimistic write is applied, stored and
 * queued, and rejects (nothing queued) when the mutator threw locally, the storage refused
 * the write, or the client is closed; `server` resolves exactly once with the
 * `MutationOutcome`.
 */
export interface MutationCall<TReturn = unknown> {
  readonly client: Promise<void>;
  readonly server: Promise<MutationOutcome<TReturn>>;
}

/** `client.mutate`: the mutators tree with each leaf callable, typed from its definition. */
export type MutateAPI<M> = {
  readonly [K in keyof M]: M[K] extends Mutator<string, infer I, any, infer R>
    ? (...args: undefined extends I ? [args?: I] : [args: I]) => MutationCall<R>
    : MutateAPI<M[K]>;
};

/** The three endpoints, or one base URL they hang off (`/mutate`, `/pull`, `/poke`). */
export type ServerOption = string | { mutate: string; pull: string; poke?: string };

/** A header value for `Authorization`, or a function returning one (called per request). */
export type AuthOption = string | (() => string | undefined | Promise<string | undefined>);

export type AuthState = 'ok' | 'unauthorized';

export interface ClientOptions<S extends AnySchema, M extends AnyMutators> {
  readonly schema: S;
  readonly mutators: M;
  readonly server: ServerOption;
  readonly auth?: AuthOption;
  readonly userID: string;
  /** `'memory'` (default), `'indexeddb'`, or a custom `ClientStorage`. */
  readonly storage?: 'memory' | 'indexeddb' | ClientStorage;
  /** Passed to every mutator as `ctx` on the client. */
  readonly context?: unknown;
  /** The client group; by default the one stored for `userID`, else a new one. */
  readonly clientGroupID?: string;
  readonly fetch?: typeof fetch;
  /**
   * False starts the client held offline, as `setOnline(false)` would: nothing is pulled or
   * pushed (mutations queue) until `setOnline(true)`. Default true.
   */
  readonly online?: boolean;
  /** Pull this often (default 30 000 ms); 0 turns interval pulls off. */
  readonly pullIntervalMs?: number;
  /** Most mutations per push (default 100, the server's default limit). */
  readonly maxBatchSize?: number;
  /** Backoff after a network error or 5xx: first delay and cap (default 250 / 30 000 ms). */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  /** Called when the server answers 401 or 403; pushes stop until `setAuth` is called. */
  readonly onAuthError?: (status: number) => void;
  /** Listen for pokes on the poke URL (default true when there is one). */
  readonly poke?: boolean;
}

/** A settled mutation, as `onMutationSettled` reports it. */
export interface SettledMutation {
  readonly clientID: string;
  readonly id: number;
  readonly name: string;
  readonly outcome: MutationOutcome;
}
