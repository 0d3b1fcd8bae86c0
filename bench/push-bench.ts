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
  TARGET_RATIOS,
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

/**
 * Warms up, then measures `reps` times. Each rep runs every side in `BLOCKS` short blocks,
 * the sides taking turns block by block (who goes first rotates), and sums each side's
 * blocks into one run: a checkpoint, an autovacuum or a neighbour's burst then lands on all
 * sides alike instead of on whichever side was running, which is what made single runs of
 * the same code swing by ±15% here.
 */
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
  const blocks = Math.max(1, Math.min(BLOCKS, bench.pushesPerClient));
  let turn = 0;
  for (let rep = 0; rep < reps; rep++) {
    const parts: Record<Side, RunResult[]> = { engine: [], uncaptured: [], baseline: [] };
    for (let block = 0; block < blocks; block++) {
      // Split the rep's pushes as evenly as whole pushes allow.
      const pushes =
        Math.floor((bench.pushesPerClient * (block + 1)) / blocks) -
        Math.floor((bench.pushesPerClient * block) / blocks);
      const order = sides.map((_, i) => sides[(i + turn) % sides.length]!);
      turn++;
      for (const side of order) {
        parts[side].push(await runSide(target, bench, side, nextTag(side, bench), pushes));
      }
    }
    for (const side of sides) {
      const run = mergeRuns(parts[side]);
      runs[side].push(run);
      const rate = Math.round((run.mutations / run.ms) * 1000);
      progress(
        `  ${target.label} ${caseLabel(bench)} run ${rep + 1}/${reps} ${side}: ${rate} mut/s`,
      );
    }
  }
  return { database: target.label, bench, ...runs };
}

/** Blocks per rep (BENCH_BLOCKS, default 4): how finely the sides are interleaved. */
const BLOCKS = Math.max(1, Number(process.env.BENCH_BLOCKS ?? 4) || 4);

/** Several blocks of one side as one run: their mutations, time and CPU added up. */
function mergeRuns(parts: readonly RunResult[]): RunResult {
  const serverCpu = parts.map((p) => p.serverCpuUs);
  const everyServer = serverCpu.every((us): us is number => us !== undefined);
  return {
    mutations: parts.reduce((sum, p) => sum + p.mutations, 0),
    ms: parts.reduce((sum, p) => sum + p.ms, 0),
    latencies: parts.flatMap((p) => p.latencies),
    nodeCpuUs: parts.reduce((sum, p) => sum + p.nodeCpuUs, 0),
    ...(everyServer ? { serverCpuUs: serverCpu.reduce((sum, us) => sum + us, 0) } : {}),
  };
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
  console.log(
    `\nPushes: ${reps} runs per case (median), each of ${BLOCKS} blocks per side, the sides taking turns`,
  );
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
    `\nThroughput (median of ${reps}; targets: engine >= ${TARGET_RATIOS.a} x baseline at (a) and (c), ${TARGET_RATIOS.b} x at (b), ${APP_ERROR_RATIO} x with app errors)\n`,
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
