import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { type AnyJobDefinition, type JobInfo, parsePayload } from './define-job';
import { type Heartbeat, type HeartbeatConfig, startHeartbeat } from './worker-heartbeat';

/** Which engine stores and runs the jobs. */
export type JobEngine = 'graphile-worker' | 'in-process';

/** One job to add, as `tx.enqueue` recorded it. */
export interface JobSpec {
  readonly name: string;
  /** The payload as JSON text. */
  readonly payload: string;
  readonly maxAttempts: number;
  readonly runAt: Date | undefined;
}

/** A node-postgres `Pool` (graphile-worker's own driver), for a worker that shares one. */
export interface PgPoolLike {
  connect(): Promise<unknown>;
  query(...args: never[]): Promise<unknown>;
  end(): Promise<void>;
}

/** A job that failed its last attempt and will not run again by itself. */
export interface DeadJob {
  readonly id: string;
  readonly name: string;
  readonly attempts: number;
  readonly maxAttempts: number;
  /** The message of the last attempt's error. */
  readonly lastError: string | null;
  readonly createdAt: Date;
}

/** Options of `queue.startWorker`. */
export interface JobWorkerOptions {
  /** Jobs run at once by this worker (default 1). */
  readonly concurrency?: number;
  /**
   * How often to look for jobs that are due, in ms (default 2000). New jobs are picked up
   * at once: graphile-worker listens for them, the in-process runner is told by the push.
   */
  readonly pollInterval?: number;
  /** How often the worker records that it is alive, in ms (default 5000). */
  readonly heartbeatMs?: number;
  /**
   * After how long without a heartbeat a worker is taken for dead, in ms (default 60000):
   * the jobs it was running are then released to run again elsewhere. Keep it many
   * heartbeats long: a live worker taken for dead may see its job run twice at once.
   */
  readonly deadAfterMs?: number;
}

/** A running worker. */
export interface JobWorker {
  /** Stops taking jobs and resolves once the jobs it runs have finished. */
  stop(): Promise<void>;
}

/** What `queue.runPending` did. */
export interface JobRunSummary {
  /** Jobs that ran to completion. */
  readonly completed: number;
  /** Attempts that threw (the job is retried later, or dead-lettered). */
  readonly failed: number;
}

/** What every backend is given. */
export interface BackendConfig {
  readonly db: Database<any>;
  readonly jobs: ReadonlyMap<string, AnyJobDefinition>;
  /** Where the backend's tables live. */
  readonly schema: string;
  /** The engine's tables: the in-process jobs, and every engine's worker heartbeats. */
  readonly tables: EngineTables;
  readonly logger: Logger;
  readonly onDeadLetter: ((job: DeadJob, error: unknown) => void | Promise<void>) | undefined;
  readonly connectionString: string | undefined;
  readonly pgPool: PgPoolLike | undefined;
}

/** One engine's side of the queue. */
export interface JobBackend {
  readonly engine: JobEngine;
  /** The one statement that adds `specs` (at least one) in the caller's transaction. */
  statement(specs: readonly JobSpec[]): { text: string; params: unknown[] };
  migrate(): Promise<void>;
  startWorker(options: JobWorkerOptions): Promise<JobWorker>;
  runPending(): Promise<JobRunSummary>;
  deadLetters(): Promise<DeadJob[]>;
  /** Called after a transaction that added jobs committed. */
  added(): void;
}

export const DEFAULT_HEARTBEAT_MS = 5_000;
export const DEFAULT_DEAD_AFTER_MS = 60_000;

/** The heartbeat of a worker started with `options`. */
export function heartbeatFor(
  config: BackendConfig,
  options: JobWorkerOptions,
  locks: Pick<HeartbeatConfig, 'lockOwners' | 'release'>,
): Heartbeat {
  return startHeartbeat({
    db: config.db,
    table: config.tables.jobWorkers,
    logger: config.logger,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    deadAfterMs: options.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS,
    ...locks,
  });
}

/** The seconds to wait before attempt `attempts + 1`: graphile-worker's own curve. */
export function backoffSeconds(attempts: number): number {
  return Math.exp(Math.min(attempts, 10));
}

/** Runs one attempt of a job through its definition: the payload is checked again first. */
export async function runHandler(
  definition: AnyJobDefinition | undefined,
  name: string,
  payload: unknown,
  info: JobInfo,
): Promise<void> {
  if (!definition) throw new Error(`No job named "${name}" is defined in this worker`);
  await definition.handler(await parsePayload(definition, payload), info);
}
