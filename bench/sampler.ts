// Per-call timings of synchronous functions, taken side by side: the variants run in
// alternating time slices (order swapped every round), so drift, GC and thermal changes
// fall on all of them alike.

/** Calls `fn` until `ms` have passed (at least once), pushing each call's time in ms. */
function runFor(fn: () => unknown, ms: number, into: number[] | undefined) {
  const end = performance.now() + ms;
  let now: number;
  do {
    const started = performance.now();
    fn();
    now = performance.now();
    into?.push(now - started);
  } while (now < end);
}

export interface SampleOptions {
  /** Wall-clock time to spend timing, all variants together (warm-up not included). */
  readonly budgetMs: number;
  /** Every variant gets at least this many timed calls, budget or not. */
  readonly minRuns: number;
  /** The length of one variant's turn. */
  readonly sliceMs?: number;
}

/**
 * Times every call of each variant, after an untimed warm-up of each, and returns the
 * samples (ms per call) in the variants' order.
 *
 * @example
 * const [scan, indexed] = sampleSideBySide([() => runQuery(plain, q1), () => runQuery(withIndex, q1)],
 *   {budgetMs: 2000, minRuns: 200});
 */
export function sampleSideBySide(
  variants: readonly (() => unknown)[],
  { budgetMs, minRuns, sliceMs = 20 }: SampleOptions,
): number[][] {
  const samples = variants.map((): number[] => []);
  const warmupMs = Math.max(sliceMs, budgetMs / 10 / variants.length);
  for (const fn of variants) runFor(fn, warmupMs, undefined);
  const forward = variants.map((_, i) => i);
  const backward = [...forward].reverse();
  const started = performance.now();
  for (let round = 0; ; round++) {
    for (const i of round % 2 === 0 ? forward : backward) runFor(variants[i]!, sliceMs, samples[i]);
    const elapsed = performance.now() - started;
    // A variant far slower than the budget assumes may stop short of minRuns at 4x budget.
    if (elapsed >= budgetMs * 4) break;
    if (elapsed >= budgetMs && samples.every((s) => s.length >= minRuns)) break;
  }
  return samples;
}

/** The nearest-rank percentile (0 < p ≤ 1) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}
