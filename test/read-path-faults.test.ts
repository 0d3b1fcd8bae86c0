import { createChangeStreams, createPokeHub, silentLogger } from '@reprise/server';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { ADAPTERS, DATABASE_URL } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { pull, push } from './fixtures/pull';

// Pull, the poke hub and a named change stream keep working while the engine's connections
// are killed (pg_terminate_backend) every 30–250 ms: no crash, no hang, and afterwards
// every write is pulled, poked and streamed.

const WRITES = 40;
const KILLING_MS = 3_000;

/** Kills every backend of `url`'s database but its own, at random intervals, until stopped. */
function startKiller(url: string) {
  const admin = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
  const database = new URL(url).pathname.slice(1);
  let stopped = false;
  let kills = 0;
  const loop = (async () => {
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 30 + Math.random() * 220));
      const rows = await admin`
        SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
        WHERE datname = ${database} AND pid <> pg_backend_pid()`;
      kills += rows.filter((row) => row.killed).length;
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    await admin.end();
    return kills;
  };
}

/** Retries `fn` until it succeeds or `ms` pass: a database being killed fails some calls. */
async function eventually<T>(fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

for (const adapter of ADAPTERS.filter((a) => a.concurrent)) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(
    `read paths under killed connections: ${title}`,
    () => {
      it('pulls, pokes and a named change stream survive the kills and miss nothing', async () => {
        const fx = await adapter.create();
        const hub = createPokeHub({ db: fx.db, logger: silentLogger });
        const changes = createChangeStreams({ db: fx.db, schema, logger: silentLogger });
        const aborter = new AbortController();
        try {
          const poke = await hub.handlePokeRequest({
            request: new Request('http://localhost/poke', { signal: aborter.signal }),
            scopes: ['alice'],
            clientGroupID: 'alice-cg',
          });
          let pokes = 0;
          const reading = (async () => {
            const decoder = new TextDecoder();
            const reader = poke.body!.getReader();
            for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
              pokes += decoder.decode(chunk.value).split('event: poke').length - 1;
            }
          })().catch(() => undefined);

          const stream = await changes.stream({ name: 'indexer', table: 'issue' });
          const streamed = new Set<string>();
          const consuming = (async () => {
            for await (const event of stream) {
              if (event.action === 'create') streamed.add(event.created.id);
              if (streamed.size === WRITES + 1) break;
            }
          })();

          const stopKiller = startKiller(fx.url!);
          const started = Date.now();
          let cookie: string | null = null;
          let pulls = 0;
          const pulling = (async () => {
            while (Date.now() - started < KILLING_MS) {
              const res = await pull(fx, cookie);
              // A pull that met a killed connection past its retries answers 503, never 5xx
              // with SQL in it, and the client pulls again.
              if (res.status === 200) {
                cookie = res.body.cookie;
                pulls++;
              } else {
                expect(res.status).toBe(503);
                expect(JSON.stringify(res.body)).not.toMatch(/SELECT|INSERT|UPDATE/);
              }
            }
          })();
          for (let i = 1; i <= WRITES; i++) {
            await eventually(() => push(fx, 'issue.create', { id: `i${i}`, title: `Issue ${i}` }));
          }
          await pulling;
          const kills = await stopKiller();
          expect(kills).toBeGreaterThan(0);

          // After the kills: one more write, heard by the poke stream, and everything pulled.
          const pokesBefore = pokes;
          // An idle connection killed a moment ago fails its next statement once.
          await eventually(() =>
            push(fx, 'issue.create', { id: 'last', title: 'after the kills' }),
          );
          const reset = await eventually(async () => {
            const res = await pull(fx, null);
            if (res.status !== 200) throw new Error(`pull answered ${res.status}`);
            return res.body;
          });
          const pulled = reset.patch
            .filter((op: any) => op.op === 'put')
            .map((op: any) => op.value.id);
          expect(new Set(pulled).size).toBe(WRITES + 1);
          await expect.poll(() => pokes, { timeout: 10_000 }).toBeGreaterThan(pokesBefore);
          await expect.poll(() => streamed.size, { timeout: 15_000 }).toBe(WRITES + 1);
          await consuming;
          console.log(`${adapter.name}: ${kills} connections killed, ${pulls} pulls answered 200`);
          aborter.abort();
          await reading;
        } finally {
          aborter.abort();
          await changes.close();
          await hub.close();
          await fx.close();
        }
      }, 60_000);
    },
  );
}
