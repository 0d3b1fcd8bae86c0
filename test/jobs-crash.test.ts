import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import {
  createJobQueue,
  type Database,
  migrate,
  processMutateRequest,
  silentLogger,
} from '@reprise/server';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { nanoid } from 'nanoid';
import { afterAll, describe, expect, it } from 'vitest';
import { initdbImage } from '../packages/server/src/testing/pglite-image';
import { ADAPTERS, DATABASE_URL } from './fixtures/adapters';
import { FIXTURE_DDL, schema } from './fixtures/app';
import { issueJobs, JOB_RUN_DDL, jobsMutators } from './fixtures/jobs-app';

// The app server dies (SIGKILL) between the commit of a mutation that enqueued a job and
// any run of that job. A new worker must still run the job, exactly once, by the id the
// job had when it was committed. The server is a child process (fixtures/jobs-server.ts)
// with a worker of its own running; the mutation's after-commit hook kills it. Then the
// same with a worker killed while it runs the job: once its heartbeat is stale, a new
// worker runs the job again (its second attempt).

/** The new workers' heartbeat: a dead worker is found within a couple of seconds. */
const FAST_HEARTBEAT = { heartbeatMs: 200, deadAfterMs: 1_500 };

const SCRIPT = fileURLToPath(new URL('./fixtures/jobs-server.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runServer(env: Record<string, string>): Promise<Exit> {
  const child = spawn(
    process.execPath,
    ['--conditions=@reprise/source', '--import', 'tsx', SCRIPT],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** After the crash: two new workers, and exactly one run of the committed job. */
async function recover(
  db: Database<any>,
  issueID: string,
  pendingJobID: () => Promise<string[]>,
  connectionString?: string,
  attempts: readonly number[] = [1],
) {
  // The mutation committed; its job waits, run by no one.
  const [client] = await db.query<{ lastMutationID: string | number }>(
    `SELECT "lastMutationID" FROM reprise.clients WHERE "clientID" = 'c-crash'`,
  );
  expect(Number(client?.lastMutationID)).toBe(1);
  expect(await db.query('SELECT id FROM issue WHERE id = $1', [issueID])).toHaveLength(1);
  expect(await db.query('SELECT * FROM job_run')).toEqual([]);
  const pending = await pendingJobID();
  expect(pending).toHaveLength(1);

  const workers = await Promise.all(
    ['new-a', 'new-b'].map((name) =>
      createJobQueue({
        db,
        jobs: issueJobs(db, name),
        ...(connectionString ? { connectionString } : {}),
        logger: silentLogger,
      }).startWorker({ pollInterval: 100, ...FAST_HEARTBEAT }),
    ),
  );
  try {
    await until(
      async () => (await db.query('SELECT 1 FROM job_run')).length > 0,
      20_000,
      'the job to run',
    );
    // Time for a second run, if anything would make one.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
  }
  const runs = await db.query<{
    job_id: string;
    issue_id: string;
    attempt: number;
    worker: string;
  }>('SELECT * FROM job_run');
  expect(runs).toHaveLength(1);
  expect(runs[0]).toMatchObject({ job_id: pending[0], issue_id: issueID });
  expect(attempts).toContain(runs[0]!.attempt);
  expect(['new-a', 'new-b']).toContain(runs[0]!.worker);
  // Completed jobs leave the queue.
  expect(await pendingJobID()).toEqual([]);
}

function expectKilled(exit: Exit, midJob = false) {
  expect(exit.signal, `the server exited otherwise: ${exit.stderr.slice(-2000)}`).toBe('SIGKILL');
  expect(exit.stdout).toContain('worker started');
  expect(exit.stdout).not.toContain('survived');
  if (midJob) expect(exit.stdout).toContain('job started');
}

/** Commits `issue.create` of `issueID` as client c-crash, which enqueues its job. */
async function enqueueOne(db: Database<any>, issueID: string, connectionString?: string) {
  const queue = createJobQueue({
    db,
    jobs: issueJobs(db, 'enqueuer'),
    ...(connectionString ? { connectionString } : {}),
    logger: silentLogger,
  });
  const reply = await processMutateRequest({
    db,
    schema,
    mutators: jobsMutators,
    jobs: queue,
    userID: 'u',
    context: { userID: 'u', raw: async () => [] },
    logger: silentLogger,
    body: {
      clientGroupID: 'g-crash',
      pushVersion: 1,
      timestamp: 0,
      requestID: 'r',
      mutations: [
        {
          type: 'custom',
          id: 1,
          clientID: 'c-crash',
          name: 'issue.create',
          args: [{ id: issueID, title: 't' }],
          timestamp: 0,
        },
      ],
    },
  });
  expect(reply.body).toMatchObject({ mutations: [{ result: {} }] });
}

const pgliteJobIDs = (db: Database<any>) => async () =>
  (await db.query<{ id: string }>('SELECT id::text AS id FROM reprise.jobs')).map((row) => row.id);
const graphileJobIDs = (db: Database<any>) => async () =>
  (
    await db.query<{ id: string }>(
      `SELECT id::text AS id FROM graphile_worker.jobs WHERE task_identifier = 'issue.created'`,
    )
  ).map((row) => row.id);

// Built once (the migration on a file system takes long under load), from the initdb dump
// createTestDatabase keeps rather than by initdb, closed, and copied for each test.
let templateDir: Promise<string> | undefined;

/** A PGlite data directory with the engine's tables and the app's. */
async function pgliteDir(): Promise<string> {
  templateDir ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reprise-jobs-template-'));
    const setup = new PGlite(dir, { loadDataDir: await initdbImage(PGlite) });
    const db = createPGliteDatabase(setup);
    await migrate(db);
    for (const ddl of [...FIXTURE_DDL, JOB_RUN_DDL]) await db.query(ddl);
    await setup.close();
    return dir;
  })();
  const dir = await mkdtemp(join(tmpdir(), 'reprise-jobs-'));
  await cp(await templateDir, dir, { recursive: true });
  return dir;
}

describe('a server killed between commit and run (PGlite data directory)', () => {
  afterAll(async () => {
    if (templateDir) await rm(await templateDir, { recursive: true, force: true });
  });

  it('leaves the job to a new worker, which runs it exactly once', async () => {
    const dir = await pgliteDir();
    try {
      const issueID = nanoid();
      expectKilled(await runServer({ JOBS_PGLITE_DIR: dir, JOBS_ISSUE_ID: issueID }));

      const pglite = new PGlite(dir);
      try {
        const db = createPGliteDatabase(pglite);
        // As on Postgres: the dying server's worker may have claimed it first.
        await recover(db, issueID, pgliteJobIDs(db), undefined, [1, 2]);
      } finally {
        await pglite.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('runs the job of a worker killed mid-job again, once its heartbeat is stale', async () => {
    const dir = await pgliteDir();
    try {
      const issueID = nanoid();
      const before = new PGlite(dir);
      await enqueueOne(createPGliteDatabase(before), issueID);
      await before.close();

      expectKilled(
        await runServer({ JOBS_PGLITE_DIR: dir, JOBS_ISSUE_ID: issueID, JOBS_MODE: 'midjob' }),
        true,
      );

      const pglite = new PGlite(dir);
      try {
        const db = createPGliteDatabase(pglite);
        // Claimed by the dead worker: its first attempt.
        expect(
          await db.query('SELECT "attempts", "lockedBy" IS NOT NULL AS locked FROM reprise.jobs'),
        ).toEqual([{ attempts: 1, locked: true }]);
        await recover(db, issueID, pgliteJobIDs(db), undefined, [2]);
      } finally {
        await pglite.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

const postgresJs = ADAPTERS.find((a) => a.name === 'postgres.js (real server)')!;

describe.skipIf(!DATABASE_URL)('a server killed between commit and run (real Postgres)', () => {
  it('leaves the job to new graphile-worker workers, which run it exactly once', async () => {
    const fx = await postgresJs.create();
    try {
      await fx.query(JOB_RUN_DDL);
      await createJobQueue({
        db: fx.db,
        jobs: [],
        connectionString: fx.url!,
        logger: silentLogger,
      }).migrate();
      const issueID = nanoid();
      expectKilled(await runServer({ JOBS_DATABASE_URL: fx.url!, JOBS_ISSUE_ID: issueID }));
      // The server's own worker polls too: should it have claimed the job in the instant
      // between the commit and the kill, the new workers release the dead worker's lock and
      // run the job as its second attempt. Either way, once.
      await recover(fx.db, issueID, graphileJobIDs(fx.db), fx.url!, [1, 2]);
    } finally {
      await fx.close();
    }
  }, 180_000);

  it('runs the job of a worker killed mid-job again, once its heartbeat is stale', async () => {
    const fx = await postgresJs.create();
    try {
      await fx.query(JOB_RUN_DDL);
      await createJobQueue({ db: fx.db, jobs: [], connectionString: fx.url! }).migrate();
      const issueID = nanoid();
      await enqueueOne(fx.db, issueID, fx.url!);
      expectKilled(
        await runServer({
          JOBS_DATABASE_URL: fx.url!,
          JOBS_ISSUE_ID: issueID,
          JOBS_MODE: 'midjob',
        }),
        true,
      );
      // Locked by the dead worker, which took its first attempt.
      expect(
        await fx.query(
          `SELECT attempts, locked_by IS NOT NULL AS locked FROM graphile_worker.jobs`,
        ),
      ).toEqual([{ attempts: 1, locked: true }]);
      await recover(fx.db, issueID, graphileJobIDs(fx.db), fx.url!, [2]);
    } finally {
      await fx.close();
    }
  }, 180_000);
});
