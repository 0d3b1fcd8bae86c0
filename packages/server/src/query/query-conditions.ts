import {
  type AnySchema,
  type ColumnInfo,
  type Condition,
  type Cursor,
  type Direction,
  type LiteralValue,
  type QueryAST,
  QueryError,
  type SimpleCondition,
  type TableInfo,
} from '@reprise/shared';
import { quoteIdent } from '../db/database';
import {
  columnRef,
  equalSQL,
  exactRef,
  isTextType,
  joinsByCodePoint,
  orderedExpr,
  type Params,
  requireFullSQL,
  tableSQL,
} from './query-sql';

// WHERE clauses: conditions, whereExists and the start cursor, compiled to SQL that is
// two-valued where SEMANTICS.md needs it to be (see `not`).

/** What compiling a condition needs from the statement being built. */
export interface ConditionContext {
  readonly schema: AnySchema;
  readonly partialSQL: boolean;
  readonly params: Params;
  /** A table alias not used elsewhere in the statement. */
  nextAlias(): string;
}

export type FullOrdering = readonly (readonly [column: ColumnInfo, direction: Direction])[];

/** `AND` of the parts, `TRUE` for none. */
export function and(parts: readonly string[]): string {
  if (parts.includes('FALSE')) return 'FALSE';
  const kept = parts.filter((part) => part !== 'TRUE');
  if (kept.length === 0) return 'TRUE';
  return kept.length === 1 ? kept[0]! : `(${kept.join(' AND ')})`;
}

/** `OR` of the parts, `FALSE` for none. */
export function or(parts: readonly string[]): string {
  if (parts.includes('TRUE')) return 'TRUE';
  const kept = parts.filter((part) => part !== 'FALSE');
  if (kept.length === 0) return 'FALSE';
  return kept.length === 1 ? kept[0]! : `(${kept.join(' OR ')})`;
}

export function mustColumn(table: TableInfo, key: string): ColumnInfo {
  const column = table.columns.get(key);
  if (!column) throw new QueryError(`"${key}" is not a column of ${table.name}`);
  return column;
}

export function mustTable(schema: AnySchema, name: string): TableInfo {
  const table = schema.tableInfo.get(name);
  if (!table) throw new QueryError(`Unknown table "${name}"`);
  return table;
}

/** The ordering as written, then the primary key columns it does not already name. */
export function fullOrdering(table: TableInfo, ast: QueryAST): FullOrdering {
  const ordering: [ColumnInfo, Direction][] = [];
  const seen = new Set<string>();
  for (const [key, direction] of [
    ...(ast.orderBy ?? []),
    ...table.primaryKey.map((key) => [key, 'asc'] as const),
  ]) {
    // A column already ordered by decides nothing more when it comes again.
    if (seen.has(key)) continue;
    seen.add(key);
    ordering.push([mustColumn(table, key), direction]);
  }
  return ordering;
}

/** `ORDER BY`'s list: ascending puts nulls last, descending first, as Postgres does. */
export function orderBySQL(alias: string, ordering: FullOrdering, partialSQL: boolean): string {
  return ordering
    .map(
      ([column, direction]) =>
        `${orderedExpr(alias, column, partialSQL)} ${direction === 'asc' ? 'ASC NULLS LAST' : 'DESC NULLS FIRST'}`,
    )
    .join(', ');
}

export function compileCondition(
  ctx: ConditionContext,
  table: TableInfo,
  alias: string,
  condition: Condition,
): string {
  switch (condition.type) {
    case 'and':
      return and(condition.conditions.map((c) => compileCondition(ctx, table, alias, c)));
    case 'or':
      return or(condition.conditions.map((c) => compileCondition(ctx, table, alias, c)));
    case 'not': {
      // Leaves may be NULL in SQL where the spec says false; IS NOT TRUE negates them right.
      const inner = compileCondition(ctx, table, alias, condition.condition);
      if (inner === 'TRUE' || inner === 'FALSE') return inner === 'TRUE' ? 'FALSE' : 'TRUE';
      return `(${inner}) IS NOT TRUE`;
    }
    case 'exists':
      return compileExists(ctx, table, alias, condition.relationship, condition.subquery);
    case 'simple':
      return compileSimple(ctx, mustColumn(table, condition.column), alias, condition);
  }
}

