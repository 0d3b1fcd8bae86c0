import { randomUUID } from 'node:crypto';
import {
  type BackendConfig,
  backoffSeconds,
  type DeadJob,
  heartbeatFor,
  type JobBackend,
  type JobRunSummary,
  type JobSpec,
  type JobWorker,
  type JobWorkerOptions,
  runHandler,
} from './job-backend';

// The jobs of PGlite and pg-mem, where graphile-worker cannot run (it needs node-postgres
// connections of its own; PGlite is one in-process connection, pg-mem has no PL/pgSQL):
// the engine's own `jobs` table (migrate step 7), run by workers in the same process with
// graphile-worker's rules: a job is claimed by one worker at a time, a failed attempt is
// retried after exp(min(attempts, 10)) seconds, a job out of attempts stays as a dead
// letter, and a claim older than LOCK_TIMEOUT_MS (a worker that died mid-job) expires.

const LOCK_TIMEOUT_MS = 4 * 60 * 60 * 1000;

interface JobRow {
  id: string | number;
  name: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  createdAt: Date | string;
}

export function createInProcessBackend(config: BackendConfig): JobBackend {
  const table = config.tables.jobs;
  // A dead worker's claims are released within a minute, not after LOCK_TIMEOUT_MS.
  const locks = {
    async lockOwners(before: Date) {
      const rows = await config.db.query<{ lockedBy: string }>(
        `SELECT DISTINCT "lockedBy" FROM ${table} WHERE "lockedBy" IS NOT NULL AND "lockedAt" < $1`,
        [before],
      );
      return rows.map((row) => row.lockedBy);
    },
    async release(workerIDs: readonly string[]) {
      for (const id of workerIDs) {
        await config.db.query(
          `UPDATE ${table} SET "lockedBy" = NULL, "lockedAt" = NULL WHERE "lockedBy" = $1`,
          [id],
        );
      }
    },
  };
  const workers = new Set<() => void>();

  /** Claims the next due job for `worker`, or returns undefined when none is due. */
  async function claim(worker: string): Promise<JobRow | undefined> {
    for (;;) {
      const now = new Date();
      const expired = new Date(now.getTime() - LOCK_TIMEOUT_MS);
      const [next] = await config.db.query<{ id: string | number }>(
        `SELECT "id" FROM ${table}
         WHERE ("lockedBy" IS NULL OR "lockedAt" < $2) AND "attempts" < "maxAttempts" AND "runAt" <= $1
         ORDER BY "runAt", "id" LIMIT 1`,
        [now, expired],
      );
      if (!next) return undefined;
      // Claimed only if still free: of two workers, the second finds it taken and looks again.
      const [row] = await config.db.query<JobRow>(
        `UPDATE ${table} SET "lockedBy" = $2, "lockedAt" = $3, "attempts" = "attempts" + 1
         WHERE "id" = $1 AND ("lockedBy" IS NULL OR "lockedAt" < $4) AND "attempts" < "maxAttempts"
         RETURNING "id", "name", "payload", "attempts", "maxAttempts", "lastError", "createdAt"`,
        [next.id, worker, now, expired],
      );
      if (row) return row;
    }
  }

  /** Runs one claimed attempt; true when it completed. */
  async function attempt(worker: string, row: JobRow): Promise<boolean> {
    const id = String(row.id);
    const attempts = Number(row.attempts);
    const maxAttempts = Number(row.maxAttempts);
    const payload = typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload;
    try {
      await runHandler(config.jobs.get(row.name), row.name, payload, {
        id,
        name: row.name,
        attempt: attempts,
        maxAttempts,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const runAt = new Date(Date.now() + backoffSeconds(attempts) * 1000);
      await config.db.query(
        `UPDATE ${table} SET "lockedBy" = NULL, "lockedAt" = NULL, "lastError" = $3, "runAt" = $4
         WHERE "id" = $1 AND "lockedBy" = $2`,
        [row.id, worker, message, runAt],
      );
      config.logger.warn({ event: 'jobs.failed', job: id, name: row.name, attempts, error });
      if (attempts >= maxAttempts) {
        const dead = toDeadJob({ ...row, lastError: message });
        config.logger.error({ event: 'jobs.deadLetter', job: id, name: row.name, error });
        try {
          await config.onDeadLetter?.(dead, error);
        } catch (hookError) {
          config.logger.error({ event: 'jobs.onDeadLetter', error: hookError });
        }
      }
      return false;
    }
    await config.db.query(`DELETE FROM ${table} WHERE "id" = $1 AND "lockedBy" = $2`, [
      row.id,
      worker,
    ]);
    return true;
  }

  return {
    engine: 'in-process',
    statement(specs: readonly JobSpec[]) {
      const params: unknown[] = [];
      const values = specs.map((spec) => {
        params.push(spec.name, spec.payload, spec.maxAttempts, spec.runAt ?? null);
        const n = params.length;
        return `($${n - 3}, $${n - 2}::text::jsonb, $${n - 1}::int, coalesce($${n}::timestamptz, now()))`;
      });
      return {
        text: `INSERT INTO ${table} ("name", "payload", "maxAttempts", "runAt") VALUES ${values.join(', ')}`,
        params,
      };
    },
    // The table is the engine's own: `migrate(db)` creates it.
    async migrate() {},
    async startWorker(options: JobWorkerOptions): Promise<JobWorker> {
      const worker = `in-process:${randomUUID()}`;
      const concurrency = Math.max(1, options.concurrency ?? 1);
      const pollInterval = options.pollInterval ?? 2000;
      const heartbeat = heartbeatFor(config, options, locks);
      await heartbeat.add(worker);
      let stopped = false;
      // Each idle loop's way to wake up early: on new jobs, and on stop.
      const wakers = new Set<() => void>();
      const nudge = () => {
        for (const wake of wakers) wake();
      };
      workers.add(nudge);
      const loop = async () => {
        while (!stopped) {
          let row: JobRow | undefined;
          try {
            row = await claim(worker);
            if (row) await attempt(worker, row);
          } catch (error) {
            // The database failed, not the job: a claimed job's lock expires and it runs again.
            config.logger.error({ event: 'jobs.worker', worker, error });
            row = undefined;
          }
          if (row || stopped) continue;
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer);
              wakers.delete(wake);
              resolve();
            };
            const timer = setTimeout(wake, pollInterval);
            wakers.add(wake);
          });
        }
      };
      const loops = Array.from({ length: concurrency }, loop);
      return {
        async stop() {
          stopped = true;
          workers.delete(nudge);
          nudge();
          await Promise.all(loops);
          await heartbeat.stop();
        },
      };
    },
    async runPending(): Promise<JobRunSummary> {
      const worker = `in-process:${randomUUID()}`;
      const summary = { completed: 0, failed: 0 };
      const heartbeat = heartbeatFor(config, {}, locks);
      try {
        await heartbeat.add(worker);
        for (let row = await claim(worker); row; row = await claim(worker)) {
          if (await attempt(worker, row)) summary.completed++;
          else summary.failed++;
        }
      } finally {
        await heartbeat.stop();
      }
      return summary;
    },
    async deadLetters(): Promise<DeadJob[]> {
      const rows = await config.db.query<JobRow>(
        `SELECT "id", "name", "payload", "attempts", "maxAttempts", "lastError", "createdAt"
         FROM ${table} WHERE "attempts" >= "maxAttempts" AND "lockedBy" IS NULL ORDER BY "id"`,
      );
      return rows.map(toDeadJob);
    },
    added() {
      for (const nudge of workers) nudge();
    },
  };
}

function toDeadJob(row: JobRow): DeadJob {
  return {
    id: String(row.id),
    name: row.name,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.maxAttempts),
    lastError: row.lastError,
    createdAt: new Date(row.createdAt),
  };
}
