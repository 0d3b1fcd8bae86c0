import { randomBytes } from 'node:crypto';
import { NOTES_DDL, notesSchema, seedNotes } from './changes-app';
import {
  type ChangelogResult,
  ChangelogRunner,
  caseName,
  changelogCases,
  type ProfiledRun,
  setNoteCapture,
} from './changes-mutate';
import { profilePulls, pullNotes, summarise, timePulls } from './changes-pull';
import {
  changelogBreakdownTable,
  changelogTable,
  type Measure,
  measureTable,
  type PullResult,
  pullBreakdownTable,
  pullTable,
} from './changes-report';
import { drainStream, followPushes, markStreams } from './changes-stream';
import { buildNoteScript, runNoteScript } from './changes-workload';
import { createPGliteTarget, createPostgresTarget, resolveServerURL, type Target } from './targets';

// `npm run bench -- changes`: what the changelog costs and what reading it gives. A pull of
// N changes since a cookie (and a reset over the same rows), pushes with and without the
// changelog, and change streams draining N written changes or following pushes live.

type Progress = (message: string) => void;

const session = randomBytes(3).toString('hex');
const rate = (count: number, ms: number) => (count / ms) * 1000;

/** Everything measured on one database, for the report. */
interface TargetReport {
  pulls?: PullResult;
  pullProfile?: Parameters<typeof pullBreakdownTable>[0];
  measures: Measure[];
  changelog: ChangelogResult[];
  profiles: Array<{ title: string; runs: ProfiledRun[] }>;
  errors: string[];
}

/** Events read by the stream that stores its position after every one. */
const ACK_EACH_EVENTS = 1000;
/** Inserts per live-subscription run. */
const LIVE_EVENTS = 1000;

/** N, a multiple of 100 so that half are creates and half renames of seeded notes. */
const changeCount = (scale: number) => Math.max(100, Math.round((10_000 * scale) / 100) * 100);

/**
 * Part 1: seeds, takes the cookie and the streams' positions, writes N changes, then times
 * pulls from the cookie and drains the streams over those N changes.
 */
async function readBack(
  target: Target,
  scale: number,
  reps: number,
  progress: Progress,
  report: TargetReport,
) {
  const { db, label } = target;
  const changes = changeCount(scale);
  const perOwner = changes / 2;
  const seed = seedNotes(perOwner);
  await db.query(seed.text, seed.params);
  const first = summarise(await pullNotes(db, null));
  if (first.puts !== perOwner)
    throw new Error(`first pull put ${first.puts} rows, expected ${perOwner}`);
  const drains = Array.from({ length: reps }, (_, i) => `${session}-drain-${i + 1}`);
  const acking = `${session}-drain-ack`;
  await markStreams(db, [...drains, acking]);

  const script = buildNoteScript(`${session}-w`, changes / 50, 50, (k) =>
    Math.floor(k / 50) % 2 === 0 ? 'create' : 'rename',
  );
  const write = await runNoteScript(db, script, true);
  progress(
    `  ${label}: wrote ${changes} changes at ${Math.round(rate(write.mutations, write.ms))} mut/s`,
  );
  report.measures.push({
    database: label,
    measure: `write the ${changes} changes (50/push, half inserts): mut/s`,
    values: [rate(write.mutations, write.ms)],
  });

  const pullReps = 2 * reps - 1;
  const pulls = await timePulls(
    db,
    first.cookie,
    { incremental: changes, reset: perOwner + script.creates },
    pullReps,
  );
  report.pulls = { database: label, changes, ...pulls };
  report.pullProfile = await profilePulls(db, first.cookie);
  progress(`  ${label}: pulls timed`);

  const expected = { creates: script.creates, updates: script.renames };
  const runs = [];
  for (const name of drains) runs.push(await drainStream(db, name, expected, { ackEach: false }));
  report.measures.push({
    database: label,
    measure: `stream({name}) drains ${changes}, next() acks: events/s`,
    values: runs.map((r) => rate(r.events, r.ms)),
    note: `first event after ${Math.round(Math.min(...runs.map((r) => r.firstMs)))}-${Math.round(Math.max(...runs.map((r) => r.firstMs)))} ms`,
  });
  const limit = Math.min(changes, ACK_EACH_EVENTS);
  const acked = await drainStream(db, acking, expected, { ackEach: true, limit });
  report.measures.push({
    database: label,
    measure: `stream({name}), await ack() after each of ${limit}: events/s`,
    values: [rate(acked.events, acked.ms)],
    note: 'one run; every ack() stores the position',
  });
  progress(`  ${label}: streams drained`);
}

