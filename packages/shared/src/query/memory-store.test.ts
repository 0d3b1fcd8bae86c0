import { integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { createSchema } from '../schema';
import { createMemoryStore } from './memory-store';

const ids = (rows: Iterable<{ id: string }>) => Array.from(rows, (row) => row.id);
const user = (id: string, karma: number | null = null) => ({ id, name: `User ${id}`, karma });
const issue = (id: string, ownerID: string) => ({
  id,
  title: `Issue ${id}`,
  ownerID,
  open: true,
  priority: null,
  votes: null,
  createdAt: null,
  meta: null,
});

describe('createMemoryStore', () => {
  it('gets a put row back by its primary key', () => {
    const store = createMemoryStore(querySchema);
    store.put('user', user('u1', 3));
    expect(store.get('user', { id: 'u1' })).toEqual(user('u1', 3));
    expect(store.get('user', { id: 'u2' })).toBeUndefined();
  });

  it('keeps a frozen copy, so the caller cannot change a stored row', () => {
    const store = createMemoryStore(querySchema);
    const row = user('u1', 3);
    store.put('user', row);
    row.karma = 99;
    const stored = store.get('user', { id: 'u1' })!;
    expect(stored.karma).toBe(3);
    expect(Object.isFrozen(stored)).toBe(true);
  });

  it('replaces the row with the same primary key', () => {
    const store = createMemoryStore(querySchema);
    store.put('user', user('u1', 1));
    store.put('user', user('u1', 2));
    expect(store.size('user')).toBe(1);
    expect(store.get('user', { id: 'u1' })?.karma).toBe(2);
  });

  it('deletes by primary key and says whether a row was there', () => {
    const store = createMemoryStore(querySchema);
    store.put('user', user('u1'));
    expect(store.delete('user', { id: 'u1' })).toBe(true);
    expect(store.delete('user', { id: 'u1' })).toBe(false);
    expect(store.get('user', { id: 'u1' })).toBeUndefined();
    expect(store.size('user')).toBe(0);
  });

  it('scans every row of a table and only that table', () => {
    const store = createMemoryStore(querySchema);
    store.put('user', user('u1'));
    store.put('user', user('u2'));
    store.put('issue', issue('i1', 'u1'));
    expect([...store.scan('user')].map((r) => r.id).sort()).toEqual(['u1', 'u2']);
    expect(store.size('issue')).toBe(1);
  });

  it('refuses a row without its primary key and an unknown table', () => {
    const store = createMemoryStore(querySchema);
    expect(() => store.put('user', { name: 'x', karma: null } as never)).toThrow(
      /primary key "id" is missing/,
    );
    expect(() => store.size('nope' as never)).toThrow(/Unknown table "nope"/);
  });

  it('keys composite primary keys without mixing up their parts', () => {
    const member = pgTable(
      'member',
      { org: text('org').notNull(), seat: text('seat').notNull(), level: integer('level') },
      (t) => [primaryKey({ columns: [t.org, t.seat] })],
    );
    const store = createMemoryStore(createSchema({ tables: { member } }));
    store.put('member', { org: 'a1', seat: '', level: 1 });
    store.put('member', { org: 'a', seat: '1', level: 2 });
    expect(store.size('member')).toBe(2);
    expect(store.get('member', { org: 'a', seat: '1' })?.level).toBe(2);
    expect(store.delete('member', { org: 'a1', seat: '' })).toBe(true);
    expect([...store.scan('member')]).toEqual([{ org: 'a', seat: '1', level: 2 }]);
  });
});

describe('MemoryStore indexes', () => {
  it('indexes rows already there and finds them by value', () => {
    const store = createMemoryStore(querySchema);
    store.put('issue', issue('i1', 'u1'));
    store.put('issue', issue('i2', 'u1'));
    store.put('issue', issue('i3', 'u2'));
    store.createIndex('issue', 'ownerID');
    expect(store.hasIndex('issue', 'ownerID')).toBe(true);
    expect(ids(store.lookup('issue', 'ownerID', 'u1'))).toEqual(['i1', 'i2']);
  });

  it('moves a replaced row to its new value and drops a deleted one', () => {
    const store = createMemoryStore(querySchema);
    store.createIndex('issue', 'ownerID');
    store.put('issue', issue('i1', 'u1'));
    store.put('issue', issue('i2', 'u1'));
    store.put('issue', issue('i1', 'u2'));
    store.delete('issue', { id: 'i2' });
    expect(ids(store.lookup('issue', 'ownerID', 'u1'))).toEqual([]);
    expect(ids(store.lookup('issue', 'ownerID', 'u2'))).toEqual(['i1']);
  });

  it('never finds null, and finds dates by instant', () => {
    const store = createMemoryStore(querySchema);
    store.createIndex('user', 'karma');
    store.createIndex('issue', 'createdAt');
    store.put('user', user('u1', null));
    store.put('issue', { ...issue('i1', 'u1'), createdAt: new Date(1000) });
    expect(store.lookup('user', 'karma', null).size).toBe(0);
    expect(ids(store.lookup('issue', 'createdAt', new Date(1000)))).toEqual(['i1']);
  });

  it('refuses a lookup without an index and an index on a json column', () => {
    const store = createMemoryStore(querySchema);
    expect(() => store.lookup('user', 'name', 'x')).toThrow(/no index/);
    expect(() => store.createIndex('issue', 'meta')).toThrow(/json column/);
  });
});

describe('MemoryStore.clone', () => {
  it('gives a copy that neither sees nor disturbs the original', () => {
    const original = createMemoryStore(querySchema);
    original.createIndex('issue', 'ownerID');
    original.put('issue', issue('i1', 'u1'));
    const fork = original.clone();
    fork.put('issue', issue('i2', 'u1'));
    fork.delete('issue', { id: 'i1' });
    original.put('issue', issue('i3', 'u1'));
    expect(ids(original.lookup('issue', 'ownerID', 'u1'))).toEqual(['i1', 'i3']);
    expect(ids(fork.lookup('issue', 'ownerID', 'u1'))).toEqual(['i2']);
    expect(fork.size('issue')).toBe(1);
  });

  it('keeps clones of clones apart', () => {
    const a = createMemoryStore(querySchema);
    a.put('user', user('u1', 1));
    const b = a.clone();
    const c = b.clone();
    c.put('user', user('u1', 3));
    b.put('user', user('u1', 2));
    expect([a, b, c].map((s) => s.get('user', { id: 'u1' })?.karma)).toEqual([1, 2, 3]);
  });
});
