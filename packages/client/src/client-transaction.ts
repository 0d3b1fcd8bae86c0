import {
  type AnySchema,
  type ClientTransaction,
  checkUpdateData,
  evaluateQuery,
  isKeyFilter,
  type MemoryStore,
  mustGetTable,
  type Query,
  QueryError,
  type QueryResult,
  rowFilterCondition,
  runQuery,
  type StoreRow,
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

/** The row without its returned: false columns: the client never holds them. */
function visible(info: TableInfo, row: RowInput): Record<string, unknown> {
  const out = { ...row };
  for (const key of info.hidden) delete out[key];
  return out;
}

/** Writes to `store` with the server's semantics: insert throws on a duplicate key, etc. */
export function createStoreMutate(schema: AnySchema, store: MemoryStore) {
  const mutate: Record<string, unknown> = {};
  for (const name of schema.tableInfo.keys()) {
    const info = mustGetTable(schema, name);
    const get = (row: RowInput) => store.get(name, keyOf(info, row) as never);
    /** Stores the row and returns it as stored. */
    const put = (row: RowInput) => {
      const stored = visible(info, row);
      store.put(name, stored as never);
      return { ...stored };
    };
    /** The rows `where` matches, by the rules queries follow, in primary key order. */
    const matching = (where: unknown, what: string): StoreRow[] => {
      try {
        return evaluateQuery(store, schema, {
          table: name,
          where: rowFilterCondition(info, where, what),
        });
      } catch (error) {
        if (error instanceof QueryError) throw new TypeError(`${what}: ${error.message}`);
        throw error;
      }
    };
    const updateOne = (row: RowInput) => {
      const old = get(row);
      return old ? put({ ...old, ...defined(row) }) : undefined;
    };
    mutate[name] = {
      async insert(row: RowInput) {
        checkColumns(info, row, 'insert');
        if (get(row)) {
          throw new Error(`insert(${name}): a row with this primary key already exists`);
        }
        return put(withDefaults(info, row));
      },
      async upsert(row: RowInput) {
        checkColumns(info, row, 'upsert');
        const old = get(row);
        return put(old ? { ...old, ...defined(row) } : withDefaults(info, row));
      },
      async update(row: RowInput, data?: RowInput) {
        if (data === undefined) {
          checkColumns(info, row, 'update');
          return updateOne(row);
        }
        const what = `${name}.update`;
        const changes = checkUpdateData(info, data, what);
        // Matched first, then written: a write cannot change which rows match.
        return matching(row, what).map(
          (found) => updateOne({ ...changes, ...keyOf(info, found) })!,
        );
      },
      async delete(where: RowInput) {
        if (isKeyFilter(info, where)) {
          checkColumns(info, where, 'delete');
          const old = get(where);
          if (!old) return [];
          store.delete(name, keyOf(info, where) as never);
          return [{ ...old }];
        }
        return matching(where, `${name}.delete`).map((found) => {
          store.delete(name, keyOf(info, found) as never);
          return { ...found };
        });
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
