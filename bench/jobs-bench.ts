import { createJobQueue, defineJob, handleMutateRequest, silentLogger } from '@reprise/server';
import { createMutatorDefiner, createSchema, defineMutators } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { median, renderTable } from './report';
import { createPGliteTarget, createPostgresTarget, resolveServerURL, type Target } from './targets';

// `npm run bench -- jobs`: what `tx.enqueue` costs the push path. The same pushes (one
// insert per mutation, one client) run with and without an enqueue in each mutation, one
// mutation per push and 50 per push. On Postgres the jobs go to graphile-worker (its
// `add_jobs` in the push transaction, one statement per transaction, sent with COMMIT by
// postgres.js); on PGlite to the engine's in-process `jobs` table. No worker runs: this
// measures the push path only.

const item = pgTable('bj_item', { id: text('id').primaryKey(), title: text('title').notNull() });
const schema = createSchema({ tables: { item } });
const DDL = ['CREATE TABLE bj_item (id TEXT PRIMARY KEY, title TEXT NOT NULL)'];
const noop = defineJob('bench.noop', z.object({ id: z.string() }), () => {});
const defineMutator = createMutatorDefiner<typeof schema>();
const args = z.object({ id: z.string() });
const mutators = defineMutators({
  // Both return nothing, so every result is empty and the run checks that each write went in.
  plain: defineMutator(args, async ({ tx, args }) => {
    await tx.mutate.item.insert({ id: args.id, title: 't' });
  }),
  withJob: defineMutator(args, async ({ tx, args }) => {
    await tx.mutate.item.insert({ id: args.id, title: 't' });
    if (tx.location === 'server') await tx.enqueue(noop, { id: args.id });
  }),
});

const SHAPES = [1, 50] as const;
const post = (body: unknown) =>
  new Request('http://bench/mutate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Pushes `n` mutations, `perPush` a push; returns µs per mutation. */
async function runPushes(
  target: Target,
  queue: ReturnType<typeof createJobQueue>,
  run: string,
  n: number,
  perPush: number,
  name: 'plain' | 'withJob',
) {
  const started = performance.now();
  for (let from = 0; from < n; from += perPush) {
    const mutations = Array.from({ length: Math.min(perPush, n - from) }, (_, i) => ({
      type: 'custom',
      id: from + i + 1,
      clientID: run,
      name,
      args: [{ id: `${run}-${from + i}` }],
      timestamp: 0,
    }));
    const body = { clientGroupID: run, pushVersion: 1, timestamp: 0, requestID: 'r', mutations };
    const response = await handleMutateRequest({
      db: target.db,
      schema,
      mutators,
      jobs: queue,
      userID: 'u',
      logger: silentLogger,
      request: post(body),
    });
    const reply = (await response.json()) as { mutations?: { result: object }[] };
    if (!reply.mutations?.every((m) => Object.keys(m.result).length === 0)) {
      throw new Error(`jobs bench: a push failed: ${JSON.stringify(reply).slice(0, 300)}`);
    }
  }
  return ((performance.now() - started) * 1000) / n;
}

/** The jobs queued so far, however the engine stores them. */
async function queued(target: Target, engine: string): Promise<number> {
  const [row] = await target.db.query<{ n: number | string }>(
    engine === 'graphile-worker'
      ? `SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = 'bench.noop'`
      : `SELECT count(*) AS n FROM reprise.jobs WHERE "name" = 'bench.noop'`,
  );
  return Number(row!.n);
}

async function measure(target: Target, reps: number, n: number, progress: (m: string) => void) {
  const queue = createJobQueue({
    db: target.db,
    jobs: [noop],
    ...(target.url ? { connectionString: target.url } : {}),
    logger: silentLogger,
  });
  await queue.migrate();
  const rows: string[][] = [];
  let jobs = 0;
  for (const perPush of SHAPES) {
    const count = perPush === 1 ? Math.max(50, Math.round(n / 4)) : n;
    const plain: number[] = [];
    const enqueued: number[] = [];
    await runPushes(target, queue, `warm${perPush}p`, 100, perPush, 'plain');
    await runPushes(target, queue, `warm${perPush}j`, 100, perPush, 'withJob');
    jobs += 100;
    for (let rep = 0; rep < reps; rep++) {
      progress(`jobs bench, ${target.label}, ${perPush} per push: run ${rep + 1} of ${reps}`);
      // Alternate who goes first, so a warming cache favours neither.
      for (const withJob of rep % 2 ? [true, false] : [false, true]) {
        const run = `r${perPush}-${rep}${withJob ? 'j' : 'p'}`;
        const name = withJob ? 'withJob' : 'plain';
        const micros = await runPushes(target, queue, run, count, perPush, name);
        (withJob ? enqueued : plain).push(micros);
        if (withJob) jobs += count;
      }
    }
    const without = median(plain);
    const withJob = median(enqueued);
    rows.push([
      `${target.label} (${queue.engine})`,
      String(perPush),
      without.toFixed(0),
      withJob.toFixed(0),
      (withJob - without).toFixed(0),
      `${((withJob / without) * 100).toFixed(0)}%`,
    ]);
  }
  const found = await queued(target, queue.engine);
  if (found !== jobs) throw new Error(`jobs bench: ${found} jobs queued, expected ${jobs}`);
  return rows;
}

/** The jobs section: PGlite, then Postgres when reachable. False when every run passed. */
export async function runJobsBench(options: {
  reps: number;
  scale: number;
  progress: (message: string) => void;
}): Promise<boolean> {
  const n = Math.max(100, Math.round(2000 * options.scale));
  const rows: string[][] = [];
  let failed = false;
  const targets: Array<() => Promise<Target>> = [() => createPGliteTarget(DDL, schema)];
  const server = await resolveServerURL();
  if ('url' in server) targets.push(() => createPostgresTarget(server.url, DDL, schema));
  else console.log(`\n${server.notice}`);
  for (const open of targets) {
    const target = await open();
    try {
      rows.push(...(await measure(target, options.reps, n, options.progress)));
    } catch (error) {
      failed = true;
      console.error(error);
    } finally {
      await target.close();
    }
  }
  console.log(
    `\nJobs: what tx.enqueue costs a push (${n} mutations at 50 per push, ${Math.max(50, Math.round(n / 4))} at 1, median of ${options.reps})\n`,
  );
  console.log(
    renderTable(
      ['target', 'per push', 'µs/mutation, no job', 'with a job', 'cost per job µs', 'ratio'],
      rows,
    ),
  );
  return failed;
}
