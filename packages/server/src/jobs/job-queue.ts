import type { EnqueueOptions, JobReference } from '@reprise/shared';
import type { Database } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { type AnyJobDefinition, checkMaxAttempts, parsePayload } from './define-job';
import { createGraphileBackend } from './graphile-backend';
import { createInProcessBackend } from './in-process-backend';
import type {
  DeadJob,
  JobBackend,
  JobEngine,
  JobRunSummary,
  JobSpec,
  JobWorker,
  JobWorkerOptions,
  PgPoolLike,
} from './job-backend';

/** graphile-worker's default attempts, kept as ours. */
const DEFAULT_MAX_ATTEMPTS = 25;

/** Options of `createJobQueue`. */
export interface JobQueueOptions {
  /** The database the mutations run on: jobs are added in their transactions. */
  readonly db: Database<any>;
  /** Every job this queue may add and run. */
  readonly jobs: readonly AnyJobDefinition[];
  /**
   * Who stores and runs the jobs. Default: `in-process` on PGlite and pg-mem (the
   * engine's own `jobs` table, run by workers in this process), `graphile-worker`
   * elsewhere.
   */
  readonly engine?: JobEngine;
  /**
   * graphile-worker's connection to the same database, for its workers and migrations
   * (node-postgres; the engine's transactions may use any driver). One of the two is
   * needed to migrate, work or run jobs with graphile-worker; enqueueing needs neither.
   * With a connection string, each use opens a pool of its own and ends it when done; a
   * connection lost meanwhile is logged (`jobs.connection`), never thrown.
   */
  readonly connectionString?: string;
  readonly pgPool?: PgPoolLike;
  /**
   * Where the jobs live: graphile-worker's schema (default `graphile_worker`), or for
   * `in-process` the engine's schema (default `reprise`).
   */
  readonly schema?: string;
  /** Where the engine's own tables are (default `reprise`): `migrate(db, {schema})`'s. */
  readonly engineSchema?: string;
  /** Attempts before a job is dead-lettered, unless its definition says (default 25). */
  readonly maxAttempts?: number;
  /** Called once for each job that failed its last attempt. */
  readonly onDeadLetter?: (job: DeadJob, error: unknown) => void | Promise<void>;
  readonly logger?: Logger;
}

/** The job queue: pass it as `jobs` to the mutate handler, and run its workers. */
export interface JobQueue {
  readonly engine: JobEngine;
  /**
   * Installs or upgrades the engine's schema: graphile-worker's own migrations (its
   * workers also run them as they start); for `in-process`, `migrate(db)` made the table.
   */
  migrate(): Promise<void>;
  /** Starts a worker in this process; several, here or elsewhere, never run one job at once. */
  startWorker(options?: JobWorkerOptions): Promise<JobWorker>;
  /** Runs every job that is due now, one after another, and resolves when none is left. */
  runPending(): Promise<JobRunSummary>;
  /** The jobs that failed their last attempt. */
  deadLetters(): Promise<DeadJob[]>;
}

/** What the push path needs of a queue; `createJobQueue`'s result carries it. */
export interface JobQueueInternals {
  /** Checks one `tx.enqueue` call and returns what to add. */
  spec(job: string | JobReference, payload: unknown, options?: EnqueueOptions): Promise<JobSpec>;
  statement(specs: readonly JobSpec[]): { text: string; params: unknown[] };
  added(): void;
}

/**
 * JSON.stringify writes U+0000 and lone surrogates (only those) as `\u` escapes, which
 * jsonb refuses; an escaped backslash before `u` is text, not an escape.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

const internals = new WeakMap<JobQueue, JobQueueInternals>();

/** The push path's side of a queue made by `createJobQueue`. */
export function queueInternals(queue: JobQueue): JobQueueInternals {
  const found = internals.get(queue);
  if (!found) throw new TypeError('`jobs` must be a queue made by createJobQueue');
  return found;
}

/**
 * `tx.enqueue` for one mutation (or route call) and the jobs it asked for. Each call
 * checks its payload at once; `specs()` waits for every check, so an enqueue the mutator
 * did not await still fails it. Without a queue, `tx.enqueue` fails with `missing`.
 */
