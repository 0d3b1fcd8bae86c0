import {
  char,
  integer,
  numeric,
  pgEnum,
  pgTable,
  point,
  real,
  text,
  uuid,
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
