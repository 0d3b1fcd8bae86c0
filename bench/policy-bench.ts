import {
  defineWritePolicy,
  handleCrudRequest,
  handleMutateRequest,
  silentLogger,
} from '@reprise/server';
import { createMutatorDefiner, createSchema, defineMutators } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { median, renderTable } from './report';
import { createPGliteTarget, createPostgresTarget, resolveServerURL, type Target } from './targets';

// `npm run bench -- policy`: what a write policy costs per write. The same pushes (50
// mutations each, one write per mutation, one client) run with and without a policy on
// `task`, owned through its project (`{parent: 'project', via: 'projectID'}`): an insert
// reads the parent, an update or delete reads the row (locked) and its parent. Then the
// CRUD endpoint: PowerSync PUTs of the same rows, with op_id receipts.

const project = pgTable('bp_project', {
  id: text('id').primaryKey(),
  ownerID: text('owner_id').notNull(),
});
const task = pgTable('bp_task', {
  id: text('id').primaryKey(),
  projectID: text('project_id').notNull(),
  title: text('title').notNull(),
});
const schema = createSchema({ tables: { project, task } });
const DDL = [
  'CREATE TABLE bp_project (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL)',
  'CREATE TABLE bp_task (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, title TEXT NOT NULL)',
];
const policy = defineWritePolicy(schema, {
  project: { owner: 'ownerID' },
  task: { parent: 'project', via: 'projectID' },
});
const defineMutator = createMutatorDefiner<typeof schema>();
const row = z.object({ id: z.string(), projectID: z.string(), title: z.string() });
const mutators = defineMutators({
  // Each returns nothing, so every result is empty and the run checks that each write went in.
  insert: defineMutator(row, async ({ tx, args }) => {
    await tx.mutate.task.insert(args);
  }),
  rename: defineMutator(row, async ({ tx, args }) => {
    await tx.mutate.task.update({ id: args.id, title: `${args.title}!` });
  }),
  remove: defineMutator(row, async ({ tx, args }) => {
    await tx.mutate.task.delete({ id: args.id });
  }),
});

const PER_PUSH = 50;
type Phase = 'insert' | 'rename' | 'remove';
const PHASES: readonly Phase[] = ['insert', 'rename', 'remove'];
const post = (body: unknown) =>
  new Request('http://bench/x', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Runs the three phases over `n` tasks; returns µs per mutation of each. */
async function runPushes(target: Target, run: string, n: number, writePolicy?: typeof policy) {
  await target.db.query('INSERT INTO bp_project VALUES ($1, $2)', [run, 'u']);
  const perMutation: Record<Phase, number> = { insert: 0, rename: 0, remove: 0 };
  for (const phase of PHASES) {
    const started = performance.now();
    for (let from = 0; from < n; from += PER_PUSH) {
      const mutations = Array.from({ length: Math.min(PER_PUSH, n - from) }, (_, i) => ({
        type: 'custom',
        id: from + i + 1,
        clientID: `${run}-${phase}`,
        name: phase,
        args: [{ id: `${run}-${from + i}`, projectID: run, title: 't' }],
        timestamp: 0,
      }));
      const body = { clientGroupID: run, pushVersion: 1, timestamp: 0, requestID: 'r', mutations };
      const response = await handleMutateRequest({
        db: target.db,
        schema,
        mutators,
        userID: 'u',
        logger: silentLogger,
        ...(writePolicy ? { writePolicy } : {}),
        request: post(body),
      });
      const reply = (await response.json()) as { mutations?: { result: object }[] };
      if (!reply.mutations?.every((m) => Object.keys(m.result).length === 0)) {
        throw new Error(
          `policy bench: a ${phase} push failed: ${JSON.stringify(reply).slice(0, 300)}`,
        );
      }
    }
    perMutation[phase] = ((performance.now() - started) * 1000) / n;
  }
  const [left] = await target.db.query<{ n: number | string }>(
    'SELECT count(*) AS n FROM bp_task WHERE project_id = $1',
    [run],
  );
  if (Number(left!.n) !== 0) throw new Error('policy bench: tasks left after the remove phase');
  return perMutation;
}

/** PowerSync PUTs of `n` tasks in batches of 50, with receipts; µs per operation. */
async function runCrud(target: Target, run: string, n: number) {
  await target.db.query('INSERT INTO bp_project VALUES ($1, $2)', [run, 'u']);
  const started = performance.now();
  for (let from = 0; from < n; from += PER_PUSH) {
    const batch = Array.from({ length: Math.min(PER_PUSH, n - from) }, (_, i) => ({
      op_id: from + i + 1,
      op: 'PUT',
      table: 'task',
      id: `${run}-${from + i}`,
      data: { project_id: run, title: 't' },
    }));
    const response = await handleCrudRequest({
      db: target.db,
      schema,
      writePolicy: policy,
      userID: 'u',
      logger: silentLogger,
      request: post({ clientID: run, batch }),
    });
    const reply = (await response.json()) as { results?: { status: string }[] };
    if (!reply.results?.every((r) => r.status === 'applied')) {
      throw new Error(`policy bench: a CRUD batch failed: ${JSON.stringify(reply).slice(0, 300)}`);
    }
  }
  return ((performance.now() - started) * 1000) / n;
}

async function measure(target: Target, reps: number, n: number, progress: (m: string) => void) {
  const plain: Record<Phase, number[]> = { insert: [], rename: [], remove: [] };
  const guarded: Record<Phase, number[]> = { insert: [], rename: [], remove: [] };
  const crud: number[] = [];
  await runPushes(target, 'warm', Math.min(n, 200), policy);
  for (let rep = 0; rep < reps; rep++) {
    progress(`policy bench, ${target.label}: run ${rep + 1} of ${reps}`);
    // Alternate who goes first, so a warming cache favours neither.
    const order = rep % 2 ? [true, false] : [false, true];
    for (const withPolicy of order) {
      const times = await runPushes(
        target,
        `r${rep}${withPolicy ? 'p' : 'n'}`,
        n,
        withPolicy ? policy : undefined,
      );
      for (const phase of PHASES) (withPolicy ? guarded : plain)[phase].push(times[phase]);
    }
    crud.push(await runCrud(target, `c${rep}`, n));
  }
  const rows = PHASES.map((phase) => {
    const without = median(plain[phase]);
    const withP = median(guarded[phase]);
    return [
      target.label,
      phase,
      without.toFixed(0),
      withP.toFixed(0),
      (withP - without).toFixed(0),
      `${((withP / without) * 100).toFixed(0)}%`,
    ];
  });
  rows.push([target.label, 'CRUD PUT (policy, receipts)', '-', median(crud).toFixed(0), '-', '-']);
  return rows;
}

/** The policy section: PGlite, then Postgres when reachable. False when every run passed. */
export async function runPolicyBench(options: {
  reps: number;
  scale: number;
  progress: (message: string) => void;
}): Promise<boolean> {
  const n = Math.max(100, Math.round(1000 * options.scale));
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
    `\nWrite policy: cost per write (${n} mutations per phase, ${PER_PUSH} per push, median of ${options.reps})\n`,
  );
  console.log(
    renderTable(
      ['target', 'write', 'µs/mutation, no policy', 'with policy', 'cost per write µs', 'ratio'],
      rows,
    ),
  );
  return failed;
}
