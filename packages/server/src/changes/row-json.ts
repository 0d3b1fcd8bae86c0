import { type ColumnInfo, formatTimestamp, type TableInfo } from '@reprise/shared';
import { quoteIdent } from '../db/database';
import { isTextType, nameLiteral } from '../query/query-sql';
import { decodeValue } from '../query/row-decoder';

// How the changelog stores a row: a JSON object keyed by the schema's column keys, each
// value in the form a related row takes inside a query's JSON (row-decoder's `inJSON`):
// booleans as JSON, timestamps as JSON's ISO 8601 text (microseconds, BC and infinity
// kept), and every kind whose JSON form could lose something as Postgres's text: int8,
// floats' NaN and -0, numeric, and json itself (nested, a JSON null would read as SQL NULL). The capture triggers build it in SQL; pg-mem's engine-side recording
// builds the same thing in JavaScript; readers decode both alike.

type Row = Record<string, unknown>;

/** Columns per `json_build_object` call: a function takes at most 100 arguments. */
const PAIRS_PER_CALL = 40;

/** Kinds whose stored form is not text: JSON's boolean, and a timestamp's ISO 8601 string. */
const isTyped = (column: ColumnInfo) => column.kind === 'boolean' || column.kind === 'date';

/** The SQL expression for one column of `record` (`NEW` or `OLD`) in a stored row. */
function valueSQL(record: string, column: ColumnInfo): string {
  const ref = `${record}.${quoteIdent(column.sqlName)}`;
  switch (column.kind) {
    case 'boolean':
      return ref;
    case 'date':
      // JSON's form of a timestamp is ISO 8601 whatever the writer's DateStyle.
      return `to_jsonb(${ref})`;
    case 'string':
      return isTextType(column) ? ref : `${ref}::text`;
    default:
      // number, bigint, other: text keeps NaN, -0 and int8 exact; json: text keeps a JSON
      // null apart from SQL NULL.
      return `${ref}::text`;
  }
}

/**
 * SQL for the JSON text of `columns` of `record`. The columns stored as text go into one
 * `json_object(keys, values)`, which only escapes them, where `json_build_object` looks up
 * how to write each of its arguments, keys included, on every call (a capture trigger
 * makes one call per written row: 11 k instructions less a row of a twelve-column table);
 * booleans and timestamps go into `json_build_object`, which writes them as JSON's own.
 * The calls' members are joined into one object.
 */
export function rowSQL(record: string, columns: readonly ColumnInfo[]): string {
  const texts = columns.filter((c) => !isTyped(c));
  const typed = columns.filter(isTyped);
  const calls: string[] = [];
  if (texts.length > 0) {
    const keys = texts.map((c) => nameLiteral(c.key)).join(', ');
    const values = texts.map((c) => valueSQL(record, c)).join(', ');
    calls.push(`json_object(ARRAY[${keys}], ARRAY[${values}]::text[])::text`);
  }
  for (let i = 0; i < typed.length; i += PAIRS_PER_CALL) {
    const pairs = typed
      .slice(i, i + PAIRS_PER_CALL)
      .map((c) => `${nameLiteral(c.key)}, ${valueSQL(record, c)}`);
    calls.push(`json_build_object(${pairs.join(', ')})::text`);
  }
  if (calls.length === 0) return `'{}'`;
  if (calls.length === 1) return calls[0]!;
  // Each call's members, without its braces.
  return `'{' || ${calls.map((call) => `left(substr(${call}, 2), -1)`).join(` || ',' || `)} || '}'`;
}

/** The table's key columns, in key order. */
export function keyColumns(table: TableInfo): ColumnInfo[] {
  return table.primaryKey.map((key) => table.columns.get(key)!);
}

function encodeValue(column: ColumnInfo, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (column.kind) {
    case 'json':
      return JSON.stringify(value);
    case 'boolean':
      return value;
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'date':
      return value instanceof Date ? formatTimestamp(value) : String(value);
    default:
      return String(value);
  }
}

/** `row` (in-memory types) as the changelog stores it; only `columns` are kept. */
export function encodeStoredRow(columns: Iterable<ColumnInfo>, row: Row): Row {
  const stored: Row = {};
  for (const column of columns) stored[column.key] = encodeValue(column, row[column.key]);
  return stored;
}

/**
 * A stored row back in the in-memory types of SEMANTICS.md. Without the table's info (a
 * table the reader's schema does not know) the stored JSON is returned as it is.
 */
export function decodeStoredRow(table: TableInfo | undefined, stored: unknown): Row {
  const value = (typeof stored === 'string' ? JSON.parse(stored) : stored) as Row;
  if (!table) return value;
  const row: Row = {};
  for (const [key, raw] of Object.entries(value)) {
    const column = table.columns.get(key);
    // json is stored as text, which decodes as a column's own value does.
    row[key] = column ? decodeValue(column, raw, column.kind !== 'json') : raw;
  }
  return row;
}
