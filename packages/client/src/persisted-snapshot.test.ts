import {
  createMemoryStore,
  createSchema,
  JSON_NULL,
  parseTimestamp,
  Timestamp,
} from '@reprise/shared';
import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { loadSnapshot, snapshotWrites } from './persisted-snapshot';
import { createMemoryStorage, type GroupRecord } from './storage';

const event = pgTable('event', {
  id: text('id').primaryKey(),
  at: timestamp('at', { withTimezone: true }),
  data: jsonb('data'),
});
const schema = createSchema({ tables: { event } });

describe('the persisted snapshot', () => {
  it('keeps microseconds, infinities, plain Dates and JSON null across a reload', async () => {
    const snapshot = createMemoryStore(schema);
    const at = parseTimestamp('2026-01-01 00:00:00.123456+00');
    snapshot.put('event', { id: 'e1', at, data: JSON_NULL });
    snapshot.put('event', { id: 'e2', at: Timestamp.NEGATIVE_INFINITY, data: null });
    snapshot.put('event', { id: 'e3', at: new Date(5), data: {} });
    snapshot.put('event', { id: 'e4', at: null, data: 'x' });
    const group: GroupRecord = { clientGroupID: 'g1', cookie: null };
    // Memory storage structured-clones, as IndexedDB does.
    const storage = createMemoryStorage();
    for (const [key, value] of snapshotWrites(schema, snapshot, [], group, true)) {
      if (value !== undefined) await storage.set(key, value);
    }
    const loaded = await loadSnapshot(schema, storage, await storage.keys(), 'g1', undefined);
    const row = (id: string) => loaded.get('event', { id }) as { at: Date | null; data: unknown };
    expect(row('e1').at).toBeInstanceOf(Timestamp);
    expect(row('e1').at?.toISOString()).toBe('2026-01-01T00:00:00.123456Z');
    expect(row('e2').at).toBe(Timestamp.NEGATIVE_INFINITY);
    expect(row('e3').at).toEqual(new Date(5));
    expect(row('e4').at).toBeNull();
    expect(row('e1').data).toBe(JSON_NULL);
    expect(row('e2').data).toBeNull();
    expect(row('e3').data).toEqual({});
    expect(row('e4').data).toBe('x');
  });
});
