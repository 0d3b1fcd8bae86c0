import { createSchema } from '@reprise/shared';
import { bigint, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import type { Change, ChangeAction } from '../changes/changelog';
import { compileChangeFilter } from './change-filter';

const task = pgTable('task', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  owner: text('owner'),
  due: timestamp('due', { withTimezone: true }),
  points: bigint('points', { mode: 'bigint' }),
  tags: jsonb('tags'),
});
const note = pgTable('note', { id: text('id').primaryKey(), body: text('body').notNull() });
const schema = createSchema({ tables: { task, note } });

const row = {
  id: 't1',
  title: 'Fix the bug',
  owner: null,
  due: new Date('2026-03-01T00:00:00Z'),
  points: 5n,
  tags: ['a'],
};

function change(action: ChangeAction, after: Record<string, unknown>, table = 'task'): Change {
  const rows =
    action === 'create'
      ? { after }
      : action === 'update'
        ? { before: { ...after, title: 'before' }, after }
        : { before: after };
  return {
    id: 1,
    table,
    action,
    key: { id: after.id },
    ...rows,
    clientGroupID: null,
    clientID: null,
    mutationID: null,
  };
}

const matches = (filter: Record<string, unknown>, target = change('create', row)) =>
  compileChangeFilter(schema, { table: 'task', create: filter })(target);

describe('change filters', () => {
  it('a bare value means equals, and null means "is null"', () => {
    expect(matches({ id: 't1' })).toBe(true);
    expect(matches({ id: 't2' })).toBe(false);
    expect(matches({ owner: null })).toBe(true);
    expect(matches({ title: null })).toBe(false);
  });

  it('not counts null as different from a value, and not: null means "is not null"', () => {
    expect(matches({ owner: { not: 'ann' } })).toBe(true);
    expect(matches({ owner: { not: null } })).toBe(false);
    expect(matches({ title: { not: 'Fix the bug' } })).toBe(false);
  });

  it('string operators are case-sensitive and never match null', () => {
    expect(matches({ title: { contains: 'the', startsWith: 'Fix', endsWith: 'bug' } })).toBe(true);
    expect(matches({ title: { contains: 'BUG' } })).toBe(false);
    expect(matches({ owner: { startsWith: '' } })).toBe(false);
  });

  it('comparisons follow the column: bigint against numbers, dates against dates or ISO text', () => {
    expect(matches({ points: { gt: 4, lte: 5n } })).toBe(true);
    expect(matches({ points: { in: [1, 5] } })).toBe(true);
    expect(matches({ points: { notIn: [5n] } })).toBe(false);
    expect(matches({ due: { gte: new Date('2026-03-01T00:00:00Z') } })).toBe(true);
    expect(matches({ due: { lt: '2026-02-01T00:00:00Z' } })).toBe(false);
    expect(matches({ owner: { lt: 'zzz' } })).toBe(false);
  });

  it('a value of another kind than the column never matches', () => {
    expect(matches({ title: { gt: 3 } })).toBe(false);
    expect(matches({ points: '5' })).toBe(false);
  });

  it('update filters look at the row after the update, delete filters at the deleted row', () => {
    const filter = compileChangeFilter(schema, {
      table: 'task',
      update: { title: 'Fix the bug' },
      delete: { id: 't1' },
    });
    expect(filter(change('update', row))).toBe(true);
    expect(filter(change('update', { ...row, title: 'other' }))).toBe(false);
    expect(filter(change('delete', row))).toBe(true);
    expect(filter(change('create', row))).toBe(false);
  });

  it('without a table, a condition on a column another table lacks rejects its rows', () => {
    const filter = compileChangeFilter(schema, { create: { title: { not: 'x' } } });
    expect(filter(change('create', row))).toBe(true);
    expect(filter(change('create', { id: 'n1', body: 'b' }, 'note'))).toBe(false);
  });

  it('refuses json columns, unknown columns and malformed operators by name', () => {
    expect(() => matches({ tags: ['a'] })).toThrow(/"tags" is a json column/);
    expect(() => compileChangeFilter(schema, { create: { nope: 1 } })).toThrow(
      /"nope" is not a column of any table of the schema/,
    );
    expect(() => matches({ id: { in: 't1' } })).toThrow(/"id.in" needs an array/);
    expect(() => matches({ id: { contains: 1 } })).toThrow(/"id.contains" needs a string/);
  });

  it('without a schema, columns are not checked and values compare by their own kind', () => {
    const filter = compileChangeFilter(undefined, { create: { whatever: { gte: 2 } } });
    expect(filter(change('create', { id: 'x', whatever: 3 }))).toBe(true);
    expect(filter(change('create', { id: 'x', whatever: '3' }))).toBe(false);
  });
});
