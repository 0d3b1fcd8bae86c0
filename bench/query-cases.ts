import { createBuilder, type Query, type QueryAST } from '@reprise/shared';
import type { ItemRow, QuerySchema } from './query-app';
import { querySchema } from './query-app';
import { NEWEST } from './query-rows';

const q = createBuilder(querySchema);
const DAY_MS = 24 * 3600 * 1000;
const LAST_30_DAYS = new Date(NEWEST - 30 * DAY_MS);
const POINT_ID = 'i50000';

type ItemQuery = Query<QuerySchema, 'item', any, any>;

/** A filtered, ordered, limited query over the items, run with and without store indexes. */
export interface FilterCase {
  readonly title: string;
  readonly query: ItemQuery;
  /** The same filter in plain JS: the rows the evaluator must return, before ordering. */
  readonly matches: (row: ItemRow) => boolean;
  /** The store index the evaluator can use for it, or why none applies. */
  readonly index: string;
}

/**
 * The in-memory cases. The indexed store has hash indexes on item.status and item.ownerID
 * (and comment.itemID); the last two cases show what a hash index cannot serve.
 */
export const FILTER_CASES: readonly FilterCase[] = [
  {
    title: "status = 'open' (20%), by createdAt desc",
    query: q.item.where('status', 'open').orderBy('createdAt', 'desc').limit(20),
    matches: (row) => row.status === 'open',
    index: 'status',
  },
  {
    title: "status IN ('review','blocked') (5%), by priority desc, createdAt desc",
    query: q.item
      .where('status', 'IN', ['review', 'blocked'])
      .orderBy('priority', 'desc')
      .orderBy('createdAt', 'desc')
      .limit(20),
    matches: (row) => row.status === 'review' || row.status === 'blocked',
    index: 'status',
  },
  {
    title: "status = 'open' AND createdAt >= now-30d (1.6%), by createdAt desc",
    query: q.item
      .where('status', 'open')
      .where('createdAt', '>=', LAST_30_DAYS)
      .orderBy('createdAt', 'desc')
      .limit(20),
    matches: (row) => row.status === 'open' && row.createdAt >= LAST_30_DAYS,
    index: 'status',
  },
  {
    title: "ownerID = 'u42' (0.1%), by createdAt desc",
    query: q.item.where('ownerID', 'u42').orderBy('createdAt', 'desc').limit(20),
    matches: (row) => row.ownerID === 'u42',
    index: 'ownerID',
  },
  {
    title: 'createdAt >= now-30d (8%), by createdAt desc',
    query: q.item.where('createdAt', '>=', LAST_30_DAYS).orderBy('createdAt', 'desc').limit(20),
    matches: (row) => row.createdAt >= LAST_30_DAYS,
    index: 'none: a range',
  },
  {
    title: `id = '${POINT_ID}' (primary key), one()`,
    query: q.item.where('id', POINT_ID).one(),
    matches: (row) => row.id === POINT_ID,
    index: 'none: the primary key',
  },
];

/** A query compiled to SQL, and evaluated in memory for scale. */
export interface CompileCase {
  readonly title: string;
  readonly query: ItemQuery;
}

export const COMPILE_CASES: readonly CompileCase[] = [
  { title: `point: id = '${POINT_ID}', one()`, query: FILTER_CASES[5]!.query },
  { title: "filter: status = 'open', by createdAt desc, limit 20", query: FILTER_CASES[0]!.query },
  {
    title: 'nested: filter + whereExists + related owner, comments(limit 3, related author)',
    query: q.item
      .where('status', 'open')
      .whereExists('comments', (c) => c.where('kind', 'bug'))
      .orderBy('createdAt', 'desc')
      .limit(20)
      .related('owner')
      .related('comments', (c) => c.orderBy('createdAt', 'desc').limit(3).related('author')),
  },
];

function compareValues(a: unknown, b: unknown): number {
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  return a === b ? 0 : (a as string | number) < (b as string | number) ? -1 : 1;
}

/**
 * The ids a case must return, worked out the plain way: filter, sort by the query's
 * ordering with the primary key last (no column here is nullable), cut to the limit.
 */
export function expectedIDs(items: readonly ItemRow[], c: FilterCase): string[] {
  const ast: QueryAST = c.query.ast;
  const ordering = [...(ast.orderBy ?? []), ['id', 'asc'] as const];
  const sorted = items.filter(c.matches).sort((x, y) => {
    for (const [column, direction] of ordering) {
      const order = compareValues(x[column as keyof ItemRow], y[column as keyof ItemRow]);
      if (order !== 0) return direction === 'desc' ? -order : order;
    }
    return 0;
  });
  return sorted.slice(0, ast.limit).map((row) => row.id);
}
