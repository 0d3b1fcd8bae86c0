import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { MutatorDefinition } from './mutator';
import type { RowOf, TableName } from './query/query';
import type { RegisteredContext, RegisteredSchema } from './register';
import type { AnySchema, InsertRow } from './schema';
import type {
  EnqueueOptions,
  JobReference,
  RegisteredJobName,
  RegisteredJobPayload,
} from './transaction';
import {
  type FailureContext,
  type JobStep,
  type OperationContext,
  type OperationKind,
  type OperationSpec,
  runOperations,
  type TransactionSpec,
} from './transaction-operations';

// Declarative transactions, after Nevr's `transaction({operations})`: a list of create /
// read / list / update / delete operations that compiles to an ordinary mutator, so it
// runs optimistically on the client and authoritatively on the server like any other.
// The builder is chained so that each operation's `ctx.results` is typed with exactly
// the results before it; TypeScript cannot type that through one array literal.

/** An object filter on a table's columns: each one given must equal its value. */
export type WhereFilter<S extends AnySchema, E extends TableName<S>> = {
  readonly [C in keyof RowOf<S, E>]?: RowOf<S, E>[C] | null;
};

type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** A later result of the same name replaces the earlier one, as it does at run time. */
type Add<TResults, TAs extends string, V> = Simplify<
  Omit<TResults, TAs> & { readonly [K in TAs]: V }
>;
type Found<TOptional, V> = TOptional extends true ? V | null : V;

/** What every operation takes beside its own options. */
interface OperationOptions<TAs, TResult, TOut> {
  /** The name its result goes by in `ctx.results` (default: the table's). */
  readonly as?: TAs;
  /** Replaces the result that later operations, `onSuccess` and the caller see. */
  readonly transform?: (result: TResult) => TOut;
}

/** `condition` skips the operation when it returns a falsy value; its result is then absent. */
type Conditional<C> = { readonly condition: (ctx: C) => unknown };
type Unconditional = { readonly condition?: undefined };

/** `T`, refusing keys `Shape` does not have (a function's object literal escapes that check). */
type Exactly<T, Shape> = T & { readonly [K in Exclude<keyof T, keyof Shape>]: never };
/** A value, or a function of the context giving it; the function's keys are checked too. */
type Given<T, TShape, C> = TShape | ((ctx: C) => Exactly<T, TShape> | Promise<Exactly<T, TShape>>);

type Next<B, TAs extends string, V> =
  B extends TransactionBuilder<infer S, infer TContext, infer TInput, infer TBody, infer TResults>
    ? TransactionBuilder<S, TContext, TInput, TBody, Add<TResults, TAs, V>>
    : never;

/**
 * A declarative transaction: a mutator (`defineMutators` takes it as a leaf) whose body
 * is its operations. Each method returns a new transaction with one more operation; with
 * a `condition` the operation's result may be missing from the results.
 */
export interface TransactionBuilder<
  S extends AnySchema,
  TContext,
  TInput,
  TBody,
  TResults extends object,
