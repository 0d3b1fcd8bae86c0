import { availableParallelism } from 'node:os';
import { runChangesBench } from './changes-bench';
import { runClientBench } from './client-bench';
import { runHistoryBench } from './history-bench';
import { runJobsBench } from './jobs-bench';
import { runPolicyBench } from './policy-bench';
import { runPushBench } from './push-bench';
import { runQueryBench } from './query-bench';
import { runScaleBench } from './scale-bench';

// `npm run bench [-- push | query | changes | client | policy | jobs]`: push throughput against raw driver baselines
// (push-bench.ts), in-memory query latency and SQL compilation (query-bench.ts), and the
// changelog's cost with pulls and change streams reading it (changes-bench.ts), and the
// client's own costs: mutate latency, rebase, memory (client-bench.ts), and what a write
// policy costs per write (policy-bench.ts), and what `tx.enqueue` costs a push
// (jobs-bench.ts), and whether a push and a pull cost the same with a large history
// (history-bench.ts), and whether a second server process serves more (scale-bench.ts).
// Without an
// argument every section runs. BENCH_REPS (default 3) and BENCH_SCALE (default 1) tune the
// length of the run.

const SECTIONS = [
  'push',
  'query',
  'changes',
  'client',
  'policy',
  'jobs',
  'history',
  'scale',
] as const;
type Section = (typeof SECTIONS)[number];

const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 3));
const SCALE = Number(process.env.BENCH_SCALE ?? 1);

const progress = (message: string) => process.stderr.write(`${message}\n`);

/** The sections named on the command line (all when none), or undefined for a bad name. */
function parseSections(args: readonly string[]): Section[] | undefined {
  const unknown = args.filter((arg) => !(SECTIONS as readonly string[]).includes(arg));
  if (unknown.length) {
    console.error(`Unknown bench section ${unknown.join(', ')}: use ${SECTIONS.join(', ')}`);
    return undefined;
  }
  return args.length ? SECTIONS.filter((s) => args.includes(s)) : [...SECTIONS];
}

async function main() {
  const sections = parseSections(process.argv.slice(2));
  if (!sections) {
    process.exitCode = 2;
    return;
  }
  const started = performance.now();
  console.log(
    `Reprise bench: node ${process.version}, ${availableParallelism()} cores, ` +
      `scale ${SCALE}, sections: ${sections.join(', ')}`,
  );
  let failed = false;
  if (sections.includes('push')) {
    failed ||= await runPushBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('query')) {
    const queries = runQueryBench(SCALE, progress);
    console.log(`\n${queries.text}`);
    failed ||= queries.failed;
  }
  if (sections.includes('changes')) {
    failed ||= await runChangesBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('client')) {
    failed ||= await runClientBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('policy')) {
    failed ||= await runPolicyBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('jobs')) {
    failed ||= await runJobsBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('history')) {
    failed ||= await runHistoryBench({ reps: REPS, scale: SCALE, progress });
  }
  if (sections.includes('scale')) {
    failed ||= await runScaleBench({ reps: REPS, scale: SCALE, progress });
  }
  console.log(`\nTook ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  process.exitCode = failed ? 1 : 0;
}

await main();
