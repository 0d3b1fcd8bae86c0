import { compileQuery } from '@reprise/server';
import { runQuery } from '@reprise/shared';
import { querySchema } from './query-app';
import {
  COMPILE_CASES,
  type CompileCase,
  expectedIDs,
  FILTER_CASES,
  type FilterCase,
} from './query-cases';
import { compileTable, filterTable, loadTable } from './query-report';
import { generateRows, type QueryRows } from './query-rows';
import { loadStores, type QueryStores } from './query-stores';
import { type SampleOptions, sampleSideBySide } from './sampler';

// `npm run bench -- query`: in-memory query latency over ITEMS rows with and without store
// indexes, and the cost of compiling a query to SQL next to evaluating it in memory.

export const ITEMS = 100_000;

/** A filter case's per-call times (ms) on both stores. */
export interface FilterResult {
  readonly case: FilterCase;
  readonly matching: number;
  readonly plain: number[];
  readonly indexed: number[];
  readonly error?: string;
}

/** A compile case's per-call times (ms): compileQuery, and runQuery on each store. */
export interface CompileResult {
  readonly case: CompileCase;
  readonly sql: { readonly chars: number; readonly params: number };
  readonly compile: number[];
  readonly indexed: number[];
  readonly plain: number[];
  readonly error?: string;
}

const asRows = (result: unknown) =>
  (Array.isArray(result) ? result : result === undefined ? [] : [result]) as { id: string }[];
const ids = (result: unknown) => asRows(result).map((row) => row.id);

/** Checks both stores return the rows a plain filter and sort give, then times them. */
function measureFilter(
  c: FilterCase,
  rows: QueryRows,
  stores: QueryStores,
  options: SampleOptions,
): FilterResult {
  const matching = rows.items.filter(c.matches).length;
  const expected = JSON.stringify(expectedIDs(rows.items, c));
  for (const side of ['plain', 'indexed'] as const) {
    const got = JSON.stringify(ids(runQuery(stores[side], c.query)));
    if (got !== expected) {
      const error = `${side} store returned ${got.slice(0, 200)}, expected ${expected.slice(0, 200)}`;
      return { case: c, matching, plain: [], indexed: [], error };
    }
  }
  const [plain, indexed] = sampleSideBySide(
    [() => runQuery(stores.plain, c.query), () => runQuery(stores.indexed, c.query)],
    options,
  );
  return { case: c, matching, plain: plain!, indexed: indexed! };
}

/** Compiles the query and checks both stores agree, then times all three side by side. */
function measureCompile(
  c: CompileCase,
  stores: QueryStores,
  options: SampleOptions,
): CompileResult {
  const ast = c.query.ast;
  const compiled = compileQuery(querySchema, ast);
  const sql = { chars: compiled.text.length, params: compiled.params.length };
  const plainRows = JSON.stringify(runQuery(stores.plain, c.query));
  const indexedRows = JSON.stringify(runQuery(stores.indexed, c.query));
  if (plainRows !== indexedRows || asRows(JSON.parse(plainRows)).length === 0) {
    const error = `the stores disagree or found nothing: ${plainRows.slice(0, 200)} vs ${indexedRows.slice(0, 200)}`;
    return { case: c, sql, compile: [], indexed: [], plain: [], error };
  }
  const [compile, indexed, plain] = sampleSideBySide(
    [
      () => compileQuery(querySchema, ast),
      () => runQuery(stores.indexed, c.query),
      () => runQuery(stores.plain, c.query),
    ],
    options,
  );
  return { case: c, sql, compile: compile!, indexed: indexed!, plain: plain! };
}

/**
 * Runs the query section and returns its report. `scale` (BENCH_SCALE) shortens or
 * lengthens the time spent per case; the row count stays ITEMS.
 */
export function runQueryBench(scale: number, progress: (message: string) => void) {
  const options: SampleOptions = {
    budgetMs: Math.max(250, 2000 * scale),
    minRuns: scale >= 1 ? 200 : 50,
  };
  progress(`Queries: generating ${ITEMS} items, ${ITEMS} comments…`);
  const rows = generateRows(ITEMS);
  progress('  loading the stores…');
  const stores = loadStores(rows, 3);
  const filters: FilterResult[] = [];
  for (const c of FILTER_CASES) {
    progress(`  in memory: ${c.title}`);
    filters.push(measureFilter(c, rows, stores, options));
  }
  const compiles: CompileResult[] = [];
  for (const c of COMPILE_CASES) {
    progress(`  compile: ${c.title}`);
    compiles.push(measureCompile(c, stores, options));
  }
  const errors = [...filters, ...compiles]
    .filter((r) => r.error)
    .map((r) => `ERROR query "${r.case.title}": ${r.error}`);
  const text = [
    `In-memory queries over ${ITEMS} items, limit 20 unless one() (runQuery; no index and indexed store side by side)\n`,
    filterTable(filters),
    `\nLoading the store (median of 3 fresh loads)\n`,
    loadTable(stores.loads),
    '\nCompiling to SQL (compileQuery) next to evaluating the same query in memory\n',
    compileTable(compiles),
    ...(errors.length ? ['', ...errors] : []),
  ].join('\n');
  return { text, failed: errors.length > 0 };
}
