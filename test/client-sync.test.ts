import { createPokeHub, type PokeHub, silentLogger } from '@reprise/server';
import { decodeRich, isEnvelope } from '@reprise/shared';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  clientIssues,
  createTestServer,
  openClient,
  serverIssues,
  type TestClient,
  type TestServer,
} from './fixtures/client';

// The client's sync loop under the server answers it must survive: auth errors, 413s,
// outages and 5xx, pokes and dropped poke streams, and out-of-order pushes. Each client
// talks through a tap that logs every request and can answer in the server's place.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

type Path = 'mutate' | 'pull' | 'poke';

interface Sent {
  readonly path: Path;
  /** ms since the tap was made. */
  readonly at: number;
  /** The mutation ids a push carried. */
  readonly ids: readonly number[];
  /** The response status, or 'network' when the fetch threw. */
  status?: number | 'network';
  /** A push's `PushFailed` reason. */
  reason?: string;
}

interface Call {
  readonly path: Path;
  readonly ids: readonly number[];
  /** Sent on to the server as they are when the call is forwarded; the tap may change them. */
  readonly headers: Headers;
}

type Middleware = (call: Call, forward: () => Promise<Response>) => Promise<Response>;

interface Tap {
  readonly fetch: typeof fetch;
  readonly sent: Sent[];
  /** The requests sent to `path` since `from` (an index into `sent`). */
  count(path?: Path, from?: number): number;
}

