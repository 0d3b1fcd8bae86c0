import {
  type AnySchema,
  type ColumnInfo,
  type QueryAST,
  QueryError,
  type TableInfo,
} from '@reprise/shared';

// Rows from any driver, to the in-memory types of SEMANTICS.md. Drivers disagree: int8
// arrives as a string (pg, postgres.js) or a number (pg-mem, PGlite), timestamps as Date
// objects or as text, json parsed or not. The compiler sends the doubtful kinds as text, so
// the text forms are the common case here, but every form a driver may give is accepted.

type Row = Record<string, unknown>;

const TIMESTAMP =
  /^(\d{4,})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:\s*(Z|[+-]\d\d(?::?\d\d)?(?::?\d\d)?))?( BC)?$/;

/**
 * Parses Postgres's text form of a timestamp, timestamptz or date (ISO `DateStyle`, also
 * with a `T`). Without a zone the wall clock is read as UTC; precision stops at the
 * millisecond. `infinity` maps to the latest and earliest instants a `Date` can hold.
 */
export function parseTimestamp(text: string): Date {
  if (text === 'infinity') return new Date(8.64e15);
  if (text === '-infinity') return new Date(-8.64e15);
  const match = TIMESTAMP.exec(text.trim());
  if (!match) throw new TypeError(`Cannot read ${JSON.stringify(text)} as a timestamp`);
  const [, year, month, day, hour, minute, second, fraction, zone, bc] = match;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: the latter reads years 0–99 as 1900–1999.
  date.setUTCFullYear(bc ? 1 - Number(year) : Number(year), Number(month) - 1, Number(day));
  date.setUTCHours(
    Number(hour ?? 0),
    Number(minute ?? 0),
    Number(second ?? 0),
    Number((fraction ?? '').padEnd(3, '0').slice(0, 3)),
  );
  return new Date(date.getTime() - zoneOffsetMs(zone));
}

function zoneOffsetMs(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z') return 0;
  const digits = zone.slice(1).replace(/:/g, '');
  const seconds =
    Number(digits.slice(0, 2)) * 3600 +
    Number(digits.slice(2, 4) || 0) * 60 +
    Number(digits.slice(4, 6) || 0);
  return (zone[0] === '-' ? -seconds : seconds) * 1000;
}

const INT8_TYPE = /^(bigint|bigserial)$/;

/**
 * A number column's text. An int8 beyond 2^53 (a bigint column in mode 'number') becomes a
 * bigint, not the nearest double: rounding would make two stored values equal, or a value
 * equal to a literal, on the client but not in Postgres. Refusing it here would stop every
 * pull over data already stored; SEMANTICS.md steers such columns to mode 'bigint'.
 */
function decodeNumber(column: ColumnInfo, text: string): number | bigint {
  const number = Number(text);
  if (Number.isSafeInteger(number) || !INT8_TYPE.test(column.sqlType)) return number;
  return BigInt(text);
}

/**
 * One column's value in its in-memory type. `inJSON` says the value came out of a JSON
 * document (a related row), where json columns are already parsed.
 */
export function decodeValue(column: ColumnInfo, value: unknown, inJSON: boolean): unknown {
  if (value === null || value === undefined) return null;
  switch (column.kind) {
    case 'string':
    case 'other':
      return typeof value === 'string' ? value : String(value);
    case 'number':
      return typeof value === 'number' ? value : decodeNumber(column, String(value));
    case 'bigint':
      return typeof value === 'bigint' ? value : BigInt(value as string | number);
    case 'boolean':
      return typeof value === 'boolean' ? value : value === 't' || value === 'true';
    case 'date':
      if (value instanceof Date) return new Date(value.getTime());
      return typeof value === 'number' ? new Date(value) : parseTimestamp(String(value));
    case 'json':
      return !inJSON && typeof value === 'string' ? JSON.parse(value) : value;
  }
}

function decodeRow(schema: AnySchema, table: TableInfo, ast: QueryAST, row: Row, inJSON: boolean) {
  const decoded: Row = {};
  for (const column of table.columns.values()) {
    decoded[column.key] = decodeValue(column, row[column.key], inJSON);
  }
  for (const { relationship, subquery } of ast.related ?? []) {
    const rel = schema.relationships[table.name]?.[relationship];
    const dest = schema.tableInfo.get(subquery.table);
    if (!rel || !dest) throw new QueryError(`${table.name} has no relationship "${relationship}"`);
    let value = row[relationship];
    // Drivers parse a json column; some hand it over as text.
    if (typeof value === 'string') value = JSON.parse(value);
    const decode = (nested: unknown) => decodeRow(schema, dest, subquery, nested as Row, true);
    if (rel.cardinality === 'many') {
      decoded[relationship] = Array.isArray(value) ? value.map(decode) : [];
    } else {
      decoded[relationship] = value === null || value === undefined ? undefined : decode(value);
    }
  }
  return decoded;
}

/**
 * Decodes the rows of a compiled query into SEMANTICS.md's in-memory types, related rows
 * included (each by its relationship's destination table).
 *
 * @example
 * const rows = decodeRows(schema, ast, await tx.query(compiled.text, compiled.params));
 */
export function decodeRows(schema: AnySchema, ast: QueryAST, rows: readonly Row[]): Row[] {
  const table = schema.tableInfo.get(ast.table);
  if (!table) throw new QueryError(`Unknown table "${ast.table}"`);
  return rows.map((row) => decodeRow(schema, table, ast, row, false));
}
