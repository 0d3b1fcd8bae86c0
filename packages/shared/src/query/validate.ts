import { describeIssues } from '../protocol';
import type { AnySchema, ColumnInfo, CompareKind, TableInfo } from '../schema';
import { compareInstants, parseTimestamp, Timestamp } from '../timestamp';
import {
  type Condition,
  type Cursor,
  type LiteralValue,
  type QueryAST,
  queryASTSchema,
  type SimpleOperator,
} from './ast';
import { isDecimal } from './decimal';

/** A query that does not fit the schema: unknown names, or an operator a column cannot take. */
export class QueryError extends Error {
  override readonly name = 'QueryError';
  readonly code = 'query' as const;
}

const EQUALITY: readonly SimpleOperator[] = ['=', '!=', 'IN', 'NOT IN', 'IS', 'IS NOT'];
const ORDERED: readonly SimpleOperator[] = [...EQUALITY, '<', '<=', '>', '>='];

/**
 * Which operators each kind of column takes (by its `compareAs`). Json columns can only be
 * tested for null; numeric values are numbers to Postgres, so they take no LIKE.
 */
export const OPERATORS_BY_KIND: Readonly<Record<CompareKind, readonly SimpleOperator[]>> = {
  string: [...ORDERED, 'LIKE', 'ILIKE'],
  char: [...ORDERED, 'LIKE', 'ILIKE'],
  number: ORDERED,
  real: ORDERED,
  numeric: ORDERED,
  bigint: ORDERED,
  date: ORDERED,
  boolean: EQUALITY,
  json: ['IS', 'IS NOT'],
  other: ['IS', 'IS NOT'],
};

/**
 * Checks one literal against a column and returns it in the column's in-memory form:
 * dates and bigints arrive from JSON as strings and leave as `Date` and `bigint`.
 */
export function coerceLiteral(column: ColumnInfo, value: unknown, where: string): LiteralValue {
  if (value === null) return null;
  const fail = (): never => {
    throw new QueryError(
      `${where}: ${JSON.stringify(String(value))} is not a valid ${column.kind} for column "${column.key}"`,
    );
  };
  switch (column.compareAs) {
    case 'string':
    case 'char':
      if (typeof value !== 'string') return fail();
      if (column.sqlType === 'uuid') return canonicalUUID(value) ?? fail();
      return column.enumValues ? enumLabel(column, value, where) : value;
    case 'numeric':
      // Postgres takes text or a number's digits; anything else would be an SQL error.
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      return typeof value === 'string' && isDecimal(value) ? value : fail();
    case 'real':
      return typeof value === 'number' && Number.isFinite(value)
        ? checkFloat4(column, value, where)
        : fail();
    case 'number':
      // A bigint-mode-number column holds integers beyond 2^53 as bigints (row-decoder).
      if (typeof value === 'bigint' && INT8.test(column.sqlType)) return value;
      return typeof value === 'number' && Number.isFinite(value) ? value : fail();
    case 'boolean':
      return typeof value === 'boolean' ? value : fail();
    case 'bigint':
      if (typeof value === 'bigint') return value;
      if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
      if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
      return fail();
    case 'date': {
      const date =
        value instanceof Date
          ? value
          : typeof value === 'number'
            ? new Date(value)
            : typeof value === 'string'
              ? readDate(value)
              : undefined;
      if (!date || Number.isNaN(date.getTime())) return fail();
      if (date instanceof Timestamp && date.infinity !== 0) return date;
      return date.getTime() < EARLIEST_TIMESTAMP || compareInstants(date, END_OF_TIMESTAMPS) >= 0
        ? outOfRange(column, where)
        : date;
    }
    default:
      return fail();
  }
}

const INT8 = /^(bigint|bigserial)$/;

