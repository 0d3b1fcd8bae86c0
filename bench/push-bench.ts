import { randomBytes } from 'node:crypto';
import { Breakdown, instrument } from './profile';
import {
  APP_ERROR_RATIO,
  breakdownTable,
  CAPTURE_RATIO,
  type CaseResult,
  captureTable,
  caseLabel,
  cpuTable,
  detailTable,
  summaryTable,
  TARGET_RATIO,
} from './report';
import {
  createPGliteTarget,
  createPgTarget,
  createPostgresTarget,
  resolveServerURL,
  type Target,
} from './targets';
import { type BenchCase, benchCases, type RunResult, runSide, type Side } from './workload';

// `npm run bench -- push`: the engine's mutations per second through `handleMutateRequest`,
// against hand-written driver baselines, on PGlite and (when reachable) a real Postgres.

const session = randomBytes(3).toString('hex');
let runCounter = 0;
const nextTag = (side: Side, bench: BenchCase) =>
  `${session}-${side[0]}${bench.key}${++runCounter}`;

type Progress = (message: string) => void;

// BENCH_CASES=a,c and BENCH_DATABASES=postgres,pg (pglite, postgres for postgres.js, pg for
// node-postgres) narrow a run to some cases and databases, for longer runs of fewer shapes.
const listed = (value: string | undefined) =>
  value ? new Set(value.split(',').map((item) => item.trim().toLowerCase())) : undefined;
const CASES = listed(process.env.BENCH_CASES);
const DATABASES = listed(process.env.BENCH_DATABASES);
const wanted = (list: Set<string> | undefined, item: string) => !list || list.has(item);

/** Warms up, then alternates engine and baseline runs `reps` times, swapping who goes first. */
async function measureCase(
  target: Target,
  bench: BenchCase,
  reps: number,
  progress: Progress,
): Promise<CaseResult> {
  const runs: Record<Side, RunResult[]> = { engine: [], uncaptured: [], baseline: [] };
  const sides: Side[] = ['engine', 'uncaptured', 'baseline'];
  for (const side of sides) {
    await runSide(target, bench, side, nextTag(side, bench), bench.warmupPushesPerClient);
  }
  for (let rep = 0; rep < reps; rep++) {
    // Each side goes first, second and last in turn.
    const order = sides.map((_, i) => sides[(i + rep) % sides.length]!);
    for (const side of order) {
      const run = await runSide(target, bench, side, nextTag(side, bench), bench.pushesPerClient);
      runs[side].push(run);
      const rate = Math.round((run.mutations / run.ms) * 1000);
      progress(
        `  ${target.label} ${caseLabel(bench)} run ${rep + 1}/${reps} ${side}: ${rate} mut/s`,
      );
    }
  }
  return { database: target.label, bench, ...runs };
}

/** One extra, shorter engine run through the instrumented adapter, for the breakdown. */
async function profileCase(target: Target, bench: BenchCase): Promise<string> {
  const stats = new Breakdown();
  const pushes = Math.max(2, Math.ceil(bench.pushesPerClient / 2));
  const db = instrument(target.db, stats);
  const run = await runSide(target, bench, 'engine', nextTag('engine', bench), pushes, db);
  return `${target.label} ${caseLabel(bench)}, ${run.mutations} mutations:\n${breakdownTable(stats, run)}`;
}

async function benchTarget(
  create: () => Promise<Target>,
  options: { reps: number; scale: number; progress: Progress },
  results: CaseResult[],
  breakdowns: string[],
) {
  const { reps, scale, progress } = options;
  const target = await create();
  try {
    progress(`${target.label}:`);
    for (const bench of benchCases(scale).filter((b) => wanted(CASES, b.key))) {
      try {
        results.push(await measureCase(target, bench, reps, progress));
        breakdowns.push(await profileCase(target, bench));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        progress(`  ${target.label} ${caseLabel(bench)} FAILED: ${message}`);
        results.push({
          database: target.label,
          bench,
          engine: [],
          uncaptured: [],
          baseline: [],
          error: message,
        });
      }
    }
  } finally {
    await target.close();
  }
}

/**
 * Runs the push section and prints its report. Resolves to true when a run failed; a
 * missed target is a finding, not a failure.
 */
export async function runPushBench(options: {
  reps: number;
  scale: number;
  progress: Progress;
}): Promise<boolean> {
  const { reps } = options;
  console.log(`\nPushes: ${reps} alternating runs per case (median)`);
  const server = await resolveServerURL();
  const targets: Array<() => Promise<Target>> = [];
  if (wanted(DATABASES, 'pglite')) targets.push(createPGliteTarget);
  if ('url' in server) {
    if (wanted(DATABASES, 'postgres')) targets.push(() => createPostgresTarget(server.url));
    // node-postgres, on a database of its own on the same server.
    if (wanted(DATABASES, 'pg'))
      targets.push(async () => {
        const database = await createPostgresTarget(server.url);
        const target = createPgTarget(database);
        return {
          ...target,
          close: async () => {
            await target.close();
            await database.close();
          },
        };
      });
  } else console.log(`NOTICE: ${server.notice}`);

  const results: CaseResult[] = [];
  const breakdowns: string[] = [];
  for (const create of targets) await benchTarget(create, options, results, breakdowns);

  const summary = summaryTable(results);
  console.log(
    `\nThroughput (median of ${reps}; target: engine >= ${TARGET_RATIO} x baseline, ${APP_ERROR_RATIO} x with app errors)\n`,
  );
  console.log(summary.text);
  console.log(
    `\nWhat capture costs the push path (median of ${reps}; target: capture on >= ${CAPTURE_RATIO} x off)\n`,
  );
  console.log(captureTable(results, summary.missed));
  console.log(
    "\nLatency and CPU per mutation (median of runs; PG: the bench database's backends)\n",
  );
  console.log(cpuTable(results));
  console.log('\nPush latency and per-run spread\n');
  console.log(detailTable(results));
  console.log('\nWhere the engine spends each mutation (one instrumented run per case)\n');
  console.log(breakdowns.join('\n\n'));
  for (const r of results.filter((x) => x.error)) {
    console.log(`\nERROR ${r.database} ${caseLabel(r.bench)}: ${r.error}`);
  }
  console.log(
    summary.missed.length
      ? `\nTARGETS MISSED (${summary.missed.length}):\n${summary.missed.map((m) => `  - ${m}`).join('\n')}`
      : '\nAll targets met.',
  );
  return results.some((r) => r.error);
}
