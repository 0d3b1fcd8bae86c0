import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  it('doubles per attempt, with half of each delay random', () => {
    const policy = { baseMs: 100, maxMs: 10_000 };
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
  });

  it('never exceeds the cap', () => {
    expect(backoffDelay(50, { baseMs: 100, maxMs: 2_000 }, () => 1)).toBe(2_000);
  });
});
