// Where transactions that lost a write conflict wait their turn. When many requests write
// one row (a counter, a shared document) under serializable isolation, each commit fails
// every other transaction that read the row. Backing off alone leaves them all retrying at
// once: a run of 20 clients on one row under CPU load had about 12 transactions in flight
// at a time, 2.5 failed attempts per push, and some pushes losing 40 times in a row. So a
// request whose transaction lost a conflict retries through its `Database`'s gate: a few
// at a time, oldest request first, while first attempts run as before. Under four CPU
// burners, runs alternated, the gate took the failed attempts for the 2,000 pushes from
// 4,600–5,600 to 2,500–2,600, and the 503s from 1 a run to none; the runs took about as
// long (30.5–30.7 s against 29.9–35.8 s: the row's commits are serial either way).
//
// How many may retry at once adapts to how the retries fare, as TCP's window does: one
// more after a retry that committed while others waited, half as many (at least one) after
// one that lost again. Retries that conflict with each other (one hot row) thus run about
// one at a time, and retries whose conflicts were unrelated soon run side by side.

/** How the attempt run in a turn ended: it committed, lost a conflict again, or neither. */
export type TurnOutcome = 'committed' | 'conflicted' | 'failed';

/** A turn through the gate: one retried attempt. */
export interface GateTurn {
  /** Ends the turn with its attempt's outcome, which adjusts how many may go at once. */
  leave(outcome: TurnOutcome): void;
}

export interface ConflictGate {
  /**
   * Waits for a turn, at most `ms`; `undefined` when none came in time. Waiters are let in
   * by `since` (when their request began, by default now), oldest first.
   */
  enter(ms: number, since?: number): Promise<GateTurn | undefined>;
  /** How many turns may run at once now (for tests). */
  readonly capacity: number;
}

/** Turns at once, however well retries fare: past this the gate no longer holds anything. */
const MAX_CAPACITY = 32;

interface Waiter {
  readonly since: number;
  readonly admit: (turn: GateTurn) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * A gate of its own, for tests and for callers that key gates themselves; the engine uses
 * `conflictGateOf(db)`.
 *
 * @example
 * const turn = await createConflictGate().enter(5_000);
 */
export function createConflictGate(): ConflictGate {
  let capacity = 1;
  let running = 0;
  const waiting: Waiter[] = [];

  const admitNext = () => {
    while (running < capacity && waiting.length > 0) {
      const waiter = waiting.shift()!;
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      running++;
      waiter.admit(turn());
    }
  };

  const turn = (): GateTurn => {
    let left = false;
    return {
      leave(outcome) {
        if (left) return;
        left = true;
        running--;
        if (outcome === 'conflicted') capacity = Math.max(1, Math.floor(capacity / 2));
        else if (outcome === 'committed' && waiting.length > 0) {
          capacity = Math.min(MAX_CAPACITY, capacity + 1);
        }
        // Nobody waits: the contention is over, and the next burst starts from one again.
        if (waiting.length === 0 && running === 0) capacity = 1;
        admitNext();
      },
    };
  };

  return {
    get capacity() {
      return capacity;
    },
    enter(ms, since = Date.now()) {
      if (running < capacity && waiting.length === 0) {
        running++;
        return Promise.resolve(turn());
      }
      if (!(ms > 0)) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const waiter: Waiter = { since, admit: resolve };
        waiter.timer = setTimeout(() => {
          const at = waiting.indexOf(waiter);
          if (at !== -1) waiting.splice(at, 1);
          resolve(undefined);
        }, ms);
        // Behind every waiter at least as old: a request that keeps losing moves up the line.
        let at = waiting.length;
        while (at > 0 && waiting[at - 1]!.since > since) at--;
        waiting.splice(at, 0, waiter);
      });
    },
  };
}

const gates = new WeakMap<object, ConflictGate>();

/**
 * The gate of one `Database` (one pool, one process): every request through it that lost a
 * write conflict retries through this gate.
 *
 * @example
 * await withRetries(policy, () => db.transaction(work), conflictGateOf(db));
 */
export function conflictGateOf(db: object): ConflictGate {
  let gate = gates.get(db);
  if (!gate) {
    gate = createConflictGate();
    gates.set(db, gate);
  }
  return gate;
}
