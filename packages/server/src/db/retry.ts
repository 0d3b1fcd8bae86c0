import type { ConflictGate, GateTurn } from './conflict-gate';
import { isTransientError, isWriteConflict, withDeadline } from './database';

/** How transient database failures are retried, and how long one attempt may take. */
export interface RetryPolicy {
  /**
   * How long, from the first attempt, a request keeps trying again (default 10 s). A hot
   * row under serializable isolation needs many tries, and a failover takes seconds; past
   * the budget the last error is thrown (a push then answers 503, nothing skipped).
   */
  readonly budgetMs: number;
  /** Attempts in all, the first included (default: as many as the budget allows). */
  readonly maxAttempts: number;
  /** The first back-off; each later one doubles, with full jitter, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * The most one attempt (one transaction) may take before it counts as failed and is
   * retried (default 15 s). It bounds every database call, so a connection that stopped
   * answering cannot hang a request.
   */
  readonly attemptTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  budgetMs: 10_000,
  maxAttempts: Number.POSITIVE_INFINITY,
  baseDelayMs: 2,
  maxDelayMs: 400,
  attemptTimeoutMs: 15_000,
};

/**
 * Runs `fn`, running it again after a transient failure (serialization failure, deadlock,
 * lost connection, an attempt past `attemptTimeoutMs`) with exponential back-off and full
 * jitter, while the budget lasts. `fn` gets the attempt's number, from 1. Other errors, and the last transient one, are thrown.
 *
 * With a `gate`, a request whose attempt lost a write conflict waits for a turn through it
 * and retries at once when it gets one (conflict-gate.ts); while it holds the turn, further
 * conflicts back off as above, counted from the turn's start.
 *
 * @example
 * await withRetries(DEFAULT_RETRY_POLICY, () => db.transaction(work, {isolation: 'serializable'}));
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  gate?: ConflictGate,
): Promise<T> {
  const deadline = Date.now() + policy.budgetMs;
  let turn: GateTurn | undefined;
  // Failures since the turn began (or since the first attempt, without one): the back-off's exponent.
  let failures = 0;
  let committed = false;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await withDeadline(fn(attempt), policy.attemptTimeoutMs, 'one transaction');
        committed = true;
        return result;
      } catch (error) {
        if (attempt >= policy.maxAttempts || !isTransientError(error)) throw error;
        if (gate && isWriteConflict(error)) {
          if (!turn) {
            if (Date.now() >= deadline) throw error;
            turn = await gate.enter(deadline - Date.now());
            if (!turn) throw error;
            failures = 0;
            continue;
          }
          turn.conflicted();
        } else if (turn) {
          // Not a conflict (a lost connection): nothing to queue for; let others retry.
          turn.leave(false);
          turn = undefined;
        }
        failures++;
        const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
        const delay = Math.random() * ceiling;
        if (Date.now() + delay >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  } finally {
    turn?.leave(committed);
  }
}
