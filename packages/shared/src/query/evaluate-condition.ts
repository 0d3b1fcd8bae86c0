import type { AnySchema, ColumnInfo, TableInfo } from '../schema';
import type { Condition, ExistsCondition, LiteralValue, SimpleCondition } from './ast';
import { compileLike } from './like-pattern';
import { compileCursor, fullOrdering, type RowPredicate } from './ordering';
import type { RelatedLookup } from './related-rows';
import { coerceLiteral, OPERATORS_BY_KIND, QueryError } from './validate';
import { compareValues, isNotDistinct, keyOf, valuesEqual } from './values';

// Compiles a `where` tree to a row predicate once per query. Every leaf is two-valued: a
// comparison involving NULL is false, so `not` is plain negation (SEMANTICS.md).

export interface ConditionContext {
  readonly schema: AnySchema;
  readonly related: RelatedLookup;
}

const ALWAYS: RowPredicate = () => true;
const NEVER: RowPredicate = () => false;

function mustColumn(table: TableInfo, key: string, where: string): ColumnInfo {
  const column = table.columns.get(key);
  if (!column) throw new QueryError(`${where}: "${key}" is not a column of ${table.name}`);
  return column;
}

function compileIn(
  column: ColumnInfo,
  values: readonly LiteralValue[],
  negated: boolean,
): RowPredicate {
  const { key, compareAs: kind } = column;
  // keyOf(null) is null, which the set never holds: a null column is in no list.
  const keys = new Set(values.filter((v) => v !== null).map((v) => keyOf(kind, v)));
  if (!negated) return (row) => keys.has(keyOf(kind, row[key]));
  // One null in the list makes NOT IN unknown for every row, hence false.
  if (values.includes(null)) return NEVER;
  return (row) => row[key] != null && !keys.has(keyOf(kind, row[key]));
}

function compileSimple(table: TableInfo, c: SimpleCondition): RowPredicate {
  const where = `where(${c.column} ${c.op})`;
  const column = mustColumn(table, c.column, where);
  const { key, compareAs: kind } = column;
  if (!OPERATORS_BY_KIND[kind].includes(c.op)) {
    throw new QueryError(`${where}: operator ${c.op} does not apply to ${kind} column "${key}"`);
  }
  if (c.op === 'IN' || c.op === 'NOT IN') {
    if (!Array.isArray(c.value)) throw new QueryError(`${where}: needs an array of values`);
    const values = c.value.map((v: unknown) => coerceLiteral(column, v, where));
    return compileIn(column, values, c.op === 'NOT IN');
  }
  if (Array.isArray(c.value)) throw new QueryError(`${where}: takes one value, not an array`);
  const value = coerceLiteral(column, c.value, where);
  switch (c.op) {
    case 'IS':
      return (row) => isNotDistinct(kind, row[key], value);
    case 'IS NOT':
      return (row) => !isNotDistinct(kind, row[key], value);
    case 'LIKE':
    case 'ILIKE': {
      if (typeof value !== 'string') throw new QueryError(`${where}: the pattern must be a string`);
      const matches = compileLike(value, c.op === 'ILIKE');
      return (row) => typeof row[key] === 'string' && matches(row[key]);
    }
  }
  if (value === null) return NEVER;
  switch (c.op) {
    case '=':
      return (row) => valuesEqual(kind, row[key], value);
    case '!=':
      return (row) => row[key] != null && !valuesEqual(kind, row[key], value);
    case '<':
      return (row) => row[key] != null && compareValues(kind, row[key], value) < 0;
    case '<=':
      return (row) => row[key] != null && compareValues(kind, row[key], value) <= 0;
    case '>':
      return (row) => row[key] != null && compareValues(kind, row[key], value) > 0;
    case '>=':
      return (row) => row[key] != null && compareValues(kind, row[key], value) >= 0;
  }
}

/**
 * Some related row passes the subquery. Its `start` and `limit` count too, as they would in
 * `EXISTS (SELECT … LIMIT n)`: a limit of 0 finds nothing; any other limit leaves a
 * non-empty result non-empty, so no sorting is needed.
 */
function compileExists(ctx: ConditionContext, table: TableInfo, c: ExistsCondition): RowPredicate {
  const where = `whereExists("${c.relationship}")`;
  const relationship = ctx.schema.relationships[table.name]?.[c.relationship];
  if (!relationship) throw new QueryError(`${where}: ${table.name} has no relationship`);
  const sub = c.subquery;
  if (sub.table !== relationship.table) {
    throw new QueryError(
      `${where}: the subquery must read ${relationship.table}, not ${sub.table}`,
    );
  }
  if (sub.limit === 0) return NEVER;
  const subTable = ctx.schema.tableInfo.get(sub.table)!;
  const matches = sub.where ? compileCondition(ctx, subTable, sub.where) : ALWAYS;
  const after = sub.start
    ? compileCursor(subTable, fullOrdering(subTable, sub.orderBy), sub.start)
    : ALWAYS;
  return (row) => {
    for (const related of ctx.related(relationship, row)) {
      if (matches(related) && after(related)) return true;
    }
    return false;
  };
}

/**
 * Compiles `condition` over rows of `table` to a predicate, implementing SEMANTICS.md's
 * two-valued rules. Literals are coerced to the column's in-memory type, so a checked wire
 * AST and a builder AST behave alike. Throws `QueryError` for names or operators that do
 * not fit the schema.
 *
 * @example
 * const open = compileCondition(ctx, issueTable, {type: 'simple', column: 'open', op: '=', value: true});
 * open({id: 'i1', open: true}); // true
 */
export function compileCondition(
  ctx: ConditionContext,
  table: TableInfo,
  condition: Condition,
): RowPredicate {
  switch (condition.type) {
    case 'simple':
      return compileSimple(table, condition);
    case 'and': {
      const all = condition.conditions.map((c) => compileCondition(ctx, table, c));
      return (row) => all.every((test) => test(row));
    }
    case 'or': {
      const any = condition.conditions.map((c) => compileCondition(ctx, table, c));
      return (row) => any.some((test) => test(row));
    }
    case 'not': {
      const test = compileCondition(ctx, table, condition.condition);
      return (row) => !test(row);
    }
    case 'exists':
      return compileExists(ctx, table, condition);
  }
}
