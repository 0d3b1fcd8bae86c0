import {
  type AnySchema,
  type ClientTransaction,
  type MemoryStore,
  mustGetTable,
  type Query,
  type QueryResult,
  runQuery,
  type TableInfo,
} from '@reprise/shared';

// `tx` for a mutator running on the client: tx.mutate writes to a draft of the store
// (store.fork()) with the server's semantics (transaction.ts's table), and tx.run reads
// it. The caller commits the draft only when the mutator returned.

type RowInput = Readonly<Record<string, unknown>>;
type ColumnDefault = { default?: unknown; defaultFn?: () => unknown };

function checkColumns(info: TableInfo, row: RowInput, verb: string) {
  for (const key of Object.keys(row)) {
    if (!info.columns.has(key)) throw new TypeError(`${verb}(${info.name}): no column "${key}"`);
  }
  for (const key of info.primaryKey) {
    if (row[key] == null) {
      throw new TypeError(`${verb}(${info.name}): the primary key "${key}" is missing`);
    }
  }
}

/** A full row for an insert: omitted columns take their drizzle default, else null. */
function withDefaults(info: TableInfo, row: RowInput): Record<string, unknown> {
  const full: Record<string, unknown> = {};
  for (const key of info.columns.keys()) {
    if (row[key] !== undefined) {
      full[key] = row[key];
      continue;
    }
    const column = (info.table as unknown as Record<string, ColumnDefault>)[key];
    const fallback = column?.defaultFn ? column.defaultFn() : column?.default;
    // SQL defaults (objects that are not plain values) are the server's to compute.
    full[key] =
      fallback === undefined || (typeof fallback === 'object' && !(fallback instanceof Date))
        ? null
        : fallback;
  }
  return full;
}

function keyOf(info: TableInfo, row: RowInput) {
  return Object.fromEntries(info.primaryKey.map((key) => [key, row[key]]));
}

/** Writes to `store` with the server's semantics: insert throws on a duplicate key, etc. */
export function createStoreMutate(schema: AnySchema, store: MemoryStore) {
  const mutate: Record<string, unknown> = {};
  for (const name of schema.tableInfo.keys()) {
    const info = mustGetTable(schema, name);
    const get = (row: RowInput) => store.get(name, keyOf(info, row) as never);
    mutate[name] = {
      async insert(row: RowInput) {
        checkColumns(info, row, 'insert');
        if (get(row)) {
          throw new Error(`insert(${name}): a row with this primary key already exists`);
        }
        store.put(name, withDefaults(info, row) as never);
      },
      async upsert(row: RowInput) {
        checkColumns(info, row, 'upsert');
        const old = get(row);
        store.put(name, (old ? { ...old, ...defined(row) } : withDefaults(info, row)) as never);
      },
      async update(row: RowInput) {
        checkColumns(info, row, 'update');
        const old = get(row);
        if (old) store.put(name, { ...old, ...defined(row) } as never);
      },
      async delete(key: RowInput) {
        checkColumns(info, key, 'delete');
        store.delete(name, keyOf(info, key) as never);
      },
    };
  }
  return mutate;
}

/** Drops `undefined` values: like the server, an omitted column is left as it is. */
function defined(row: RowInput): RowInput {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined));
}

/**
 * The transaction a mutator sees on the client, writing to `store` (a draft the caller
 * commits or throws away).
 *
 * @example
 * const draft = view.fork();
 * await runMutator(m, {tx: createClientTransaction(schema, draft, {clientID, mutationID: 1, reason: 'optimistic'}), args, ctx});
 * draft.commit();
 */
export function createClientTransaction<S extends AnySchema>(
  schema: S,
  store: MemoryStore<S>,
  meta: { clientID: string; mutationID: number; reason: 'optimistic' | 'rebase' },
): ClientTransaction<S> {
  return {
    location: 'client',
    reason: meta.reason,
    clientID: meta.clientID,
    mutationID: meta.mutationID,
    schema,
    mutate: createStoreMutate(schema, store as unknown as MemoryStore) as never,
    run: async <Q extends Query<any, any, any, any>>(query: Q) =>
      runQuery(store, query) as QueryResult<Q>,
  };
}
