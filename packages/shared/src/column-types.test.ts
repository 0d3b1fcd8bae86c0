import {
  bigint,
  char,
  date,
  doublePrecision,
  integer,
  interval,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  point,
  real,
  serial,
  text,
  timestamp,
  uuid,
  varchar,
  vector,
} from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { createSchema } from './schema';

const withColumn = (column: any) =>
  createSchema({ tables: { t: pgTable('t', { id: text('id').primaryKey(), c: column }) } })
    .tableInfo.get('t')!
    .columns.get('c')!;

describe('column types', () => {
  it('compares real as float4, numeric as decimals and char without padding', () => {
    expect(withColumn(real('c'))).toMatchObject({ kind: 'number', compareAs: 'real' });
    expect(withColumn(numeric('c'))).toMatchObject({ kind: 'string', compareAs: 'numeric' });
    expect(withColumn(char('c', { length: 3 }))).toMatchObject({
      kind: 'string',
      compareAs: 'char',
    });
    expect(withColumn(integer('c'))).toMatchObject({ kind: 'number', compareAs: 'number' });
    expect(withColumn(uuid('c'))).toMatchObject({ kind: 'string', compareAs: 'string' });
  });

  it('keeps the labels of a pgEnum column', () => {
    const mood = pgEnum('mood', ['sad', 'ok']);
    expect(withColumn(mood('c')).enumValues).toEqual(['sad', 'ok']);
    expect(withColumn(text('c', { enum: ['x'] })).enumValues).toBeUndefined();
  });

  it('refuses array, point and vector columns at createSchema, naming the column', () => {
    expect(() => withColumn(integer('c').array())).toThrow(/t\.c \(integer\[\]\): array columns/);
    expect(() => withColumn(point('c'))).toThrow(/t\.c .*point columns are not supported/);
    expect(() => withColumn(vector('c', { dimensions: 3 }))).toThrow(/vector columns/);
  });

  it('refuses numeric in mode bigint unless its scale is 0', () => {
    expect(() => withColumn(numeric('c', { mode: 'bigint' }))).toThrow(/must have scale 0/);
    expect(() => withColumn(numeric('c', { mode: 'bigint', precision: 10, scale: 2 }))).toThrow(
      /must have scale 0/,
    );
    expect(withColumn(numeric('c', { mode: 'bigint', precision: 20 })).kind).toBe('bigint');
  });
});

describe('relationships', () => {
  /** A schema with one relationship from a.c to b.c, of the given column types. */
  const joining = (source: any, dest: any) =>
    createSchema({
      tables: {
        a: pgTable('a', { id: text('id').primaryKey(), c: source }),
        b: pgTable('b', { id: text('id').primaryKey(), c: dest }),
      },
      relationships: ({ many }) => ({ a: { bs: many('b', { sourceField: 'c', destField: 'c' }) } }),
    });

  it.each([
    ['char and text', char('c', { length: 3 }), text('c')],
    ['double precision and real', doublePrecision('c'), real('c')],
    ['timestamptz and timestamp', timestamp('c', { withTimezone: true }), timestamp('c')],
    ['uuid and text', uuid('c'), text('c')],
    ['integer and numeric', integer('c'), numeric('c')],
    ['dates in mode string and mode date', date('c'), date('c', { mode: 'date' })],
  ])('refuses to join %s, which Postgres and the client compare differently', (_, a, b) => {
    expect(() => joining(a, b)).toThrow(
      /Relationship a\.bs joins a\.c \(.+\) with b\.c \(.+\), which Postgres and the client compare differently/,
    );
  });

  it.each([
    ['jsonb', jsonb('c'), /b\.c \(jsonb\) cannot be joined on: .*json has no =/],
    ['interval', interval('c'), /interval\) cannot be joined on: .*'1 day' = '24:00:00'/],
    ['numeric in mode number', numeric('c', { mode: 'number' }), /declare it mode 'string'/],
  ])('refuses to join on %s columns', (_, column, message) => {
    expect(() => joining(text('c'), column)).toThrow(message);
  });

  it.each([
    ['integer and bigint in mode bigint', serial('c'), bigint('c', { mode: 'bigint' })],
    ['varchar and text', varchar('c', { length: 5 }), text('c')],
    ['char(3) and char(5)', char('c', { length: 3 }), char('c', { length: 5 })],
    [
      'timestamptz(3) and timestamptz',
      timestamp('c', { withTimezone: true, precision: 3 }),
      timestamp('c', { withTimezone: true }),
    ],
  ])('joins %s', (_, a, b) => {
    expect(joining(a, b).relationships.a?.bs?.table).toBe('b');
  });
});
