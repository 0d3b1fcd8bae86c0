import { isTransientError } from './database';

/** How transient database failures are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The first back-off; each later one doubles, with jitter, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 10,
  baseDelayMs: 2,
  maxDelayMs: 250,
};

/**
 * Runs `fn`, running it again after a transient failure (serialization failure, deadlock,
 * lost connection) with exponential back-off and full jitter. Other errors, and the last
 * transient one, are thrown.
 *
 * @example
 * await withRetries(DEFAULT_RETRY_POLICY, () => db.transaction(work, {isolation: 'serializable'}));
 */
export async function withRetries<T>(policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= policy.maxAttempts || !isTransientError(error)) throw error;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
    }
  }
}
