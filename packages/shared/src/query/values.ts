import type { CompareKind, TableInfo } from '../schema';
import { compareInstants, instantKey, parseTimestamp } from '../timestamp';
import { compareDecimals, decimalKey } from './decimal';
import { QueryError } from './validate';

// How the in-memory evaluator compares column values so that it agrees with Postgres
// (see SEMANTICS.md): strings in code point order (collation "C"), NaN equal to itself and
// above every number, dates by instant, and LIKE / ILIKE with Postgres's escape rules.
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

/** One piece of a LIKE pattern between `%`s: literal text, or `_` (one code point). */
type Token = string | typeof ONE;
const ONE = Symbol('_');

const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLowSurrogate = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** The length in UTF-16 units of the code point at `i`. */
const unitsAt = (s: string, i: number) =>
  isHighSurrogate(s.charCodeAt(i)) && isLowSurrogate(s.charCodeAt(i + 1)) ? 2 : 1;

/** The length in UTF-16 units of the code point that ends just before `i`. */
const unitsBefore = (s: string, i: number) =>
  isLowSurrogate(s.charCodeAt(i - 1)) && isHighSurrogate(s.charCodeAt(i - 2)) ? 2 : 1;

const foldAscii = (s: string) => s.replace(/[A-Z]+/g, (run) => run.toLowerCase());

function parsePattern(pattern: string): Token[][] {
  const chunks: Token[][] = [[]];
  let chunk = chunks[0]!;
  let escaped = false;
  for (const char of pattern) {
    if (!escaped && char === '\\') {
      escaped = true;
    } else if (!escaped && char === '%') {
      chunk = [];
      chunks.push(chunk);
    } else if (!escaped && char === '_') {
      chunk.push(ONE);
    } else {
      const last = chunk.length - 1;
      if (typeof chunk[last] === 'string') chunk[last] += char;
      else chunk.push(char);
      escaped = false;
    }
  }
  // Postgres raises this only when matching reaches the end of the pattern, so whether it
  // does depends on the data; refusing the pattern outright is the one consistent answer.
  if (escaped) {
    throw new QueryError(`LIKE pattern ${JSON.stringify(pattern)} ends with the escape \\`);
  }
  return chunks;
}

/** Where `tokens` match `s` from `at` (the index after the match), or -1. */
function matchAt(tokens: readonly Token[], s: string, at: number): number {
  let i = at;
  for (const token of tokens) {
    if (token === ONE) {
      if (i >= s.length) return -1;
      i += unitsAt(s, i);
    } else if (s.startsWith(token, i)) {
      i += token.length;
    } else {
      return -1;
    }
  }
  return i;
}

/** The end of the leftmost match of `tokens` in `s` at or after `from`, or -1. */
function findFrom(tokens: readonly Token[], s: string, from: number): number {
  const first = tokens[0];
  for (let i = from; i <= s.length; i += unitsAt(s, i)) {
    if (typeof first === 'string') {
      i = s.indexOf(first, i);
      if (i < 0) return -1;
    }
    const end = matchAt(tokens, s, i);
    if (end >= 0) return end;
  }
  return -1;
}

const codePoints = (tokens: readonly Token[]) =>
  tokens.reduce((n, t) => n + (t === ONE ? 1 : [...t].length), 0);

/** Matches whole strings: first chunk at the start, last at the end, middles leftmost. */
function matcherFor(chunks: readonly (readonly Token[])[]): (s: string) => boolean {
  const first = chunks[0] ?? [];
  const last = chunks[chunks.length - 1] ?? [];
  if (chunks.length === 1) return (s) => matchAt(first, s, 0) === s.length;
  const middle = chunks.slice(1, -1).filter((c) => c.length > 0);
  const lastLength = codePoints(last);
  return (s) => {
    let at = matchAt(first, s, 0);
    for (let m = 0; m < middle.length && at >= 0; m++) at = findFrom(middle[m]!, s, at);
    if (at < 0) return false;
    // The last chunk has a fixed length in code points: it must be the value's tail.
    let start = s.length;
    for (let n = 0; n < lastLength; n++) {
      if (start <= at) return false;
      start -= unitsBefore(s, start);
    }
    return start >= at && matchAt(last, s, start) === s.length;
  };
}

const likeCache = new Map<string, (value: string) => boolean>();
const LIKE_CACHE_LIMIT = 1000;

/**
 * Compiles a LIKE pattern (ILIKE when `caseInsensitive`) to a test of whole strings: `%`
 * any run of characters, `_` exactly one code point, `\` escapes the next character. ILIKE
 * folds ASCII letters only, as Postgres does under collation "C". Compiled patterns are
 * cached. A pattern ending in a lone `\` is refused with `QueryError`.
 *
 * @example
 * const isBug = compileLike('bug\\_%', true);
 * isBug('BUG_42'); // true
 * isBug('bugs'); // false
 */
export function compileLike(pattern: string, caseInsensitive = false): (value: string) => boolean {
  const cacheKey = (caseInsensitive ? 'i' : 's') + pattern;
  const cached = likeCache.get(cacheKey);
  if (cached) return cached;
  const match = matcherFor(parsePattern(caseInsensitive ? foldAscii(pattern) : pattern));
  const matcher = caseInsensitive ? (value: string) => match(foldAscii(value)) : match;
  if (likeCache.size >= LIKE_CACHE_LIMIT) likeCache.clear();
  likeCache.set(cacheKey, matcher);
  return matcher;
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
