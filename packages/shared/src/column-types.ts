import type { Column } from 'drizzle-orm';

// Which drizzle pg-core column types Reprise accepts, and how each one's values compare, so
// that the client's evaluator and Postgres agree on them (SEMANTICS.md, "Column types").
// A type whose values the two sides would read or compare differently is refused here, at
// createSchema time, where the user can change the declaration.

/** The kind of value a column holds, as both sides of Reprise need to treat it. */
export type ColumnKind = 'string' | 'number' | 'bigint' | 'boolean' | 'date' | 'json' | 'other';

/**
 * How values of a column compare: their kind's rule, or one of the SQL types whose
 * equality and order differ from their in-memory type's. `real` compares as float4,
 * `numeric` as exact decimals (its values are strings), `char` ignores trailing spaces.
 */
export type CompareKind = ColumnKind | 'real' | 'numeric' | 'char';

/** A column's kind and comparison, as `describeColumn` decides them. */
export interface ColumnTyping {
  readonly kind: ColumnKind;
  readonly compareAs: CompareKind;
  /** The labels of a `pgEnum` column, which literals must be one of. */
  readonly enumValues?: readonly string[];
}

// Refused column types, with what to declare instead. Their values would reach the client
// in a form that is not their row type (arrays and geometry as text) or fail to decode.
const REFUSED: Readonly<Record<string, string>> = {
  PgArray: 'array columns are not supported yet; use json or jsonb',
  PgLine: 'line columns are not supported; use json or jsonb',
  PgLineABC: 'line columns are not supported; use json or jsonb',
  PgPointTuple: 'point columns are not supported; use two double precision columns',
  PgPointObject: 'point columns are not supported; use two double precision columns',
  PgGeometry: 'geometry columns are not supported; use json or jsonb',
  PgGeometryObject: 'geometry columns are not supported; use json or jsonb',
  PgVector: 'vector columns are not supported; use json or jsonb',
  PgHalfVector: 'halfvec columns are not supported; use json or jsonb',
};

function kindOf(dataType: string): ColumnKind {
  switch (dataType) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'date':
    case 'json':
      return dataType;
    default:
      return 'other';
  }
}

function compareAsOf(kind: ColumnKind, columnType: string): CompareKind {
  switch (columnType) {
    case 'PgReal':
      return 'real';
    case 'PgNumeric':
      return 'numeric';
    case 'PgChar':
      return 'char';
    default:
      return kind;
  }
}

/**
 * Decides how Reprise treats a drizzle column, or throws a `TypeError` naming the column
 * and what to declare instead when the two sides could not agree on its values.
 *
 * @example
 * describeColumn('issue', 'score', real('score')); // {kind: 'number', compareAs: 'real'}
 */
export function describeColumn(table: string, key: string, column: Column): ColumnTyping {
  const { columnType, dataType } = column;
  const refused = REFUSED[columnType];
  if (refused) throw new TypeError(`Column ${table}.${key} (${column.getSQLType()}): ${refused}.`);
  if (columnType === 'PgNumericBigInt') {
    // BigInt('1.5') throws: a fraction in such a column would stop every pull.
    const { precision, scale } = column as unknown as { precision?: number; scale?: number };
    if (precision === undefined || (scale ?? 0) !== 0) {
      throw new TypeError(
        `Column ${table}.${key} (${column.getSQLType()}): numeric in mode 'bigint' must have scale 0, ` +
          `e.g. numeric({precision: 20, scale: 0, mode: 'bigint'}); use mode 'string' for fractions.`,
      );
    }
  }
  const kind = kindOf(dataType);
  const enumValues =
    columnType === 'PgEnumColumn'
      ? (column as unknown as { enumValues?: string[] }).enumValues
      : [];
  return {
    kind,
    compareAs: compareAsOf(kind, columnType),
    ...(enumValues?.length ? { enumValues } : {}),
  };
}

/** What `joinClass` needs of a column. */
export interface JoinedColumn extends ColumnTyping {
  readonly sqlType: string;
}

const INTEGRAL = /^(smallint|integer|bigint|smallserial|serial|bigserial)$/;

/**
 * The class of columns a relationship may join this one with, so that Postgres's `=`
 * between them and the client's comparison agree, or a `TypeError` saying why the column
 * cannot be joined on. `where` names the relationship and the column in the message.
 *
 * @example
 * joinClass('Relationship issue.owner: issue.ownerID', integer('x')); // 'integer'
 */
export function joinClass(where: string, column: JoinedColumn): string {
  const refuse = (why: string): never => {
    throw new TypeError(`${where} (${column.sqlType}) cannot be joined on: ${why}.`);
  };
  // Precision and length do not change how values compare: timestamp(3) joins timestamp.
  const base = column.sqlType.replace(/\s*\(\d+(,\s*\d+)?\)/, '');
  switch (column.compareAs) {
    case 'json':
    case 'other':
      return refuse(
        'Postgres compares such values by their type (json has no = at all), the client by identity',
      );
    case 'number':
      if (INTEGRAL.test(base)) return 'integer';
      if (/^(numeric|decimal)$/.test(base)) {
        return refuse(
          "in mode 'number' Postgres would join exact decimals, the client doubles; declare it mode 'string'",
        );
      }
      return base;
    case 'bigint':
      // bigint in mode 'bigint', numeric(n) in mode 'bigint': exact integers on both sides.
      return 'integer';
    case 'string':
      if (/^(text|varchar|character varying)$/.test(base)) return 'text';
      if (base === 'interval') {
        return refuse("Postgres holds intervals equal whose text differs ('1 day' = '24:00:00')");
      }
      // As text: a date in mode 'string' is no Timestamp, so it joins no date in mode 'date'.
      return `${base} as text`;
    default:
      return column.compareAs === 'date' ? base : column.compareAs;
  }
}
