import { createIndexedDBStorage, createMemoryStorage } from '@reprise/client';
import { indexedDB } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import { clientIssues, serverIssues, useClients } from './fixtures/client';

// Live queries and IndexedDB persistence, against the in-process server on PGlite.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

describe('live queries and persistence', () => {
  const h = useClients(pglite);
  const { open } = h;

  it('a materialized query follows optimistic writes, rebases and pulls', async () => {
    const a = await open();
    const b = await open();
    const view = a.query.issue.where('open', true).orderBy('id').materialize();
    const seen: string[][] = [];
    view.subscribe((rows) => seen.push(rows.map((r) => r.id)));
    await a.mutate.issue.create({ id: 'i1', title: 'mine' }).client;
    expect(view.data.map((r) => r.id)).toEqual(['i1']);
    await b.mutate.issue.create({ id: 'i2', title: 'theirs' }).client;
    await b.idle();
    await a.idle();
    await a.pull();
    expect(view.data.map((r) => r.id)).toEqual(['i1', 'i2']);
    // Confirming i1 and pulling again changed nothing the query returns: no extra calls.
    expect(seen).toEqual([['i1'], ['i1', 'i2']]);
    view.destroy();
  });

  it('only queries whose results changed are notified', async () => {
    const a = await open();
    let issueCalls = 0;
    let commentCalls = 0;
    const stopIssues = a.query.issue.subscribe(() => issueCalls++);
    const stopComments = a.query.comment.subscribe(() => commentCalls++);
    await a.mutate.issue.create({ id: 'i1', title: 't' }).client;
    expect([issueCalls, commentCalls]).toEqual([2, 1]);
    stopIssues();
    stopComments();
  });

  it('one() gives a single row or undefined', async () => {
    const a = await open();
    await a.mutate.issue.create({ id: 'i1', title: 't' }).client;
    expect((await a.query.issue.where('id', 'i1').one().run())?.title).toBe('t');
    expect(await a.query.issue.where('id', 'nope').one().run()).toBeUndefined();
  });

  it('IndexedDB keeps the queue, rows and client id across a reload made offline', async () => {
    const name = `reprise-${Math.random()}`;
    const a = await open({ storage: createIndexedDBStorage(name, indexedDB) });
    await a.mutate.issue.create({ id: 'i1', title: 'synced', createdAt: new Date(5) }).client;
    await a.idle();
    await a.pull();
    h.server.down = true;
    await a.mutate.issue.rename({ id: 'i1', title: 'offline edit' }).client;
    await a.close();
    const reloaded = await open({ storage: createIndexedDBStorage(name, indexedDB) });
    expect(reloaded.clientID).toBe(a.clientID);
    expect(reloaded.pending).toBe(1);
    const [row] = await clientIssues(reloaded);
    expect(row?.title).toBe('offline edit');
    expect(row?.createdAt).toEqual(new Date(5));
    h.server.down = false;
    reloaded.setOnline(true);
    await reloaded.idle();
    expect(await clientIssues(reloaded)).toEqual(await serverIssues(h.fx));
    expect((await serverIssues(h.fx))[0]?.title).toBe('offline edit');
  });

  it('stores the queue one mutation per key, and forgets each once confirmed', async () => {
    const storage = createMemoryStorage();
    const a = await open({ storage });
    h.server.down = true;
    await a.mutate.issue.create({ id: 'i1', title: 'one' }).client;
    await a.mutate.issue.create({ id: 'i2', title: 'two' }).client;
    const pendingKeys = async () =>
      (await storage.keys()).filter((key) => key.startsWith(`pending/${a.clientID}/`)).sort();
    expect(await pendingKeys()).toEqual([`pending/${a.clientID}/1`, `pending/${a.clientID}/2`]);
    expect(await storage.get(`client/${a.clientID}`)).not.toHaveProperty('pending');
    h.server.down = false;
    a.setOnline(true);
    await a.idle();
    expect(await pendingKeys()).toEqual([]);
    expect(await storage.get(`client/${a.clientID}`)).toMatchObject({ lastMutationID: 2 });
  });

  it('reads a queue stored the old way (in the client record) and moves it to its keys', async () => {
    const storage = createMemoryStorage();
    const a = await open({ storage });
    await a.close();
    const legacy = (m: number) => ({
      id: m,
      name: 'issue.create',
      args: { id: `i${m}`, title: `old ${m}` },
      timestamp: 0,
    });
    await storage.set(`client/${a.clientID}`, {
      clientID: a.clientID,
      clientGroupID: a.clientGroupID,
      lastMutationID: 0,
      pending: [legacy(1), legacy(2)],
    });
    // A key left by a crash between confirming and deleting: already confirmed below.
    await storage.set(`pending/${a.clientID}/0`, legacy(0));
    const reloaded = await open({ storage });
    expect(reloaded.clientID).toBe(a.clientID);
    expect(reloaded.pending).toBe(2);
    expect((await clientIssues(reloaded)).map((r) => r.title)).toEqual(['old 1', 'old 2']);
    const keys = (await storage.keys()).filter((key) => key.startsWith('pending/')).sort();
    expect(keys).toEqual([`pending/${a.clientID}/1`, `pending/${a.clientID}/2`]);
    expect(await storage.get(`client/${a.clientID}`)).not.toHaveProperty('pending');
    await reloaded.idle();
    expect((await serverIssues(h.fx)).map((r) => r.title)).toEqual(['old 1', 'old 2']);
  });
});
