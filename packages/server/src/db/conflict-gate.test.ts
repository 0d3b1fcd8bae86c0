import { describe, expect, it } from 'vitest';
import { createConflictGate } from './conflict-gate';
import { DEFAULT_RETRY_POLICY, withRetries } from './retry';

const conflict = () => Object.assign(new Error('could not serialize access'), { code: '40001' });
const connectionLost = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('conflict gate', () => {
  it('admits one turn at first and the waiters in arrival order', async () => {
    const gate = createConflictGate();
    const first = await gate.enter(1_000);
    const order: string[] = [];
    const second = gate.enter(1_000).then((turn) => {
      order.push('second');
      return turn;
    });
    const third = gate.enter(1_000).then((turn) => {
      order.push('third');
      return turn;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    first!.leave('failed');
    (await second)!.leave('failed');
    (await third)!.leave('failed');
    expect(order).toEqual(['second', 'third']);
  });

  it('lets the oldest request in first, however late it lined up', async () => {
    const gate = createConflictGate();
    const held = await gate.enter(1_000);
    const order: string[] = [];
    const line = (name: string, since: number) =>
      gate.enter(1_000, since).then((turn) => {
        order.push(name);
        turn!.leave('failed');
      });
    const young = line('young', 300);
    const middle = line('middle', 200);
    // A request that began first and lost again lines up last, and still goes first.
    const old = line('old', 100);
    held!.leave('failed');
    await Promise.all([young, middle, old]);
    expect(order).toEqual(['old', 'middle', 'young']);
  });

  it('gives up a wait after its time, and does not admit it later', async () => {
    const gate = createConflictGate();
    const held = await gate.enter(1_000);
    expect(await gate.enter(20)).toBeUndefined();
    held!.leave('committed');
    // The gate is free again: the timed-out waiter did not take the turn.
    const next = await gate.enter(0);
    expect(next).toBeDefined();
    next!.leave('committed');
  });

  it('lets one more through after a turn commits while others wait, half as many after a conflict', async () => {
    const gate = createConflictGate();
    const a = await gate.enter(1_000);
    const waiters = [gate.enter(1_000), gate.enter(1_000), gate.enter(1_000)];
    a!.leave('committed');
    expect(gate.capacity).toBe(2);
    const [b, c] = await Promise.all([waiters[0], waiters[1]]);
    b!.leave('conflicted');
    expect(gate.capacity).toBe(1);
    c!.leave('failed');
    const d = await waiters[2];
    d!.leave('committed');
    // Nobody waits any more: the next burst starts from one turn again.
    expect(gate.capacity).toBe(1);
  });
});

describe('withRetries with a conflict gate', () => {
  const slowBackOff = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 60_000, maxDelayMs: 60_000 };

  it('retries a lost conflict as soon as its turn comes, without backing off', async () => {
    const gate = createConflictGate();
    const held = await gate.enter(1_000);
    const attempts: number[] = [];
    const done = withRetries(
      slowBackOff,
      async (attempt) => {
        attempts.push(attempt);
        if (attempt === 1) throw conflict();
        return 'committed';
      },
      gate,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Waiting for the turn, not running.
    expect(attempts).toEqual([1]);
    held!.leave('failed');
    expect(await done).toBe('committed');
    expect(attempts).toEqual([1, 2]);
  });

  it('does not queue a lost connection behind the gate', async () => {
    const gate = createConflictGate();
    const held = await gate.enter(1_000);
    const attempts: number[] = [];
    const result = await withRetries(
      { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1, maxDelayMs: 1 },
      async (attempt) => {
        attempts.push(attempt);
        if (attempt === 1) throw connectionLost();
        return 'committed';
      },
      gate,
    );
    expect(result).toBe('committed');
    expect(attempts).toEqual([1, 2]);
    held!.leave('failed');
  });

  it('throws the conflict when no turn comes within the budget', async () => {
    const gate = createConflictGate();
    const held = await gate.enter(1_000);
    await expect(
      withRetries(
        { ...slowBackOff, budgetMs: 50 },
        async () => {
          throw conflict();
        },
        gate,
      ),
    ).rejects.toMatchObject({ code: '40001' });
    held!.leave('failed');
  });

  it('keeps a simulated hot row exact with its retries through the gate', async () => {
    const gate = createConflictGate();
    let value = 0;
    let version = 0;
    let retriedAtOnce = 0;
    let mostRetriedAtOnce = 0;
    const increment = async (attempt: number) => {
      if (attempt > 1) mostRetriedAtOnce = Math.max(mostRetriedAtOnce, ++retriedAtOnce);
      try {
        const seen = version;
        const read = value;
        await new Promise((resolve) => setTimeout(resolve, 1));
        // First committer wins, as Postgres decides an update of a row read by both.
        if (version !== seen) throw conflict();
        value = read + 1;
        version++;
      } finally {
        if (attempt > 1) retriedAtOnce--;
      }
    };
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 10; i++) await withRetries(DEFAULT_RETRY_POLICY, increment, gate);
      }),
    );
    expect(value).toBe(100);
    // Retries ran a few at a time (3 or 4 in 20 runs); without the gate 9 of the 10 did.
    expect(mostRetriedAtOnce).toBeLessThanOrEqual(5);
  });
});
