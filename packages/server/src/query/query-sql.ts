import {
  type ColumnInfo,
  formatTimestamp,
  type LiteralValue,
  QueryError,
  type TableInfo,
} from '@reprise/shared';
import { quoteIdent } from '../db/database';

// The SQL pieces the query compiler builds from: column references, comparison forms and
// typed parameters. Values only ever enter the statement as `$n` parameters.

const TEXT_TYPE = /^(text|varchar|character varying|char|character|bpchar)\b/;
const INT8_TYPE = /^(bigint|bigserial)$/;
const NUMERIC_TYPE = /^(numeric|decimal)\b/;
const INTEGRAL_TYPE = /^(smallint|integer|bigint|smallserial|serial|bigserial)$/;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** A table's SQL name, schema-qualified when the definition names a schema. */
export function tableSQL(table: TableInfo): string {
  return table.sqlSchema
    ? `${quoteIdent(table.sqlSchema)}.${quoteIdent(table.sqlName)}`
    : quoteIdent(table.sqlName);
}

/** `"alias"."column"`. */
export function columnRef(alias: string, column: ColumnInfo): string {
  return `${quoteIdent(alias)}.${quoteIdent(column.sqlName)}`;
}

/** True for the SQL string types whose values need no cast to compare as text. */
export function isTextType(column: ColumnInfo): boolean {
  return TEXT_TYPE.test(column.sqlType);
}

/**
 * String kinds that are neither SQL text nor uuid or enum (inet, interval, time, dates in
 * mode 'string'…): the rows hold Postgres's text form, so equality compares that text, as
 * ordering does. The type's own `=` would hold '10.0.0.1' equal to '10.0.0.1/32' and fail
 * on a literal it cannot parse; the client can do neither.
 */
export function comparesAsText(column: ColumnInfo): boolean {
  return (
    column.kind === 'string' &&
    column.compareAs === 'string' &&
    !isTextType(column) &&
    column.sqlType !== 'uuid' &&
    column.enumValues === undefined
  );
}

/**
 * A string literal for a name the schema declares (a JSON key), never for a value. The
 * `E''` form keeps backslashes literal whatever `standard_conforming_strings` says.
 */