/**
 * `source IN (SELECT dest …)`: a semi-join, as `EXISTS` would be, but one pg-mem can run
 * (it has no correlated subqueries). The subquery's limit cannot change whether a related
 * row exists unless it is 0, and its ordering matters only to its cursor.
 */
function compileExists(
  ctx: ConditionContext,
  table: TableInfo,
  alias: string,
  name: string,
  subquery: QueryAST,
): string {
  const relationship = ctx.schema.relationships[table.name]?.[name];
  if (!relationship) throw new QueryError(`${table.name} has no relationship "${name}"`);
  if (subquery.limit === 0) return 'FALSE';
  if (relationship.sourceField.length > 1) {
    requireFullSQL(
      ctx.partialSQL,
      `whereExists("${name}")`,
      'it matches on several columns, and pg-mem has no row-valued IN (SELECT …)',
    );
  }
  const dest = mustTable(ctx.schema, subquery.table);
  const destAlias = ctx.nextAlias();
  const sources = relationship.sourceField.map((key) => columnRef(alias, mustColumn(table, key)));
  const targets = relationship.destField.map((key) => columnRef(destAlias, mustColumn(dest, key)));
  // Text pairs match by code point too (joinEqualSQL): a row-valued IN holds each pair
  // under its own collation, and the plain pair can still use an index.
  relationship.destField.forEach((key, i) => {
    if (joinsByCodePoint(mustColumn(dest, key), ctx.partialSQL)) {
      sources.push(`${sources[i]} COLLATE "C"`);
      targets.push(`${targets[i]} COLLATE "C"`);
    }
  });
  const where = and([
    subquery.where ? compileCondition(ctx, dest, destAlias, subquery.where) : 'TRUE',
    subquery.start
      ? compileCursor(ctx, destAlias, fullOrdering(dest, subquery), subquery.start)
      : 'TRUE',
  ]);
  const lhs = sources.length === 1 ? sources[0]! : `(${sources.join(', ')})`;
  const filter = where === 'TRUE' ? '' : ` WHERE ${where}`;
  return `${lhs} IN (SELECT ${targets.join(', ')} FROM ${tableSQL(dest)} AS ${quoteIdent(destAlias)}${filter})`;
}

function compileSimple(
  ctx: ConditionContext,
  column: ColumnInfo,
  alias: string,
  { op, value }: SimpleCondition,
): string {
  const ref = columnRef(alias, column);
  // Text equality is by code point whatever the column's collation (exactRef, equalSQL).
  const exact = exactRef(alias, column, ctx.partialSQL);
  const literal = (v: Exclude<LiteralValue, null>) => ctx.params.literal(column, v, false);
  const equal = (rhs: string, operator: '=' | 'IN' = '=') =>
    equalSQL(alias, column, operator, rhs, ctx.partialSQL);
  switch (op) {
    case 'IN':
    case 'NOT IN': {
      const list = value as readonly LiteralValue[];
      const present = list.filter((v): v is Exclude<LiteralValue, null> => v !== null);
      if (op === 'IN') {
        // A null element matches nothing, so it is left out.
        return present.length === 0 ? 'FALSE' : equal(`(${present.map(literal).join(', ')})`, 'IN');
      }
      if (present.length < list.length) return 'FALSE';
      // The IS NOT NULL is Postgres's answer already; pg-mem holds `NULL NOT IN (…)` true.
      return present.length === 0
        ? `${ref} IS NOT NULL`
        : `(${ref} IS NOT NULL AND ${exact} NOT IN (${present.map(literal).join(', ')}))`;
    }
    case 'IS':
      // IS NOT DISTINCT FROM, written so that pg-mem runs it and Postgres can use indexes.
      return value === null
        ? `${ref} IS NULL`
        : equal(literal(value as Exclude<LiteralValue, null>));
    case 'IS NOT':
      return value === null
        ? `${ref} IS NOT NULL`
        : `(${ref} IS NULL OR ${exact} <> ${literal(value as Exclude<LiteralValue, null>)})`;
    default:
      break;
  }
  if (value === null) return 'FALSE'; // a comparison with null is never true
  const v = value as Exclude<LiteralValue, null>;
  switch (op) {
    case '=':
      return equal(literal(v));
    case '!=':
      return `${exact} <> ${literal(v)}`;
    case 'LIKE':
    case 'ILIKE':
      checkPattern(ctx.partialSQL, op, v as string);
      break;
    default:
      break;
  }
  // Ordered comparisons and patterns: strings by code point, under collation "C"; char
  // values compare as bpchar (no trailing spaces) but match patterns padded.
  const asText = column.compareAs !== 'char' || op === 'LIKE' || op === 'ILIKE';
  return `${orderedExpr(alias, column, ctx.partialSQL)} ${op} ${ctx.params.literal(column, v, asText)}`;
}

