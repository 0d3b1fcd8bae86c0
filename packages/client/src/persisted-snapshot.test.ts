import {
  createMemoryStore,
  createSchema,
  encodePrimaryKey,
  JSON_NULL,
  type MemoryStore,
  mustGetTable,
  parseTimestamp,
  Timestamp,
} from '@reprise/shared';
import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadSnapshot, type PatchedRow, SnapshotBuckets } from './persisted-snapshot';
import { type ClientStorage, createMemoryStorage, type GroupRecord } from './storage';

const event = pgTable('event', {
  id: text('id').primaryKey(),
  at: timestamp('at', { withTimezone: true }),
  data: jsonb('data'),
});
const schema = createSchema({ tables: { event } });
const info = mustGetTable(schema, 'event');
const group: GroupRecord = { clientGroupID: 'g1', cookie: null };

/** A snapshot as a client keeps it: the store, its buckets, and the storage they write to. */
function stored() {
  let store: MemoryStore = createMemoryStore(schema);
  const buckets = new SnapshotBuckets(schema, 'g1', undefined);
  const storage = createMemoryStorage();
  return {
    storage,
    get store() {
      return store;
    },
    /** Applies puts (a row) and deletes (an id) as a pull's patch would, after a clear if asked. */
    patch(ops: ReadonlyArray<Record<string, unknown> | string>, clear = false) {
      if (clear) store = createMemoryStore(schema);
      const rows: PatchedRow[] = [];
      for (const op of ops) {
        const key = typeof op === 'string' ? { id: op } : op;
        if (typeof op === 'string') store.delete('event', key);
        else store.put('event', op);
        rows.push({ table: 'event', pk: encodePrimaryKey(info, key, 'put'), key });
      }
      if (clear) buckets.fill(store, true);
      else buckets.patched(store, rows);
    },
    /** Stores what changed; returns the keys of the rows written. */
    async write(): Promise<string[]> {
      const writes = buckets.writes(group);
      await storage.batch!(writes);
      return writes.map(([key]) => key).filter((key) => key.startsWith('rows/'));
    },
  };
}

const ids = (store: MemoryStore) => [...store.scan('event')].map((r) => r.id as string).sort();
const rowKeys = async (storage: ClientStorage) =>
  (await storage.keys()).filter((key) => key.startsWith('rows/'));
const load = async (storage: ClientStorage) =>
  loadSnapshot(
    schema,
    storage,
    await storage.keys(),
    'g1',
    (await storage.get('group/g1')) as GroupRecord,
  );
const event_ = (i: number) => ({ id: `e${i}`, at: null, data: i });

describe('the persisted snapshot', () => {
  it('keeps microseconds, infinities, plain Dates and JSON null across a reload', async () => {
    const s = stored();
    const at = parseTimestamp('2026-01-01 00:00:00.123456+00');
    s.patch(
      [
        { id: 'e1', at, data: JSON_NULL },
        { id: 'e2', at: Timestamp.NEGATIVE_INFINITY, data: null },
        { id: 'e3', at: new Date(5), data: {} },
        { id: 'e4', at: null, data: 'x' },
      ],
      true,
    );
    // Memory storage structured-clones, as IndexedDB does.
    await s.write();
    const { store: loaded } = await load(s.storage);
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

  it('a one-row change in 10,000 rows rewrites one bucket of a few dozen rows', async () => {
    const s = stored();
    s.patch(
      Array.from({ length: 10_000 }, (_, i) => event_(i)),
      true,
    );
    const reset = await s.write();
    expect(reset.length).toBe(512); // 10,000 rows at most 32 a bucket: 64 doubled three times
    s.patch([{ ...event_(7), data: 'changed' }]);
    const [key, ...more] = await s.write();
    expect(more).toEqual([]);
    const bucket = (await s.storage.get(key!)) as unknown[];
    expect(bucket.length).toBeLessThan(64);
    expect(bucket).toContainEqual({ ...event_(7), data: 'changed' });
    expect((await s.storage.get('group/g1')) as GroupRecord).toMatchObject({
      buckets: { event: 512 },
    });
  });

  it('doubles a growing table’s buckets and leaves no key of the old layout behind', async () => {
    const s = stored();
    s.patch(
      Array.from({ length: 2000 }, (_, i) => event_(i)),
      true,
    );
    await s.write();
    expect((await rowKeys(s.storage)).length).toBe(64);
    s.patch(Array.from({ length: 100 }, (_, i) => event_(2000 + i))); // past 64 × 32 rows
    await s.write();
    expect((await rowKeys(s.storage)).length).toBe(128);
    s.patch(Array.from({ length: 2100 }, (_, i) => `e${i}`)); // every row deleted
    await s.write();
    expect(await rowKeys(s.storage)).toEqual([]);
    expect(ids((await load(s.storage)).store)).toEqual([]);
  });

  it('rewrites the whole layout when a row sits in a bucket its key does not hash to', async () => {
    const s = stored();
    s.patch(
      Array.from({ length: 3000 }, (_, i) => event_(i)),
      true,
    );
    s.patch(Array.from({ length: 1000 }, (_, i) => `e${i}`));
    await s.write(); // 2,000 rows in 128 buckets: a table keeps its count as it shrinks
    // As if a write without batches stopped before the group record while the table grew:
    // the rows are laid out for 128 buckets, the record still says 64.
    await s.storage.set('group/g1', { ...group, buckets: { event: 64 } });
    const loaded = await load(s.storage);
    expect(ids(loaded.store)).toEqual(ids(s.store));
    await s.storage.batch!(loaded.buckets.writes(group));
    expect((await rowKeys(s.storage)).length).toBe(64);
    const again = await load(s.storage);
    expect(ids(again.store)).toEqual(ids(s.store));
    expect(again.buckets.writes(group).filter(([key]) => key.startsWith('rows/'))).toEqual([]);
  });

  it('reloads what was stored, through any patches and resets (property)', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), id: fc.nat(3000), data: fc.nat(9) }),
      fc.record({ kind: fc.constant('del' as const), id: fc.nat(3000) }),
      fc.record({ kind: fc.constant('bulk' as const), from: fc.nat(3000), count: fc.nat(1500) }),
    );
    const pull = fc.record({ clear: fc.boolean(), ops: fc.array(op, { maxLength: 6 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(pull, { minLength: 1, maxLength: 8 }), async (pulls) => {
        const s = stored();
        for (const { clear, ops } of pulls) {
          s.patch(
            ops.flatMap(
              (o): Array<Record<string, unknown> | string> =>
                o.kind === 'put'
                  ? [{ ...event_(o.id), data: o.data }]
                  : o.kind === 'del'
                    ? [`e${o.id}`]
                    : Array.from({ length: o.count }, (_, i) => event_(o.from + i)),
            ),
            clear,
          );
          await s.write();
          const loaded = await load(s.storage);
          const rows = (store: MemoryStore) =>
            [...store.scan('event')].sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
          expect(rows(loaded.store)).toEqual(rows(s.store));
          // Every key holds rows: none is left empty or stale.
          for (const key of await rowKeys(s.storage)) {
            expect(((await s.storage.get(key)) as unknown[]).length).toBeGreaterThan(0);
          }
          expect(loaded.buckets.writes(group).filter(([k]) => k.startsWith('rows/'))).toEqual([]);
        }
      }),
      { numRuns: 20 },
    );
  });
});
