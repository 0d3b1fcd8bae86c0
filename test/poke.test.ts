import {
  createPokeHub,
  defineVisibility,
  type PokeHub,
  PUBLIC_SCOPE,
  silentLogger,
} from '@reprise/server';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { post, pushBody } from './fixtures/push';

// Pokes over Server-Sent Events, on every adapter: a commit pokes the connections whose
// scopes it touches and no other. Where the database has LISTEN the hub listens; pg-mem, and
// any database without `listen`, is polled. Real-server adapters are skipped, saying why in
// the suite name, without DATABASE_URL.

const visibility = defineVisibility(schema, {
  issue: 'ownerID',
  comment: () => PUBLIC_SCOPE,
});

async function waitFor(condition: () => boolean, what: string) {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Long enough for a poke that is coming to arrive, past the hub's 50 ms coalescing. */
const QUIET_MS = 300;

type SSEEvent = 'ready' | 'poke' | 'heartbeat' | 'end' | 'timeout';

/** Reads a poke stream event by event; a read that times out is picked up by the next. */
function sseReader(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  return {
    async next(ms = 5000): Promise<SSEEvent> {
      const deadline = Date.now() + ms;
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) return 'heartbeat';
          const event = /^event: (\w+)$/m.exec(block)?.[1];
          expect(block).toMatch(/^data: \{\}$/m);
          return event as SSEEvent;
        }
        pending ??= reader.read();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
        });
        const result = await Promise.race([pending, timeout]);
        clearTimeout(timer);
        if (result === 'timeout') return 'timeout';
        pending = undefined;
        if (result.done) return 'end';
        buffer += decoder.decode(result.value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  // pg-mem has no notifications: there the hub polls.
  const listens = !adapter.name.startsWith('pg-mem');
  describe.skipIf(adapter.unavailable !== undefined)(`pokes: ${title}`, () => {
    let fx: AdapterFixture;
    let hubs: PokeHub[] = [];
    let pushed = 0;

    beforeAll(async () => {
      fx = await adapter.create();
      return () => fx.close();
    });
    beforeEach(async () => {
      await fx.reset();
      pushed = 0;
    });
    afterEach(async () => {
      await Promise.all(hubs.map((hub) => hub.close()));
      hubs = [];
    });

    const hubOn = (
      db: AdapterFixture['db'],
      options: { heartbeatMs?: number; scoped?: boolean } = {},
    ) => {
      const { scoped = true, ...rest } = options;
      const hub = createPokeHub({
        db,
        pollIntervalMs: 20,
        logger: silentLogger,
        ...(scoped ? { schema, visibility } : {}),
        ...rest,
      });
      hubs.push(hub);
      return hub;
    };

    /** Opens a poke stream for `scopes` and reads its `ready`. */
    const connect = async (hub: PokeHub, scopes: string[], signal?: AbortSignal) => {
      const request = new Request('http://localhost/poke', signal ? { signal } : {});
      const response = await hub.handlePokeRequest({ request, scopes, clientGroupID: 'g' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const events = sseReader(response);
      expect(await events.next()).toBe('ready');
      return events;
    };

    /** Pushes one mutation as `userID`, through `on` (another pool stands for another process). */
    const push = async (userID: string, name: string, args: unknown, on = fx) => {
      // A client group of its own each time, so every push is mutation 1.
      const body = pushBody([{ id: 1, name, args }], { clientGroupID: `group-${++pushed}` });
      const res = await post(on, body, { userID });
      expect(res.body.mutations[0].result).not.toHaveProperty('error');
    };

    it.skipIf(!listens)(
      'a commit pokes the connection whose scope it touches, and not one with another scope',
      async () => {
        const hub = hubOn(fx.db);
        const alice = await connect(hub, ['alice']);
        const bob = await connect(hub, ['bob']);
        await push('alice', 'issue.create', { id: 'i1', title: 'mine' });
        expect(await alice.next()).toBe('poke');
        expect(await bob.next(QUIET_MS)).toBe('timeout');
        // The control: bob's stream does deliver his own pokes.
        await push('bob', 'issue.create', { id: 'i2', title: 'his' });
        expect(await bob.next()).toBe('poke');
        expect(await alice.next(QUIET_MS)).toBe('timeout');
      },
    );

    it('a change to a public row pokes every connection', async () => {
      const hub = hubOn(fx.db);
      const carol = await connect(hub, ['carol']);
      await push('alice', 'comment.add', { id: 'c1', issueID: 'i1', body: 'hello' });
      expect(await carol.next()).toBe('poke');
    });

    it.skipIf(!adapter.connect)(
      'a commit made through another pool (another process) pokes this process',
      async () => {
        const elsewhere = await adapter.connect!(fx);
        try {
          const hub = hubOn(fx.db);
          const alice = await connect(hub, ['alice']);
          const bob = await connect(hub, ['bob']);
          await push('alice', 'issue.create', { id: 'i1', title: 'T' }, elsewhere);
          expect(await alice.next()).toBe('poke');
          expect(await bob.next(QUIET_MS)).toBe('timeout');
          await push('bob', 'issue.create', { id: 'i2', title: 'T' }, elsewhere);
          expect(await bob.next()).toBe('poke');
        } finally {
          await elsewhere.close();
        }
      },
    );

    // On a server the engine announces its own commits after they commit (a NOTIFY in the
    // writing transaction would serialize every such commit); the trigger announces the rest.
    it.skipIf(!adapter.connect)(
      'a push is announced after its commit, by the engine, not by the capture trigger',
      async () => {
        const heard: string[] = [];
        const unlisten = await fx.db.listen!('reprise_changes_reprise', (payload) => {
          heard.push(payload);
        });
        const complaints: unknown[] = [];
        const logger = { ...silentLogger, warn: (e: unknown) => complaints.push(e) };
        try {
          const body = pushBody([{ id: 1, name: 'issue.create', args: { id: 'i1', title: 'T' } }]);
          const res = await post(fx, body, { userID: 'alice', logger });
          expect(res.body.mutations[0].result).toEqual({});
          await waitFor(() => heard.length > 0, 'the push announced');
          await insertIssue('i2', 'alice');
          await waitFor(() => heard.length > 1, 'the raw insert announced');
          expect(heard.slice(0, -1)).toEqual([expect.stringMatching(/^@[0-9a-f]{16}$/)]);
          // The commit trigger's announcement, once per transaction, names no table.
          expect(heard.at(-1)).toBe('');
          // The announcement went through this driver without a complaint.
          expect(complaints).toEqual([]);
        } finally {
          await unlisten();
        }
      },
    );

    it.skipIf(!adapter.connect)(
      'a commit whose announcement never went out (its process stopped first) still pokes',
      async () => {
        const hub = createPokeHub({
          db: fx.db,
          schema,
          visibility,
          logger: silentLogger,
          listeningPollIntervalMs: 200,
        });
        hubs.push(hub);
        const alice = await connect(hub, ['alice']);
        // What a push's transaction leaves when its process dies right after COMMIT: a
        // write with the engine's origin, which the trigger leaves to the engine to announce.
        await fx.db.transaction(
          async (tx) => {
            await tx.query(`SELECT set_config('reprise.origin', '["g", "c", 1]', true)`);
            await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('i1', 'T', 'alice')`);
          },
          { isolation: 'serializable' },
        );
        expect(await alice.next()).toBe('poke');
      },
    );

    // pg-mem has no triggers: only tx.mutate writes are captured there.
    it.skipIf(!listens)(
      'a write by raw SQL outside the engine pokes the owner, and no one else',
      async () => {
        const hub = hubOn(fx.db);
        const alice = await connect(hub, ['alice']);
        const bob = await connect(hub, ['bob']);
        await insertIssue('i1', 'alice');
        expect(await alice.next()).toBe('poke');
        expect(await bob.next(QUIET_MS)).toBe('timeout');
        await fx.query(`UPDATE issue SET owner_id = 'bob' WHERE id = 'i1'`);
        // Both: alice loses the row, bob gains it.
        expect(await alice.next()).toBe('poke');
        expect(await bob.next()).toBe('poke');
      },
    );

    it('a commit to a table nobody syncs pokes no one', async () => {
      const hub = hubOn(fx.db);
      const alice = await connect(hub, ['alice']);
      await fx.query(`INSERT INTO counter (id, value) VALUES ('c', 1)`);
      expect(await alice.next(QUIET_MS)).toBe('timeout');
    });

    it('without schema and visibility every commit pokes every connection', async () => {
      const hub = hubOn(fx.db, { scoped: false });
      const alice = await connect(hub, ['alice']);
      const bob = await connect(hub, ['bob']);
      await push('alice', 'issue.create', { id: 'i1', title: 'T' });
      expect(await alice.next()).toBe('poke');
      expect(await bob.next()).toBe('poke');
    });

    it.skipIf(!adapter.concurrent)(
      'when the listening connection dies the hub listens again and reads what it missed',
      async () => {
        const hub = hubOn(fx.db);
        const alice = await connect(hub, ['alice']);
        const killed = await fx.query<{ killed: boolean }>(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
           WHERE datname = current_database() AND query ILIKE 'listen %' AND pid <> pg_backend_pid()`,
        );
        expect(killed).toEqual([{ killed: true }]);
        // Committed while nobody may be listening: read from the changelog on reconnect.
        await insertIssue('i0', 'alice');
        expect(await alice.next()).toBe('poke');
        await push('alice', 'issue.create', { id: 'i1', title: 'T' });
        expect(await alice.next()).toBe('poke');
      },
    );

    it('without listen the hub polls the changelog and pokes the owner only', async () => {
      const { listen: _, ...polled } = fx.db;
      const hub = hubOn(polled);
      const alice = await connect(hub, ['alice']);
      const bob = await connect(hub, ['bob']);
      expect(await alice.next(QUIET_MS)).toBe('timeout');
      await push('alice', 'issue.create', { id: 'i1', title: 'T' });
      expect(await alice.next()).toBe('poke');
      expect(await bob.next(QUIET_MS)).toBe('timeout');
      expect(await alice.next(QUIET_MS)).toBe('timeout');
    });

    /** `count` issues of `owner`, each committed on its own, outside the engine. */
    const insertIssue = async (id: string, owner: string, count = 1) => {
      for (let n = 0; n < count; n++) {
        await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ($1, 'raw', $2)`, [
          count === 1 ? id : `${id}-${n}`,
          owner,
        ]);
      }
    };

    it.skipIf(!listens)(
      'a burst of commits gives one poke to a client that reads after it',
      async () => {
        const hub = hubOn(fx.db);
        const alice = await connect(hub, ['alice']);
        let heard = 0;
        const unlisten = await fx.db.listen!('reprise_changes_reprise', () => heard++);
        await insertIssue('burst', 'alice', 20);
        // Every notification delivered (on a busy machine they trail the commits), and
        // time for the hub to read what committed.
        await waitFor(() => heard >= 20, 'the burst announced');
        await unlisten();
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(await alice.next()).toBe('poke');
        expect(await alice.next(QUIET_MS)).toBe('timeout');
      },
    );

    it.skipIf(!listens)('pokes to one connection come at least 50 ms apart', async () => {
      const hub = hubOn(fx.db);
      const alice = await connect(hub, ['alice']);
      await insertIssue('a1', 'alice');
      expect(await alice.next()).toBe('poke');
      const first = performance.now();
      await insertIssue('a2', 'alice');
      expect(await alice.next()).toBe('poke');
      expect(performance.now() - first).toBeGreaterThanOrEqual(45);
    });

    it('sends heartbeat comments while idle', async () => {
      const hub = hubOn(fx.db, { heartbeatMs: 30 });
      const alice = await connect(hub, ['alice']);
      expect(await alice.next()).toBe('heartbeat');
    });

    it('drops a connection when the client aborts or cancels, and close ends the rest', async () => {
      const hub = hubOn(fx.db);
      const abort = new AbortController();
      const aborted = await connect(hub, ['alice'], abort.signal);
      const cancelled = await connect(hub, ['alice']);
      const open = await connect(hub, ['alice']);
      expect(hub.connections).toBe(3);
      abort.abort();
      expect(await aborted.next()).toBe('end');
      await cancelled.cancel();
      expect(hub.connections).toBe(1);
      await hub.close();
      expect(await open.next()).toBe('end');
      expect(hub.connections).toBe(0);
      const late = await hub.handlePokeRequest({ request: new Request('http://x/'), scopes: [] });
      expect(late.status).toBe(503);
    });
  });
}
