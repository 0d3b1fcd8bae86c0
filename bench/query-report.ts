import type { CompileResult, FilterResult } from './query-bench';
import type { LoadTiming } from './query-stores';
import { renderTable } from './report';
import { percentile } from './sampler';

/** Microseconds from milliseconds, with the digits that matter at that size. */
function micros(ms: number): string {
  const us = ms * 1000;
  return us.toFixed(us < 10 ? 2 : us < 1000 ? 1 : 0);
}

const p50 = (samples: readonly number[]) => percentile(samples, 0.5);
const p99 = (samples: readonly number[]) => percentile(samples, 0.99);
const ratio = (x: number, y: number) => (x / y).toFixed(x / y < 0.1 ? 3 : 2);

/** Per-query latency on both stores, and indexed ÷ no-index time (below 1: the index helps). */
export function filterTable(results: readonly FilterResult[]): string {
  const rows = results.map((r) => {
    const head = [r.case.title, r.case.index, String(r.matching)];
    if (r.error) return [...head, 'ERROR', '-', '-', '-', '-', '-', '-'];
    return [
      ...head,
      `${r.plain.length} / ${r.indexed.length}`,
      micros(p50(r.plain)),
      micros(p99(r.plain)),
      micros(p50(r.indexed)),
      micros(p99(r.indexed)),
      ratio(p50(r.indexed), p50(r.plain)),
      ratio(p99(r.indexed), p99(r.plain)),
    ];
  });
  return renderTable(
    [
      'query (item table)',
      'index (indexed store)',
      'matching',
      'runs',
      'no index p50 µs',
      'no index p99 µs',
      'indexed p50 µs',
      'indexed p99 µs',
      'indexed/no index p50',
      'indexed/no index p99',
    ],
    rows,
  );
}

export function loadTable(loads: readonly LoadTiming[]): string {
  return renderTable(
    ['step', 'rows', 'ms', 'µs/row'],
    loads.map((l) => [
      l.step,
      String(l.rows),
      l.ms.toFixed(1),
      ((l.ms * 1000) / l.rows).toFixed(2),
    ]),
  );
}

/**
 * compileQuery's cost per call beside runQuery's for the same query on each store, and how
 * many compiles one indexed in-memory evaluation costs.
 */
export function compileTable(results: readonly CompileResult[]): string {
  const rows = results.map((r) => {
    const head = [r.case.title, String(r.sql.chars), String(r.sql.params)];
    if (r.error) return [...head, 'ERROR', '-', '-', '-', '-', '-'];
    return [
      ...head,
      `${r.compile.length} / ${r.indexed.length} / ${r.plain.length}`,
      micros(p50(r.compile)),
      micros(p99(r.compile)),
      micros(p50(r.indexed)),
      micros(p50(r.plain)),
      `${(p50(r.indexed) / p50(r.compile)).toFixed(0)}×`,
    ];
  });
  return renderTable(
    [
      'query',
      'SQL chars',
      'params',
      'runs',
      'compile p50 µs',
      'compile p99 µs',
      'in memory indexed p50 µs',
      'in memory no index p50 µs',
      'indexed eval/compile',
    ],
    rows,
  );
}
