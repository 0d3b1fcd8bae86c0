import { describe, expect, it } from 'vitest';
import { compareDecimals, decimalKey, isDecimal } from './decimal';

describe('compareDecimals', () => {
  it('holds decimals equal whatever their scale, sign of zero or exponent', () => {
    expect(compareDecimals('1.5', '1.50')).toBe(0);
    expect(compareDecimals('-0', '0.000')).toBe(0);
    expect(compareDecimals('1e3', '1000')).toBe(0);
    expect(compareDecimals('.5', '0.5')).toBe(0);
  });

  it('orders by value, not by text', () => {
    const sorted = ['10', '9', '-10', '-9.5', '0.001', '1e-4', '-Infinity', 'NaN', 'Infinity'];
    sorted.sort(compareDecimals);
    expect(sorted).toEqual([
      '-Infinity',
      '-10',
      '-9.5',
      '1e-4',
      '0.001',
      '9',
      '10',
      'Infinity',
      'NaN',
    ]);
  });

  it('is exact far beyond a double', () => {
    expect(
      compareDecimals('123456789012345678901234567890.5', '123456789012345678901234567890.4'),
    ).toBe(1);
    expect(compareDecimals('0.1000000000000000000001', '0.1')).toBe(1);
  });

  it('compares numbers by their decimal form', () => {
    expect(compareDecimals(1.5, '1.50')).toBe(0);
  });
});

describe('decimalKey', () => {
  it('gives equal decimals one key, and different ones different keys', () => {
    expect(decimalKey('1.50')).toBe(decimalKey('0.15e1'));
    expect(decimalKey('-0')).toBe(decimalKey('0'));
    expect(decimalKey('15')).not.toBe(decimalKey('1.5'));
    expect(decimalKey('NaN')).toBe(decimalKey('nan'));
  });
});

describe('isDecimal', () => {
  it('accepts what numeric input accepts and refuses the rest', () => {
    for (const text of ['1', '-1.5', '+.5', '5.', '1e-3', 'NaN', '-Infinity', 'inf']) {
      expect(isDecimal(text), text).toBe(true);
    }
    for (const text of ['', '.', '1,5', 'x', '1e', '--1', '0x10']) {
      expect(isDecimal(text), text).toBe(false);
    }
  });
});
