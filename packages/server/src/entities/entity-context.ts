import type { AnySchema, InsertRow, Row, RowFilter, TableInfo, TableName } from '@reprise/shared';
import { type RecordedChange, writeChanges } from '../changes/changelog';
import { conflictGateOf } from '../db/conflict-gate';
import type { Database, DatabaseTransaction, IsolationLevel } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetries } from '../db/retry';
import { selectMatching } from '../push/row-filter';
import { createSchemaMutate } from '../push/schema-mutate';
import { createWriteGuard } from '../push/write-guard';
import type { WritePolicy } from '../push/write-policy';

// The entity API: row reads and writes for server code outside mutators (scripts, jobs,
// webhooks), through the same table writer as `tx.mutate`, so the write policy, capture
// (or pg-mem's engine-side recording) and therefore pulls, pokes and streams see its writes.

type AnyRow = Record<string, unknown>;

/**
 * One table's rows, whole: server code sees every column, `returned: false` ones included
 * (pass rows through `filterOutput` before they leave the server). A `where` holds column
 * values that must all match, `null` matching NULL; results come in primary key order.
 */
export interface EntityTable<T extends TableInfo['table']> {
  /** Inserts the row and resolves to it as stored, defaults applied. */
  create(row: InsertRow<T>): Promise<Row<T>>;
  /** The first matching row in primary key order, or `undefined`. */
  findOne(where: RowFilter<Row<T>>): Promise<Row<T> | undefined>;
  /** Every matching row (every row for `{}` or no `where`). */
  findMany(where?: RowFilter<Row<T>>): Promise<Row<T>[]>;
  /** Sets `data` on every matching row; resolves to the rows as they now are. */
  update(where: RowFilter<Row<T>>, data: Partial<InsertRow<T>>): Promise<Row<T>[]>;
  /** Deletes every matching row; resolves to the rows deleted. */
  delete(where: RowFilter<Row<T>>): Promise<Row<T>[]>;
}

/** Every table of the schema as an `EntityTable`. */
export type EntityTables<S extends AnySchema> = {
  readonly [K in TableName<S>]: EntityTable<S['tables'][K]>;
};

/** The entity API: its tables, each call its own transaction, and `transaction(fn)`. */
export type EntityContext<S extends AnySchema> = EntityTables<S> & {
  /**
   * Runs `fn` in one transaction: its writes commit together when it resolves, and none
   * does when it throws (the error is rethrown). On a serialization failure or a lost
   * connection the whole of `fn` runs again, so keep side effects out of it.
   */
  transaction<R>(fn: (entities: EntityTables<S>) => Promise<R>): Promise<R>;
};

export interface EntityContextOptions<S extends AnySchema> {
  readonly db: Database<any>;
  readonly schema: S;
  /**
   * Checks every write as pushes are checked, with the scope keys of `scopeKey` (else
   * `userID`); without either only `'unrestricted'` and `allow` rules let a write through.
   * Without a policy, writes are not checked: the caller is trusted server code.
   */
  readonly writePolicy?: WritePolicy<S> | undefined;
  readonly userID?: string | undefined;
  readonly scopeKey?: string | readonly string[] | undefined;
  /** Default `'serializable'`, as for pushes. */
  readonly isolation?: IsolationLevel;
  readonly retry?: Partial<RetryPolicy>;
  readonly engineSchema?: string;
  /** On pg-mem, record writes in the changelog (default true), as pushes do. */
  readonly changelog?: boolean;
}

function tablesOver<S extends AnySchema>(
  tx: DatabaseTransaction,
  options: EntityContextOptions<S>,
  record: ((change: RecordedChange) => void) | undefined,
): EntityTables<S> {
  const { schema, db } = options;
  const partialSQL = db.capabilities.partialSQL;
  const scope = options.scopeKey ?? options.userID;
  const guard = options.writePolicy
    ? createWriteGuard({
        policy: options.writePolicy as WritePolicy,
        schema,
        scopeKeys: new Set(scope === undefined ? [] : typeof scope === 'string' ? [scope] : scope),
        partialSQL,
        isolation: options.isolation ?? 'serializable',
      })
    : undefined;
  const mutate = createSchemaMutate(tx, {
    schema,
    partialSQL,
    capture: record ? { record } : undefined,
    guard,
    serverRows: true,
  });
  const tables: Record<string, EntityTable<TableInfo['table']>> = {};
  for (const [name, table] of schema.tableInfo) {
    const read = (where: unknown, what: string, allowEmpty: boolean) =>
      selectMatching(tx, schema, table, where ?? {}, what, {
        partialSQL,
        allowHidden: true,
        lock: false,
        allowEmpty,
      });
    tables[name] = {
      create: (row) => mutate[name]!.insert(row as AnyRow) as Promise<never>,
      findOne: async (where) => (await read(where, `${name}.findOne`, true))[0] as never,
      findMany: (where) => read(where, `${name}.findMany`, true) as Promise<never[]>,
      update: (where, data) =>
        mutate[name]!.update(where as AnyRow, data as AnyRow) as Promise<never[]>,
      delete: (where) => mutate[name]!.delete(where as AnyRow) as Promise<never[]>,
    };
  }
  return tables as EntityTables<S>;
}

/**
 * The entity API over a database: `create`, `findOne`, `findMany`, `update` and `delete`
 * per table, and `transaction(fn)`. Writes go through the same table writer as `tx.mutate`:
 * captured for pulls, pokes and change streams (on pg-mem, recorded by the engine), and
 * checked by `writePolicy` when one is given.
 *
 * @example
 * const entities = createEntityContext({db, schema});
 * const user = await entities.user.create({id: 'u1', email: 'ana@example.com', passwordHash});
 * await entities.transaction(async (e) => {
 *   await e.issue.update({ownerID: 'u1', open: true}, {open: false});
 *   await e.comment.delete({authorID: 'u1'});
 * });
 */
export function createEntityContext<S extends AnySchema>(
  options: EntityContextOptions<S>,
): EntityContext<S> {
  const { db, schema } = options;
  if (schema.tableInfo.has('transaction')) {
    throw new TypeError(
      'createEntityContext: a table named "transaction" would hide transaction()',
    );
  }
  const engine = engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA);
  const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const isolation = options.isolation ?? 'serializable';
  // pg-mem has no capture triggers: record each write, as a push does there.
  const recordsItself = db.capabilities.partialSQL && options.changelog !== false;

  const transaction = <R>(fn: (entities: EntityTables<S>) => Promise<R>): Promise<R> =>
    withRetries(
      retry,
      () =>
        db.transaction(
          async (tx) => {
            const changes: RecordedChange[] = [];
            const result = await fn(
              tablesOver(tx, options, recordsItself ? (c) => changes.push(c) : undefined),
            );
            await writeChanges(
              tx,
              schema,
              engine,
              changes.map((change) => ({ ...change, origin: null })),
            );
            return result;
          },
          { isolation },
        ),
      conflictGateOf(db),
    );

  const context: Record<string, unknown> = { transaction };
  for (const name of schema.tableInfo.keys()) {
    const one =
      <M extends keyof EntityTable<TableInfo['table']>>(method: M) =>
      (...args: unknown[]) =>
        transaction((e) =>
          (e[name as TableName<S>] as unknown as Record<M, (...a: unknown[]) => Promise<unknown>>)[
            method
          ](...args),
        );
    context[name] = {
      create: one('create'),
      findOne: one('findOne'),
      findMany: one('findMany'),
      update: one('update'),
      delete: one('delete'),
    };
  }
  return context as EntityContext<S>;
}
