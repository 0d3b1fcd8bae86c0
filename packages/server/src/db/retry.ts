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

/** A request that lost again in its turn pauses at most `baseDelayMs` × 2^(this − 1). */
const TURN_DOUBLINGS = 3;

/**
 * Runs `fn`, running it again after a transient failure (serialization failure, deadlock,
 * lost connection, an attempt past `attemptTimeoutMs`) with exponential back-off and full
 * jitter, while the budget lasts. `fn` gets the attempt's number, from 1. Other errors, and the last transient one, are thrown.
 *
 * With a `gate`, a request whose attempt lost a write conflict waits for a turn through it
 * instead of backing off, and retries as soon as it has one (conflict-gate.ts). A turn is
 * one attempt: one that loses again waits in line again after a short pause, ahead of every
 * request younger than it, so a request that keeps losing neither holds up the line nor
 * falls to its end.
 *
 * @example
 * await withRetries(DEFAULT_RETRY_POLICY, () => db.transaction(work, {isolation: 'serializable'}));
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  gate?: ConflictGate,
): Promise<T> {
  const started = Date.now();
  const deadline = started + policy.budgetMs;
  const backOff = async (error: unknown, failures: number) => {
    const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
    const delay = Math.random() * ceiling;
    if (Date.now() + delay >= deadline) throw error;
    await new Promise((resolve) => setTimeout(resolve, delay));
  };
  let turn: GateTurn | undefined;
  let failures = 0;
  let conflictsInTurns = 0;
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
          if (turn) {
            turn.leave('conflicted');
            turn = undefined;
            await backOff(error, Math.min(++conflictsInTurns, TURN_DOUBLINGS));
          }
          if (Date.now() >= deadline) throw error;
          turn = await gate.enter(deadline - Date.now(), started);
          if (!turn) throw error;
          continue;
        }
        // Not a conflict (a lost connection): nothing to wait in line for.
        turn?.leave('failed');
        turn = undefined;
        await backOff(error, ++failures);
      }
    }
  } finally {
    turn?.leave(committed ? 'committed' : 'failed');
  }
}