export function collectJobs(queue: JobQueue | undefined, missing: string) {
  const pending: Array<Promise<JobSpec>> = [];
  // Plain properties only: an object literal with a getter gets a hidden class of its own
  // (accessors live in it), which old space keeps, and with it everything the getter's
  // closure holds, past every young-generation GC. Made once per mutation, such objects
  // kept each mutation's objects until the next full GC.
  return {
    enqueue(job: string | JobReference, payload: unknown, options?: EnqueueOptions) {
      const spec = queue
        ? queueInternals(queue).spec(job, payload, options)
        : Promise.reject(new Error(missing));
      // Awaited by specs() whether or not the mutator awaits it: never an unhandled rejection.
      spec.catch(() => undefined);
      pending.push(spec);
      const done = spec.then(() => undefined);
      done.catch(() => undefined);
      return done;
    },
    specs: (): Promise<JobSpec[]> => Promise.all(pending),
    count: (): number => pending.length,
  };
}

/**
 * The job queue of an app: the jobs it defines, stored and run by graphile-worker on a
 * real Postgres server, or in-process on PGlite and pg-mem. Mutators add jobs with
 * `tx.enqueue` once the queue is passed as `jobs` to `handleMutateRequest`.
 *
 * @example
 * const queue = createJobQueue({db, jobs: [welcomeEmail], connectionString: DATABASE_URL});
 * await queue.migrate();
 * const worker = await queue.startWorker({concurrency: 4});
 * app.post('/mutate', (req) => handleMutateRequest({db, schema, mutators, jobs: queue, request: req}));
 */
export function createJobQueue(options: JobQueueOptions): JobQueue {
  const { db } = options;
  // PGlite and pg-mem by their adapters' names (drizzle's names its session: PgliteSession).
  const engine =
    options.engine ?? (/pglite|pg-mem/i.test(db.name) ? 'in-process' : 'graphile-worker');
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  checkMaxAttempts(maxAttempts, 'the queue');
  const jobs = new Map<string, AnyJobDefinition>();
  for (const job of options.jobs) {
    if (jobs.has(job.name)) throw new TypeError(`Two jobs are named "${job.name}"`);
    jobs.set(job.name, job);
  }
  const tables = engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA);
  const schema = options.schema ?? (engine === 'in-process' ? tables.schema : 'graphile_worker');
  // Checks the name, as the engine's tables do.
  engineTables(schema);
  const config = {
    db,
    jobs,
    schema,
    tables: engine === 'in-process' ? engineTables(schema) : tables,
    logger: options.logger ?? consoleLogger,
    onDeadLetter: options.onDeadLetter,
    connectionString: options.connectionString,
    pgPool: options.pgPool,
  };
  const backend: JobBackend =
    engine === 'in-process' ? createInProcessBackend(config) : createGraphileBackend(config);

  const queue: JobQueue = {
    engine,
    migrate: () => backend.migrate(),
    startWorker: (workerOptions = {}) => backend.startWorker(workerOptions),
    runPending: () => backend.runPending(),
    deadLetters: () => backend.deadLetters(),
  };
  internals.set(queue, {
    async spec(job, payload, enqueueOptions = {}) {
      const name = typeof job === 'string' ? job : job.name;
      const definition = jobs.get(name);
      if (!definition) {
        throw new Error(`tx.enqueue: no job named "${name}" is in the queue's jobs`);
      }
      await parsePayload(definition, payload);
      const text = JSON.stringify(payload);
      if (text === undefined) {
        throw new Error(`tx.enqueue: the payload of job "${name}" is not JSON`);
      }
      if (UNSTORABLE_ESCAPE.test(text)) {
        throw new Error(
          `tx.enqueue: the payload of job "${name}" holds U+0000 or an unpaired UTF-16 surrogate, which Postgres cannot store`,
        );
      }
      const attempts = enqueueOptions.maxAttempts ?? definition.maxAttempts ?? maxAttempts;
      checkMaxAttempts(attempts, `job "${name}"`);
      const { runAt } = enqueueOptions;
      if (runAt !== undefined && Number.isNaN(runAt.getTime?.())) {
        throw new TypeError(`tx.enqueue: runAt of job "${name}" is not a valid Date`);
      }
      return { name, payload: text, maxAttempts: attempts, runAt };
    },
    statement: (specs) => backend.statement(specs),
    added: () => backend.added(),
  });
  return queue;
}
