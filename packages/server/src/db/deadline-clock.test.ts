import { describe, expect, it } from 'vitest';
import { TICK_MS, type Timed, unwatch, watch } from './deadline-clock';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function timed(inMs: number): Timed & { fired: number } {
  return {
    at: performance.now() + inMs,
    fired: 0,
    expire() {
      this.fired++;
    },
  };
}

describe('the shared deadline clock', () => {
  it('expires a watched deadline once, soon after it passes', async () => {
    const wait = timed(20);
    watch(wait);
    await sleep(20 + 5 * TICK_MS);
    expect(wait.fired).toBe(1);
    await sleep(3 * TICK_MS);
    expect(wait.fired).toBe(1);
  });

  it('never expires one unwatched in time', async () => {
    const wait = timed(20);
    watch(wait);
    unwatch(wait);
    await sleep(20 + 5 * TICK_MS);
    expect(wait.fired).toBe(0);
  });

  it('follows a deadline moved later, and one set to Infinity while nothing is awaited', async () => {
    const moved = timed(10);
    const idle = timed(10);
    watch(moved);
    watch(idle);
    moved.at = performance.now() + 200;
    idle.at = Number.POSITIVE_INFINITY;
    await sleep(10 + 5 * TICK_MS);
    expect(moved.fired).toBe(0);
    expect(idle.fired).toBe(0);
    await sleep(200);
    expect(moved.fired).toBe(1);
    expect(idle.fired).toBe(0);
    unwatch(idle);
  });

  it('starts again after going idle', async () => {
    // Idle for more than the ten ticks after which the ticker stops.
    await sleep(15 * TICK_MS);
    const wait = timed(10);
    watch(wait);
    await sleep(10 + 5 * TICK_MS);
    expect(wait.fired).toBe(1);
  });
});