// Postgres's first timestamp, 4714-11-24 BC, and the instant after its last, 294276-12-31
// 23:59:59.999999: it refuses any literal outside as out of range.
const EARLIEST_TIMESTAMP = new Date(Date.UTC(2000, 10, 24)).setUTCFullYear(-4713);
const END_OF_TIMESTAMPS = parseTimestamp('294277-01-01 00:00:00+00');

/** Text as Postgres writes timestamps (to the microsecond, infinity) or as `Date` reads it. */
function readDate(text: string): Date {
  try {
    return parseTimestamp(text);
  } catch {
    return new Date(text);
  }
}

function outOfRange(column: ColumnInfo, where: string): never {
  throw new QueryError(
    `${where}: a date before 4714-11-24 BC or after 294276-12-31 is out of Postgres's range for column "${column.key}"`,
  );
}

/**
 * A literal for a `real` column must be one float4 can hold: Postgres refuses `1e39::real`
 * as out of range, where `Math.fround` would make it Infinity.
 */
function checkFloat4(column: ColumnInfo, value: number, where: string): number {
  const single = Math.fround(value);
  if (Number.isFinite(single) && (single !== 0 || value === 0)) return value;
  throw new QueryError(
    `${where}: ${value} is outside the range of real (float4) column "${column.key}"`,
  );
}

const UUID = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/**
 * A uuid literal in the form Postgres writes uuids (lower case, hyphenated), so the client
 * compares it with the rows' text as Postgres compares uuids. Not a uuid: `undefined`.
 */
function canonicalUUID(value: string): string | undefined {
  const match = UUID.exec(value);
  return match ? match.slice(1).join('-').toLowerCase() : undefined;
}

/** A `pgEnum` literal must be one of its labels: Postgres refuses any other as input. */
function enumLabel(column: ColumnInfo, value: string, where: string): string {
  if (column.enumValues?.includes(value)) return value;
  throw new QueryError(
    `${where}: ${JSON.stringify(value)} is not a label of enum column "${column.key}" (${column.enumValues?.join(', ')})`,
  );
}

function mustColumn(table: TableInfo, key: string, where: string): ColumnInfo {
  const column = table.columns.get(key);
  if (!column) {
    const visible = [...table.columns.values()].filter((c) => c.returned).map((c) => c.key);
    throw new QueryError(
      `${where}: "${key}" is not a column of ${table.name} (it has ${visible.join(', ')})`,
    );
  }
  // Clients never hold it, so a query on it would give other rows there than here.
  if (!column.returned) {
    throw new QueryError(
      `${where}: "${key}" of ${table.name} is returned: false; queries cannot filter or order by it`,
    );
  }
  return column;
}

function mustTable(schema: AnySchema, name: string): TableInfo {
  const table = schema.tableInfo.get(name);
  if (!table) {
    throw new QueryError(
      `Unknown table "${name}" (the schema has ${[...schema.tableInfo.keys()].join(', ')})`,
    );
  }
  return table;
}

function mustRelationship(schema: AnySchema, table: TableInfo, name: string, where: string) {
  const relationship = schema.relationships[table.name]?.[name];
  if (!relationship) throw new QueryError(`${where}: ${table.name} has no relationship "${name}"`);
  return relationship;
}

