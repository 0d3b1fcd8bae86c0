import { BEGIN_COMMIT, type Breakdown } from './profile';
import type { BenchCase, RunResult } from './workload';

/** A case's repeated engine and baseline runs on one database. */
export interface CaseResult {
  readonly database: string;
  readonly bench: BenchCase;
  readonly engine: RunResult[];
  /** The engine with the capture trigger disabled. */
  readonly uncaptured: RunResult[];
  readonly baseline: RunResult[];
  readonly error?: string;
}

/** With capture on, the push path must keep this fraction of its throughput without. */
export const CAPTURE_RATIO = 0.9;

/**
 * The fraction of its baseline's throughput the engine must reach in each shape (issue 17):
 * (a) 1 mutation a push and (c) 8 clients × 10, 0.9; (b) 50 a push, 0.95.
 */
export const TARGET_RATIOS = { a: 0.9, b: 0.95, c: 0.9 } as const;

/** The same, in the shapes where every tenth mutation is refused with an ApplicationError. */
export const APP_ERROR_RATIO = 0.85;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rate = (run: RunResult) => (run.mutations / run.ms) * 1000;
const fixed = (value: number, digits = 0) => value.toFixed(digits);

/** Renders rows under headers, numbers right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const numeric = (cell: string) => /^[\d.,×x%µ ()-]+$/.test(cell) && /\d/.test(cell);
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (numeric(cell) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join(' | ');
  const rule = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

export function caseLabel(bench: BenchCase): string {
  return `(${bench.key}) ${bench.title}`;
}

const baselineLabel = (bench: BenchCase) => (bench.baseline === 'perMutation' ? '(i)' : '(ii)');

/** The summary: medians, ratio, target and whether it was met. */
export function summaryTable(results: readonly CaseResult[]): { text: string; missed: string[] } {
  const missed: string[] = [];
  const rows = results.map((r) => {
    const target = `>= ${r.bench.target} x ${baselineLabel(r.bench)}`;
    if (r.error) {
      missed.push(`${r.database} ${caseLabel(r.bench)}: error`);
      return [r.database, caseLabel(r.bench), '-', '-', '-', target, 'ERROR'];
    }
    const engine = median(r.engine.map(rate));
    const baseline = median(r.baseline.map(rate));
    const ratio = engine / baseline;
    const met = ratio >= r.bench.target;
    if (!met) missed.push(`${r.database} ${caseLabel(r.bench)}: ratio ${fixed(ratio, 2)}`);
    return [
      r.database,
      caseLabel(r.bench),
      fixed(engine),
      fixed(baseline),
      fixed(ratio, 2),
      target,
      met ? 'yes' : 'NO (missed)',
    ];
  });
  const headers = ['database', 'case', 'engine mut/s', 'baseline mut/s', 'ratio'];
  return {
    text: renderTable([...headers, 'target', 'met?'], rows),
    missed,
  };
}

/** Capture on against capture off, side by side; a miss is added to `missed`. */
export function captureTable(results: readonly CaseResult[], missed: string[]): string {
  const rows = results
    .filter((r) => !r.error)
    .map((r) => {
      const on = median(r.engine.map(rate));
      const off = median(r.uncaptured.map(rate));
      const ratio = on / off;
      const met = ratio >= CAPTURE_RATIO;
      if (!met)
        missed.push(`${r.database} ${caseLabel(r.bench)}: capture ratio ${fixed(ratio, 2)}`);
      return [
        r.database,
        caseLabel(r.bench),
        fixed(on),
        fixed(off),
        fixed(ratio, 2),
        r.engine.map((e, i) => fixed(rate(e) / rate(r.uncaptured[i]!), 2)).join(', '),
        `${cpuPer(r.engine, (run) => run.nodeCpuUs)} / ${cpuPer(r.uncaptured, (run) => run.nodeCpuUs)}`,
        `${cpuPer(r.engine, (run) => run.serverCpuUs)} / ${cpuPer(r.uncaptured, (run) => run.serverCpuUs)}`,
        met ? 'yes' : 'NO (missed)',
      ];
    });
  return renderTable(
    [
      'database',
      'case',
      'capture on mut/s',
      'off mut/s',
      'ratio',
      'ratio per run',
      'Node µs/mut on / off',
      'PG µs/mut on / off',
      'met?',
    ],
    rows,
  );
}

const p50 = (run: RunResult) => median(run.latencies);
const p99 = (run: RunResult) => {
  const sorted = [...run.latencies].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
};
/** Median over runs of CPU microseconds per mutation, or '-' where it was not measured. */
const cpuPer = (runs: readonly RunResult[], pick: (run: RunResult) => number | undefined) => {
  const values = runs.map((run) => pick(run)).filter((v): v is number => v !== undefined);
  return values.length === runs.length && values.length
    ? fixed(median(values.map((v, i) => v / runs[i]!.mutations)))
    : '-';
};

