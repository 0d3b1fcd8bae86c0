// jobs/: durable side effects. A mutator enqueues a job in its own transaction
// (`tx.enqueue`), so the job exists if and only if the mutation committed; a worker runs it
// at least once, with retries and backoff, and dead-letters it after its last attempt. On a
// real Postgres server graphile-worker stores and runs the jobs; on PGlite and pg-mem,
// where it cannot run, an in-process runner over the engine's own `jobs` table does.

import type { JobReference, StandardSchemaV1 } from '@reprise/shared';

/** What a handler learns about the job it runs. */
export interface JobInfo {
  /**
   * The job's id, the same on every attempt: key idempotent side effects by it (an email
   * provider's idempotency key, a unique row), since a job may run more than once.
   */
  readonly id: string;
  readonly name: string;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  /** Attempts before the job is dead-lettered. */
  readonly maxAttempts: number;
}

/** A job: its name, the schema of its payload and the handler that runs it. */
export interface JobDefinition<N extends string = string, TInput = unknown, TPayload = TInput>
  extends JobReference<N, TInput> {
  readonly name: N;
  readonly schema: StandardSchemaV1<TInput, TPayload>;
  readonly handler: (payload: TPayload, job: JobInfo) => void | Promise<void>;
  /** Attempts before the job is dead-lettered; unset, the queue's default. */
  readonly maxAttempts: number | undefined;
}

/** Any job definition, whatever its payload. */
export type AnyJobDefinition = JobDefinition<string, any, any>;

/** Options of `defineJob`. */
export interface DefineJobOptions {
  /** Attempts before the job is dead-lettered (default: the queue's, 25). */
  readonly maxAttempts?: number;
}

/**
 * Defines a job once: its name, the schema its payload must pass (zod or any Standard
 * Schema; the payload is stored as JSON) and its handler. A handler that throws is retried
 * with backoff; make it idempotent, keyed by `job.id`, since "at least once" may mean twice.
 *
 * @example
 * export const welcomeEmail = defineJob('email.welcome', z.object({userID: z.string()}),
 *   async ({userID}, job) => mailer.send({to: userID, idempotencyKey: job.id}));
 */
export function defineJob<N extends string, S extends StandardSchemaV1>(
  name: N,
  schema: S,
  handler: (payload: StandardSchemaV1.InferOutput<S>, job: JobInfo) => void | Promise<void>,
  options: DefineJobOptions = {},
): JobDefinition<N, StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>> {
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(name)) {
    throw new TypeError(
      `Invalid job name "${name}": use letters, digits and . _ : - (at most 200 characters)`,
    );
  }
  const { maxAttempts } = options;
  if (maxAttempts !== undefined) checkMaxAttempts(maxAttempts, `job "${name}"`);
  return { name, schema, handler, maxAttempts };
}

/** The most attempts a job may have: graphile-worker stores them as a smallint. */
export const MAX_JOB_ATTEMPTS = 32_767;

export function checkMaxAttempts(value: number, owner: string): void {
  if (!Number.isInteger(value) || value < 1 || value > MAX_JOB_ATTEMPTS) {
    throw new RangeError(
      `maxAttempts of ${owner} must be an integer from 1 to ${MAX_JOB_ATTEMPTS}, got ${value}`,
    );
  }
}

/** The payload failed its job's schema, when enqueued or when run. */
export class JobPayloadError extends Error {
  override readonly name = 'JobPayloadError';
  readonly code = 'job-payload' as const;

  constructor(job: string, issues: readonly StandardSchemaV1.Issue[]) {
    const described = issues
      .map((issue) => {
        const path = (issue.path ?? [])
          .map((segment) => String(typeof segment === 'object' ? segment.key : segment))
          .join('.');
        return path === '' ? issue.message : `${path}: ${issue.message}`;
      })
      .join('; ');
    super(`The payload of job "${job}" is invalid: ${described}`);
  }
}

/** Validates `payload` against the job's schema and returns the schema's output. */
export async function parsePayload(job: AnyJobDefinition, payload: unknown): Promise<unknown> {
  const result = await job.schema['~standard'].validate(payload);
  if (result.issues) throw new JobPayloadError(job.name, result.issues);
  return result.value;
}
