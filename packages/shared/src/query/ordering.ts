import type { ColumnInfo, TableInfo } from '../schema';
import type { Cursor, Ordering } from './ast';
import type { StoreRow } from './store';
import { coerceLiteral, QueryError } from './validate';
import { compareValues } from './values';

// A query's full ordering (the primary key appended), the comparator it gives, the cursor
// test for `start`, and taking the first `limit` rows without sorting them all.

export type RowComparator = (a: StoreRow, b: StoreRow) => number;
export type RowPredicate = (row: StoreRow) => boolean;

interface OrderColumn {
  readonly column: ColumnInfo;
  readonly descending: boolean;
}

function mustColumn(table: TableInfo, key: string, where: string): ColumnInfo {
  const column = table.columns.get(key);
  if (!column) throw new QueryError(`${where}: "${key}" is not a column of ${table.name}`);
  return column;
}

/** `orderBy` with the primary key columns it lacks appended, ascending. */
export function fullOrdering(table: TableInfo, orderBy: Ordering = []): Ordering {
  const named = new Set(orderBy.map(([column]) => column));
  const missing = table.primaryKey.filter((key) => !named.has(key));
  return [...orderBy, ...missing.map((key) => [key, 'asc'] as const)];
}

function orderColumns(table: TableInfo, ordering: Ordering): OrderColumn[] {
  return ordering.map(([key, direction]) => {
    const column = mustColumn(table, key, 'orderBy()');
    if (column.kind === 'json' || column.kind === 'other') {
      throw new QueryError(`orderBy(): ${column.kind} column "${key}" cannot be ordered`);
    }
    return { column, descending: direction === 'desc' };
  });
}

/** Compares by each column in turn: ascending NULLS LAST, descending NULLS FIRST. */
function compareBy(columns: readonly OrderColumn[], a: StoreRow, b: StoreRow): number {
  for (const { column, descending } of columns) {
    const c = compareValues(column.compareAs, a[column.key], b[column.key]);
    if (c !== 0) return descending ? -c : c;
  }
  return 0;
}

/** Orders rows by `ordering`, which should be a `fullOrdering` so that no two rows tie. */
export function compileComparator(table: TableInfo, ordering: Ordering): RowComparator {
  const columns = orderColumns(table, ordering);
  return (a, b) => compareBy(columns, a, b);
}

/**
 * The rows after `cursor.row` in `ordering` (or at it, when inclusive). Comparing with the
 * full comparator gives SEMANTICS.md's per-column rule: ascending, after v is greater or
 * null and after null is nothing; descending, after v is less, after null any non-null.
 */
export function compileCursor(table: TableInfo, ordering: Ordering, cursor: Cursor): RowPredicate {
  const columns = orderColumns(table, ordering);
  const at: Record<string, unknown> = {};
  for (const { column } of columns) {
    const value = cursor.row[column.key];
    if (value === undefined) {
      throw new QueryError(
        `start(): the cursor row lacks "${column.key}", a column of the ordering ` +
          `(${ordering.map(([key]) => key).join(', ')})`,
      );
    }
    at[column.key] = coerceLiteral(column, value, 'start()');
  }
  return cursor.inclusive
    ? (row) => compareBy(columns, row, at) >= 0
    : (row) => compareBy(columns, row, at) > 0;
}

/**
 * The first `limit` of `rows` in `compare` order (all of them when `limit` is undefined).
 * A small limit over many rows keeps a buffer of the best rows so far, cut back to `limit`
 * whenever it fills; rows no better than the last kept one are skipped with one compare.
 * May reorder `rows`.
 */
export function takeFirst(
  rows: StoreRow[],
  compare: RowComparator,
  limit: number | undefined,
): StoreRow[] {
  if (limit === undefined || limit * 4 >= rows.length) {
    rows.sort(compare);
    return limit === undefined || limit >= rows.length ? rows : rows.slice(0, limit);
  }
  if (limit === 0) return [];
  const capacity = Math.max(limit * 2, 512);
  const best: StoreRow[] = [];
  let worstKept: StoreRow | undefined;
  for (const row of rows) {
    if (worstKept !== undefined && compare(row, worstKept) >= 0) continue;
    best.push(row);
    if (best.length >= capacity) {
      best.sort(compare).length = limit;
      worstKept = best[limit - 1];
    }
  }
  best.sort(compare);
  if (best.length > limit) best.length = limit;
  return best;
}
