import type {
  AnyMutators,
  AnySchema,
  ApplicationError,
  MutationRequest,
  Mutator,
  Query,
  QueryResult,
} from '@reprise/shared';
import type { Database } from '../db/database';
import type { Logger } from '../db/logger';
import type { AnyJobDefinition } from '../jobs/define-job';
import type { JobRunSummary } from '../jobs/job-backend';
import type { JobQueue } from '../jobs/job-queue';
import type { WritePolicy } from '../push/write-policy';
import type { TestEngine } from './testing-engine';

// The public types of `@reprise/server/testing`; `testing.ts` builds them.

// The name and return type of a leaf, looked up from the request's dotted name, so that
// `mutate` is typed from the mutators passed in. Name parts never contain a dot.
type MutatorName<M> = {
  [K in keyof M & string]: M[K] extends Mutator<infer N> ? N : MutatorName<M[K]>;
}[keyof M & string];

type MutatorReturn<M, N extends string> = N extends `${infer Head}.${infer Rest}`
  ? Head extends keyof M
    ? MutatorReturn<M[Head], Rest>
    : never
  : N extends keyof M
    ? M[N] extends Mutator<string, any, any, infer R>
      ? R
      : never
    : never;

/**
 * How the server answered one mutation: its return value, or the error it was refused
 * with. The same shape as `@reprise/client`'s `MutationOutcome`.
 *
 * @example
 * const outcome = await t.mutate(mutators.issue.close({id: 'i1'}), {userID: 'bob'});
 * if (!outcome.ok) expect(outcome.error.details).toEqual({issueID: 'i1'});
 */
export type TestMutationOutcome<TReturn = unknown> =
  | { readonly ok: true; readonly data: TReturn }
  | { readonly ok: false; readonly error: ApplicationError };

/**
 * Who runs a mutation. Unset fields fall back to the `createTestDatabase` options.
 *
 * @example
 * const asBob: TestMutateOptions = {userID: 'bob', context: {userID: 'bob'}, clientID: 'tab2'};
 */
export interface TestMutateOptions {
  /** The authenticated user, as `handleMutateRequest` gets it. */
  readonly userID?: string;
  /** Passed to the mutator as `ctx`. */
  readonly context?: unknown;
  /** The pushing client (default `'test-client'`); each client numbers its mutations from 1. */
  readonly clientID?: string;
}

/**
 * What `createTestDatabase` sets up; `userID` and `context` are defaults for every `mutate`.
 *
 * @example
 * const options = {schema, mutators, ddl: APP_DDL, engine: 'pg-mem'} satisfies TestDatabaseOptions<typeof schema, typeof mutators>;
 */
export interface TestDatabaseOptions<S extends AnySchema, M extends AnyMutators>
  extends Omit<TestMutateOptions, 'clientID'> {
  readonly schema: S;
  /** The mutators the server runs: the shared ones, or `overrideMutators(...)`. */
  readonly mutators: M;
  /**
   * The app's own tables, run after `migrate` creates the engine's: SQL text that may hold
   * several statements (a migration file's contents), or a list of such texts run in order.
   */
  readonly ddl?: string | readonly string[];
  /** Default `'pglite'`. */
  readonly engine?: TestEngine;
  /** Where the engine logs (default: nowhere; failures still reach the thrown error's `cause`). */
  readonly logger?: Logger;
  /** The app's write policy, checked on every `tx.mutate` write as in production. */
  readonly writePolicy?: WritePolicy<S>;
  /** The scope keys writes are checked against (default: the mutation's `userID`). */
  readonly scopeKey?: string | readonly string[];
  /**
   * The jobs mutators may `tx.enqueue`. They wait in the database's job table (the
   * in-process runner's, as on PGlite in production) until `runJobs()` runs them.
   */
  readonly jobs?: readonly AnyJobDefinition[];
}

/**
 * An in-memory database with the engine's tables and the app's, and a way to push to it.
 *
 * @example
 * let t: TestDatabase<typeof schema, typeof mutators>;
 * beforeEach(async () => { t = await createTestDatabase({schema, mutators, ddl: APP_DDL}) });
 * afterEach(() => t.close());
 */
export interface TestDatabase<S extends AnySchema, M extends AnyMutators> extends AsyncDisposable {
  /** The adapter over the engine, for anything the helpers below do not cover. */
  readonly db: Database;
  /**
   * Pushes one mutation through `processMutateRequest`, as a client would, with the next
   * id of its client; a refused mutation uses up its id too, as in production. Throws
   * only when the whole push failed (`PushFailed`).
   */
  mutate<N extends MutatorName<M>>(
    request: MutationRequest<N>,
    options?: TestMutateOptions,
  ): Promise<TestMutationOutcome<MutatorReturn<M, N>>>;
  /** Runs a query-builder query and returns its rows in their in-memory types. */
  run<Q extends Query<S, any, any, any>>(query: Q): Promise<QueryResult<Q>>;
  /** Runs one SQL statement and returns its rows. */
  sql<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * Runs every queued job that is due, one after another, and resolves when none is left:
   * a job's handler has run by then. A failed attempt is retried only once its backoff
   * has passed (a later `runJobs()`).
   *
   * @example
   * await t.mutate(mutators.user.create({id: 'u1'}));
   * expect(await t.runJobs()).toEqual({completed: 1, failed: 0});
   */
  runJobs(): Promise<JobRunSummary>;
  /** The queue behind `runJobs` (workers, dead letters). */
  readonly jobs: JobQueue;
  /** Closes the database; later calls do nothing. */
  close(): Promise<void>;
}