> extends MutatorDefinition<TInput, TBody, TResults> {
  readonly spec: TransactionSpec;

  /** Inserts `data` (the primary key included) and gives the row as stored. */
  create<
    E extends TableName<S>,
    TData extends InsertRow<S['tables'][E]>,
    TAs extends string = E,
    TOut = RowOf<S, E>,
  >(
    entity: E,
    options: OperationOptions<TAs, RowOf<S, E>, TOut> &
      Conditional<OperationContext<TBody, TResults, TContext>> & {
        readonly data: Given<
          TData,
          InsertRow<S['tables'][E]>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut> | undefined>;
  create<
    E extends TableName<S>,
    TData extends InsertRow<S['tables'][E]>,
    TAs extends string = E,
    TOut = RowOf<S, E>,
  >(
    entity: E,
    options: OperationOptions<TAs, RowOf<S, E>, TOut> &
      Unconditional & {
        readonly data: Given<
          TData,
          InsertRow<S['tables'][E]>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut>>;

  /** The one row `where` matches; none is a `notFound` error, or `null` when `optional`. */
  read<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Conditional<OperationContext<TBody, TResults, TContext>> &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>>,
  ): Next<this, TAs, Awaited<TOut> | undefined>;
  read<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Unconditional &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>>,
  ): Next<this, TAs, Awaited<TOut>>;

  /** Every row `where` matches (all rows without it), in primary key order. */
  list<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOut = RowOf<S, E>[],
  >(
    entity: E,
    options: OperationOptions<TAs, RowOf<S, E>[], TOut> &
      Conditional<OperationContext<TBody, TResults, TContext>> & {
        readonly where?: Given<
          TWhere,
          WhereFilter<S, E>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut> | undefined>;
  list<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOut = RowOf<S, E>[],
  >(
    entity: E,
    options?: OperationOptions<TAs, RowOf<S, E>[], TOut> &
      Unconditional & {
        readonly where?: Given<
          TWhere,
          WhereFilter<S, E>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut>>;

  /**
   * Sets `data` on the one row `where` matches and gives it as stored. No match is a
   * `notFound` error (or `null` when `optional`); several are an `ambiguous` error.
   */
  update<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TData extends Partial<RowOf<S, E>>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Conditional<OperationContext<TBody, TResults, TContext>> &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>> & {
        readonly data: Given<
          TData,
          Partial<RowOf<S, E>>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut> | undefined>;
  update<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TData extends Partial<RowOf<S, E>>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Unconditional &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>> & {
        readonly data: Given<
          TData,
          Partial<RowOf<S, E>>,
          OperationContext<TBody, TResults, TContext>
        >;
      },
  ): Next<this, TAs, Awaited<TOut>>;

  /** Deletes the one row `where` matches and gives it as it was; same rules as `update`. */
  delete<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Conditional<OperationContext<TBody, TResults, TContext>> &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>>,
  ): Next<this, TAs, Awaited<TOut> | undefined>;
  delete<
    E extends TableName<S>,
    TWhere extends WhereFilter<S, E>,
    TAs extends string = E,
    TOptional extends boolean = false,
    TOut = Found<TOptional, RowOf<S, E>>,
  >(
    entity: E,
    options: OperationOptions<TAs, Found<TOptional, RowOf<S, E>>, TOut> &
      Unconditional &
      Lookup<S, E, TWhere, TOptional, OperationContext<TBody, TResults, TContext>>,
  ): Next<this, TAs, Awaited<TOut>>;

  /**
   * Runs after the transaction committed, on the server only (never on the client, never
   * for an attempt that rolled back). Its errors are logged and change nothing.
   */
  onSuccess(
    fn: (results: TResults, ctx: OperationContext<TBody, TResults, TContext>) => unknown,
  ): TransactionBuilder<S, TContext, TInput, TBody, TResults>;

  /**
   * Enqueues a durable job in the transaction, after its operations, on the server only:
   * the job exists if and only if the transaction commits, and a worker runs it even if
   * this process dies right after the commit (the README's Jobs section). `onSuccess`, which
   * runs after the commit in this process, is for effects that may be lost.
   */
  enqueue<N extends RegisteredJobName>(
    name: N,
    payload: (
      results: TResults,
      ctx: OperationContext<TBody, TResults, TContext>,
    ) => RegisteredJobPayload<N> | Promise<RegisteredJobPayload<N>>,
    options?: EnqueueOptions,
  ): TransactionBuilder<S, TContext, TInput, TBody, TResults>;
  enqueue<P>(
    job: JobReference<string, P>,
    payload: (
      results: TResults,
      ctx: OperationContext<TBody, TResults, TContext>,
    ) => P | Promise<P>,
    options?: EnqueueOptions,
  ): TransactionBuilder<S, TContext, TInput, TBody, TResults>;

  /**
   * Runs on the server once when the transaction failed for good (rolled back, its error
   * recorded), after that is committed. `ctx.body` is the args as sent (validation may be
   * what failed).
   */
  onError(
    fn: (error: unknown, ctx: FailureContext<TBody, TContext>) => unknown,
  ): TransactionBuilder<S, TContext, TInput, TBody, TResults>;
}

/** read, update and delete find their row by `where`; `optional` lets it be missing. */
type Lookup<S extends AnySchema, E extends TableName<S>, TWhere, TOptional, C> = {
  readonly where: Given<TWhere, WhereFilter<S, E>, C>;
  readonly optional?: TOptional;
};

/** The results before the first operation. */
type NoResults = Record<never, never>;

/**
 * One operation in Nevr's form, `{entity, operation, where?, data?, …}`, checked against
 * the schema; in this form `ctx.results` is untyped (the chained form types it).
 */
export type OperationInput<S extends AnySchema = AnySchema, TBody = any, TContext = any> = {
  [E in TableName<S>]: OperationInputFor<
    S,
    E,
    OperationContext<TBody, Record<string, any>, TContext>
  >;
}[TableName<S>];

type OperationInputFor<S extends AnySchema, E extends TableName<S>, C> = {
  readonly entity: E;
  readonly as?: string;
  readonly condition?: (ctx: C) => unknown;
  readonly transform?: (result: any) => unknown;
} & (
  | {
      readonly operation: 'create';
      readonly data: InsertRow<S['tables'][E]> | ((ctx: C) => InsertRow<S['tables'][E]>);
    }
  | {
      readonly operation: 'read' | 'update' | 'delete' | 'list';
      readonly where?: WhereFilter<S, E> | ((ctx: C) => WhereFilter<S, E>);
      readonly data?: Partial<RowOf<S, E>> | ((ctx: C) => Partial<RowOf<S, E>>);
      readonly optional?: boolean;
    }
);

/** Nevr's `transaction({operations, onSuccess, onError})`, as `defineTransaction` takes it. */
export interface TransactionInput<S extends AnySchema, TBody, TContext> {
  readonly operations:
    | OperationInput<S, TBody, TContext>
    | readonly OperationInput<S, TBody, TContext>[];
  readonly onSuccess?: (
    results: Record<string, any>,
    ctx: OperationContext<TBody, Record<string, any>, TContext>,
  ) => unknown;
  readonly onError?: (error: unknown, ctx: FailureContext<TBody, TContext>) => unknown;
}

/** `defineTransaction`, typed for one schema and context. */
export interface DefineTransaction<S extends AnySchema, TContext> {
  <TValidator extends StandardSchemaV1>(
    definition: TransactionInput<S, StandardSchemaV1.InferOutput<TValidator>, TContext>,
    validator: TValidator,
  ): MutatorDefinition<
    StandardSchemaV1.InferInput<TValidator>,
    StandardSchemaV1.InferOutput<TValidator>,
    Record<string, any>
  >;
  <TArgs = void>(
    definition: TransactionInput<S, TArgs, TContext>,
  ): MutatorDefinition<TArgs, TArgs, Record<string, any>>;
  <TValidator extends StandardSchemaV1>(
    validator: TValidator,
  ): TransactionBuilder<
    S,
    TContext,
    StandardSchemaV1.InferInput<TValidator>,
    StandardSchemaV1.InferOutput<TValidator>,
    NoResults
  >;
  <TArgs = void>(): TransactionBuilder<S, TContext, TArgs, TArgs, NoResults>;
}

/**
 * Starts a declarative transaction: chain operations onto it, then give it to
 * `defineMutators` like any mutator. Nevr's form, `defineTransaction({operations, onSuccess,
 * onError}, validator)`, builds the same thing (with `ctx.results` untyped). The operations run in order in one transaction (on
 * the client's store optimistically, in Postgres on the server), each through `tx.mutate`
 * and `tx.run`; any throw rolls all of them back. With a validator, `ctx.body` is its output.
 *
 * @example
 * const signUp = defineTransaction(z.object({userID: z.string(), email: z.string()}))
 *   .create('user', {data: (ctx) => ({id: ctx.body.userID, email: ctx.body.email})})
 *   .create('profile', {data: (ctx) => ({id: ctx.results.user.id, userID: ctx.results.user.id})})
 *   .onSuccess((results) => mailer.welcome(results.user.email));
 */
export const defineTransaction: DefineTransaction<RegisteredSchema, RegisteredContext> = ((
  first?: StandardSchemaV1 | TransactionInput<AnySchema, unknown, unknown>,
  second?: StandardSchemaV1,
) => {
  const input = first !== undefined && 'operations' in first ? first : undefined;
  const validator = input ? second : (first as StandardSchemaV1 | undefined);
  if (validator !== undefined && !isStandardSchema(validator)) {
    throw new TypeError(
      'defineTransaction: the validator must implement Standard Schema (zod does)',
    );
  }
  if (!input) return makeTransaction({ operations: [] }, validator);
  let built = makeTransaction({ operations: [] }, validator);
  const operations = Array.isArray(input.operations) ? input.operations : [input.operations];
  for (const op of operations as readonly (OperationSpec & { operation: OperationKind })[]) {
    const { operation, entity, ...options } = op;
    if (!KINDS.has(operation)) {
      throw new TypeError(
        `defineTransaction: unknown operation "${String(operation)}" on ${entity}`,
      );
    }
    built = (built[operation] as (entity: string, options: object) => typeof built)(
      entity,
      options,
    );
  }
  if (input.onSuccess) built = built.onSuccess(input.onSuccess);
  if (input.onError) built = built.onError(input.onError);
  return built;
}) as DefineTransaction<RegisteredSchema, RegisteredContext>;

const KINDS = new Set<string>(['create', 'read', 'list', 'update', 'delete']);

/**
 * A `defineTransaction` typed for the given schema and context, for code that cannot use
 * the global `Register` (as `createMutatorDefiner` is for `defineMutator`).
 *
 * @example
 * const defineTransaction = createTransactionDefiner<typeof schema, {userID: string}>();
 */
export function createTransactionDefiner<
  S extends AnySchema,
  TContext = unknown,
>(): DefineTransaction<S, TContext> {
  return defineTransaction as unknown as DefineTransaction<S, TContext>;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return typeof value === 'object' && value !== null && '~standard' in value;
}

function makeTransaction(
  spec: TransactionSpec,
  validator: StandardSchemaV1 | undefined,
): TransactionBuilder<AnySchema, unknown, unknown, unknown, object> {
  const add =
    (kind: OperationKind) =>
    (entity: string, options: Partial<OperationSpec> = {}) => {
      if (typeof entity !== 'string' || entity === '') {
        throw new TypeError(`defineTransaction: ${kind} needs a table name`);
      }
      if ((kind === 'update' || kind === 'delete') && options.where === undefined) {
        throw new TypeError(`defineTransaction: ${kind} ${entity} needs a where`);
      }
      if ((kind === 'create' || kind === 'update') && options.data === undefined) {
        throw new TypeError(`defineTransaction: ${kind} ${entity} needs data`);
      }
      const op: OperationSpec = { ...options, kind, entity };
      return makeTransaction({ ...spec, operations: [...spec.operations, op] }, validator);
    };
  const { onError } = spec;
  return {
    '~kind': 'mutator-definition',
    validator,
    fn: (options) => runOperations(spec, options),
    ...(onError
      ? {
          onFailure: (error: unknown, { args, ctx }: { args: unknown; ctx: unknown }) =>
            onError(error, { body: args, context: ctx }),
        }
      : {}),
    spec,
    create: add('create'),
    read: add('read'),
    list: add('list'),
    update: add('update'),
    delete: add('delete'),
    enqueue: (job: JobStep['job'], payload: JobStep['payload'], options?: EnqueueOptions) =>
      makeTransaction(
        { ...spec, jobs: [...(spec.jobs ?? []), { job, payload, options }] },
        validator,
      ),
    onSuccess: (fn) => makeTransaction({ ...spec, onSuccess: fn }, validator),
    onError: (fn) => makeTransaction({ ...spec, onError: fn }, validator),
  } as TransactionBuilder<AnySchema, unknown, unknown, unknown, object>;
}
