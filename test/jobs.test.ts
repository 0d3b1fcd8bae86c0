import {
  createJobQueue,
  type Database,
  type DatabaseTransaction,
  type DeadJob,
  defineJob,
  type JobQueue,
  type JobWorker,
  processMutateRequest,
  silentLogger,
} from '@reprise/server';
import { createTestDatabase, type TestEngine } from '@reprise/server/testing';
import {
  createTransactionDefiner,
  defineMutators,
  type MutationResult,
  type ServerTransaction,
} from '@reprise/shared';
import { nanoid } from 'nanoid';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { FIXTURE_DDL, schema, type TestContext } from './fixtures/app';
import { issueJobs, JOB_RUN_DDL, jobsMutators } from './fixtures/jobs-app';

// Durable side effects: a job enqueued by a mutator exists if and only if the mutation
// committed, and a worker runs it at least once. On the real server graphile-worker stores
// and runs the jobs; on PGlite and pg-mem the in-process runner does.

interface JobRun {
  job_id: string;
  issue_id: string;
  attempt: number;
  worker: string;
}

/** One push of `mutations` (ids 1, 2, … of a new client) through `db`; their results. */
async function push(
  fx: AdapterFixture,
  queue: JobQueue,
  mutations: readonly { name: string; args: unknown }[],
  db: Database<any> = fx.db,
): Promise<MutationResult[]> {
  const clientID = `c-${nanoid(8)}`;
  const reply = await processMutateRequest({
    db,
    schema,
    mutators: jobsMutators,
    jobs: queue,
    userID: 'u',
    context: { userID: 'u', raw: fx.raw },
    logger: silentLogger,
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    body: {
      clientGroupID: `g-${clientID}`,
      pushVersion: 1,
      timestamp: Date.now(),
      requestID: 'r1',
      mutations: mutations.map((m, i) => ({
        type: 'custom' as const,
        id: i + 1,
        clientID,
        name: m.name,
        args: [m.args],
        timestamp: Date.now(),
      })),
    },
  });
  const body = reply.body as { kind: string; mutations?: { result: MutationResult }[] };
  if (body.kind !== 'MutateResponse') throw new Error(`push failed: ${JSON.stringify(body)}`);
  return body.mutations!.map((m) => m.result);
}

async function pushOne(
  fx: AdapterFixture,
  queue: JobQueue,
  name: string,
  args: unknown,
): Promise<MutationResult> {
  const [result] = await push(fx, queue, [{ name, args }]);
  return result!;
}

/**
 * `db`, whose statements matching `match` run and then fail, `times` times, with a
 * serialization failure: their effects roll back with the transaction, which is retried.
 */
function failing(db: Database<any>, match: RegExp, times: number): Database<any> {
  let remaining = times;
  const wrap = (tx: DatabaseTransaction<any>): DatabaseTransaction<any> => ({
    query: async (text, params) => {
      if (remaining > 0 && match.test(text)) {
        remaining--;
        await tx.query(text, params);
        throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      }
      return tx.query(text, params);
    },
    savepoint: (fn) => tx.savepoint((inner) => fn(wrap(inner))),
    wrappedTransaction: tx.wrappedTransaction,
  });
  return { ...db, transaction: (fn, options) => db.transaction((tx) => fn(wrap(tx)), options) };
}