function checkCondition(schema: AnySchema, table: TableInfo, c: Condition): Condition {
  switch (c.type) {
    case 'and':
    case 'or':
      return {
        type: c.type,
        conditions: c.conditions.map((x) => checkCondition(schema, table, x)),
      };
    case 'not':
      return { type: 'not', condition: checkCondition(schema, table, c.condition) };
    case 'exists': {
      const where = `whereExists("${c.relationship}")`;
      const rel = mustRelationship(schema, table, c.relationship, where);
      const subquery = checkQuery(schema, c.subquery);
      if (subquery.table !== rel.table) {
        throw new QueryError(
          `${where}: the subquery must read ${rel.table}, not ${subquery.table}`,
        );
      }
      return { type: 'exists', relationship: c.relationship, subquery };
    }
    case 'simple': {
      const where = `where(${c.column} ${c.op})`;
      const column = mustColumn(table, c.column, where);
      if (!OPERATORS_BY_KIND[column.compareAs].includes(c.op)) {
        throw new QueryError(
          `${where}: operator ${c.op} does not apply to ${column.kind} column "${c.column}"`,
        );
      }
      if (c.op === 'IN' || c.op === 'NOT IN') {
        if (!Array.isArray(c.value)) throw new QueryError(`${where}: needs an array of values`);
        return { ...c, value: c.value.map((v) => coerceLiteral(column, v, where)) };
      }
      if (Array.isArray(c.value)) throw new QueryError(`${where}: takes one value, not an array`);
      if (c.op === 'LIKE' || c.op === 'ILIKE') {
        if (typeof c.value !== 'string')
          throw new QueryError(`${where}: the pattern must be a string`);
        // Postgres refuses such a pattern only when a row reaches the end of it; refuse it
        // up front so both sides agree on every data set.
        if (/(^|[^\\])(\\\\)*\\$/.test(c.value)) {
          throw new QueryError(`${where}: the pattern ends with the escape character \\`);
        }
      }
      return { ...c, value: coerceLiteral(column, c.value, where) };
    }
  }
}

/**
 * Keeps the cursor values of the full ordering (the primary key appended), so a whole
 * result row, related fields and json included, can be passed as the cursor.
 */
function checkCursor(table: TableInfo, orderBy: QueryAST['orderBy'], cursor: Cursor): Cursor {
  const keys = new Set([...(orderBy ?? []).map(([key]) => key), ...table.primaryKey]);
  const row: Record<string, LiteralValue> = {};
  for (const key of keys) {
    if (!(key in cursor.row)) {
      throw new QueryError(
        `start(): the cursor row lacks "${key}"; it must give every ordering column and the primary key (${[...keys].join(', ')})`,
      );
    }
    row[key] = coerceLiteral(mustColumn(table, key, 'start()'), cursor.row[key], 'start()');
  }
  return { row, inclusive: cursor.inclusive };
}

function checkQuery(schema: AnySchema, ast: QueryAST): QueryAST {
  const table = mustTable(schema, ast.table);
  const checked: {
    -readonly [K in keyof QueryAST]: QueryAST[K];
  } = { table: ast.table };
  if (ast.where) checked.where = checkCondition(schema, table, ast.where);
  if (ast.orderBy) {
    for (const [key] of ast.orderBy) {
      const column = mustColumn(table, key, 'orderBy()');
      if (column.kind === 'json' || column.kind === 'other') {
        throw new QueryError(`orderBy(): ${column.kind} column "${key}" cannot be ordered`);
      }
    }
    checked.orderBy = ast.orderBy;
  }
  if (ast.start) checked.start = checkCursor(table, ast.orderBy, ast.start);
  if (ast.limit !== undefined) checked.limit = ast.limit;
  if (ast.related) {
    checked.related = ast.related.map(({ relationship, subquery }) => {
      const where = `related("${relationship}")`;
      const rel = mustRelationship(schema, table, relationship, where);
      const sub = checkQuery(schema, subquery);
      if (sub.table !== rel.table) {
        throw new QueryError(`${where}: the subquery must read ${rel.table}, not ${sub.table}`);
      }
      return { relationship, subquery: sub };
    });
  }
  return checked;
}

/**
 * Checks a query AST that came from outside (the wire) against the schema, and returns it
 * with literals in their in-memory types. Throws `QueryError` naming what is wrong.
 *
 * @example
 * const ast = parseQueryAST(schema, JSON.parse(body).query);
 */
export function parseQueryAST(schema: AnySchema, input: unknown): QueryAST {
  const parsed = queryASTSchema.safeParse(input);
  if (!parsed.success) {
    throw new QueryError(`Malformed query: ${describeIssues(parsed.error.issues)}`);
  }
  return checkQuery(schema, parsed.data);
}
