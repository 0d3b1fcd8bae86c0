import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Logger as GraphileLogger, Job, RunnerOptions, TaskList } from 'graphile-worker';
import { quoteIdent } from '../db/database';
import type {
  BackendConfig,
  DeadJob,
  JobBackend,
  JobRunSummary,
  JobSpec,
  JobWorker,
  JobWorkerOptions,
} from './job-backend';
import { heartbeatFor, runHandler } from './job-backend';
import type { Heartbeat } from './worker-heartbeat';

// graphile-worker on a real Postgres server. Enqueueing is its `add_jobs` SQL function, run
// through the engine's own transaction (whatever the driver); migrating, working and
// running once are graphile-worker's own, over its own node-postgres connections. The
// package is loaded only when one of those runs, so an app that only enqueues, or runs on
// PGlite, never loads it.

type Graphile = typeof import('graphile-worker');
type PgPool = NonNullable<RunnerOptions['pgPool']>;
let loaded: Promise<Graphile> | undefined;
const loadGraphile = () => {
  loaded ??= import('graphile-worker');
  return loaded;
};

/** The node-postgres graphile-worker itself loads, wherever it is installed. */
function graphilePg(): { Pool: new (config: { connectionString: string }) => PgPool } {
  const require = createRequire(import.meta.url);
  return createRequire(require.resolve('graphile-worker'))('pg');
}

/**
 * A pool for one use of graphile-worker over `connectionString`, with error listeners that
 * stay until it is ended. Left to graphile-worker, the pool would be its own, and it ends
 * such a pool without waiting after taking its listeners off: a connection broken in
 * between (a server restart, `pg_terminate_backend`) then emits an 'error' nobody
 * listens to, which takes the process down.
 */
function ownPool(connectionString: string, config: BackendConfig) {
  const pool = new (graphilePg().Pool)({ connectionString });
  const lost = (error: unknown) => config.logger.warn({ event: 'jobs.connection', error });
  pool.on('error', lost);
  // graphile-worker puts listeners of its own (taken off as it finishes) only on a pool
  // with none: it finds these, and leaves the pool as it is.
  pool.on('connect', (client) => client.on('error', lost));
  return { pool, end: () => pool.end().catch(lost) };
}

