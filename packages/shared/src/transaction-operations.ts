import { ApplicationError, type JSONValue } from './errors';
import type { Condition, LiteralValue } from './query/ast';
import { Query } from './query/query';
import { valuesEqual } from './query/values';
import { type AnySchema, mustGetTable, type TableInfo } from './schema';
import type { EnqueueOptions, JobReference, Transaction } from './transaction';

// The runtime of declarative transactions (define-transaction.ts has the typed builder).
// Every operation goes through `tx.run` and `tx.mutate`, so it runs the same way on the
// client's store and in Postgres, with the server's write policies and change capture.

/** The five things an operation can do to a table. */
export type OperationKind = 'create' | 'read' | 'list' | 'update' | 'delete';

type Row = Record<string, unknown>;

/** What an operation's functions receive: the args, the results so far, the app's ctx. */
export interface OperationContext<TBody = unknown, TResults = unknown, TContext = unknown> {
  /** The transaction's validated args. */
  readonly body: TBody;
  /** Earlier operations' results, by `as` or table name (a skipped one is absent). */
  readonly results: TResults;
  /** The mutator's `ctx` (the handler's or client's `context`). */
  readonly context: TContext;
  /** The transaction the operations run in: `tx.location` tells client from server. */
  readonly tx: Transaction<any, any>;
}

/** What `onError` receives beside the error: the transaction itself is gone. */
export interface FailureContext<TBody = unknown, TContext = unknown> {
  readonly body: TBody;
  readonly context: TContext;
}

type Dynamic<T> = T | ((ctx: OperationContext<any, any, any>) => T | Promise<T>);

/** One operation as stored; the builder's types make sure it fits the schema. */
export interface OperationSpec {
  readonly kind: OperationKind;
  readonly entity: string;
  readonly as?: string | undefined;
  readonly where?: Dynamic<Row> | undefined;
  readonly data?: Dynamic<Row> | undefined;
  readonly condition?:
    | ((ctx: OperationContext<any, any, any>) => unknown | Promise<unknown>)
    | undefined;
  readonly transform?: ((result: any) => unknown) | undefined;
  /** read, update, delete: no matching row gives `null` instead of a `notFound` error. */
  readonly optional?: boolean | undefined;
}

/** A declarative transaction as stored: its operations, in order, and its hooks. */
export interface TransactionSpec {
  readonly operations: readonly OperationSpec[];
  readonly onSuccess?:
    | ((results: any, ctx: OperationContext<any, any, any>) => unknown)
    | undefined;
  readonly onError?: ((error: unknown, ctx: FailureContext<any, any>) => unknown) | undefined;
  /** Durable jobs enqueued in the transaction after its operations, on the server only. */
  readonly jobs?: readonly JobStep[] | undefined;
}

/** One `enqueue` of a declarative transaction. */
export interface JobStep {
  readonly job: string | JobReference;
  readonly payload: (results: any, ctx: OperationContext<any, any, any>) => unknown;
  readonly options?: EnqueueOptions | undefined;
}

/**
 * Runs the operations in order inside `tx` and returns their results by name. A throw
 * from any of them fails the whole mutation, so the engine rolls every write back.
 * `onSuccess` is registered to run after commit, on the server only.
 */
export async function runOperations(
  spec: TransactionSpec,
  options: { tx: Transaction<any, any>; args: unknown; ctx: unknown },
): Promise<Record<string, unknown>> {
  const { tx } = options;
  const results: Record<string, unknown> = {};
  const ctx: OperationContext = { body: options.args, results, context: options.ctx, tx };
  for (const op of spec.operations) {
    if (op.condition && !(await op.condition(ctx))) continue;
    const result = await runOperation(tx, op, ctx);
    results[op.as ?? op.entity] = op.transform ? await op.transform(result) : result;
  }
  if (spec.jobs?.length && tx.location === 'server') {
    // In the transaction, so a job exists if and only if the transaction commits.
    for (const step of spec.jobs) {
      const payload = await step.payload({ ...results }, ctx);
      await (tx.enqueue as (job: unknown, payload: unknown, options?: unknown) => Promise<void>)(
        step.job,
        payload,
        step.options,
      );
    }
  }
  const { onSuccess } = spec;
  if (onSuccess && tx.location === 'server') {
    const snapshot = { ...results };
    tx.afterCommit(async () => {
      await onSuccess(snapshot, { ...ctx, results: snapshot });
    });
  }
  return { ...results };
}

