import {
  type AnySchema,
  type ColumnInfo,
  JSON_NULL,
  parseTimestamp,
  type QueryAST,
  QueryError,
  type TableInfo,
} from '@reprise/shared';

// Rows from any driver, to the in-memory types of SEMANTICS.md. Drivers disagree: int8
// arrives as a string (pg, postgres.js) or a number (pg-mem, PGlite), timestamps as Date
// objects or as text, json parsed or not. The compiler sends the doubtful kinds as text, so
// the text forms are the common case here, but every form a driver may give is accepted.

type Row = Record<string, unknown>;

// Timestamps are read to the microsecond, infinities included: see Timestamp.
export { parseTimestamp };

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
      // Drivers' Date objects (pg-mem) are only as precise as a millisecond anyway.
      if (value instanceof Date) return new Date(value.getTime());
      return typeof value === 'number' ? new Date(value) : parseTimestamp(String(value));
    case 'json': {
      // Nested in JSON, a JSON null cannot be told from SQL NULL (both are null): it reads
      // as SQL NULL. As text it can: 'null' is JSON_NULL.
      if (inJSON || typeof value !== 'string') return value;
      const parsed: unknown = JSON.parse(value);
      return parsed === null ? JSON_NULL : parsed;
    }
  }
}

/** The columns of one row of `table`, without related rows. */
function decodeColumns(table: TableInfo, row: Row, inJSON: boolean): Row {
  const decoded: Row = {};
  for (const column of table.columns.values()) {
    // Queries do not read returned: false columns; rows read whole (RETURNING *) keep them.
    if (!column.returned && !Object.hasOwn(row, column.key)) continue;
    // The compiler nests json columns as text (nestedOutputExpr), to keep JSON null.
    const asText = inJSON && column.kind === 'json' && typeof row[column.key] === 'string';
    decoded[column.key] = decodeValue(column, row[column.key], inJSON && !asText);
  }
  return decoded;
}

/**
 * One row of `table` as a write returns it (every column, no related rows), decoded.
 *
 * @example
 * const after = decodeTableRow(table, (await tx.query(insert.text, insert.params))[0]);
 */
export function decodeTableRow(table: TableInfo, row: Row): Row {
  return decodeColumns(table, row, false);
}

function decodeRow(schema: AnySchema, table: TableInfo, ast: QueryAST, row: Row, inJSON: boolean) {
  const decoded = decodeColumns(table, row, inJSON);
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
