import type { AnySchema, Relationship, TableInfo } from '../schema';
import type { Condition, LiteralValue, QueryAST, RelatedQuery } from './ast';
import { type ConditionContext, compileCondition } from './evaluate-condition';
import {
  compileComparator,
  compileCursor,
  fullOrdering,
  type RowComparator,
  type RowPredicate,
  takeFirst,
} from './ordering';
import type { Query, QueryResult } from './query';
import { createRelatedLookup } from './related-rows';
import type { MemoryStore, StoreRow } from './store';
import { coerceLiteral, parseQueryAST, QueryError } from './validate';
import { keyOf } from './values';

// Runs a query AST over a memory store with the results Postgres gives (SEMANTICS.md).
// A query is compiled once, then run: filter candidates by where and cursor, take the
// first `limit` in the full ordering, and attach related rows per parent.

interface CompiledQuery {
  readonly table: TableInfo;
  readonly where: RowPredicate | undefined;
  readonly after: RowPredicate | undefined;
  readonly compare: RowComparator;
  readonly limit: number | undefined;
  readonly related: readonly CompiledRelated[];
}

interface CompiledRelated {
  readonly name: string;
  readonly relationship: Relationship;
  readonly query: CompiledQuery;
}

function compileQuery(ctx: ConditionContext, ast: QueryAST): CompiledQuery {
  const table = ctx.schema.tableInfo.get(ast.table);
  if (!table) throw new QueryError(`Unknown table "${ast.table}"`);
  const ordering = fullOrdering(table, ast.orderBy);
  return {
    table,
    where: ast.where && compileCondition(ctx, table, ast.where),
    after: ast.start && compileCursor(table, ordering, ast.start),
    compare: compileComparator(table, ordering),
    limit: ast.limit,
    related: (ast.related ?? []).map((related) => compileRelated(ctx, table, related)),
  };
}

function compileRelated(
  ctx: ConditionContext,
  table: TableInfo,
  { relationship: name, subquery }: RelatedQuery,
): CompiledRelated {
  const where = `related("${name}")`;
  const relationship = ctx.schema.relationships[table.name]?.[name];
  if (!relationship) throw new QueryError(`${where}: ${table.name} has no such relationship`);
  if (subquery.table !== relationship.table) {
    throw new QueryError(
      `${where}: the subquery must read ${relationship.table}, not ${subquery.table}`,
    );
  }
  const query = compileQuery(ctx, subquery);
  // A `one` relationship yields only the first row, so there is no use finding more.
  const limit = relationship.cardinality === 'one' ? Math.min(query.limit ?? 1, 1) : query.limit;
  return { name, relationship, query: { ...query, limit } };
}

function run(ctx: ConditionContext, query: CompiledQuery, candidates: Iterable<StoreRow>) {
  if (query.limit === 0) return [];
  const { where, after } = query;
  const matched: StoreRow[] = [];
  for (const row of candidates) {
    if ((where === undefined || where(row)) && (after === undefined || after(row))) {
      matched.push(row);
    }
  }
  const rows = takeFirst(matched, query.compare, query.limit);
  if (query.related.length === 0) return rows;
  return rows.map((row) => {
    const out: Record<string, unknown> = { ...row };
    for (const { name, relationship, query: sub } of query.related) {
      const related = run(ctx, sub, ctx.related(relationship, row));
      out[name] = relationship.cardinality === 'many' ? related : related[0];
    }
    return out;
  });
}

/** The AND-ed leaves of a where: where(a).where(b) nests `and`s, so they are flattened. */
function conjuncts(condition: Condition): Condition[] {
  return condition.type === 'and' ? condition.conditions.flatMap(conjuncts) : [condition];
}

/**
 * The fewest candidate rows an index gives for a top-level `column = v` or `column IN (…)`
 * conjunct, or undefined when none applies. The full where still runs on them.
 */
function indexedCandidates(store: MemoryStore, table: TableInfo, where: Condition | undefined) {
  let best: StoreRow[] | undefined;
  for (const c of where ? conjuncts(where) : []) {
    if (c.type !== 'simple' || (c.op !== '=' && c.op !== 'IN')) continue;
    const column = table.columns.get(c.column);
    if (!column || !store.hasIndex(table.name, column.key)) continue;
    const values = (Array.isArray(c.value) ? c.value : [c.value]) as readonly LiteralValue[];
    const seen = new Set<unknown>();
    const rows: StoreRow[] = [];
    for (const value of values) {
      const coerced = coerceLiteral(column, value, `where(${c.column} ${c.op})`);
      const key = keyOf(column.compareAs, coerced);
      if (coerced === null || seen.has(key)) continue;
      seen.add(key);
      for (const row of store.lookup(table.name, column.key, coerced)) rows.push(row);
    }
    if (!best || rows.length < best.length) best = rows;
  }
  return best;
}

// ASTs are immutable (the builder makes a new one per call), so a live query re-run on every
// change checks its AST once. Keyed by schema first: one AST could be run against two.
const checkedASTs = new WeakMap<AnySchema, WeakMap<QueryAST, QueryAST>>();

/** The server's check (parseQueryAST) over the whole tree, so both sides refuse alike. */
function checkedAST(schema: AnySchema, ast: QueryAST): QueryAST {
  let bySchema = checkedASTs.get(schema);
  if (!bySchema) {
    bySchema = new WeakMap();
    checkedASTs.set(schema, bySchema);
  }
  let checked = bySchema.get(ast);
  if (!checked) {
    checked = parseQueryAST(schema, ast);
    bySchema.set(ast, checked);
  }
  return checked;
}

/**
 * Runs a query AST over the store as SEMANTICS.md defines, returning the rows in order
 * (`one()` is the caller's: take `[0]`). Uses a store index for a top-level `=` / `IN` on an
 * indexed column, otherwise scans. Related rows are attached under their relationship's
 * name: an array for `many`, a row or `undefined` for `one`. Before any row is read the AST
 * is checked by `parseQueryAST`, the server compiler's own check, over the whole tree
 * (whereExists subqueries included), so a query one side refuses with `QueryError` the other
 * refuses too.
 *
 * @example
 * const rows = evaluateQuery(store, schema, {
 *   table: 'issue',
 *   where: {type: 'simple', column: 'open', op: '=', value: true},
 *   orderBy: [['createdAt', 'desc']],
 *   limit: 20,
 * });
 */
export function evaluateQuery<S extends AnySchema>(
  store: MemoryStore<S>,
  schema: S,
  ast: QueryAST,
): StoreRow[] {
  const checked = checkedAST(schema, ast);
  const rows = store as unknown as MemoryStore;
  const ctx: ConditionContext = { schema, related: createRelatedLookup(rows, schema) };
  const query = compileQuery(ctx, checked);
  const candidates =
    indexedCandidates(rows, query.table, checked.where) ?? rows.scan(checked.table);
  return run(ctx, query, candidates);
}

/**
 * Runs a builder query over the store: its rows, or for `one()` the first row or
 * `undefined`, typed like the query.
 *
 * @example
 * const issue = runQuery(store, q.issue.where('id', 'i1').related('comments').one());
 * issue?.comments.length;
 */
export function runQuery<S extends AnySchema, Q extends Query<S, any, any, any>>(
  store: MemoryStore<S>,
  query: Q,
): QueryResult<Q> {
  const rows = evaluateQuery(store, query.schema, query.ast);
  return (query.single ? rows[0] : rows) as QueryResult<Q>;
}
