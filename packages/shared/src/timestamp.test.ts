import { describe, expect, it } from 'vitest';
import {
  compareInstants,
  formatTimestamp,
  instantKey,
  microsecondOf,
  parseTimestamp,
  Timestamp,
} from './timestamp';
import { decodeRich, encodeRich } from './transformer';

describe('parseTimestamp', () => {
  it.each([
    ['2026-01-02 03:04:05.123+00', '2026-01-02T03:04:05.123Z'],
    ['2026-01-01 22:04:05.123456-05', '2026-01-02T03:04:05.123456Z'],
    ['2026-01-02 08:34:05+05:30', '2026-01-02T03:04:05.000Z'],
    ['1883-11-18 12:00:00-04:56:02', '1883-11-18T16:56:02.000Z'],
    ['2026-01-02T03:04:05.1+00:00', '2026-01-02T03:04:05.100Z'],
    ['2026-01-02 03:04:05.5', '2026-01-02T03:04:05.500Z'],
    ['2026-01-02', '2026-01-02T00:00:00.000Z'],
    ['0044-03-15 00:00:00+00', '0044-03-15T00:00:00.000Z'],
    ['0044-03-15 00:00:00.000001+00 BC', '0044-03-15T00:00:00.000001Z BC'],
    ['10000-01-01 00:00:00.999999+00', '10000-01-01T00:00:00.999999Z'],
    ['1969-12-31 23:59:59.999999+00', '1969-12-31T23:59:59.999999Z'],
  ])('reads %s as %s, to the microsecond', (text, iso) => {
    expect(parseTimestamp(text).toISOString()).toBe(iso);
  });

  it('reads years before Christ', () => {
    expect(parseTimestamp('0044-03-15 00:00:00+00 BC').getUTCFullYear()).toBe(-43);
  });

  it('keeps the microseconds past the millisecond beside a Date to the millisecond', () => {
    const at = parseTimestamp('1969-12-31 23:59:59.999999+00');
    expect(at).toBeInstanceOf(Date);
    expect(at.getTime()).toBe(-1);
    expect(at.microsecond).toBe(999);
  });

  it('reads the infinities as themselves, written back as Postgres writes them', () => {
    const inf = parseTimestamp('infinity');
    expect(inf).toBe(Timestamp.POSITIVE_INFINITY);
    expect(inf.getTime()).toBe(8.64e15);
    expect(JSON.stringify({ at: inf })).toBe('{"at":"infinity"}');
    expect(parseTimestamp('-infinity').toISOString()).toBe('-infinity');
  });

  it.each([
    '275760-09-13T00:00:00.001Z',
    '294276-12-31T23:59:59.999999Z',
    '5874897-12-31T00:00:00.000Z',
  ])('keeps %s, past the last Date, exactly', (text) => {
    const at = parseTimestamp(text);
    expect(at.getTime()).toBe(8.64e15);
    expect(at.beyond).toBeGreaterThan(0);
    expect(at.toISOString()).toBe(text);
    expect(parseTimestamp(at.toISOString()).beyond).toBe(at.beyond);
  });

  it('reads the instants past the last Date from any zone', () => {
    expect(parseTimestamp('280000-02-29 12:34:56.789012+05:30').toISOString()).toBe(
      '280000-02-29T07:04:56.789012Z',
    );
  });

  it('refuses text that is no timestamp', () => {
    expect(() => parseTimestamp('yesterday')).toThrow(/Cannot read "yesterday"/);
  });
});

describe('formatTimestamp', () => {
  it('writes plain Dates outside years 1–9999 as Postgres reads them', () => {
    expect(formatTimestamp(new Date('+010000-01-01T00:00:00Z'))).toBe('10000-01-01T00:00:00.000Z');
    expect(formatTimestamp(new Date('-000001-06-01T00:00:00Z'))).toBe(
      '0002-06-01T00:00:00.000Z BC',
    );
  });
});

describe('compareInstants and instantKey', () => {
  const early = parseTimestamp('2026-01-01 00:00:00.000001Z');
  const late = parseTimestamp('2026-01-01 00:00:00.000002Z');
  const plain = new Date('2026-01-01T00:00:00Z');

  it('orders by microsecond, with the infinities outside every instant', () => {
    const sorted = [late, Timestamp.POSITIVE_INFINITY, early, new Date(8.64e15), plain];
    sorted.sort(compareInstants);
    expect(sorted.map((d) => d.toISOString())).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000001Z',
      '2026-01-01T00:00:00.000002Z',
      '+275760-09-13T00:00:00.000Z',
      'infinity',
    ]);
    expect(compareInstants(Timestamp.NEGATIVE_INFINITY, new Date(-8.64e15))).toBe(-1);
  });

  it('orders the instants past the last Date after it, by millisecond and microsecond', () => {
    const texts = [
      'infinity',
      '294276-12-31 23:59:59.999999Z',
      '294276-12-31 23:59:59.999998Z',
      '275760-09-13 00:00:00.001Z',
      '275760-09-13 00:00:00.000001Z',
    ];
    const sorted = [...texts.map(parseTimestamp), new Date(8.64e15)].sort(compareInstants);
    expect(sorted.map(formatTimestamp)).toEqual([
      '275760-09-13T00:00:00.000Z',
      '275760-09-13T00:00:00.000001Z',
      '275760-09-13T00:00:00.001Z',
      '294276-12-31T23:59:59.999998Z',
      '294276-12-31T23:59:59.999999Z',
      'infinity',
    ]);
    const far = parseTimestamp('294276-12-31 23:59:59.999999Z');
    expect(instantKey(far)).toBe(instantKey(parseTimestamp(far.toISOString())));
    expect(instantKey(far)).not.toBe(instantKey(parseTimestamp('294276-12-31 23:59:59.999998Z')));
  });

  it('gives one key to equal instants and different keys to different ones', () => {
    expect(instantKey(plain)).toBe(instantKey(parseTimestamp('2026-01-01 00:00:00Z')));
    expect(instantKey(early)).not.toBe(instantKey(late));
    expect(instantKey(early)).not.toBe(instantKey(plain));
    expect(instantKey(Timestamp.POSITIVE_INFINITY)).not.toBe(instantKey(new Date(8.64e15)));
  });
});

describe('the wire', () => {
  it('carries microseconds and infinities through superjson', () => {
    const row = {
      at: parseTimestamp('2026-01-01 00:00:00.123456Z'),
      end: Timestamp.POSITIVE_INFINITY,
    };
    const back = decodeRich(JSON.parse(JSON.stringify(encodeRich(row)))) as typeof row;
    expect(back.at).toBeInstanceOf(Timestamp);
    expect(microsecondOf(back.at)).toBe(456);
    expect(back.at.getTime()).toBe(row.at.getTime());
    expect(back.end).toBe(Timestamp.POSITIVE_INFINITY);
  });

  it('carries an instant past the last Date through superjson', () => {
    const row = { at: parseTimestamp('294276-12-31 23:59:59.999999Z') };
    const back = decodeRich(JSON.parse(JSON.stringify(encodeRich(row)))) as typeof row;
    expect(back.at.toISOString()).toBe('294276-12-31T23:59:59.999999Z');
    expect(compareInstants(back.at, row.at)).toBe(0);
  });

  it('still carries plain Dates as Dates', () => {
    const back = decodeRich(encodeRich({ at: new Date(5) })) as { at: Date };
    expect(back.at).toBeInstanceOf(Date);
    expect(back.at).not.toBeInstanceOf(Timestamp);
    expect(back.at.getTime()).toBe(5);
  });
});
