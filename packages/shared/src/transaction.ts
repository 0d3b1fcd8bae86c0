import type { PgTable } from 'drizzle-orm/pg-core';
import type { Query, QueryResult, RowOf } from './query/query';
import type { Register } from './register';
import type { AnySchema, InsertRow, Row, UpdateRow } from './schema';

/** Where a transaction runs. */
export type TransactionLocation = 'client' | 'server';
/** Why it runs: a first optimistic try, a replay after new server state, or the real thing. */
export type TransactionReason = 'optimistic' | 'rebase' | 'authoritative';

/**
 * Writes to one table. These semantics hold everywhere `tx.mutate` exists, client and
 * server alike:
 *
 * | method | row missing                 | row exists                                |
 * |--------|-----------------------------|-------------------------------------------|
 * | insert | inserts it                  | throws (duplicate primary key)            |
 * | upsert | inserts it                  | overwrites the columns given, keeps others |
 * | update | does nothing                | overwrites the columns given, keeps others |
 * | delete | does nothing                | deletes it                                |
 *
 * `insert` and `upsert` resolve to the row as stored, defaults applied. `update(row)`
 * addresses the row by its primary key, which it requires, and resolves to the row after
 * it (`undefined` when there was none). `update(where, data)` sets `data` on every row
 * matching `where` and `delete(where)` deletes them: `where` holds column values, each
 * matched as `q.<table>.where(column, 'IS', value)` would (so `null` matches NULL); both
 * resolve to the rows written, in primary key order. A `where` must name a column.
 * `R` is the row as the caller sees it: for `tx.mutate`, without `returned: false` columns.
 *
 * @example
 * const issue = await tx.mutate.issue.insert({id: args.id, title: args.title}); // defaults applied
 * await tx.mutate.issue.update({ownerID: ctx.userID, open: true}, {open: false});
 */
export interface TableMutator<T extends PgTable, R = Row<T>> {
  insert(row: InsertRow<T>): Promise<R>;
  upsert(row: InsertRow<T>): Promise<R>;
  update(row: UpdateRow<T>): Promise<R | undefined>;
  update(where: RowFilter<R>, data: Partial<InsertRow<T>>): Promise<R[]>;
  delete(where: RowFilter<R>): Promise<R[]>;
}

/** A `where` of `tx.mutate` and the entity API: column values, all of which must match. */
export type RowFilter<R> = { readonly [K in keyof R]?: R[K] | null };

/** `tx.mutate`: one `TableMutator` per table of the schema. */
export type SchemaMutate<S extends AnySchema> = {
  readonly [K in keyof S['tables'] & string]: TableMutator<S['tables'][K], RowOf<S, K>>;
};

interface BaseTransaction<S extends AnySchema> {
  readonly location: TransactionLocation;
  readonly reason: TransactionReason;
  /** The client that issued the mutation. */
  readonly clientID: string;
  /** The mutation's per-client id. */
  readonly mutationID: number;
  /** The schema `mutate` and `run` work on (declarative transactions read its tables). */
  readonly schema: S;
  readonly mutate: SchemaMutate<S>;
  /**
   * Runs a query against the state this transaction sees, its own earlier writes included:
   * the rows, or for `one()` the first row or `undefined`.
   *
   * @example
   * const issue = await tx.run(q.issue.where('id', args.id).one());
   */
  run<Q extends Query<any, any, any, any>>(query: Q): Promise<QueryResult<Q>>;
}

/** The transaction a mutator sees when it runs on the server, inside Postgres. */
export interface ServerTransaction<S extends AnySchema = AnySchema, TWrapped = unknown>
  extends BaseTransaction<S> {
  readonly location: 'server';
  readonly reason: 'authoritative';
  /** The driver's own transaction object, for SQL that `tx.mutate` cannot express. */
  readonly dbTransaction: { readonly wrappedTransaction: TWrapped };
  /**
   * Runs `fn` after this mutation's writes have committed. It never runs for an attempt
   * that rolled back (an error, or a retried serialization failure). Errors it throws are
   * reported to the handler's logger and do not affect the mutation's result.
   */
  afterCommit(fn: () => void | Promise<void>): void;
  /**
   * Adds a job to the server's job queue in this mutation's own transaction: it exists if
   * and only if the mutation commits, once however often the transaction is retried. The
   * payload is checked against the job's schema; a payload that fails it fails the
   * mutation. Name the job by its name (typed once the app registers `jobs` on
   * `Register`) or pass its definition. Needs `jobs` in the mutate handler's options.
   *
   * @example
   * if (tx.location === 'server') await tx.enqueue('email.welcome', {userID: args.id});
   */
  enqueue<N extends RegisteredJobName>(
    name: N,
    payload: RegisteredJobPayload<N>,
    options?: EnqueueOptions,
  ): Promise<void>;
  enqueue<P>(job: JobReference<string, P>, payload: P, options?: EnqueueOptions): Promise<void>;
}

/** Options of `tx.enqueue`. */
export interface EnqueueOptions {
  /** Attempts before the job is dead-lettered; default the job's own, else the queue's. */
  readonly maxAttempts?: number;
  /** Not before this time (default now). */
  readonly runAt?: Date;
}

/**
 * What `tx.enqueue` knows of a job: its name, and its payload type as a phantom member.
 * The server's `defineJob` returns one.
 */
export interface JobReference<N extends string = string, P = unknown> {
  readonly name: N;
  /** Type-only: the payload `tx.enqueue` accepts. */
  readonly $payload?: P;
}

/** The registered jobs (`Register['jobs']`, an array of job definitions) as one union. */
type RegisteredJob = Register extends { jobs: infer J }
  ? J extends readonly (infer U extends JobReference)[]
    ? U
    : never
  : JobReference<string, unknown>;
/** A registered job's name; any string while no jobs are registered. */
export type RegisteredJobName = RegisteredJob['name'];
/** The payload the registered job named `N` accepts. */
export type RegisteredJobPayload<N extends string> =
  Extract<RegisteredJob, { readonly name: N }> extends JobReference<string, infer P> ? P : never;

/** The transaction a mutator sees when it runs on the client's local store. */
export interface ClientTransaction<S extends AnySchema = AnySchema> extends BaseTransaction<S> {
  readonly location: 'client';
  readonly reason: 'optimistic' | 'rebase';
}

/** What a mutator receives as `tx`: check `tx.location` to tell the two apart. */
export type Transaction<S extends AnySchema = AnySchema, TWrapped = unknown> =
  | ServerTransaction<S, TWrapped>
  | ClientTransaction<S>;
