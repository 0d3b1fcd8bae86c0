import {
  ClientClosedError,
  type ClientStorage,
  createIndexedDBStorage,
  createMemoryStorage,
  type SettledMutation,
} from '@reprise/client';
import { pruneChanges } from '@reprise/server';
import { indexedDB } from 'fake-indexeddb';
import { describe, expect, it, vi } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import {
  clientIssues,
  serverIssues,
  slowStorage,
  type TestClient,
  useClients,
} from './fixtures/client';
import { lmid } from './fixtures/push';

// Every `server` promise settles exactly once, with the outcome the server recorded,
// whatever the timing of storage writes, pushes, pulls and pokes.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms`: a hang fails fast. */
async function settledWithin<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('every server promise settles once', () => {
  const h = useClients(pglite);

  const storages: [string, () => ClientStorage][] = [
    ['a slow storage (30 ms writes)', () => slowStorage(30)],
    ['IndexedDB', () => createIndexedDBStorage(`reprise-${Math.random()}`, indexedDB)],
  ];
  it.each(storages)(
    'with %s and a pull right after mutate, server carries the recorded outcome',
    async (_, make) => {
      const storage = make();
      const a = await h.open({ storage });
      await a.idle();
      const created = a.mutate.issue.create({ id: 'i1', title: 'One' });
      void a.pull();
      const commented = a.mutate.comment.add({ id: 'c1', issueID: 'i1', body: 'hi' });
      void a.pull();
      const refused = a.mutate.review.refuse({ id: 'r1' });
      void a.pull();

      expect(await settledWithin(created.server, 'issue.create')).toEqual({
        ok: true,
        data: undefined,
      });
      expect(await settledWithin(commented.server, 'comment.add')).toEqual({
        ok: true,
        data: { commentID: 'c1', at: new Date('2026-01-02T03:04:05.000Z') },
      });
      const outcome = await settledWithin(refused.server, 'review.refuse');
      expect(outcome.ok).toBe(false);
      expect(!outcome.ok && outcome.error.message).toBe('Refused');
      await a.idle();
      expect(a.pending).toBe(0);
      expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(3);
      expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
    },
  );
});

