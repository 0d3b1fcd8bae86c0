// One timer for the bounded waits of the process (`withDeadline`: each push transaction,
// each node-postgres statement; the postgres.js adapter's transactions). A timer set and cleared for each, with a `Promise.race`
// against it, cost a one-mutation push more than the bookkeeping it did: a wait now puts its
// deadline in a set, and one ticker, running only while the set is in use, fires those that
// passed.

/** A deadline on the shared clock: `expire` runs once `at` (`performance.now()`) passed. */
export interface Timed {
  /** When it expires, in `performance.now()` milliseconds; `Infinity` while not waiting. */
  at: number;
  expire(): void;
}

/**
 * How often the clock looks: a deadline fires at most this much after it passed. Every
 * bound the engine sets is a second or more by default, so this is lost in it.
 */
export const TICK_MS = 10;

const watched = new Set<Timed>();
let ticker: ReturnType<typeof setInterval> | undefined;
/** Whether the ticker keeps the process alive: while a deadline is watched, as a timer would. */
let held = false;
let idleTicks = 0;

function tick() {
  if (watched.size === 0) {
    // Let the process end once nothing is bounded; stopped after a few idle ticks rather
    // than at once, since a push every few milliseconds would start and stop it each time.
    if (held) {
      ticker?.unref();
      held = false;
    }
    if (++idleTicks >= 10 && ticker) {
      clearInterval(ticker);
      ticker = undefined;
    }
    return;
  }
  idleTicks = 0;
  const now = performance.now();
  for (const timed of watched) {
    if (timed.at > now) continue;
    watched.delete(timed);
    timed.expire();
  }
}

/**
 * Watches `timed` until `unwatch`: it expires when its `at` passes, checked every
 * `TICK_MS`. Its owner moves `at` as it starts and ends its waits; an expired one is no
 * longer watched. Like a timer, a watched deadline keeps the process alive, so a wait on
 * something that holds nothing (a promise never settled) still ends in its error.
 *
 * @example
 * const wait = {at: performance.now() + 5_000, expire: () => abandon()};
 * watch(wait);
 * try { await work; } finally { unwatch(wait); }
 */
export function watch(timed: Timed): void {
  watched.add(timed);
  idleTicks = 0;
  if (!ticker) ticker = setInterval(tick, TICK_MS);
  else if (!held) ticker.ref();
  held = true;
}

/** Stops watching `timed` (nothing if it expired or was never watched). */
export function unwatch(timed: Timed): void {
  watched.delete(timed);
}