const runsOf = (fx: AdapterFixture, issueID: string) =>
  fx.query<JobRun>('SELECT * FROM job_run WHERE issue_id = $1 ORDER BY attempt', [issueID]);

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const kind of ADAPTERS) {
  describe.skipIf(kind.unavailable)(`jobs on ${kind.name}`, () => {
    let fx: AdapterFixture;
    let queue: JobQueue;

    beforeAll(async () => {
      fx = await kind.create();
      await fx.query(JOB_RUN_DDL);
      queue = createJobQueue({
        db: fx.db,
        jobs: issueJobs(fx.db, 'w1'),
        ...(fx.url === undefined ? {} : { connectionString: fx.url }),
        logger: silentLogger,
      });
      await queue.migrate();
    }, 60_000);
    afterAll(() => fx?.close());

    it('runs the job a committed mutation enqueued, once', async () => {
      const id = nanoid();
      expect(await pushOne(fx, queue, 'issue.create', { id, title: 't' })).toEqual({});
      expect(await runsOf(fx, id)).toEqual([]);
      const summary = await queue.runPending();
      expect(summary.completed).toBeGreaterThanOrEqual(1);
      const runs = await runsOf(fx, id);
      expect(runs).toMatchObject([{ issue_id: id, attempt: 1 }]);
      await queue.runPending();
      expect(await runsOf(fx, id)).toHaveLength(1);
    });

    it('adds the jobs of the mutations of a push that committed, not of one refused', async () => {
      const [a, b, c] = [nanoid(), nanoid(), nanoid()];
      const results = await push(fx, queue, [
        { name: 'issue.create', args: { id: a, title: 't' } },
        { name: 'issue.refuse', args: { id: b, title: 't' } },
        { name: 'issue.create', args: { id: c, title: 't' } },
      ]);
      expect(results).toMatchObject([{}, { error: 'app' }, {}]);
      await queue.runPending();
      expect(await runsOf(fx, a)).toHaveLength(1);
      expect(await runsOf(fx, b)).toEqual([]);
      expect(await runsOf(fx, c)).toHaveLength(1);
    });

    it('adds a job once when its transaction is retried', async () => {
      const id = nanoid();
      // The job's own statement runs, then fails transiently: the whole transaction runs again.
      const flaky = failing(fx.db, /add_job|"jobs"/, 1);
      const [result] = await push(
        fx,
        queue,
        [{ name: 'issue.create', args: { id, title: 't' } }],
        flaky,
      );
      expect(result).toEqual({});
      await queue.runPending();
      expect(await runsOf(fx, id)).toHaveLength(1);
    });

    it('fails the mutation, and adds nothing, when the payload fails the job schema', async () => {
      const id = nanoid();
      const result = await pushOne(fx, queue, 'issue.badPayload', { id, title: 't' });
      expect(result).toMatchObject({
        error: 'app',
        message: expect.stringContaining('The payload of job "issue.created" is invalid'),
      });
      expect(await fx.query('SELECT id FROM issue WHERE id = $1', [id])).toEqual([]);
      await queue.runPending();
      expect(await runsOf(fx, id)).toEqual([]);
    });

    it("never runs a refused mutation's job", async () => {
      const id = nanoid();
      const result = await pushOne(fx, queue, 'issue.refuse', { id, title: 't' });
      expect(result).toMatchObject({ error: 'app', message: 'refused after enqueueing' });
      await queue.runPending();
      expect(await runsOf(fx, id)).toEqual([]);
    });
  });
}

describe.each<TestEngine>(['pglite', 'pg-mem'])('createTestDatabase with jobs on %s', (engine) => {
  const ran: { id: string; issueID: string }[] = [];
  const jobs = [
    defineJob('issue.created', z.object({ issueID: z.string() }), ({ issueID }, job) => {
      ran.push({ id: job.id, issueID });
    }),
  ];

  it('keeps enqueued jobs until runJobs runs them, and never a refused one', async () => {
    await using t = await createTestDatabase({
      schema,
      mutators: jobsMutators,
      jobs,
      ddl: FIXTURE_DDL,
      engine,
      userID: 'u',
      context: { userID: 'u', raw: async () => [] },
    });
    ran.length = 0;
    expect(await t.mutate(jobsMutators.issue.create({ id: 'i1', title: 't' }))).toEqual({
      ok: true,
      data: undefined,
    });
    expect((await t.mutate(jobsMutators.issue.refuse({ id: 'i2', title: 't' }))).ok).toBe(false);
    expect(ran).toEqual([]);
    expect(await t.runJobs()).toEqual({ completed: 1, failed: 0 });
    expect(ran).toEqual([{ id: expect.any(String), issueID: 'i1' }]);
    expect(await t.runJobs()).toEqual({ completed: 0, failed: 0 });
  }, 90_000);
});

