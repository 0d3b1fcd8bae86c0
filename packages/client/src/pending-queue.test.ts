import { JSON_NULL, parseTimestamp, Timestamp } from '@reprise/shared';
import { describe, expect, it } from 'vitest';
import { loadPending, toStored } from './pending-queue';
import { createMemoryStorage, pendingKey } from './storage';

describe('the stored queue', () => {
  it("keeps a pending mutation's microseconds and JSON null across a reload", async () => {
    // Memory storage structured-clones, as IndexedDB does.
    const storage = createMemoryStorage();
    const at = parseTimestamp('2026-01-01 00:00:00.123456+00');
    const args = { at, until: Timestamp.POSITIVE_INFINITY, data: JSON_NULL, n: 1n };
    await storage.set(pendingKey('c1', 1), toStored({ id: 1, name: 'x', args, timestamp: 5 }));
    const record = { clientID: 'c1', clientGroupID: 'g1', lastMutationID: 0 };
    const { pending } = await loadPending(storage, await storage.keys(), record, 0);
    expect(pending).toHaveLength(1);
    const loaded = pending[0]!.args as typeof args;
    expect(loaded.at).toBeInstanceOf(Timestamp);
    expect(loaded.at.toISOString()).toBe('2026-01-01T00:00:00.123456Z');
    expect(loaded.until).toBe(Timestamp.POSITIVE_INFINITY);
    expect(loaded.data).toBe(JSON_NULL);
    expect(loaded.n).toBe(1n);
    expect(pending[0]).toMatchObject({ id: 1, name: 'x', timestamp: 5 });
  });

  it('reads a mutation stored before args were encoded as it was', async () => {
    const storage = createMemoryStorage();
    await storage.set(pendingKey('c1', 1), { id: 1, name: 'x', args: { a: 1 }, timestamp: 5 });
    const record = { clientID: 'c1', clientGroupID: 'g1', lastMutationID: 0 };
    const { pending } = await loadPending(storage, await storage.keys(), record, 0);
    expect(pending).toEqual([{ id: 1, name: 'x', args: { a: 1 }, timestamp: 5 }]);
  });
});
