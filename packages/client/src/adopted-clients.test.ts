import { describe, expect, it } from 'vitest';
import { AdoptedClients } from './adopted-clients';
import { toStored } from './pending-queue';
import { type ClientRecord, clientKey, createMemoryStorage, pendingKey } from './storage';

// A closed client's record and pending keys, as a tab that closed with two queued
// mutations leaves them; the group's record is not written (its write may still be on
// its way when another tab adopts, or resumes, the client).
async function closedClient() {
  const storage = createMemoryStorage();
  const record: ClientRecord = { clientID: 'c1', clientGroupID: 'g1', lastMutationID: 0 };
  await storage.set(clientKey('c1'), record);
  for (const id of [1, 2]) {
    await storage.set(pendingKey('c1', id), toStored({ id, name: 'x', args: {}, timestamp: 1 }));
  }
  return storage;
}

describe('adopting a closed client', () => {
  it('records the confirmed id before it deletes the confirmed keys of a finished queue', async () => {
    const storage = await closedClient();
    const adopted = new AdoptedClients(storage, 'g1');
    const result = await adopted.adopt({ c1: 2 });
    expect(result.adopted).toBe(false);
    expect(await storage.keys()).toEqual([clientKey('c1')]);
    // Whoever resumes c1 next starts its ids after 2, not at 1 again.
    expect(await storage.get(clientKey('c1'))).toMatchObject({ lastMutationID: 2 });
  });

  it('writes the confirmed id into the record first when a pull confirms part of the queue', async () => {
    const storage = await closedClient();
    const adopted = new AdoptedClients(storage, 'g1');
    expect((await adopted.adopt({})).adopted).toBe(true);
    const { writes, dropped } = adopted.confirm({ c1: 1 });
    expect(dropped.map((d) => d.mutation.id)).toEqual([1]);
    expect(writes).toEqual([
      [clientKey('c1'), { clientID: 'c1', clientGroupID: 'g1', lastMutationID: 1 }],
      [pendingKey('c1', 1), undefined],
    ]);
    adopted.release();
  });
});
