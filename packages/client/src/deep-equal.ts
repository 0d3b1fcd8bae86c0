import { compareInstants, JSON_NULL } from '@reprise/shared';

/**
 * Structural equality for query results: plain objects, arrays, Dates, BigInts and
 * primitives (rows hold nothing else).
 *
 * @example
 * deepEqual([{id: 'a', at: new Date(0)}], [{id: 'a', at: new Date(0)}]); // true
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  // JSON_NULL has no keys, but is not an empty object.
  if (a === JSON_NULL || b === JSON_NULL) return false;
  if (a instanceof Date || b instanceof Date) {
    // A Timestamp also has microseconds, and may be an infinity or past the last Date.
    return (
      a instanceof Date &&
      b instanceof Date &&
      a.getTime() === b.getTime() &&
      compareInstants(a, b) === 0
    );
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  const recordB = b as Record<string, unknown>;
  return keysA.every(
    (key) => Object.hasOwn(b, key) && deepEqual((a as Record<string, unknown>)[key], recordB[key]),
  );
}
