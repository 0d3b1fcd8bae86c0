import type { ChangelogResult, ProfiledRun } from './changes-mutate';
import { caseName } from './changes-mutate';
import type { PullTimes } from './changes-pull';
import type { Breakdown } from './profile';
import { median, renderTable, type WorkRow, workRows } from './report';
import type { RunResult } from './workload';

const fixed = (value: number, digits = 0) => value.toFixed(digits);
const rate = (run: RunResult) => (run.mutations / run.ms) * 1000;
const p50 = (run: RunResult) => median(run.latencies);

/** A database's pulls after the changes were written. */
export interface PullResult {
  readonly database: string;
  readonly changes: number;
  readonly incremental: PullTimes;
  readonly reset: PullTimes;
}

export function pullTable(results: readonly PullResult[]): string {
  const rows = results.flatMap((r) =>
    (['incremental', 'reset'] as const).map((kind) => {
      const times = r[kind];
      const ms = median(times.ms);
      const rowsSent = times.patch.puts;
      return [
        r.database,
        kind === 'incremental' ? `since a cookie, ${r.changes} changes` : 'reset (no cookie)',
        fixed(ms, 1),
        times.ms.map((x) => fixed(x, 1)).join(', '),
        String(rowsSent),
        fixed((ms * 1000) / rowsSent, 1),
        fixed(times.patch.bytes / 1024),
      ];
    }),
  );
  return renderTable(
    ['database', 'pull', 'median ms', 'ms per run', 'rows in patch', 'µs/row', 'reply KiB'],
    rows,
  );
}

/** A measure and its median over runs, e.g. a stream's events per second. */
export interface Measure {
  readonly database: string;
  readonly measure: string;
  readonly values: readonly number[];
  readonly digits?: number;
  readonly note?: string;
}

export function measureTable(measures: readonly Measure[]): string {
  const rows = measures.map((m) => [
    m.database,
    m.measure,
    fixed(median(m.values), m.digits ?? 0),
    m.values.map((x) => fixed(x, m.digits ?? 0)).join(', '),
    m.note ?? '',
  ]);
  return renderTable(['database', 'measure', 'value (median)', 'per run', 'note'], rows);
}

export function changelogTable(results: readonly ChangelogResult[]): string {
  const rows = results.map((r) => {
    if (r.error) return [r.database, caseName(r.bench), 'ERROR', '', '', '', '', '', ''];
    const { changelog, none } = r.runs;
    const ratio = median(changelog.map(rate)) / median(none.map(rate));
    return [
      r.database,
      caseName(r.bench),
      fixed(median(changelog.map(rate))),
      fixed(median(none.map(rate))),
      fixed(ratio, 2),
      fixed(median(changelog.map(p50)), 2),
      fixed(median(none.map(p50)), 2),
      changelog.map((run) => fixed(rate(run))).join(', '),
      none.map((run) => fixed(rate(run))).join(', '),
    ];
  });
  return renderTable(
    [
      'database',
      'case',
      'changelog mut/s',
      'no changelog mut/s',
      'ratio',
      'changelog p50 push ms',
      'none p50 push ms',
      'changelog mut/s per run',
      'none mut/s per run',
    ],
    rows,
  );
}

const INSIDE = 'JS inside the transaction (mutator, zod, capture)';

/**
 * Where each mode spends a mutation, in µs, side by side: statements, BEGIN/COMMIT, JS
 * inside and request handling outside the transaction; the last column is what the
 * changelog adds.
 */
export function changelogBreakdownTable(profiled: readonly ProfiledRun[]): string {
  const columns = profiled.map((p) => {
    const pushMs = p.run.latencies.reduce((sum, x) => sum + x, 0);
    const perMutation = (ms: number) => (ms / p.run.mutations) * 1000;
    const rows = workRows(p.stats, pushMs, { inside: INSIDE });
    return {
      label: p.label,
      us: new Map(rows.map(([kind, , ms]) => [kind, perMutation(ms)])),
      total: perMutation(pushMs),
    };
  });
  const kinds = [...new Set(columns.flatMap((c) => [...c.us.keys()]))];
  const first = columns[0]!;
  const last = columns.at(-1)!;
  kinds.sort((x, y) => (first.us.get(y) ?? 0) - (first.us.get(x) ?? 0));
  const cell = (value: number | undefined) => (value === undefined ? '-' : fixed(value));
  const rows = kinds.map((kind) => [
    kind,
    ...columns.map((c) => cell(c.us.get(kind))),
    first.us.has(kind) || last.us.has(kind)
      ? fixed((first.us.get(kind) ?? 0) - (last.us.get(kind) ?? 0))
      : '-',
  ]);
  rows.push([
    'total push time',
    ...columns.map((c) => fixed(c.total)),
    fixed(first.total - last.total),
  ]);
  return renderTable(['µs per mutation', ...columns.map((c) => c.label), 'changelog adds'], rows);
}

/** An instrumented pull of each kind, in ms per kind of work. */
export function pullBreakdownTable(
  profiled: Record<'incremental' | 'reset', { stats: Breakdown; ms: number }>,
): string {
  const labels = {
    inside: 'JS inside the transaction (decode, patch)',
    outside: 'outside the transaction (parse, toPlainJSON, reply)',
  };
  const split = (kind: 'incremental' | 'reset') =>
    new Map<string, WorkRow>(
      workRows(profiled[kind].stats, profiled[kind].ms, labels).map((row) => [row[0], row]),
    );
  const incremental = split('incremental');
  const reset = split('reset');
  const kinds = [...new Set([...incremental.keys(), ...reset.keys()])];
  const ms = (rows: Map<string, WorkRow>, kind: string) => rows.get(kind)?.[2] ?? 0;
  kinds.sort((x, y) => ms(incremental, y) + ms(reset, y) - ms(incremental, x) - ms(reset, x));
  const cell = (rows: Map<string, WorkRow>, kind: string) =>
    rows.has(kind) ? fixed(ms(rows, kind), 1) : '-';
  const rows = kinds.map((kind) => [kind, cell(incremental, kind), cell(reset, kind)]);
  rows.push(['total', fixed(profiled.incremental.ms, 1), fixed(profiled.reset.ms, 1)]);
  return renderTable(['pull work', 'since a cookie ms', 'reset ms'], rows);
}