async function runOperation(
  tx: Transaction<any, any>,
  op: OperationSpec,
  ctx: OperationContext,
): Promise<unknown> {
  const schema: AnySchema = tx.schema;
  const info = mustGetTable(schema, op.entity);
  // Writes resolve to the row as stored (without `returned: false` columns), on both sides.
  const mutate = (
    tx.mutate as unknown as Record<string, Record<string, (row: Row) => Promise<Row>>>
  )[info.name]!;
  const label = `${op.kind} ${info.name}`;
  switch (op.kind) {
    case 'create': {
      const data = await rowArgument(op.data, ctx, label, 'data');
      keyOf(info, data, label);
      return mutate.insert!(data);
    }
    case 'read': {
      const where = await rowArgument(op.where ?? {}, ctx, label, 'where');
      const [row] = await find(tx, info, where, 1, label);
      return row ?? missing(op, info, where);
    }
    case 'list':
      return find(
        tx,
        info,
        await rowArgument(op.where ?? {}, ctx, label, 'where'),
        undefined,
        label,
      );
    case 'update':
    case 'delete': {
      const where = await rowArgument(op.where, ctx, label, 'where');
      const rows = await find(tx, info, where, 2, label);
      if (rows.length === 0) return missing(op, info, where);
      if (rows.length > 1) {
        throw new ApplicationError(
          `${label}: more than one row matches ${describe(where)}; ${op.kind} changes one row`,
          { details: { reason: 'ambiguous', table: info.name, where: jsonOf(where) } },
        );
      }
      const key = keyOf(info, rows[0]!, label);
      if (op.kind === 'delete') {
        await mutate.delete!(key);
        return rows[0];
      }
      const data = await rowArgument(op.data, ctx, label, 'data');
      for (const column of info.primaryKey) {
        if (
          data[column] !== undefined &&
          !valuesEqual(info.columns.get(column)!.compareAs, data[column], key[column])
        ) {
          throw new TypeError(`${label}: data may not change the primary key column "${column}"`);
        }
      }
      return (await mutate.update!({ ...data, ...key })) ?? null;
    }
  }
}

async function rowArgument(
  value: Dynamic<Row> | undefined,
  ctx: OperationContext,
  label: string,
  name: 'data' | 'where',
): Promise<Row> {
  const row = typeof value === 'function' ? await value(ctx) : value;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new TypeError(`${label}: ${name} must be an object of columns`);
  }
  return row;
}

function keyOf(info: TableInfo, row: Row, label: string): Row {
  const key: Row = {};
  for (const column of info.primaryKey) {
    if (row[column] == null) {
      // Ids come from the args, so the client's optimistic run and the server agree.
      throw new TypeError(`${label}: data must hold the primary key "${column}"`);
    }
    key[column] = row[column];
  }
  return key;
}

/** The rows whose columns equal `where`'s values (`null`: is null), in primary key order. */
function find(
  tx: Transaction<any, any>,
  info: TableInfo,
  where: Row,
  limit: number | undefined,
  label: string,
): Promise<Row[]> {
  const conditions: Condition[] = [];
  for (const [column, value] of Object.entries(where)) {
    if (!info.columns.has(column)) throw new TypeError(`${label}: no column "${column}"`);
    // An undefined value would match every row: an update meant for one would hit another.
    if (value === undefined) throw new TypeError(`${label}: where.${column} is undefined`);
    conditions.push(
      value === null
        ? { type: 'simple', column, op: 'IS', value: null }
        : { type: 'simple', column, op: '=', value: value as LiteralValue },
    );
  }
  const ast = {
    table: info.name,
    ...(conditions.length === 0
      ? {}
      : { where: conditions.length === 1 ? conditions[0]! : { type: 'and' as const, conditions } }),
    ...(limit === undefined ? {} : { limit }),
  };
  return tx.run(new Query(tx.schema, ast, false)) as Promise<Row[]>;
}

function missing(op: OperationSpec, info: TableInfo, where: Row): null {
  if (op.optional) return null;
  throw new ApplicationError(`${op.kind} ${info.name}: no row matches ${describe(where)}`, {
    details: { reason: 'notFound', table: info.name, where: jsonOf(where) },
  });
}

function jsonOf(where: Row): JSONValue {
  return JSON.parse(describe(where)) as JSONValue;
}

function describe(where: Row): string {
  return JSON.stringify(where, (_key, value) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}