/** Wraps `server.fetch` so `middleware` sees each request first, and logs each one. */
function tap(server: TestServer, middleware: Middleware = (_, forward) => forward()): Tap {
  const started = performance.now();
  const sent: Sent[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = String(input);
    const path = url.split('?')[0]!.split('/').at(-1) as Path;
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const decoded = isEnvelope(body) ? decodeRich(body) : body;
    const ids =
      path === 'mutate'
        ? (decoded as { mutations: { id: number }[] }).mutations.map((m) => m.id)
        : [];
    const entry: Sent = { path, at: performance.now() - started, ids };
    sent.push(entry);
    const headers = new Headers(init?.headers);
    try {
      const response = await middleware({ path, ids, headers }, () =>
        server.fetch(url, { ...init, headers }),
      );
      entry.status = response.status;
      if (path === 'mutate') {
        const json: unknown = await response
          .clone()
          .json()
          .catch(() => undefined);
        const reply = (isEnvelope(json) ? decodeRich(json) : json) as
          | { kind?: string; reason?: string }
          | undefined;
        if (reply?.kind === 'PushFailed' && reply.reason) entry.reason = reply.reason;
      }
      return response;
    } catch (error) {
      entry.status = 'network';
      throw error;
    }
  };
  return {
    fetch,
    sent,
    count: (path, from = 0) => sent.slice(from).filter((s) => !path || s.path === path).length,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `client.idle()`, failing fast instead of at the test timeout when the client is stuck. */
async function idle(client: TestClient, ms = 5_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not idle after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([client.idle(), stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/** Long enough for a retry storm to show: dozens of rounds at the 5 ms backoff used here. */
const QUIET_MS = 300;

describe('client sync loop against pglite', () => {
  let fx: AdapterFixture;
  let server: TestServer;
  const hubs: PokeHub[] = [];
  const clients: TestClient[] = [];

  const open = async (options: Parameters<typeof openClient>[2] = {}) => {
    const client = await openClient(server, fx, options);
    clients.push(client);
    return client;
  };

  /** `count` issue.create calls queued offline, so that one push carries them all. */
  const queueOffline = async (client: TestClient, count: number) => {
    client.setOnline(false);
    const calls = Array.from({ length: count }, (_, i) =>
      client.mutate.issue.create({ id: `i${i + 1}`, title: `#${i + 1}` }),
    );
    await Promise.all(calls.map((c) => c.client));
    return calls;
  };

  beforeAll(async () => {
    fx = await pglite.create();
  });
  afterAll(() => fx.close());
  beforeEach(async () => {
    await fx.reset();
    server = createTestServer(fx);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const client of clients.splice(0)) await client.close();
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
  });

  it('a client created with online: false sends nothing until setOnline(true), then syncs', async () => {
    const t = tap(server);
    const client = await open({ client: { fetch: t.fetch, online: false } });
    expect(client.online).toBe(false);
    const call = client.mutate.issue.create({ id: 'a1', title: 'queued' });
    await call.client;
    await sleep(QUIET_MS);
    expect(t.count()).toBe(0);
    expect(client.pending).toBe(1);
    client.setOnline(true);
    expect(await call.server).toEqual({ ok: true });
    await idle(client);
    expect(t.count('pull')).toBeGreaterThan(0);
    expect(t.count('mutate')).toBe(1);
    expect(client.pending).toBe(0);
    expect(await fx.query('SELECT id, title FROM issue')).toEqual([{ id: 'a1', title: 'queued' }]);
  });

  describe('auth errors', () => {
    /** A server that accepts only the current token, and sees every token as alice. */
    const rotatingAuth = (status: number) => {
      const auth = { token: 't1' };
      const t = tap(server, async (call, forward) => {
        if (call.headers.get('authorization') !== `Bearer ${auth.token}`) {
          await sleep(20);
          return Response.json({ error: 'unauthorized' }, { status });
        }
        call.headers.set('authorization', 'Bearer alice');
        return forward();
      });
      return { auth, tap: t };
    };

    for (const status of [401, 403]) {
      it(`a ${status} from /mutate stops pushing, reports it once, and setAuth delivers the queue`, async () => {
        const { auth, tap: t } = rotatingAuth(status);
        const authErrors: number[] = [];
        const a = await open({
          client: { fetch: t.fetch, auth: 'Bearer t1', onAuthError: (s) => authErrors.push(s) },
        });
        await idle(a);
        auth.token = 't2';
        const from = t.sent.length;
        const first = a.mutate.issue.create({ id: 'i1', title: 'One' });
        await vi.waitFor(() => expect(a.authState).toBe('unauthorized'));
        expect(t.sent.slice(from).map((s) => `${s.path}:${s.status}`)).toEqual([
          `mutate:${status}`,
        ]);
        expect(authErrors).toEqual([status]);

        // Queued mutations and explicit pulls send nothing until new credentials come.
        const second = a.mutate.issue.create({ id: 'i2', title: 'Two' });
        await second.client;
        await a.pull();
        await sleep(QUIET_MS);
        expect(t.count(undefined, from)).toBe(1);
        expect(authErrors).toEqual([status]);
        expect(a.pending).toBe(2);
        expect(await serverIssues(fx)).toEqual([]);

        a.setAuth('Bearer t2');
        expect(a.authState).toBe('ok');
        await idle(a);
        expect(await first.server).toEqual({ ok: true, data: undefined });
        expect(await second.server).toEqual({ ok: true, data: undefined });
        expect((await serverIssues(fx)).map((r) => r.id)).toEqual(['i1', 'i2']);
        expect(await clientIssues(a)).toEqual(await serverIssues(fx));
        expect(authErrors).toEqual([status]);
      });

      it(`a ${status} from /pull stops syncing, reports it once, and setAuth delivers the queue`, async () => {
        const { auth, tap: t } = rotatingAuth(status);
        const authErrors: number[] = [];
        const a = await open({
          client: { fetch: t.fetch, auth: 'Bearer t1', onAuthError: (s) => authErrors.push(s) },
        });
        await idle(a);
        auth.token = 't2';
        const from = t.sent.length;
        await a.pull();
        expect(a.authState).toBe('unauthorized');
        expect(t.sent.slice(from).map((s) => `${s.path}:${s.status}`)).toEqual([`pull:${status}`]);
        expect(authErrors).toEqual([status]);

        const call = a.mutate.issue.create({ id: 'i1', title: 'One' });
        await call.client;
        await sleep(QUIET_MS);
        expect(t.count(undefined, from)).toBe(1);
        expect(a.pending).toBe(1);

        a.setAuth(() => 'Bearer t2');
        await idle(a);
        expect(await call.server).toEqual({ ok: true, data: undefined });
        expect((await serverIssues(fx)).map((r) => r.id)).toEqual(['i1']);
        expect(await clientIssues(a)).toEqual(await serverIssues(fx));
        expect(authErrors).toEqual([status]);
      });
    }

    it('a push and a pull refused together report the auth error once', async () => {
      const { auth, tap: t } = rotatingAuth(401);
      const authErrors: number[] = [];
      const a = await open({
        client: { fetch: t.fetch, auth: 'Bearer t1', onAuthError: (s) => authErrors.push(s) },
      });
      await idle(a);
      auth.token = 't2';
      const from = t.sent.length;
      a.mutate.issue.create({ id: 'i1', title: 'One' });
      void a.pull();
      await vi.waitFor(() => expect(t.sent.slice(from).filter((s) => s.status)).toHaveLength(2));
      expect(t.sent.slice(from).map((s) => `${s.path}:${s.status}`)).toEqual(
        expect.arrayContaining(['pull:401', 'mutate:401']),
      );
      expect(a.authState).toBe('unauthorized');
      expect(authErrors).toEqual([401]);
    });
  });

  describe('413', () => {
    it('halves the batch until the server takes it, delivering every mutation once', async () => {
      server = createTestServer(fx, { maxMutations: 3 });
      const t = tap(server);
      const settled: string[] = [];
      const a = await open({ client: { fetch: t.fetch } });
      await idle(a);
      a.onMutationSettled((s) => settled.push(`${s.id}:${s.outcome.ok}`));
      const from = t.sent.length;
      const calls = await queueOffline(a, 10);
      a.setOnline(true);
      await idle(a);

      const pushes = t.sent.slice(from).filter((s) => s.path === 'mutate');
      expect(pushes.map((s) => `${s.ids.length}:${s.status}`)).toEqual([
        '10:413',
        '5:413',
        '2:200',
        '2:200',
        '2:200',
        '2:200',
        '2:200',
      ]);
      const delivered = pushes.filter((s) => s.status === 200).flatMap((s) => s.ids);
      expect(delivered).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(settled).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 1}:true`));
      for (const call of calls) expect(await call.server).toEqual({ ok: true, data: undefined });
      expect(await serverIssues(fx)).toHaveLength(10);
      expect(await clientIssues(a)).toEqual(await serverIssues(fx));
      expect(a.pending).toBe(0);
    });

    it('halves down to one mutation a push', async () => {
      server = createTestServer(fx, { maxMutations: 1 });
      const t = tap(server);
      const a = await open({ client: { fetch: t.fetch } });
      await idle(a);
      const from = t.sent.length;
      await queueOffline(a, 4);
      a.setOnline(true);
      await idle(a);
      const pushes = t.sent.slice(from).filter((s) => s.path === 'mutate');
      expect(pushes.map((s) => `${s.ids.join(',')}:${s.status}`)).toEqual([
        '1,2,3,4:413',
        '1,2:413',
        '1:200',
        '2:200',
        '3:200',
        '4:200',
      ]);
      expect(await serverIssues(fx)).toHaveLength(4);
      expect(a.pending).toBe(0);
    });

    it('a mutation too large to send alone stops the push instead of retrying it', async () => {
      // A body limit: any push carrying the big mutation is refused, whatever else it holds.
      const t = tap(server, async (call, forward) =>
        call.path === 'mutate' && call.ids.includes(2)
          ? Response.json({ error: 'too large' }, { status: 413 })
          : forward(),
      );
      const a = await open({ client: { fetch: t.fetch } });
      await idle(a);
      const from = t.sent.length;
      const calls = await queueOffline(a, 3);
      a.setOnline(true);
      await vi.waitFor(() => expect(t.sent.at(-1)?.status).toBe(413));
      await sleep(QUIET_MS);
      const pushes = t.sent.slice(from).filter((s) => s.path === 'mutate');
      expect(pushes.map((s) => `${s.ids.join(',')}:${s.status}`)).toEqual([
        '1,2,3:413',
        '1:200',
        '2:413',
        // The pull that confirms mutation 1 tries the queue once more; then nothing.
        '2:413',
      ]);
      expect(await calls[0]!.server).toEqual({ ok: true, data: undefined });
      expect((await serverIssues(fx)).map((r) => r.id)).toEqual(['i1']);
      expect(a.pending).toBe(2);
    });
  });

  describe('backoff', () => {
    const BACKOFF = { baseMs: 20, maxMs: 400 };
    /** The ceiling of retry `k`'s delay; equal jitter puts the delay in [ceiling/2, ceiling]. */
    const ceiling = (k: number) => Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** k);
    /** How late a timer may fire on a busy machine. */
    const LATE_MS = 150;
    const FAILURES = 7;

    const cases: { title: string; paths: readonly Path[]; fail: () => Response }[] = [
      {
        title: 'network errors',
        paths: ['mutate', 'pull'],
        fail: () => {
          throw new TypeError('fetch failed');
        },
      },
      {
        title: '503s from /mutate and /pull',
        paths: ['mutate', 'pull'],
        fail: () => new Response('unavailable', { status: 503 }),
      },
      {
        title: '503s from /mutate while /pull answers',
        paths: ['mutate'],
        fail: () => new Response('unavailable', { status: 503 }),
      },
    ];

    /** Opens a client and fails its requests to `paths` until FAILURES pushes have failed. */
    const outage = async (paths: readonly Path[], fail: () => Response) => {
      let failedPushes = 0;
      let failing = false;
      const t = tap(server, async (call, forward) => {
        if (!failing || !paths.includes(call.path)) return forward();
        if (call.path === 'mutate' && ++failedPushes === FAILURES) failing = false;
        return fail();
      });
      const a = await open({ client: { fetch: t.fetch, backoff: BACKOFF } });
      await idle(a);
      const calls = await queueOffline(a, 3);
      const from = t.sent.length;
      failing = true;
      a.setOnline(true);
      await vi.waitFor(() => expect(t.count('mutate', from)).toBe(FAILURES + 1), {
        timeout: 5_000,
      });
      const sent = t.sent.slice(from);
      const pushes = sent.filter((s) => s.path === 'mutate').map((s) => s.at);
      const gaps = pushes.slice(1).map((at, k) => at - pushes[k]!);
      return { a, calls, sent, gaps };
    };

    for (const { title, paths, fail } of cases) {
      it(`${title} are retried with growing gaps, then everything is delivered`, async () => {
        const { a, calls, sent, gaps } = await outage(paths, fail);
        gaps.forEach((gap, k) => {
          // The first push waits a tick behind the first pull, whose failure may start the
          // clock; later rounds push first.
          if (k > 0) {
            expect(gap, `gap ${k}: ${gaps.map(Math.round)}`).toBeGreaterThanOrEqual(
              ceiling(k) / 2 - 1,
            );
          }
          expect(gap, `gap ${k}: ${gaps.map(Math.round)}`).toBeLessThanOrEqual(
            ceiling(k) + LATE_MS,
          );
        });
        // No retry storm: the first 500 ms hold at most 6 rounds (10+20+40+80+160 ms
        // minimum between them), a push and a pull each (going online also reopens the
        // poke stream, which is not a retry).
        const early = sent.filter((s) => s.path !== 'poke' && s.at - sent[0]!.at < 500);
        expect(early.length).toBeLessThanOrEqual(12);

        await idle(a);
        for (const call of calls) expect(await call.server).toEqual({ ok: true, data: undefined });
        expect((await serverIssues(fx)).map((r) => r.id)).toEqual(['i1', 'i2', 'i3']);
        expect(await clientIssues(a)).toEqual(await serverIssues(fx));
        expect(a.online).toBe(true);
        expect(a.pending).toBe(0);
      });
    }

    // Equal jitter: half of each delay is fixed, half is Math.random's share of the rest.
    for (const random of [0, 1]) {
      it(`each retry delay is jittered by Math.random (at ${random})`, async () => {
        vi.spyOn(Math, 'random').mockReturnValue(random);
        const { gaps } = await outage(['mutate', 'pull'], () => {
          throw new TypeError('fetch failed');
        });
        vi.restoreAllMocks();
        // Past the first few rounds the two extremes are 80+ ms apart, more than timers slip.
        for (let k = 4; k < gaps.length; k++) {
          const expected = ceiling(k) * (random === 0 ? 0.5 : 1);
          expect(gaps[k], `gap ${k}: ${gaps.map(Math.round)}`).toBeGreaterThanOrEqual(expected - 3);
          expect(gaps[k], `gap ${k}: ${gaps.map(Math.round)}`).toBeLessThan(
            expected + ceiling(k) / 4,
          );
        }
      });
    }
  });

  describe('pull()', () => {
    it('a call during a running pull sees what committed before the call, not only what that pull read', async () => {
      // a's first pull reads the server before b writes, and its answer is held until after
      // a calls pull() again: that second call must not settle with the first pull's answer.
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let holdNext = false;
      const t = tap(server, async (call, forward) => {
        if (call.path !== 'pull' || !holdNext) return forward();
        holdNext = false;
        const response = await forward();
        await held;
        return response;
      });
      const a = await open({ client: { fetch: t.fetch, poke: false } });
      const b = await open({ client: { poke: false } });
      await Promise.all([idle(a), idle(b)]);
      holdNext = true;
      const from = t.count('pull');
      const first = a.pull();
      await vi.waitFor(() => expect(t.count('pull', from)).toBe(1));
      await sleep(50);
      await b.mutate.issue.create({ id: 'i1', title: 'From B' }).client;
      await idle(b);
      const second = a.pull();
      const third = a.pull();
      release();
      await first;
      await second;
      expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1']);
      await third;
      // The calls made during the held pull shared one more pull.
      expect(t.count('pull', from)).toBe(2);
    });
  });

  describe('pokes', () => {
    const withPokes = () => {
      const hub = createPokeHub({ db: fx.db, pollIntervalMs: 20, logger: silentLogger });
      hubs.push(hub);
      server = createTestServer(fx, { pokes: hub });
      return hub;
    };

    it("a poke makes a client pull another client's commit, with no interval pulls", async () => {
      const hub = withPokes();
      const t = tap(server);
      const a = await open({ client: { fetch: t.fetch, pullIntervalMs: 0 } });
      const b = await open();
      await Promise.all([idle(a), idle(b)]);
      await vi.waitFor(() => expect(hub.connections).toBe(2));
      await sleep(100);
      const pulls = t.count('pull');

      await b.mutate.issue.create({ id: 'i1', title: 'From B' }).client;
      await idle(b);
      await vi.waitFor(async () =>
        expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1']),
      );
      expect(t.count('pull')).toBeGreaterThan(pulls);
      expect(t.count('mutate')).toBe(0);
      expect(t.count('poke')).toBe(1);
      expect(await clientIssues(a)).toEqual(await serverIssues(fx));
    });

    it('after the poke stream drops, the client reconnects and catches up on what it missed', async () => {
      const hub = withPokes();
      let pokesDown = false;
      const t = tap(server, async (call, forward) => {
        if (pokesDown && call.path === 'poke') throw new TypeError('fetch failed');
        return forward();
      });
      const a = await open({ client: { fetch: t.fetch, pullIntervalMs: 0 } });
      const b = await open({ client: { poke: false } });
      await Promise.all([idle(a), idle(b)]);
      await vi.waitFor(() => expect(hub.connections).toBe(1));

      pokesDown = true;
      server.cutPokeStreams();
      await vi.waitFor(() => expect(hub.connections).toBe(0));
      // Committed while the stream is down: no poke will ever say so.
      await b.mutate.issue.create({ id: 'i1', title: 'Missed' }).client;
      await idle(b);
      await vi.waitFor(() =>
        expect(t.sent.at(-1)).toMatchObject({ path: 'poke', status: 'network' }),
      );
      pokesDown = false;
      await vi.waitFor(() => expect(hub.connections).toBe(1));
      await vi.waitFor(async () =>
        expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1']),
      );

      // And the new stream carries pokes.
      await b.mutate.issue.create({ id: 'i2', title: 'Poked' }).client;
      await idle(b);
      await vi.waitFor(async () =>
        expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1', 'i2']),
      );
      expect(t.count('mutate')).toBe(0);
      expect(t.sent.filter((s) => s.path === 'poke' && s.status === 200)).toHaveLength(2);
    });
  });

  describe('oooMutation', () => {
    it('resyncs and resends what the server lost, ending converged', async () => {
      // The first push is acknowledged and then lost, as when a failover drops the last
      // commits: the client thinks mutation 1 is on the server, which expects it next.
      let lose = 1;
      const t = tap(server, async (call, forward) => {
        if (call.path !== 'mutate' || lose === 0) return forward();
        lose--;
        const clientID = a.clientID;
        return Response.json({
          kind: 'MutateResponse',
          mutations: call.ids.map((id) => ({ id: { id, clientID }, result: {} })),
        });
      });
      const a: TestClient = await open({ client: { fetch: t.fetch } });
      await idle(a);
      const from = t.sent.length;
      const first = a.mutate.issue.create({ id: 'i1', title: 'Lost' });
      await first.client;
      await vi.waitFor(() => expect(t.count('mutate', from)).toBe(1));
      await sleep(50);
      expect(await serverIssues(fx)).toEqual([]);
      expect(a.pending).toBe(1);

      const second = a.mutate.issue.create({ id: 'i2', title: 'Next' });
      await idle(a);
      const pushes = t.sent.slice(from).filter((s) => s.path === 'mutate');
      expect(pushes.map((s) => `${s.ids.join(',')}:${s.status}:${s.reason ?? 'ok'}`)).toEqual([
        '1:200:ok',
        '2:200:oooMutation',
        '1,2:200:ok',
      ]);
      expect(await first.server).toEqual({ ok: true, data: undefined });
      expect(await second.server).toEqual({ ok: true, data: undefined });
      expect((await serverIssues(fx)).map((r) => r.id)).toEqual(['i1', 'i2']);
      expect(await clientIssues(a)).toEqual(await serverIssues(fx));
      expect(a.pending).toBe(0);
    });
  });
});
