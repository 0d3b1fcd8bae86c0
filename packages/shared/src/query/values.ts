import type { CompareKind, TableInfo } from '../schema';
import { compareInstants, instantKey, parseTimestamp } from '../timestamp';
import { compareDecimals, decimalKey } from './decimal';
import { QueryError } from './validate';

// How the in-memory evaluator compares column values so that it agrees with Postgres
// (see SEMANTICS.md): strings in code point order (collation "C"), NaN equal to itself and
// above every number, dates by instant to the microsecond (LIKE is in like-pattern.ts).
// `real` compares as float4, `numeric` as exact decimals, `char` without trailing spaces.

/**
 * Compares two strings by Unicode code point, as Postgres's collation "C" does (byte order
 * in UTF-8). JS `<` compares UTF-16 code units, which puts astral characters (stored as
 * surrogates, 0xD800–0xDFFF) before U+E000–U+FFFF; this does not.
 *
 * @example
 * compareStrings('\u{1F600}', '\uFFFD'); // 1, though '\u{1F600}' < '\uFFFD' in JS
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Only units ≥ 0xD800 can be out of code point order: move surrogates above the rest.
    if (x >= 0xd800 && y >= 0xd800) {
      x += x >= 0xe000 ? -0x800 : 0x2000;
      y += y >= 0xe000 ? -0x800 : 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

// JS compares a number with a bigint exactly, so a bigint-mode-number column may hold both.
function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (a < b) return -1;
  if (a > b) return 1;
  // Neither less nor greater: equal (1 and 1n, -0 and 0), or NaN is involved, which
  // Postgres holds equal to itself and greater than every other number.
  const aNaN = typeof a === 'number' && Number.isNaN(a);
  const bNaN = typeof b === 'number' && Number.isNaN(b);
  return aNaN === bNaN ? 0 : aNaN ? 1 : -1;
}

/** Postgres ignores trailing spaces when it compares `char(n)` values (and only spaces). */
function trimPadding(value: string): string {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 0x20) end--;
  return end === value.length ? value : value.slice(0, end);
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A date column's value as a Date: rows hold Dates, literals may be text or milliseconds. */
function dateOf(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  try {
    return parseTimestamp(String(value));
  } catch {
    return new Date(String(value));
  }
}

/**
 * Orders two values of a column of `kind` ascending, NULLs (and `undefined`) last, as
 * Postgres's `ORDER BY … ASC` does. Json and other columns cannot be ordered: `QueryError`.
 *
 * @example
 * [3, null, 1].sort((a, b) => compareValues('number', a, b)); // [1, 3, null]
 */
export function compareValues(kind: CompareKind, a: unknown, b: unknown): number {
  const aNull = a == null;
  const bNull = b == null;
  if (aNull || bNull) return aNull === bNull ? 0 : aNull ? 1 : -1;
  switch (kind) {
    case 'string':
      return compareStrings(a as string, b as string);
    case 'char':
      return compareStrings(trimPadding(a as string), trimPadding(b as string));
    case 'number':
    case 'bigint':
      return compareNumbers(a as number | bigint, b as number | bigint);
    case 'real':
      return compareNumbers(Math.fround(a as number), Math.fround(b as number));
    case 'numeric':
      return compareDecimals(a, b);
    case 'boolean':
      return a === b ? 0 : a ? 1 : -1;
    case 'date':
      return compareInstants(dateOf(a), dateOf(b));
    default:
      throw new QueryError(`${kind} values cannot be compared or ordered`);
  }
}

/**
 * SQL `=` made two-valued: false when either side is null, else whether they are equal.
 *
 * @example
 * valuesEqual('date', new Date(0), new Date(0)); // true
 * valuesEqual('number', null, null); // false: use isNotDistinct for IS
 */
export function valuesEqual(kind: CompareKind, a: unknown, b: unknown): boolean {
  return a != null && b != null && compareValues(kind, a, b) === 0;
}

/**
 * SQL `IS NOT DISTINCT FROM`: equal, or both null.
 *
 * @example
 * isNotDistinct('string', null, null); // true
 */
export function isNotDistinct(kind: CompareKind, a: unknown, b: unknown): boolean {
  const aNull = a == null;
  const bNull = b == null;
  return aNull || bNull ? aNull === bNull : compareValues(kind, a, b) === 0;
}

/**
 * A value of a column of `kind` as a `Map` / `Set` key: two non-null values are equal under
 * `=` exactly when their keys are (`SameValueZero`, so NaN finds NaN and -0 finds 0). Dates
 * become their instant; integers beyond 2^53 are bigints and others numbers, whichever type
 * they came in; reals their float4 value, decimals a canonical string, chars lose padding.
 *
 * @example
 * new Set([keyOf('date', new Date(5))]).has(keyOf('date', new Date(5))); // true
 */
export function keyOf(kind: CompareKind, value: unknown): unknown {
  if (value == null) return null;
  switch (kind) {
    case 'date':
      return instantKey(dateOf(value));
    case 'bigint':
      return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value;
    case 'number':
      // Exact: a bigint-mode-number column holds a value beyond 2^53 as a bigint.
      if (typeof value === 'bigint') {
        return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
      }
      return typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)
        ? BigInt(value)
        : value;
    case 'real':
      return Math.fround(value as number);
    case 'numeric':
      return decimalKey(value);
    case 'char':
      return trimPadding(value as string);
    default:
      return value;
  }
}

/**
 * The values of several columns as one key: `keyOf` for a single column; for more, a
 * length-prefixed string, so that no two different tuples share a key.
 *
 * @example
 * tupleKeyOf(['string', 'number'], ['a', 1]); // 'string1:anumber1:1'
 */
export function tupleKeyOf(kinds: readonly CompareKind[], values: readonly unknown[]): unknown {
  if (kinds.length === 1) return keyOf(kinds[0]!, values[0]);
  let key = '';
  for (let i = 0; i < kinds.length; i++) {
    const part = keyOf(kinds[i]!, values[i]);
    const text = String(part);
    key += `${typeof part}${text.length}:${text}`;
  }
  return key;
}

const primaryKinds = new WeakMap<TableInfo, readonly CompareKind[]>();

/**
 * The primary key of `row` in `info`'s table, encoded as the store keys its rows: one
 * value for a single-column key, a stable string for a composite one.
 *
 * @example
 * encodePrimaryKey(mustGetTable(schema, 'issue'), {id: 'i1', title: 'x'}, 'put'); // 'i1'
 */
export function encodePrimaryKey(
  info: TableInfo,
  row: Readonly<Record<string, unknown>>,
  verb: string,
): unknown {
  let kinds = primaryKinds.get(info);
  if (!kinds) {
    kinds = info.primaryKey.map((column) => info.columns.get(column)!.compareAs);
    primaryKinds.set(info, kinds);
  }
  const values = info.primaryKey.map((column) => {
    const value = row[column];
    if (value == null) {
      throw new TypeError(`${verb}(${info.name}): the primary key "${column}" is missing`);
    }
    return value;
  });
  return tupleKeyOf(kinds, values);
}
