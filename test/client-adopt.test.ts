import { type ClientStorage, createMemoryStorage, type SettledMutation } from '@reprise/client';
import { decodeRich, isEnvelope } from '@reprise/shared';
import { describe, expect, it, vi } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import { clientIssues, serverIssues, type TestClient, useClients } from './fixtures/client';
import { count, lmid } from './fixtures/push';

// A tab that closes with unpushed mutations leaves them in the shared storage; a tab of
// the same group that stays open adopts them: it shows them, pushes them under the closed
// client's id and mutation ids, and forgets them once a pull confirms them.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

const isPush = (input: unknown) => String(input).endsWith('/mutate');

async function decode(body: string | Response): Promise<any> {
  const json = typeof body === 'string' ? JSON.parse(body) : await body.clone().json();
  return isEnvelope(json) ? decodeRich(json) : json;
}

/** The keys a client left in `storage`: its record and its queued mutations. */
async function keysOf(storage: ClientStorage, client: TestClient) {
  const keys = await storage.keys();
  return keys.filter(
    (key) => key === `client/${client.clientID}` || key.startsWith(`pending/${client.clientID}/`),
  );
}

describe('adopting the queue of a closed client', () => {
  const h = useClients(pglite);

  /**
   * A fetch for one client that records its pushes and their answers, and can hold them;
   * with `pullsAfterPush`, its pulls wait for a push to be answered first.
   */
  function spiedFetch({ pullsAfterPush = false } = {}) {
    let pushAnswered = () => {};
    const answered = new Promise<void>((resolve) => {
      pushAnswered = resolve;
    });
    const spy = {
      pushed: [] as { clientID: string; id: number }[],
      answers: [] as { id: { clientID: string; id: number }; result: any }[],
      gate: Promise.resolve(),
      open: () => {},
      hold() {
        spy.gate = new Promise<void>((resolve) => {
          spy.open = resolve;
        });
      },
      fetch: (async (input, init) => {
        if (!isPush(input)) {
          if (pullsAfterPush) await answered;
          return h.server.fetch(input, init);
        }
        await spy.gate;
        const request = await decode(String(init?.body));
        for (const m of request.mutations) spy.pushed.push({ clientID: m.clientID, id: m.id });
        const response = await h.server.fetch(input, init);
        const body = await decode(response);
        if (body.kind === 'MutateResponse') spy.answers.push(...body.mutations);
        pushAnswered();
        return response;
      }) as typeof fetch,
    };
    return spy;
  }

  /** Opens a client on `storage` that queues `queue` offline and closes. */
  async function closeWithQueue(storage: ClientStorage, queue: (a: TestClient) => Promise<void>) {
    const a = await h.open({ storage });
    await a.idle();
    a.setOnline(false);
    await queue(a);
    await a.close();
    return a;
  }

  it("pushes a closed client's queue under its id, shows it until confirmed, then forgets it", async () => {
    const storage = createMemoryStorage();
    const spy = spiedFetch();
    const b = await h.open({ storage, client: { fetch: spy.fetch } });
    await b.idle();
    const a = await closeWithQueue(storage, async (a) => {
      a.mutate.issue.create({ id: 'a1', title: 'one' });
      await a.mutate.issue.create({ id: 'a2', title: 'two' }).client;
    });
    expect(await keysOf(storage, a)).toHaveLength(3);

    spy.hold();
    await b.pull();
    expect(b.pending).toBe(2);
    expect((await clientIssues(b)).map((i) => i.id)).toEqual(['a1', 'a2']);
    expect(await serverIssues(h.fx)).toEqual([]);

    spy.open();
    await b.idle();
    expect(spy.pushed).toEqual([
      { clientID: a.clientID, id: 1 },
      { clientID: a.clientID, id: 2 },
    ]);
    expect((await serverIssues(h.fx)).map((i) => i.id)).toEqual(['a1', 'a2']);
    expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(2);
    expect(b.pending).toBe(0);
    expect((await clientIssues(b)).map((i) => i.id)).toEqual(['a1', 'a2']);
    expect(await keysOf(storage, a)).toEqual([]);
  });

  it('applies an adopted mutation once when the closed client pushed it and lost the answer', async () => {
    const storage = createMemoryStorage();
    // Opened first, so its record is the one a new client resumes; b then adopts a.
    const first = await h.open({ storage });
    await first.idle();
    let mode: 'normal' | 'pushOnce' | 'cut' = 'normal';
    const a = await h.open({
      storage,
      client: {
        fetch: async (input, init) => {
          if (mode === 'cut' || (mode === 'pushOnce' && !isPush(input))) {
            throw new TypeError('fetch failed: a is cut off');
          }
          if (mode === 'pushOnce') mode = 'cut';
          return h.server.fetch(input, init);
        },
      },
    });
    await a.idle();
    a.setOnline(false);
    a.mutate.issue.create({ id: 'a1', title: 'one' });
    await a.mutate.issue.create({ id: 'a2', title: 'two' }).client;
    h.server.dropPushResponses = 1;
    mode = 'pushOnce';
    a.setOnline(true);
    await vi.waitFor(() => expect(mode).toBe('cut'));
    await vi.waitFor(async () => expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(2));
    await a.close();
    await first.close();
    expect(await keysOf(storage, a)).toHaveLength(3);

    // b pushes before it pulls, as when it adopts while the closed tab's push is in flight.
    const spy = spiedFetch({ pullsAfterPush: true });
    const b = await h.open({ storage, client: { fetch: spy.fetch } });
    expect(b.clientID).toBe(first.clientID);
    await b.idle();
    expect(spy.answers).toEqual([
      { id: { clientID: a.clientID, id: 1 }, result: { error: 'alreadyProcessed' } },
      { id: { clientID: a.clientID, id: 2 }, result: { error: 'alreadyProcessed' } },
    ]);
    expect(await count(h.fx, 'issue')).toBe(2);
    expect((await clientIssues(b)).map((i) => i.id)).toEqual(['a1', 'a2']);
    expect(await keysOf(storage, a)).toEqual([]);
  });

  it("reports a refused adopted mutation with its client's id and drops it from the view", async () => {
    const storage = createMemoryStorage();
    const b = await h.open({ storage });
    await b.idle();
    const settled: SettledMutation[] = [];
    b.onMutationSettled((s) => settled.push(s));
    const a = await closeWithQueue(storage, async (a) => {
      await a.mutate.review.refuse({ id: 'r1' }).client;
    });

    await b.pull();
    await b.idle();
    expect(settled).toEqual([
      {
        clientID: a.clientID,
        id: 1,
        name: 'review.refuse',
        outcome: { ok: false, error: expect.objectContaining({ message: 'Refused' }) },
      },
    ]);
    expect(b.pending).toBe(0);
    expect(await clientIssues(b)).toEqual([]);
    expect(await serverIssues(h.fx)).toEqual([]);
    expect(await keysOf(storage, a)).toEqual([]);
  });

  it('leaves the queue of a client that is still open alone', async () => {
    const storage = createMemoryStorage();
    const spy = spiedFetch();
    const b = await h.open({ storage, client: { fetch: spy.fetch } });
    const a = await h.open({ storage });
    await a.idle();
    a.setOnline(false);
    a.mutate.issue.create({ id: 'a1', title: 'one' });
    await a.mutate.issue.create({ id: 'a2', title: 'two' }).client;

    await b.pull();
    await b.idle();
    expect(spy.pushed).toEqual([]);
    expect(b.pending).toBe(0);
    expect(await clientIssues(b)).toEqual([]);
    expect(await keysOf(storage, a)).toHaveLength(3);

    a.setOnline(true);
    await a.idle();
    expect((await serverIssues(h.fx)).map((i) => i.id)).toEqual(['a1', 'a2']);
  });
});
