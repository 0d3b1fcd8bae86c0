import { createMemoryStore, createSchema, parseTimestamp, Timestamp } from '@reprise/shared';
import { pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { loadSnapshot, snapshotWrites } from './persisted-snapshot';
import { createMemoryStorage, type GroupRecord } from './storage';

const event = pgTable('event', {
  id: text('id').primaryKey(),
  at: timestamp('at', { withTimezone: true }),
});
const schema = createSchema({ tables: { event } });

describe('the persisted snapshot', () => {
  it('keeps microseconds, infinities and plain Dates across a reload', async () => {
    const snapshot = createMemoryStore(schema);
    snapshot.put('event', { id: 'e1', at: parseTimestamp('2026-01-01 00:00:00.123456+00') });
    snapshot.put('event', { id: 'e2', at: Timestamp.NEGATIVE_INFINITY });
    snapshot.put('event', { id: 'e3', at: new Date(5) });
    snapshot.put('event', { id: 'e4', at: null });
    const group: GroupRecord = { clientGroupID: 'g1', cookie: null };
    // Memory storage structured-clones, as IndexedDB does.
    const storage = createMemoryStorage();
    for (const [key, value] of snapshotWrites(schema, snapshot, [], group, true)) {
      if (value !== undefined) await storage.set(key, value);
    }
    const loaded = await loadSnapshot(schema, storage, await storage.keys(), 'g1', undefined);
    const at = (id: string) => loaded.get('event', { id })?.at as Date | null;
    expect(at('e1')).toBeInstanceOf(Timestamp);
    expect(at('e1')?.toISOString()).toBe('2026-01-01T00:00:00.123456Z');
    expect(at('e2')).toBe(Timestamp.NEGATIVE_INFINITY);
    expect(at('e3')).toEqual(new Date(5));
    expect(at('e4')).toBeNull();
  });
});
