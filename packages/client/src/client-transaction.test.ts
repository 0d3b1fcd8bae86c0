import { createMemoryStore, createSchema } from '@reprise/shared';
import { boolean, pgTable, text } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { createClientTransaction } from './client-transaction';

const item = pgTable('item', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  done: boolean('done').notNull().default(false),
  note: text('note'),
});
const schema = createSchema({ tables: { item } });

function setup() {
  const store = createMemoryStore(schema);
  const tx = createClientTransaction(schema, store, {
    clientID: 'c1',
    mutationID: 7,
    reason: 'optimistic',
  });
  return { store, tx };
}

describe('client transaction (the server semantics on the local store)', () => {
  it('exposes location, reason, clientID and mutationID', () => {
    const { tx } = setup();
    expect([tx.location, tx.reason, tx.clientID, tx.mutationID]).toEqual([
      'client',
      'optimistic',
      'c1',
      7,
    ]);
  });

  it('insert fills defaults and nulls, and throws on an existing key', async () => {
    const { store, tx } = setup();
    await tx.mutate.item.insert({ id: 'a', name: 'A' });
    expect(store.get('item', { id: 'a' })).toEqual({ id: 'a', name: 'A', done: false, note: null });
    await expect(tx.mutate.item.insert({ id: 'a', name: 'again' })).rejects.toThrow(/exists/);
    expect(store.get('item', { id: 'a' })?.name).toBe('A');
  });

  it('upsert inserts a missing row and overwrites only the given columns', async () => {
    const { store, tx } = setup();
    await tx.mutate.item.upsert({ id: 'a', name: 'A', note: 'n' });
    await tx.mutate.item.upsert({ id: 'a', name: 'B' });
    expect(store.get('item', { id: 'a' })).toEqual({ id: 'a', name: 'B', done: false, note: 'n' });
  });

  it('update and delete of a missing row do nothing', async () => {
    const { store, tx } = setup();
    await tx.mutate.item.update({ id: 'x', name: 'ghost' });
    await tx.mutate.item.delete({ id: 'x' });
    expect(store.size('item')).toBe(0);
  });

  it('update keeps the other columns; delete removes the row', async () => {
    const { store, tx } = setup();
    await tx.mutate.item.insert({ id: 'a', name: 'A', note: 'keep' });
    await tx.mutate.item.update({ id: 'a', done: true });
    expect(store.get('item', { id: 'a' })).toEqual({
      id: 'a',
      name: 'A',
      done: true,
      note: 'keep',
    });
    await tx.mutate.item.delete({ id: 'a' });
    expect(store.size('item')).toBe(0);
  });

  it('run reads the transaction’s own writes', async () => {
    const { tx } = setup();
    await tx.mutate.item.insert({ id: 'a', name: 'A' });
    const { Query } = await import('@reprise/shared');
    const rows = await tx.run(new Query(schema, { table: 'item' }, false));
    expect(rows.map((r) => r.id)).toEqual(['a']);
  });
});