describe.each<TestEngine>(['pglite', 'pg-mem'])(
  'a declarative transaction enqueues on %s',
  (engine) => {
    const ran: string[] = [];
    const created = defineJob('issue.opened', z.object({ issueID: z.string() }), ({ issueID }) => {
      ran.push(issueID);
    });
    const defineTransaction = createTransactionDefiner<typeof schema, TestContext>();
    const open = defineTransaction(z.object({ id: z.string(), fail: z.boolean() }))
      .create('issue', {
        data: (ctx) => ({ id: ctx.body.id, title: 'opened', ownerID: ctx.context.userID }),
      })
      .read('issue', {
        as: 'again',
        where: (ctx) => ({ id: ctx.body.fail ? 'missing' : ctx.body.id }),
      })
      .enqueue(created, (results) => ({ issueID: results.issue.id }));
    const mutators = defineMutators({ decl: { open } });

    it('adds the job with the transaction, and none when an operation fails', async () => {
      await using t = await createTestDatabase({
        schema,
        mutators,
        jobs: [created],
        ddl: FIXTURE_DDL,
        engine,
        userID: 'u',
        context: { userID: 'u', raw: async () => [] },
      });
      ran.length = 0;
      expect((await t.mutate(mutators.decl.open({ id: 'i1', fail: false }))).ok).toBe(true);
      expect((await t.mutate(mutators.decl.open({ id: 'i2', fail: true }))).ok).toBe(false);
      expect(await t.runJobs()).toEqual({ completed: 1, failed: 0 });
      expect(ran).toEqual(['i1']);
    }, 90_000);
  },
);

describe('tx.enqueue types', () => {
  it('takes the payload type of the job definition it is given', () => {
    const job = defineJob('typed', z.object({ n: z.number() }), () => {});
    const enqueue = (tx: ServerTransaction) => {
      void tx.enqueue(job, { n: 1 });
      // @ts-expect-error: n must be a number
      void tx.enqueue(job, { n: 'one' });
      // @ts-expect-error: the payload is required
      void tx.enqueue(job);
    };
    expectTypeOf(enqueue).toBeFunction();
    expectTypeOf<NonNullable<typeof job.$payload>>().toEqualTypeOf<{ n: number }>();
    expectTypeOf(job.handler).parameter(0).toEqualTypeOf<{ n: number }>();
  });

  it('refuses a bad job name or maxAttempts when the job is defined', () => {
    expect(() => defineJob('no spaces', z.object({}), () => {})).toThrow(/Invalid job name/);
    expect(() => defineJob('ok', z.object({}), () => {}, { maxAttempts: 0 })).toThrow(
      /maxAttempts of job "ok" must be an integer from 1/,
    );
  });
});

/** One in-process setup and the real server's first adapter: the heavier cases. */
const HEAVY = ADAPTERS.filter((a) =>
  ['pglite', 'pg-mem (node-postgres)', 'postgres.js (real server)'].includes(a.name),
);

