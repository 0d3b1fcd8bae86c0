import type { Database } from '../db/database';
import type { Logger } from '../db/logger';

// Workers that died mid-job. Both engines lock a job to the worker running it, and only
// release a lock after 4 hours on their own. So each worker writes a heartbeat to the
// engine's "jobWorkers" table, and every worker, on each beat, releases the locks older
// than `deadAfterMs` whose owner has no heartbeat that recent (graphile-worker's own
// `force_unlock_workers`, or the in-process table's locks). An owner with no heartbeat at
// all counts as dead too: a worker may claim a job before its first beat is written, and
// die. A worker still alive but silent that long (no database for a minute) may then see
// its job run elsewhere too; `deadAfterMs` is many beats long so that only a dead one is
// taken for dead. Every worker on the queue must therefore be started by `startWorker`.

export interface HeartbeatConfig {
  readonly db: Database<any>;
  /** The engine's "jobWorkers" table. */
  readonly table: string;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  /** The workers holding a lock taken before `before`. */
  readonly lockOwners: (before: Date) => Promise<string[]>;
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
    const threshold = new Date(now.getTime() - config.deadAfterMs);
    const owners = await config.lockOwners(threshold);
    if (owners.length > 0) {
      const alive = await db.query<{ id: string }>(
        `SELECT "id" FROM ${table} WHERE "heartbeatAt" >= $1`,
        [threshold],
      );
      const fresh = new Set(alive.map((row) => row.id));
      const dead = owners.filter((owner) => !fresh.has(owner));
      if (dead.length > 0) {
        config.logger.warn({ event: 'jobs.deadWorkers', workers: dead });
        await config.release(dead);
      }
    }
    await db.query(`DELETE FROM ${table} WHERE "heartbeatAt" < $1`, [threshold]);
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
