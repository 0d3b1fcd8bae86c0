import { QueryError } from './validate';

// LIKE and ILIKE in memory, with Postgres's rules: `%` any run, `_` one code point, `\`
// escapes the next character, ILIKE folds ASCII letters only (collation "C").

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