for (const kind of HEAVY) {
  describe.skipIf(kind.unavailable)(`job retries and workers on ${kind.name}`, () => {
    let fx: AdapterFixture;
    const dead: DeadJob[] = [];

    const queueFor = (worker: string, slowMs = 0) =>
      createJobQueue({
        db: fx.db,
        jobs: issueJobs(fx.db, worker, slowMs),
        ...(fx.url === undefined ? {} : { connectionString: fx.url }),
        logger: silentLogger,
        onDeadLetter: (job) => void dead.push(job),
      });

    beforeAll(async () => {
      fx = await kind.create();
      await fx.query(JOB_RUN_DDL);
      await queueFor('migrate').migrate();
    }, 60_000);
    afterAll(() => fx?.close());

    it('retries a failing job after a backoff, then dead-letters it', async () => {
      const id = nanoid();
      const queue = queueFor('w1');
      expect(await pushOne(fx, queue, 'issue.doomed', { id, title: 't' })).toEqual({});
      expect(await queue.runPending()).toMatchObject({ completed: 0, failed: 1 });
      // Not before its backoff (e¹ ≈ 2.7 s) has passed.
      expect(await queue.runPending()).toMatchObject({ failed: 0 });
      expect(await runsOf(fx, id)).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(await queue.runPending()).toMatchObject({ completed: 0, failed: 1 });
      const runs = await runsOf(fx, id);
      expect(runs.map((run) => run.attempt)).toEqual([1, 2]);
      expect(runs[0]!.job_id).toBe(runs[1]!.job_id);
      const letters = await queue.deadLetters();
      const letter = letters.find((job) => job.id === runs[0]!.job_id);
      expect(letter).toMatchObject({
        name: 'issue.doomed',
        attempts: 2,
        maxAttempts: 2,
        lastError: 'doomed attempt 2',
      });
      expect(dead.map((job) => job.id)).toContain(runs[0]!.job_id);
      // Dead: no later run picks it up again.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await queue.runPending();
      expect(await runsOf(fx, id)).toHaveLength(2);
    }, 30_000);

    it('never runs one job on two workers at once, and runs each job once', async () => {
      const running = new Set<string>();
      const overlaps: string[] = [];
      const ids = Array.from({ length: 24 }, () => nanoid());
      const workers: JobWorker[] = [];
      // Two workers (two queues, as two processes would have), four jobs at once each.
      for (const name of ['a', 'b']) {
        const queue = createJobQueue({
          db: fx.db,
          jobs: issueJobs(fx.db, name, 20).map((job) => ({
            ...job,
            handler: async (payload: { issueID: string }, info) => {
              if (running.has(info.id)) overlaps.push(info.id);
              running.add(info.id);
              try {
                await job.handler(payload, info);
              } finally {
                running.delete(info.id);
              }
            },
          })),
          ...(fx.url === undefined ? {} : { connectionString: fx.url }),
          logger: silentLogger,
        });
        workers.push(await queue.startWorker({ concurrency: 4, pollInterval: 100 }));
      }
      try {
        const enqueuer = queueFor('enqueuer');
        for (const id of ids) await pushOne(fx, enqueuer, 'issue.create', { id, title: 't' });
        await until(
          async () => {
            const [row] = await fx.query<{ n: string | number }>(
              `SELECT count(*) AS n FROM job_run WHERE issue_id = ANY($1)`,
              [ids],
            );
            return Number(row!.n) >= ids.length;
          },
          20_000,
          'every job to run',
        );
      } finally {
        await Promise.all(workers.map((worker) => worker.stop()));
      }
      expect(overlaps).toEqual([]);
      const runs = await fx.query<JobRun>('SELECT * FROM job_run WHERE issue_id = ANY($1)', [ids]);
      expect(runs).toHaveLength(ids.length);
      expect(new Set(runs.map((run) => run.job_id)).size).toBe(ids.length);
      expect(new Set(runs.map((run) => run.issue_id))).toEqual(new Set(ids));
    }, 40_000);
  });
}

const POSTGRES_JS = ADAPTERS.find((a) => a.name === 'postgres.js (real server)');
if (!POSTGRES_JS) throw new Error('the adapter fixtures have no "postgres.js (real server)"');
const brokenTitle = `graphile-worker connections broken (real server)${
  POSTGRES_JS.unavailable ? ` [skipped: ${POSTGRES_JS.unavailable}]` : ''
}`;

// graphile-worker needs a real server; without DATABASE_URL this is skipped, and its
// title says why.
describe.skipIf(POSTGRES_JS.unavailable !== undefined)(brokenTitle, () => {
  it('never take the process down, and the queue works once they heal', async () => {
    const fx = await POSTGRES_JS.create();
    try {
      await fx.query(JOB_RUN_DDL);
      const queue = createJobQueue({
        db: fx.db,
        jobs: issueJobs(fx.db, 'k'),
        connectionString: fx.url!,
        logger: silentLogger,
      });
      await queue.migrate();
      // graphile-worker's connections are node-postgres's, with no application name; the
      // fixture's are postgres.js's. Killed again and again while runPending opens, uses and
      // ends them: an 'error' no one listens to would end the test process here.
      let killing = true;
      let kills = 0;
      const killer = (async () => {
        while (killing) {
          const [row] = await fx.query<{ n: string | number }>(
            `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name = ''`,
          );
          kills += Number(row!.n);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      let broken = 0;
      try {
        for (let i = 0; i < 60; i++) await queue.runPending().catch(() => void broken++);
      } finally {
        killing = false;
        await killer;
      }
      expect(kills).toBeGreaterThan(0);
      // Healed: a committed mutation's job runs, once.
      const id = nanoid();
      expect(await pushOne(fx, queue, 'issue.create', { id, title: 't' })).toEqual({});
      expect(await queue.runPending()).toMatchObject({ completed: 1, failed: 0 });
      expect(await runsOf(fx, id)).toHaveLength(1);
    } finally {
      await fx.close();
    }
  }, 60_000);
});
