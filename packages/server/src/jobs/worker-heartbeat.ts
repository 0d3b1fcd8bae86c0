import type { Database } from '../db/database';
import type { Logger } from '../db/logger';

// Workers that died mid-job. Both engines lock a job to the worker running it, and only
// release a lock after 4 hours on their own. So each worker writes a heartbeat to the
// engine's "jobWorkers" table, and every worker, on each beat, looks for workers whose
// last beat is older than `deadAfterMs`: it releases their jobs (graphile-worker's own
// `force_unlock_workers`, or the in-process table's locks) and forgets them. A worker
// still alive but silent that long (no database for a minute) may then see its job run
// elsewhere too; `deadAfterMs` is many beats long so that only a dead one is taken for dead.

export interface HeartbeatConfig {
  readonly db: Database<any>;
  /** The engine's "jobWorkers" table. */
  readonly table: string;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  /** Releases the jobs locked by these dead workers. */
  readonly release: (workerIDs: readonly string[]) => Promise<void>;
}

export interface Heartbeat {
  /** Adds a worker id of this process; its first beat is written at once. */
  add(workerID: string): Promise<void>;
  /** Stops beating and forgets this process's workers: they stopped cleanly. */
  stop(): Promise<void>;
}

export function startHeartbeat(config: HeartbeatConfig): Heartbeat {
  const { db, table } = config;
  const ids = new Set<string>();
  let stopped = false;

  async function beat(only?: string) {
    const now = new Date();
    const list = only === undefined ? [...ids] : [only];
    if (list.length > 0) {
      const values = list.map((_, i) => `($${i + 2}, $1)`).join(', ');
      await db.query(
        `INSERT INTO ${table} ("id", "heartbeatAt") VALUES ${values}
         ON CONFLICT ("id") DO UPDATE SET "heartbeatAt" = excluded."heartbeatAt"`,
        [now, ...list],
      );
    }
    if (only !== undefined) return;
    const dead = await db.query<{ id: string }>(
      `SELECT "id" FROM ${table} WHERE "heartbeatAt" < $1`,
      [new Date(now.getTime() - config.deadAfterMs)],
    );
    if (dead.length === 0) return;
    const deadIDs = dead.map((row) => row.id);
    config.logger.warn({ event: 'jobs.deadWorkers', workers: deadIDs });
    await config.release(deadIDs);
    for (const id of deadIDs) {
      await db.query(`DELETE FROM ${table} WHERE "id" = $1 AND "heartbeatAt" < $2`, [
        id,
        new Date(now.getTime() - config.deadAfterMs),
      ]);
    }
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = beat()
        .catch((error) => config.logger.error({ event: 'jobs.heartbeat', error }))
        .finally(schedule);
    }, config.heartbeatMs);
    timer.unref?.();
  };
  schedule();

  return {
    async add(workerID) {
      ids.add(workerID);
      await beat(workerID);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      for (const id of ids) await db.query(`DELETE FROM ${table} WHERE "id" = $1`, [id]);
    },
  };
}