/**
 * Where the time goes per mutation: CPU of this process (for PGlite, the database's too)
 * and of the Postgres backends serving the run, engine beside baseline, with p50 and p99
 * push latency. CPU is less disturbed than throughput by other work on a shared machine.
 */
export function cpuTable(results: readonly CaseResult[]): string {
  const rows = results
    .filter((r) => !r.error)
    .map((r) => [
      r.database,
      caseLabel(r.bench),
      `${fixed(median(r.engine.map(p50)), 2)} / ${fixed(median(r.engine.map(p99)), 2)}`,
      `${fixed(median(r.baseline.map(p50)), 2)} / ${fixed(median(r.baseline.map(p99)), 2)}`,
      cpuPer(r.engine, (run) => run.nodeCpuUs),
      cpuPer(r.baseline, (run) => run.nodeCpuUs),
      cpuPer(r.engine, (run) => run.serverCpuUs),
      cpuPer(r.baseline, (run) => run.serverCpuUs),
    ]);
  return renderTable(
    [
      'database',
      'case',
      'engine push ms p50 / p99',
      'baseline p50 / p99',
      'engine Node µs/mut',
      'baseline Node µs/mut',
      'engine PG µs/mut',
      'baseline PG µs/mut',
    ],
    rows,
  );
}

/** Push latency and the spread of the repeated runs. */
export function detailTable(results: readonly CaseResult[]): string {
  const rows = results
    .filter((r) => !r.error)
    .map((r) => {
      const ratios = r.engine.map((e, i) => rate(e) / rate(r.baseline[i]!));
      return [
        r.database,
        caseLabel(r.bench),
        fixed(median(r.engine.map(p50)), 2),
        fixed(median(r.baseline.map(p50)), 2),
        r.engine.map((run) => fixed(rate(run))).join(', '),
        r.baseline.map((run) => fixed(rate(run))).join(', '),
        ratios.map((x) => fixed(x, 2)).join(', '),
      ];
    });
  return renderTable(
    [
      'database',
      'case',
      'engine p50 push ms',
      'baseline p50 push ms',
      'engine mut/s per run',
      'baseline mut/s per run',
      'ratio per run',
    ],
    rows,
  );
}

/** One kind of work and its summed count (undefined for derived rows) and milliseconds. */
export type WorkRow = readonly [kind: string, count: number | undefined, ms: number];

/**
 * Splits `totalMs` of requests run through an instrumented adapter into each statement
 * kind, BEGIN/COMMIT, the JS inside the transactions and the request handling outside them,
 * largest first.
 */
export function workRows(
  stats: Breakdown,
  totalMs: number,
  labels: { readonly inside?: string; readonly outside?: string } = {},
): WorkRow[] {
  const body = stats.entries.get('transaction body')?.ms ?? 0;
  const begin = stats.entries.get(BEGIN_COMMIT)?.ms ?? 0;
  const rows: WorkRow[] = [];
  let statements = 0;
  for (const [kind, { count, ms }] of stats.entries) {
    if (kind === 'transaction body') continue;
    if (kind !== BEGIN_COMMIT) statements += ms;
    rows.push([kind, count, ms]);
  }
  const inside = labels.inside ?? 'JS inside the transaction (mutator, zod)';
  const outside = labels.outside ?? 'outside the transaction (HTTP, parse, reply)';
  rows.push([inside, undefined, body - statements]);
  rows.push([outside, undefined, totalMs - body - begin]);
  return rows.sort((x, y) => y[2] - x[2]);
}

/**
 * Where the engine's time goes in one case: each statement kind's count and time per
 * mutation, plus BEGIN/COMMIT, the JS inside the transaction and the request handling
 * outside it. Times are summed over pushes, so concurrent pushes add up.
 */
export function breakdownTable(stats: Breakdown, run: RunResult): string {
  const perMutation = (x: number) => x / run.mutations;
  const pushMs = run.latencies.reduce((sum, x) => sum + x, 0);
  const cells = workRows(stats, pushMs).map(([kind, count, ms]) => [
    kind,
    count === undefined ? '' : fixed(perMutation(count), 2),
    fixed(perMutation(ms) * 1000),
    `${fixed((ms / pushMs) * 100, 1)}%`,
  ]);
  cells.push(['total push time', '', fixed(perMutation(pushMs) * 1000), '100.0%']);
  const retried = stats.retries ? ` (${stats.retries} transactions retried)` : '';
  return `${renderTable(['engine work', 'count/mutation', 'µs/mutation', 'share'], cells)}${retried}`;
}