/**
 * Refuses patterns pg-mem would match differently: it builds a regular expression with no
 * `\` escapes and Unicode case folding. (A pattern ending in a lone `\` never gets here:
 * parseQueryAST refuses it for both sides.)
 */
function checkPattern(partialSQL: boolean, op: 'LIKE' | 'ILIKE', pattern: string) {
  if (pattern.includes('\\')) {
    requireFullSQL(partialSQL, `${op} with a \\ escape`, 'its LIKE has no escape character');
  }
  if (
    op === 'ILIKE' &&
    [...pattern].some((ch) => ch > '\x7f' && ch.toLowerCase() !== ch.toUpperCase())
  ) {
    requireFullSQL(
      partialSQL,
      'ILIKE with a non-ASCII letter in the pattern',
      'it folds the case of every letter, where Postgres under collation "C" folds ASCII only',
    );
  }
}

/**
 * Rows after `cursor.row` in `ordering` (or at it, when inclusive), as an OR of ANDs: equal
 * on the first i columns and after it on column i. Per column, ascending, after v is
 * greater than v or null, and after null is nothing; descending, after v is less than v,
 * and after null is any non-null value.
 */
export function compileCursor(
  ctx: ConditionContext,
  alias: string,
  ordering: FullOrdering,
  cursor: Cursor,
): string {
  // parseQueryAST has checked the cursor gives every ordering column.
  const columns = ordering.map(([column, direction]) => {
    const value = cursor.row[column.key] ?? null;
    const ref = columnRef(alias, column);
    if (value === null) {
      return {
        direction,
        ref,
        equal: `${ref} IS NULL`,
        after: direction === 'asc' ? 'FALSE' : `${ref} IS NOT NULL`,
      };
    }
    // One parameter per column: the same placeholder serves every term that needs it.
    const placeholder = ctx.params.literal(
      column,
      value,
      column.kind === 'string' && !isTextType(column),
    );
    const ordered = orderedExpr(alias, column, ctx.partialSQL);
    const after =
      direction === 'desc'
        ? `${ordered} < ${placeholder}`
        : column.notNull
          ? `${ordered} > ${placeholder}`
          : `(${ordered} > ${placeholder} OR ${ref} IS NULL)`;
    const equal =
      column.kind === 'string' && !isTextType(column)
        ? `${ordered} = ${placeholder}`
        : equalSQL(alias, column, '=', placeholder, ctx.partialSQL);
    return { direction, ref, equal, after };
  });
  const terms = columns.map((column, i) =>
    and([...columns.slice(0, i).map((c) => c.equal), column.after]),
  );
  if (cursor.inclusive) terms.push(and(columns.map((c) => c.equal)));
  return or(terms);
}
