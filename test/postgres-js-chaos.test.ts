import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture, DATABASE_URL } from './fixtures/adapters';
import { lmid, post, pushBody } from './fixtures/push';

// Pushes through the postgres.js adapter while a loop terminates the engine's connections
// every 30–250 ms. Without patches/postgres+3.4.9.patch the process dies within about a
// second ("Cannot read properties of null (reading 'write')" from nextWrite).

const kind = ADAPTERS.find((a) => a.name === 'postgres.js (real server)')!;
const APP = 'reprise-chaos';
const CLIENTS = 6;
const RUN_MS = 4_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!DATABASE_URL)('postgres.js: pushes while connections are killed', () => {
  let fx: AdapterFixture;
  let killer: postgres.Sql;
  const escaped: unknown[] = [];
  const record = (error: unknown) => escaped.push(error);

  beforeAll(async () => {
    fx = await kind.create();
    killer = postgres(fx.url!, { max: 1, onnotice: () => {} });
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
  });
  afterAll(async () => {
    process.off('uncaughtException', record);
    process.off('unhandledRejection', record);
    await killer?.end();
    await fx?.close();
  });

  it('no crash, every push answered, each acknowledged mutation applied exactly once', async () => {
    const sql = postgres(fx.url!, {
      max: 4,
      onnotice: () => {},
      connection: { application_name: APP },
    });
    const db = createPostgresJsDatabase(sql, { queryTimeoutMs: 5_000 });
    const engine = { ...fx, db };
    const received: string[] = [];
    let reconnects = 0;
    const stopListening = await db.listen!('chaos', (p) => received.push(p), {
      onReconnect: () => reconnects++,
    });

    let kills = 0;
    let running = true;
    const killing = (async () => {
      while (running) {
        await sleep(30 + Math.random() * 220);
        const rows = await killer<{ n: number }[]>`
          SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = ${APP}`;
        kills += rows[0]!.n;
      }
    })();

    const stats = { pushes: 0, ok: 0, unavailable: 0, slowestMs: 0 };
    /** Highest id each client got a result for; results seen per mutation. */
    const acked = new Map<string, number>();
    const results = new Map<string, unknown[]>();
    const create = (clientID: string, id: number) => ({
      id,
      clientID,
      name: 'issue.create',
      args: { id: `${clientID}-${id}`, title: `Issue ${id}` },
    });
    const push = async (clientID: string) => {
      const from = (acked.get(clientID) ?? 0) + 1;
      // Sometimes resend the last acknowledged one too, as a client whose response was lost.
      const first = Math.max(1, from - (Math.random() < 0.2 ? 1 : 0));
      const batch = [0, 1, 2].map((i) => create(clientID, first + i));
      const started = Date.now();
      const res = await post(engine, pushBody(batch, { clientGroupID: 'cg', clientID }));
      stats.pushes++;
      stats.slowestMs = Math.max(stats.slowestMs, Date.now() - started);
      if (res.status === 200) {
        stats.ok++;
        for (const m of res.body.mutations) {
          const key = `${clientID}-${m.id.id}`;
          results.set(key, [...(results.get(key) ?? []), m.result]);
          acked.set(clientID, Math.max(acked.get(clientID) ?? 0, m.id.id));
        }
      } else {
        expect(res.status).toBe(503);
        expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'database' });
        stats.unavailable++;
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, i) => `c${i}`);
    const deadline = Date.now() + RUN_MS;
    await Promise.all(
      clients.map(async (clientID) => {
        while (Date.now() < deadline) await push(clientID);
      }),
    );
    running = false;
    await killing;
    // The pool recovers by itself: every client's next push is answered with success.
    await sleep(300);
    for (const clientID of clients) await push(clientID);
    await killer`SELECT pg_notify('chaos', 'after')`;
    await expect.poll(() => received, { timeout: 10_000 }).toContain('after');
    await stopListening();
    await sql.end({ timeout: 1 });

    console.log(`postgres.js chaos: ${kills} kills, ${reconnects} LISTEN reconnects`, stats);
    expect(escaped).toEqual([]);
    expect(kills).toBeGreaterThan(10);
    expect(stats.slowestMs).toBeLessThan(20_000);
    for (const clientID of clients) {
      const last = acked.get(clientID) ?? 0;
      expect(last).toBeGreaterThan(0);
      // The LMID is the highest id a result was given for; ids past it were never applied.
      expect(await lmid(fx, clientID, 'cg')).toBe(last);
      const rows = await fx.query<{ id: string }>(
        'SELECT id FROM issue WHERE id LIKE $1 ORDER BY id',
        [`${clientID}-%`],
      );
      const expected = Array.from({ length: last }, (_, i) => `${clientID}-${i + 1}`).sort();
      expect(rows.map((r) => r.id)).toEqual(expected);
      for (let id = 1; id <= last; id++) {
        // Applied once: the first answer is success (or alreadyProcessed after a lost
        // answer), never an app error such as a duplicate key from a second application.
        for (const result of results.get(`${clientID}-${id}`) ?? []) {
          expect([{}, { error: 'alreadyProcessed' }]).toContainEqual(result);
        }
      }
    }
    expect(
      (
        await fx.query<{ n: number }>('SELECT count(*)::int AS n FROM reprise."mutationResults"')
      )[0]!.n,
    ).toBe(0);
  }, 60_000);
});
