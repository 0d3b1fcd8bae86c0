import {
  type ClientStorage,
  createIndexedDBStorage,
  createMemoryStorage,
  type StorageWrite,
} from '@reprise/client';
import { indexedDB } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import { clientIssues, serverIssues, useClients } from './fixtures/client';

// How the client stores the group's snapshot: rows in buckets by primary key, the group
// record last, a pull rewriting only the buckets its patch touched.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

/** Wraps a storage and records every key each batch (or single write) touched. */
function spied(storage: ClientStorage, { batches = true } = {}) {
  const writes: string[][] = [];
  const spy: ClientStorage = {
    get: (key) => storage.get(key),
    keys: () => storage.keys(),
    set: async (key, value) => {
      writes.push([key]);
      await storage.set(key, value);
    },
    delete: async (key) => {
      writes.push([key]);
      await storage.delete(key);
    },
    ...(batches
      ? {
          batch: async (list: readonly StorageWrite[]) => {
            writes.push(list.map(([key]) => key));
            await storage.batch!(list);
          },
        }
      : {}),
  };
  return { storage: spy, writes };
}

describe('the stored snapshot', () => {
  const h = useClients(pglite);
  const { open } = h;

  async function seed(count: number) {
    const writer = await open();
    for (let i = 0; i < count; i++) {
      writer.mutate.issue.create({ id: `i${String(i).padStart(3, '0')}`, title: `t${i}` });
    }
    await writer.idle();
    return writer;
  }

  it('rewrites only the bucket a one-row change falls in, and the group record last', async () => {
    const writer = await seed(200);
    const { storage, writes } = spied(createMemoryStorage());
    const reader = await open({ storage });
    await reader.pull();
    await reader.idle(); // and the writes it started
    const reset = writes.find((keys) => keys.some((key) => key.startsWith('rows/')))!;
    expect(reset.filter((key) => key.startsWith('rows/')).length).toBeGreaterThan(32);
    expect(reset.at(-1)).toBe(`group/${reader.clientGroupID}`);

    await writer.mutate.issue.rename({ id: 'i007', title: 'renamed' }).client;
    await writer.idle();
    writes.length = 0;
    await reader.pull();
    await reader.idle();
    const [batch] = writes.filter((keys) => keys.some((key) => key.startsWith('rows/')));
    expect(batch?.filter((key) => key.startsWith('rows/'))).toHaveLength(1);
    expect(batch?.at(-1)).toBe(`group/${reader.clientGroupID}`);
    await reader.close();

    const reloaded = await open({ storage });
    expect(await clientIssues(reloaded)).toEqual(await serverIssues(h.fx));
  });

  it('drops deleted rows from their bucket, so a reload does not bring them back', async () => {
    await seed(3);
    const storage = createIndexedDBStorage(`reprise-${Math.random()}`, indexedDB);
    const a = await open({ storage });
    await a.pull();
    await a.mutate.issue.remove({ id: 'i001' }).client;
    await a.idle();
    await a.close();
    const reloaded = await open({ storage });
    expect((await clientIssues(reloaded)).map((r) => r.id)).toEqual(['i000', 'i002']);
  });

  it('without batches, writes one key at a time with the group record last', async () => {
    await seed(5);
    const { storage, writes } = spied(createMemoryStorage(), { batches: false });
    const a = await open({ storage });
    await a.pull();
    await a.close(); // waits for the writes
    expect(writes.every((keys) => keys.length === 1)).toBe(true);
    const keys = writes.flat().filter((key) => key.startsWith('rows/') || key.startsWith('group/'));
    expect(keys.some((key) => key.startsWith('rows/'))).toBe(true);
    expect(keys.at(-1)).toBe(`group/${a.clientGroupID}`);
    const reloaded = await open({ storage });
    expect(await clientIssues(reloaded)).toEqual(await serverIssues(h.fx));
  });

  it('reads a snapshot stored the old way (rows in the group record) and moves it to buckets', async () => {
    await seed(2);
    const storage = createMemoryStorage();
    const a = await open({ storage });
    await a.pull();
    await a.close();
    // Rewrite what was stored into the old shape: every row inside the group record.
    const rows: Record<string, unknown>[] = [];
    for (const key of await storage.keys()) {
      if (!key.startsWith('rows/')) continue;
      rows.push(...((await storage.get(key)) as Record<string, unknown>[]));
      await storage.delete(key);
    }
    const group = (await storage.get(`group/${a.clientGroupID}`)) as Record<string, unknown>;
    await storage.set(`group/${a.clientGroupID}`, { ...group, rows: { issue: rows } });

    const reloaded = await open({ storage });
    expect((await clientIssues(reloaded)).map((r) => r.id)).toEqual(['i000', 'i001']);
    await reloaded.mutate.issue.create({ id: 'i009', title: 'new' }).client;
    await reloaded.idle();
    expect(await storage.get(`group/${a.clientGroupID}`)).not.toHaveProperty('rows');
    await reloaded.close();
    const again = await open({ storage });
    expect((await clientIssues(again)).map((r) => r.id)).toEqual(['i000', 'i001', 'i009']);
  });
});
