import { checkUpdateData, isKeyFilter, type TableInfo, type TableMutator } from '@reprise/shared';
import type { DatabaseTransaction } from '../db/database';
import { selectMatching } from './row-filter';
import { createTableMutator, type RowWriter, type WriterOptions } from './table-writer';
import type { WriteGuard } from './write-guard';

type Row = Record<string, unknown>;
export type AnyTableMutator = TableMutator<TableInfo['table'], Row>;

/** What `tx.mutate` (and the entity API) are built from. */
export interface SchemaMutateOptions extends WriterOptions {
  /** Checks every write against the write policy first (write-guard.ts). */
  readonly guard?: WriteGuard | undefined;
  /**
   * Server-only callers (the entity API): rows keep their `returned: false` columns and a
   * `where` may name them. `tx.mutate` gives mutators the rows a client would see.
   */
  readonly serverRows?: boolean;
}

/** One table's `tx.mutate`: the writer's four writes, plus `where` forms and row results. */
function tableMutate(
  table: TableInfo,
  tx: DatabaseTransaction,
  options: SchemaMutateOptions,
): AnyTableMutator {
  const raw = createTableMutator(table, tx, options);
  const writer: RowWriter = options.guard
    ? options.guard(table, raw, tx, (inner) => createTableMutator(table, inner, options))
    : raw;
  const serverRows = options.serverRows === true;
  const out = (row: Row): Row => {
    if (serverRows || table.hidden.length === 0) return row;
    const visible = { ...row };
    for (const key of table.hidden) delete visible[key];
    return visible;
  };
  const keyOf = (row: Row) => Object.fromEntries(table.primaryKey.map((key) => [key, row[key]]));
  const matching = (where: unknown, what: string) =>
    selectMatching(tx, options.schema, table, where, what, {
      partialSQL: options.partialSQL,
      allowHidden: serverRows,
      lock: true,
    });

  const update = async (rowOrWhere: Row, data?: Row) => {
    if (data === undefined) {
      const row = await writer.update(rowOrWhere);
      return row && out(row);
    }
    const what = `${table.name}.update`;
    const changes = checkUpdateData(table, data, what);
    const rows: Row[] = [];
    for (const found of await matching(rowOrWhere, what)) {
      const row = await writer.update({ ...changes, ...keyOf(found) });
      if (row) rows.push(out(row));
    }
    return rows;
  };

  return {
    insert: async (row) => out(await writer.insert(row as Row)),
    upsert: async (row) => out(await writer.upsert(row as Row)),
    update: update as AnyTableMutator['update'],
    async delete(where) {
      const filter = where as Row;
      if (isKeyFilter(table, filter)) {
        const row = await writer.delete(filter);
        return row ? [out(row)] : [];
      }
      const rows: Row[] = [];
      for (const found of await matching(filter, `${table.name}.delete`)) {
        const row = await writer.delete(keyOf(found));
        if (row) rows.push(out(row));
      }
      return rows;
    },
  };
}

/**
 * `tx.mutate` for a schema: one table mutator per table, built on first use. With `guard`,
 * every write is first checked against the write policy; with `capture`, recorded.
 *
 * @example
 * const mutate = createSchemaMutate(tx, {schema, partialSQL: false, guard});
 * const issue = await mutate.issue.insert({id: 'i1', title: 'Hi', ownerID: 'ana'});
 */
export function createSchemaMutate(
  tx: DatabaseTransaction,
  options: SchemaMutateOptions,
): Record<string, AnyTableMutator> {
  const { schema } = options;
  const built = new Map<string, AnyTableMutator>();
  return new Proxy({} as Record<string, AnyTableMutator>, {
    get(_target, prop) {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      let mutator = built.get(prop);
      if (!mutator) {
        const table = schema.tableInfo.get(prop);
        if (!table) {
          throw new TypeError(
            `tx.mutate.${prop}: no such table; the schema has ${[...schema.tableInfo.keys()].join(', ')}`,
          );
        }
        mutator = tableMutate(table, tx, options);
        built.set(prop, mutator);
      }
      return mutator;
    },
  });
}