export function nameLiteral(name: string): string {
  const quoted = name.replace(/'/g, "''");
  return name.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

/**
 * Refuses what a partial-SQL database (pg-mem) cannot run, naming it, instead of letting
 * it fail as SQL or, worse, give different rows.
 */
export function requireFullSQL(partialSQL: boolean, feature: string, reason: string): void {
  if (partialSQL) {
    throw new QueryError(
      `This database (pg-mem) cannot run ${feature}: ${reason}. Run the query on PGlite or Postgres.`,
    );
  }
}

// The decimals a double cannot hold, as exact numeric text: from 2^1024 - 2^970 on a
// decimal rounds to Infinity, and up to 2^-1075 to 0 (ties to even), as Number() reads it.
// Postgres's numeric-to-float8 cast refuses both ("out of range for type double precision").
const DOUBLE_OVERFLOW = (2n ** 1024n - 2n ** 970n).toString();
const DOUBLE_UNDERFLOW = `${5n ** 1075n}e-1075`;

/**
 * A numeric column in mode 'number' as the double the client's rows hold: `::float8`,
 * except where Postgres would refuse the cast and Number() gives ±Infinity or 0. NaN is
 * tested first: Postgres holds it greater than every number.
 */
function numericAsDouble(ref: string): string {
  return (
    `(CASE WHEN ${ref} = 'NaN' THEN 'NaN'::float8` +
    ` WHEN ${ref} >= ${DOUBLE_OVERFLOW} THEN 'Infinity'::float8` +
    ` WHEN ${ref} <= -${DOUBLE_OVERFLOW} THEN '-Infinity'::float8` +
    ` WHEN abs(${ref}) <= ${DOUBLE_UNDERFLOW} THEN 0::float8 ELSE ${ref}::float8 END)`
  );
}

/** A numeric column in mode 'number': its rows hold doubles, and compare as such. */
const isNumericAsNumber = (column: ColumnInfo) =>
  column.kind === 'number' && NUMERIC_TYPE.test(column.sqlType);

/**
 * The expression that orders and range-compares a column as SEMANTICS.md says: strings
 * by code point (collation "C"), other kinds natively. String kinds that are not SQL text
 * (uuid, enums, inet…) compare by their text form, as the in-memory rows hold it; numeric
 * in mode 'number' as the doubles the rows hold.
 */
export function orderedExpr(alias: string, column: ColumnInfo, partialSQL: boolean): string {
  const ref = columnRef(alias, column);
  // pg-mem cannot parse COLLATE; it compares JavaScript strings, by UTF-16 code unit.
  const collate = partialSQL ? '' : ' COLLATE "C"';
  if (column.compareAs === 'numeric') return ref;
  if (isNumericAsNumber(column)) {
    return partialSQL ? `${ref}::double precision` : numericAsDouble(ref);
  }
  switch (column.kind) {
    case 'string':
      return isTextType(column) ? `${ref}${collate}` : `${ref}::text${collate}`;
    case 'json':
    case 'other':
      throw new QueryError(`orderBy(): ${column.kind} column "${column.key}" cannot be ordered`);
    default:
      return ref;
  }
}

/**
 * The column as equality tests read it: SQL text types under collation "C", so `=` is
 * code point equality on both sides even when the column's own collation is
 * nondeterministic (a case-insensitive ICU collation holds 'a' = 'A'). Other kinds, and
 * string kinds that are not SQL text (uuid, enums), have no collation.
 */
export function exactRef(alias: string, column: ColumnInfo, partialSQL: boolean): string {
  const ref = columnRef(alias, column);
  if (comparesAsText(column)) return partialSQL ? `${ref}::text` : `${ref}::text COLLATE "C"`;
  if (isNumericAsNumber(column)) return orderedExpr(alias, column, partialSQL);
  return column.kind === 'string' && isTextType(column) && !partialSQL ? `${ref} COLLATE "C"` : ref;
}

/**
 * `column = rhs` (`IN (rhs)` when `rhs` is a parenthesised list) by code point. For text the
 * plain test comes first: it can use an index on the column in its own collation, and under
 * any collation strings with the same code points are equal, so it only narrows; the
 * `COLLATE "C"` test then drops what a nondeterministic collation called equal.
 */
export function equalSQL(
  alias: string,
  column: ColumnInfo,
  op: '=' | 'IN',
  rhs: string,
  partialSQL: boolean,
): string {
  const ref = columnRef(alias, column);
  const exact = exactRef(alias, column, partialSQL);
  if (comparesAsText(column) || isNumericAsNumber(column)) return `${exact} ${op} ${rhs}`;
  return exact === ref ? `${ref} ${op} ${rhs}` : `(${ref} ${op} ${rhs} AND ${exact} ${op} ${rhs})`;
}

/**
 * Whether a relationship's pair of columns must also be compared under collation "C": SQL
 * text types, whose own collation may be nondeterministic (createSchema pairs text only
 * with text). pg-mem has no collations.
 */
export function joinsByCodePoint(column: ColumnInfo, partialSQL: boolean): boolean {
  return !partialSQL && column.kind === 'string' && isTextType(column);
}

/**
 * A relationship's `dest = source` for one pair of columns, by code point for text: the
 * plain test can use an index on `dest`, the `COLLATE "C"` one drops what a case-insensitive
 * collation called equal (as `equalSQL` does for literals).
 */
export function joinEqualSQL(
  dest: string,
  source: string,
  column: ColumnInfo,
  partialSQL: boolean,
): string {
  return joinsByCodePoint(column, partialSQL)
    ? `(${dest} = ${source} AND ${dest} COLLATE "C" = ${source})`
    : `${dest} = ${source}`;
}

/** The column as a query returns it: kinds whose driver decoding differs travel as text. */
export function outputExpr(
  alias: string,
  column: ColumnInfo,
  partialSQL: boolean,
  inJSON: boolean,
): string {
  const ref = columnRef(alias, column);
  switch (column.kind) {
    case 'bigint':
    case 'other':
      return `${ref}::text`;
    case 'number':
      // int8 as text: drivers (and JSON) would round a value beyond 2^53 to a double.
      return INT8_TYPE.test(column.sqlType) ? `${ref}::text` : ref;
    case 'date':
      // pg-mem cannot cast timestamps to text; it hands out Date objects, which decode as-is.
      // JSON's form, not ::text, whose form follows DateStyle ('SQL' writes 01/02/2026):
      // JSON writes ISO 8601 whatever the session says, as the changelog's rows do.
      if (partialSQL) return ref;
      return inJSON ? ref : `(to_jsonb(${ref}) #>> '{}')`;
    case 'json':
      // Inside a JSON object the value nests as JSON; as a column, text parses one way only.
      return inJSON ? ref : `${ref}::text`;
    case 'string':
      return isTextType(column) ? ref : `${ref}::text`;
    default:
      return ref;
  }
}

/**
 * The column as a related row's JSON object holds it: as `outputExpr` with `inJSON`, but
 * json columns as their text, since nested as JSON a JSON null and SQL NULL are both null.
 */
export function nestedOutputExpr(alias: string, column: ColumnInfo, partialSQL: boolean): string {
  return column.kind === 'json'
    ? `${columnRef(alias, column)}::text`
    : outputExpr(alias, column, partialSQL, true);
}

// NUL never occurs in SQL text or in identifiers, so a marker cannot collide with either.
const MARK = String.fromCharCode(0);
const MARKERS = new RegExp(`${MARK}(\\d+)${MARK}`, 'g');

/**
 * Collects a statement's parameters and hands out their placeholders. Placeholders are
 * markers until `finish`: conditions that fold to TRUE or FALSE drop text holding
 * parameters, so only the markers left in the final text are numbered and sent.
 */
export class Params {
  private readonly values: unknown[] = [];

  constructor(private readonly partialSQL: boolean) {}

  /** A placeholder for an untyped value, such as a limit. */
  add(value: unknown): string {
    this.values.push(value);
    return `${MARK}${this.values.length - 1}${MARK}`;
  }

  /** Numbers the placeholders still in `text` as `$1, $2…` and returns their values. */
  finish(text: string): { text: string; params: unknown[] } {
    const params: unknown[] = [];
    const numbers = new Map<number, string>();
    const numbered = text.replace(MARKERS, (_, index: string) => {
      const i = Number(index);
      let placeholder = numbers.get(i);
      if (!placeholder) {
        params.push(this.values[i]);
        placeholder = `$${params.length}`;
        numbers.set(i, placeholder);
      }
      return placeholder;
    });
    return { text: numbered, params };
  }

  /**
   * `$n::type` for a literal compared with `column`. `asText` is for string kinds compared
   * by their text form, and LIKE patterns; otherwise a string kind's parameter takes the
   * column's own type.
   */
  literal(column: ColumnInfo, value: Exclude<LiteralValue, null>, asText: boolean): string {
    if (column.sqlType === 'date') {
      requireFullSQL(
        this.partialSQL,
        `a comparison on date column "${column.key}"`,
        'it cannot compare a date with a timestamp',
      );
    }
    const cast = paramType(column, value, asText);
    const placeholder = this.add(encodeLiteral(value));
    // A timestamp goes as text: postgres.js re-reads a date-typed parameter with
    // `new Date(text)`, losing its microseconds and refusing infinity and BC years.
    if (column.kind === 'date') return `${placeholder}::text::${cast}`;
    return cast ? `${placeholder}::${cast}` : placeholder;
  }
}

/** Text for everything but booleans, so every driver sends the same thing. */
function encodeLiteral(value: Exclude<LiteralValue, null>): unknown {
  // Not toISOString: a plain Date writes years outside 1–9999 in a form Postgres refuses.
  if (value instanceof Date) return formatTimestamp(value);
  if (typeof value === 'boolean') return value;
  return String(value);
}

function paramType(column: ColumnInfo, value: LiteralValue, asText: boolean): string | undefined {
  switch (column.kind) {
    case 'string':
      // numeric compares as numbers, char without trailing spaces (bpchar), except LIKE,
      // which Postgres runs on the padded value as the rows hold it.
      if (column.compareAs === 'numeric') return 'numeric';
      if (column.compareAs === 'char' && !asText) return 'bpchar';
      // Equality on uuid or enum columns keeps the column's type, so indexes still apply.
      return asText || isTextType(column) || comparesAsText(column) ? 'text' : undefined;
    case 'number':
      if (column.compareAs === 'real') return 'real';
      if (!INTEGRAL_TYPE.test(column.sqlType)) return 'double precision';
      return Number.isSafeInteger(value) ? 'bigint' : 'numeric';
    case 'bigint': {
      const big = value as bigint;
      return big >= INT8_MIN && big <= INT8_MAX ? 'bigint' : 'numeric';
    }
    case 'boolean':
      return 'boolean';
    case 'date':
      // A zone in the text is ignored for `timestamp`: its wall clock is read as UTC.
      return column.sqlType.includes('with time zone') ? 'timestamptz' : 'timestamp';
    default:
      throw new QueryError(
        `Column "${column.key}" (${column.kind}) cannot be compared with a value`,
      );
  }
}
