import type { Condition } from './query/ast';
import type { TableInfo } from './schema';

// The `where` objects of `tx.mutate.<table>.update(where, data)` and `.delete(where)`,
// read the same way on the client's store and in Postgres: each column equal to its value
// as `q.<table>.where(column, 'IS', value)` is, so `null` matches NULL.

type Row = Record<string, unknown>;

/**
 * `where` as a query condition, refusing what is not an object of the table's columns.
 * An empty `where` is refused too: a write must name a column to match rows on.
 *
 * @example
 * const condition = rowFilterCondition(table, {ownerID: 'ana', open: true}, 'issue.update');
 */
export function rowFilterCondition(table: TableInfo, where: unknown, what: string): Condition {
  if (typeof where !== 'object' || where === null || Array.isArray(where)) {
    throw new TypeError(`${what}: where must be an object of column values`);
  }
  const conditions: Condition[] = [];
  for (const [column, value] of Object.entries(where)) {
    if (!table.columns.has(column)) {
      throw new TypeError(`${what}: "${column}" is not a column of ${table.name}`);
    }
    if (value === undefined) throw new TypeError(`${what}: where.${column} is undefined`);
    conditions.push({ type: 'simple', column, op: 'IS', value: value as never });
  }
  if (conditions.length === 0) {
    throw new TypeError(`${what}: where names no column; give at least one to match rows on`);
  }
  return { type: 'and', conditions };
}

/** True when `where` names exactly the primary key, so it addresses at most one row. */
export function isKeyFilter(table: TableInfo, where: unknown): where is Row {
  if (typeof where !== 'object' || where === null) return false;
  const keys = Object.keys(where);
  return (
    keys.length === table.primaryKey.length &&
    table.primaryKey.every(
      (key) => (where as Row)[key] !== undefined && (where as Row)[key] !== null,
    )
  );
}

/** The `data` of `update(where, data)`: columns of the table, never the primary key. */
export function checkUpdateData(table: TableInfo, data: unknown, what: string): Row {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new TypeError(`${what}: data must be an object of column values`);
  }
  for (const [key, value] of Object.entries(data)) {
    if (!table.columns.has(key)) {
      throw new TypeError(`${what}: "${key}" is not a column of ${table.name}`);
    }
    if (table.primaryKey.includes(key) && value !== undefined) {
      throw new TypeError(`${what}: data cannot change the primary key "${key}"`);
    }
  }
  return data as Row;
}
