import { describe, expect, it } from 'vitest';
import { compileLike } from './like-pattern';
import { QueryError } from './validate';
import {
  compareStrings,
  compareValues,
  isNotDistinct,
  keyOf,
  tupleKeyOf,
  valuesEqual,
} from './values';

describe('compareStrings', () => {
  it('orders by code point where UTF-16 code units disagree', () => {
    expect('\u{1F600}' < '\uFFFD').toBe(true); // what JS would do
    expect(compareStrings('\u{1F600}', '\uFFFD')).toBe(1);
    expect(compareStrings('\uE000', '\u{10000}')).toBe(-1);
    expect(compareStrings('\uFFFD', '\u{1F600}')).toBe(-1);
  });

  it('matches Postgres COLLATE "C" on a mixed list', () => {
    // SELECT x FROM (VALUES ('😀'), (U&'\FFFD'), ('a'), (U&'\E000')) t(x) ORDER BY x COLLATE "C"
    const sorted = ['\u{1F600}', '\uFFFD', 'a', '\uE000'].sort(compareStrings);
    expect(sorted).toEqual(['a', '\uE000', '\uFFFD', '\u{1F600}']);
  });

  it('puts a prefix first, upper case before lower, and finds equal strings equal', () => {
    expect(compareStrings('ab', 'abc')).toBe(-1);
    expect(compareStrings('B', 'a')).toBe(-1);
    expect(compareStrings('same', 'same')).toBe(0);
  });
});

describe('compareValues', () => {
  it('puts null and undefined after every value', () => {
    expect([3, null, 1, undefined].sort((a, b) => compareValues('number', a, b))).toEqual([
      1,
      3,
      null,
      undefined,
    ]);
    expect(compareValues('string', null, undefined)).toBe(0);
  });

  it('holds NaN equal to itself and above every number, as Postgres does', () => {
    expect(compareValues('number', Number.NaN, Number.POSITIVE_INFINITY)).toBe(1);
    expect(compareValues('number', 1, Number.NaN)).toBe(-1);
    expect(compareValues('number', Number.NaN, Number.NaN)).toBe(0);
    expect(compareValues('number', -0, 0)).toBe(0);
  });

  it('compares bigints numerically, also against numbers', () => {
    expect(compareValues('bigint', 10n, 9n)).toBe(1);
    expect(compareValues('bigint', 2n ** 64n, 2n ** 64n - 1n)).toBe(1);
    expect(compareValues('bigint', 1n, 1)).toBe(0);
  });

  it('orders false before true and dates by instant', () => {
    expect(compareValues('boolean', false, true)).toBe(-1);
    expect(compareValues('date', new Date(5), new Date(5))).toBe(0);
    expect(compareValues('date', new Date(4), new Date(5))).toBe(-1);
  });

  it('refuses to order json values', () => {
    expect(() => compareValues('json', { a: 1 }, { a: 2 })).toThrow(QueryError);
  });
});

describe('valuesEqual and isNotDistinct', () => {
  it('never finds null equal under =, but null IS null', () => {
    expect(valuesEqual('number', null, null)).toBe(false);
    expect(valuesEqual('number', 1, null)).toBe(false);
    expect(isNotDistinct('number', null, null)).toBe(true);
    expect(isNotDistinct('number', 1, null)).toBe(false);
    expect(isNotDistinct('number', 1, 1)).toBe(true);
  });

  it('finds two Date objects of one instant equal', () => {
    expect(valuesEqual('date', new Date('2026-01-01T00:00:00Z'), new Date(1767225600000))).toBe(
      true,
    );
  });
});

describe('keyOf and tupleKeyOf', () => {
  it('gives values equal under = the same key', () => {
    expect(keyOf('date', new Date(7))).toBe(keyOf('date', new Date(7)));
    expect(keyOf('bigint', 1)).toBe(keyOf('bigint', 1n));
    expect(new Set([keyOf('number', Number.NaN)]).has(keyOf('number', Number.NaN))).toBe(true);
  });

  it('never gives two different tuples one key', () => {
    const kinds = ['string', 'string'] as const;
    expect(tupleKeyOf(kinds, ['a1', ''])).not.toBe(tupleKeyOf(kinds, ['a', '1']));
    expect(tupleKeyOf(['string', 'number'], ['1', 1])).not.toBe(
      tupleKeyOf(['number', 'string'], [1, '1']),
    );
  });
});

describe('compileLike', () => {
  // [value, pattern, LIKE, ILIKE], each checked on PostgreSQL 15 with COLLATE "C".
  const cases: Array<[string, string, boolean, boolean]> = [
    ['abc', 'abc', true, true],
    ['abc', 'ab', false, false],
    ['abc', 'b', false, false],
    ['abc', 'a%', true, true],
    ['abc', '%c', true, true],
    ['abc', '%b%', true, true],
    ['abc', 'a_c', true, true],
    ['abc', 'a__c', false, false],
    ['abc', '___', true, true],
    ['abc', '____', false, false],
    ['\u{1F600}', '_', true, true],
    ['\u{1F600}', '__', false, false],
    ['a\u{1F600}b', 'a_b', true, true],
    ['a\u{1F600}b', '%\u{1F600}%', true, true],
    ['a\u{1F600}b', 'a%_', true, true],
    ['', '', true, true],
    ['', '%', true, true],
    ['', '_', false, false],
    ['50%', '50\\%', true, true],
    ['500', '50\\%', false, false],
    ['a_b', 'a\\_b', true, true],
    ['axb', 'a\\_b', false, false],
    ['a\\b', 'a\\\\b', true, true],
    ['a', '\\a', true, true],
    ['ABC', 'abc', false, true],
    ['abc', 'ABC', false, true],
    ['É', 'é', false, false],
    ['é', 'É', false, false],
    ['\u212A', 'k', false, false], // KELVIN SIGN folds to k only under Unicode rules
    ['Straße', 'STRASSE', false, false],
    ['a\nb', 'a_b', true, true],
    ['a\nb', 'a%', true, true],
    ['aXbYb', 'a%b', true, true],
    ['abab', '%ab%ab', true, true],
    ['ab', '%ab%ab', false, false],
    ['abcbd', '%b_d', false, false],
    ['mississippi', '%iss%ppi', true, true],
    ['mississippi', 'm%ss%s_i', false, false],
    ['aaa', '%a%a%a%a', false, false],
    ['aaa', 'a%%a', true, true],
  ];
  for (const [value, pattern, like, ilike] of cases) {
    it(`${JSON.stringify(value)} LIKE ${JSON.stringify(pattern)} is ${like}, ILIKE ${ilike}`, () => {
      expect(compileLike(pattern)(value)).toBe(like);
      expect(compileLike(pattern, true)(value)).toBe(ilike);
    });
  }

  it('refuses a pattern that ends in a lone escape', () => {
    expect(() => compileLike('abc\\')).toThrow(QueryError);
    expect(() => compileLike('abc\\', true)).toThrow(/ends with the escape/);
  });

  it('reuses a compiled pattern, separately for LIKE and ILIKE', () => {
    expect(compileLike('x%')).toBe(compileLike('x%'));
    expect(compileLike('x%', true)).not.toBe(compileLike('x%'));
  });
});