/** Part 2: pushes with and without the changelog, then instrumented runs of each. */
async function pushes(
  target: Target,
  scale: number,
  reps: number,
  progress: Progress,
  report: TargetReport,
) {
  const runner = new ChangelogRunner(target.db, `${session}-${target.label[0]}`);
  for (const bench of changelogCases(scale)) {
    try {
      const runs = await runner.measure(bench, reps, (mode, rep, run) =>
        progress(
          `  ${target.label} ${caseName(bench)} run ${rep + 1}/${reps} ${mode}: ${Math.round(rate(run.mutations, run.ms))} mut/s`,
        ),
      );
      report.changelog.push({ database: target.label, bench, runs });
      report.profiles.push({
        title: `${target.label} ${caseName(bench)}`,
        runs: await runner.profile(bench),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      report.changelog.push({
        database: target.label,
        bench,
        runs: { changelog: [], none: [] },
        error: message,
      });
      report.errors.push(`${target.label} ${caseName(bench)}: ${message}`);
    }
  }
}

/** Part 3: a live subscription following 50-insert pushes. */
async function follow(
  target: Target,
  scale: number,
  reps: number,
  progress: Progress,
  report: TargetReport,
) {
  const pushesPerRun = Math.max(2, Math.ceil((LIVE_EVENTS * scale) / 50));
  // Part 2 leaves capture as its last run had it: off, as often as not.
  await setNoteCapture(target.db, true);
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    const script = buildNoteScript(
      `${session}-${target.label[0]}l${rep}`,
      pushesPerRun,
      50,
      () => 'create',
    );
    runs.push(await followPushes(target.db, script));
  }
  const events = runs[0]!.events;
  const label = target.label;
  report.measures.push(
    {
      database: label,
      measure: `subscribe() live, ${events} inserts at 50/push: events/s`,
      values: runs.map((r) => rate(r.events, r.ms)),
      note: 'first push to last event',
    },
    {
      database: label,
      measure: '  last event minus last push reply, ms',
      values: runs.map((r) => r.lagMs),
      digits: 1,
    },
    {
      database: label,
      measure: '  pushes meanwhile: mut/s',
      values: runs.map((r) => rate(r.push.mutations, r.push.ms)),
      note: 'compare (b) with changelog',
    },
  );
  progress(`  ${label}: live subscription done`);
}

async function benchTarget(
  create: () => Promise<Target>,
  options: { reps: number; scale: number; progress: Progress },
): Promise<TargetReport> {
  const { reps, scale, progress } = options;
  const report: TargetReport = { measures: [], changelog: [], profiles: [], errors: [] };
  const target = await create();
  try {
    progress(`${target.label}:`);
    for (const part of [readBack, pushes, follow]) {
      try {
        await part(target, scale, reps, progress, report);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        progress(`  ${target.label} ${part.name} FAILED: ${message}`);
        report.errors.push(`${target.label} ${part.name}: ${message}`);
      }
    }
  } finally {
    await target.close();
  }
  return report;
}

/** Runs the changes section and prints its report. Resolves to true when a run failed. */
export async function runChangesBench(options: {
  reps: number;
  scale: number;
  progress: Progress;
}): Promise<boolean> {
  const { reps } = options;
  console.log(`\nChanges: changelog cost, pulls and change streams (${reps} runs, median)`);
  const server = await resolveServerURL();
  const targets: Array<() => Promise<Target>> = [() => createPGliteTarget(NOTES_DDL, notesSchema)];
  if ('url' in server) targets.push(() => createPostgresTarget(server.url, NOTES_DDL, notesSchema));
  else console.log(`NOTICE: ${server.notice}`);

  const reports: TargetReport[] = [];
  for (const create of targets) reports.push(await benchTarget(create, options));

  const pulls = reports.flatMap((r) => (r.pulls ? [r.pulls] : []));
  console.log(
    `\nPulls as the puller after ${pulls[0]?.changes ?? '-'} changes it may see (median of ${2 * reps - 1})\n`,
  );
  console.log(pullTable(pulls));
  console.log(
    '\nMutations per second with and without the changelog (serializable, visibility given)\n',
  );
  console.log(changelogTable(reports.flatMap((r) => r.changelog)));
  console.log('\nChange streams and the writes behind them\n');
  console.log(measureTable(reports.flatMap((r) => r.measures)));
  for (const report of reports) {
    if (!report.pullProfile || !report.pulls) continue;
    console.log(
      `\nWhere a pull's time goes, ${report.pulls.database} (the median of three instrumented pulls each)\n`,
    );
    console.log(pullBreakdownTable(report.pullProfile));
  }
  console.log(
    '\nWhere the changelog costs (instrumented runs, half a timed run per column, µs per mutation)',
  );
  for (const profile of reports.flatMap((r) => r.profiles)) {
    console.log(`\n${profile.title}:\n${changelogBreakdownTable(profile.runs)}`);
  }
  const errors = reports.flatMap((r) => r.errors);
  for (const error of errors) console.log(`\nERROR ${error}`);
  return errors.length > 0;
}