describe('settling around failures, close and adoption', () => {
  const h = useClients(pglite);
  const isPush = (input: unknown) => String(input).endsWith('/mutate');

  it('a mutation the storage cannot store is refused, not queued, and its id is reused', async () => {
    const storage = slowStorage(5);
    const a = await h.open({ storage });
    await a.idle();
    storage.failWrites = 1;
    const lost = a.mutate.issue.create({ id: 'lost', title: 'Lost' });
    await expect(lost.client).rejects.toThrow(/QuotaExceededError/);
    const outcome = await settledWithin(lost.server, 'the unstored mutation');
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.message).toMatch(/QuotaExceededError/);
    expect(a.pending).toBe(0);
    expect(await clientIssues(a)).toEqual([]);

    const kept = a.mutate.issue.create({ id: 'kept', title: 'Kept' });
    expect(await settledWithin(kept.server, 'the next mutation')).toEqual({
      ok: true,
      data: undefined,
    });
    await a.idle();
    expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(1);
    expect((await serverIssues(h.fx)).map((i) => i.id)).toEqual(['kept']);
  });

  it('a pull whose storage writes fail still settles what it confirmed', async () => {
    const storage = slowStorage(5);
    const a = await h.open({ storage });
    await a.idle();
    // The push's answer is lost, its resend is answered alreadyProcessed: only the pull
    // that confirms it can settle it, and that pull's record write fails.
    h.server.dropPushResponses = 1;
    const call = a.mutate.comment.add({ id: 'c1', issueID: 'x', body: 'hi' });
    await call.client;
    storage.failWrites = 1;
    expect(await settledWithin(call.server, 'comment.add')).toEqual({
      ok: true,
      data: { commentID: 'c1', at: new Date('2026-01-02T03:04:05.000Z') },
    });
    expect(storage.failWrites).toBe(0);
    await a.idle();
    expect(a.pending).toBe(0);
  });

  it('a mutation confirmed by its LMID after its result was pruned settles, once, as a success', async () => {
    let pullsDown = false;
    const a = await h.open({
      client: {
        fetch: async (input, init) => {
          if (pullsDown && String(input).endsWith('/pull')) {
            throw new TypeError('fetch failed: pulls are down');
          }
          return h.server.fetch(input, init);
        },
      },
    });
    await a.idle();
    const settled: SettledMutation[] = [];
    a.onMutationSettled((s) => settled.push(s));
    pullsDown = true;
    h.server.dropPushResponses = 1;
    const call = a.mutate.comment.add({ id: 'c1', issueID: 'x', body: 'hi' });
    await vi.waitFor(async () => expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(1));
    await sleep(50);
    expect(await pruneChanges({ db: h.fx.db, olderThanMs: -60_000 })).toMatchObject({
      deletedResults: 1,
    });
    pullsDown = false;
    expect(await settledWithin(call.server, 'comment.add')).toEqual({ ok: true, data: undefined });
    await a.idle();
    await a.pull();
    expect(settled.map((s) => [s.id, s.outcome])).toEqual([[1, { ok: true, data: undefined }]]);
  });

  it('close settles the promises left with a ClientClosedError; the next client pushes them', async () => {
    const storage = createMemoryStorage();
    const a = await h.open({ storage });
    await a.idle();
    a.setOnline(false);
    const call = a.mutate.issue.create({ id: 'i1', title: 'One' });
    await call.client;
    const idling = a.idle();
    await a.close();
    const outcome = await settledWithin(call.server, 'the queued mutation');
    expect(outcome).toEqual({ ok: false, error: expect.any(ClientClosedError) });
    expect(!outcome.ok && outcome.error.code).toBe('closed');
    await expect(idling).rejects.toBeInstanceOf(ClientClosedError);

    const late = a.mutate.issue.create({ id: 'i2', title: 'Two' });
    await expect(late.client).rejects.toBeInstanceOf(ClientClosedError);
    expect(await settledWithin(late.server, 'a mutate after close')).toEqual({
      ok: false,
      error: expect.any(ClientClosedError),
    });

    const reloaded = await h.open({ storage });
    expect(reloaded.clientID).toBe(a.clientID);
    const settled: SettledMutation[] = [];
    reloaded.onMutationSettled((s) => settled.push(s));
    await reloaded.idle();
    expect((await serverIssues(h.fx)).map((i) => i.id)).toEqual(['i1']);
    expect(settled).toEqual([
      { clientID: a.clientID, id: 1, name: 'issue.create', outcome: { ok: true, data: undefined } },
    ]);
  });

  /**
   * Opens b, then a on the same storage (a second tab) whose pulls never get through and
   * whose push answers are lost: the server applies a's mutations, a never hears.
   */
  async function deafTab() {
    const storage = createMemoryStorage();
    const b = await h.open({ storage });
    await b.idle();
    const settled: SettledMutation[] = [];
    b.onMutationSettled((s) => settled.push(s));
    let deaf = false;
    const a = await h.open({
      storage,
      client: {
        fetch: async (input, init) => {
          if (!deaf) return h.server.fetch(input, init);
          if (!isPush(input)) throw new TypeError('fetch failed: a cannot pull');
          await h.server.fetch(input, init);
          throw new TypeError('fetch failed: the answer was lost');
        },
      },
    });
    await a.idle();
    deaf = true;
    return { a, b, settled };
  }

  const expected = (a: TestClient) => [
    {
      clientID: a.clientID,
      id: 1,
      name: 'comment.add',
      outcome: { ok: true, data: { commentID: 'c1', at: new Date('2026-01-02T03:04:05.000Z') } },
    },
    {
      clientID: a.clientID,
      id: 2,
      name: 'review.refuse',
      outcome: { ok: false, error: expect.objectContaining({ message: 'Refused' }) },
    },
  ];

  async function applyUnheard(a: TestClient) {
    const calls = [
      a.mutate.comment.add({ id: 'c1', issueID: 'x', body: 'hi' }),
      a.mutate.review.refuse({ id: 'r1' }),
    ];
    await vi.waitFor(async () => expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(2));
    return calls;
  }

  it("a tab's outcomes that arrive after it closed reach the group's settled listener", async () => {
    const { a, b, settled } = await deafTab();
    const calls = await applyUnheard(a);
    await a.close();
    for (const call of calls) expect((await call.server).ok).toBe(false);

    await b.pull();
    expect(settled).toEqual(expected(a));
    expect(b.pending).toBe(0);
  });

  it('outcomes a tab pulled while the other was live are reported when it adopts them', async () => {
    const { a, b, settled } = await deafTab();
    await applyUnheard(a);
    // b's pull carries a's results while a is live: they are a's to report, not b's.
    await b.pull();
    expect(settled).toEqual([]);
    await a.close();

    await b.pull();
    expect(settled).toEqual(expected(a));
    await b.pull();
    expect(settled).toHaveLength(2);
  });
});

describe('closing while a pull is applied', () => {
  const h = useClients(pglite);

  it('a pull landing during close does not adopt the closing client: a reload resumes it', async () => {
    // a's pull is answered while its mutation is being stored, and adopting reads slowly:
    // the pull is still adopting when close has stored everything.
    let answer = () => {};
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const slow = slowStorage(50);
    const storage: ClientStorage = {
      ...slow,
      set: async (key, value) => {
        if (key.startsWith('pending/')) answer();
        await slow.set(key, value);
      },
      keys: async () => {
        await sleep(40);
        return slow.keys();
      },
    };
    const b = await h.open({ storage });
    await b.idle();
    let hold = false;
    const a = await h.open({
      storage,
      client: {
        fetch: async (input, init) => {
          if (hold && String(input).endsWith('/pull')) await answered;
          return h.server.fetch(input, init);
        },
      },
    });
    await a.idle();
    hold = true;
    void a.pull();
    const call = a.mutate.issue.create({ id: 'i1', title: 'One' });
    await a.close();
    expect(await call.server).toEqual({ ok: false, error: expect.any(ClientClosedError) });
    await sleep(200);

    const reloaded = await h.open({ storage });
    expect(reloaded.clientID).toBe(a.clientID);
    expect(reloaded.pending).toBe(1);
    await reloaded.idle();
    expect((await serverIssues(h.fx)).map((i) => i.id)).toEqual(['i1']);
    expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(1);
  });
});