export function createGraphileBackend(config: BackendConfig): JobBackend {
  const schema = quoteIdent(config.schema);
  // One statement however many jobs a transaction adds: graphile-worker's bulk add_jobs
  // over a row of the JSON array each (in a batch of 50, a quarter of add_job's cost a job).
  const text = `SELECT count(*) FROM ${schema}.add_jobs(ARRAY(
      SELECT ROW(j.name, j.payload, NULL, j.run_at, j.max_attempts, NULL, NULL, NULL)::${schema}.job_spec
      FROM json_to_recordset($1::text::json)
        AS j(name text, payload json, run_at timestamptz, max_attempts integer)))`;

  /**
   * graphile-worker's options for one use, and what ends it: the app's pool stays the
   * app's; a connection string gets a pool of its own (ownPool), ended by `end`.
   */
  async function options(
    events?: EventEmitter,
  ): Promise<{ options: RunnerOptions; end: () => Promise<void> }> {
    const { connectionString, pgPool } = config;
    if (connectionString === undefined && pgPool === undefined) {
      throw new TypeError(
        'graphile-worker needs a connection of its own: pass connectionString or pgPool to createJobQueue',
      );
    }
    const graphile = await loadGraphile();
    const own = pgPool ? undefined : ownPool(connectionString!, config);
    return {
      options: {
        pgPool: own?.pool ?? (pgPool as unknown as PgPool),
        schema: config.schema,
        taskList: taskList(config),
        logger: graphileLogger(graphile, config),
        // The app decides when to stop: `worker.stop()` on its own shutdown.
        noHandleSignals: true,
        ...(events ? { events: events as NonNullable<RunnerOptions['events']> } : {}),
      },
      end: own ? own.end : async () => {},
    };
  }

  /** Runs `fn` with graphile-worker's options, and ends the pool made for it after. */
  async function using<T>(
    events: EventEmitter | undefined,
    fn: (options: RunnerOptions) => Promise<T>,
  ): Promise<T> {
    const { options: made, end } = await options(events);
    try {
      return await fn(made);
    } finally {
      await end();
    }
  }

  // A dead worker's jobs are released within a minute, not after graphile-worker's 4 hours.
  const locks = {
    async lockOwners(before: Date) {
      const rows = await config.db.query<{ locked_by: string }>(
        `SELECT DISTINCT locked_by FROM ${schema}.jobs WHERE locked_by IS NOT NULL AND locked_at < $1`,
        [before],
      );
      return rows.map((row) => row.locked_by);
    },
    async release(workerIDs: readonly string[]) {
      await config.db.query(`SELECT ${schema}.force_unlock_workers($1::text[])`, [workerIDs]);
    },
  };

  /**
   * Records each worker pool graphile-worker creates in the heartbeat table: its jobs are
   * locked by the pool's id.
   */
  function watchWorkers(events: EventEmitter, heartbeat: Heartbeat) {
    events.on('pool:create', ({ workerPool }: { workerPool: { id: string } }) => {
      heartbeat
        .add(workerPool.id)
        .catch((error) => config.logger.error({ event: 'jobs.heartbeat', error }));
    });
  }

  function watchFailures(events: EventEmitter, summary?: { completed: number; failed: number }) {
    events.on('job:success', () => {
      if (summary) summary.completed++;
    });
    events.on('job:error', () => {
      if (summary) summary.failed++;
    });
    events.on('job:failed', ({ job, error }: { job: Job; error: unknown }) => {
      const dead = deadJob(job);
      config.logger.error({ event: 'jobs.deadLetter', job: dead.id, name: dead.name, error });
      Promise.resolve(config.onDeadLetter?.(dead, error)).catch((hookError) =>
        config.logger.error({ event: 'jobs.onDeadLetter', error: hookError }),
      );
    });
  }

  return {
    engine: 'graphile-worker',
    statement(specs: readonly JobSpec[]) {
      const rows = specs.map((spec) => ({
        name: spec.name,
        payload: JSON.parse(spec.payload) as unknown,
        run_at: spec.runAt?.toISOString() ?? null,
        max_attempts: spec.maxAttempts,
      }));
      return { text, params: [JSON.stringify(rows)] };
    },
    async migrate() {
      const graphile = await loadGraphile();
      await using(undefined, (made) => graphile.runMigrations(made));
    },
    async startWorker(workerOptions: JobWorkerOptions): Promise<JobWorker> {
      const graphile = await loadGraphile();
      const events = new EventEmitter();
      watchFailures(events);
      const heartbeat = heartbeatFor(config, workerOptions, locks);
      watchWorkers(events, heartbeat);
      let runner: Awaited<ReturnType<Graphile['run']>>;
      let end: () => Promise<void> = async () => {};
      try {
        const made = await options(events);
        end = made.end;
        runner = await graphile.run({
          ...made.options,
          concurrency: workerOptions.concurrency ?? 1,
          pollInterval: workerOptions.pollInterval ?? 2000,
        });
      } catch (error) {
        await end();
        await heartbeat.stop();
        throw error;
      }
      return {
        async stop() {
          try {
            await runner.stop();
          } finally {
            await end();
            await heartbeat.stop();
          }
        },
      };
    },
    async runPending(): Promise<JobRunSummary> {
      const graphile = await loadGraphile();
      const events = new EventEmitter();
      const summary = { completed: 0, failed: 0 };
      watchFailures(events, summary);
      const heartbeat = heartbeatFor(config, {}, locks);
      watchWorkers(events, heartbeat);
      try {
        await using(events, (made) => graphile.runOnce(made));
      } finally {
        await heartbeat.stop();
      }
      return summary;
    },
    async deadLetters(): Promise<DeadJob[]> {
      const rows = await config.db.query<{
        id: string;
        task_identifier: string;
        attempts: number;
        max_attempts: number;
        last_error: string | null;
        created_at: Date | string;
      }>(
        `SELECT id::text AS id, task_identifier, attempts, max_attempts, last_error, created_at
         FROM ${schema}.jobs WHERE attempts >= max_attempts AND locked_at IS NULL ORDER BY id`,
      );
      return rows.map((row) => ({
        id: row.id,
        name: row.task_identifier,
        attempts: Number(row.attempts),
        maxAttempts: Number(row.max_attempts),
        lastError: row.last_error,
        createdAt: new Date(row.created_at),
      }));
    },
    // graphile-worker's trigger notifies its workers of every new job.
    added() {},
  };
}

function taskList(config: BackendConfig): TaskList {
  const tasks: TaskList = {};
  for (const [name, definition] of config.jobs) {
    tasks[name] = (payload, helpers) =>
      runHandler(definition, name, payload, {
        id: String(helpers.job.id),
        name,
        attempt: helpers.job.attempts,
        maxAttempts: helpers.job.max_attempts,
      });
  }
  return tasks;
}

function deadJob(job: Job): DeadJob {
  return {
    id: String(job.id),
    name: job.task_identifier,
    attempts: job.attempts,
    maxAttempts: job.max_attempts,
    lastError: job.last_error,
    createdAt: new Date(job.created_at),
  };
}

/** graphile-worker's log lines, through the app's logger. */
function graphileLogger(graphile: Graphile, config: BackendConfig): GraphileLogger {
  return new graphile.Logger((scope) => (level, message, meta) => {
    const entry = { event: 'jobs.graphile-worker', message, ...scope, ...meta };
    if (level === 'error') config.logger.error(entry);
    else if (level === 'warning') config.logger.warn(entry);
    else config.logger.debug(entry);
  });
}
