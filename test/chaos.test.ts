import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture, DATABASE_URL } from './fixtures/adapters';
import { CHAOS_DDL, type ChaosKind } from './fixtures/chaos-app';
import { auditChaos } from './fixtures/chaos-audit';
import {
  type ChaosClientSpec,
  createStats,
  runChaosClient,
  type Transport,
} from './fixtures/chaos-client';
import { startKiller } from './fixtures/chaos-killer';
import { createRandom, sleep } from './fixtures/chaos-random';
import { inProcessServer, startChildServer } from './fixtures/chaos-servers';

// Chaos: for each real-server driver, simulated clients push thousands of mutations (with
// duplicate, reordered, dropped and timed-out pushes, resent as the client does) to two
// server processes at once, while a loop kills the database connections every 30–250 ms.
// Afterwards the database must show every mutation applied exactly once (or its refusal
// stored), every client's LMID at its last id, the process alive and still serving.

const GROUPS = 2;
const CLIENTS_PER_GROUP = 4;
const MUTATIONS_PER_CLIENT = 640; // 2 × 4 × 640 = 5,120 mutations per driver
const MAX_BATCH = 16;
/** Share of mutations that read-modify-write the shared counter, and that refuse. */
const INCREMENT_SHARE = 0.1;
const REFUSE_SHARE = 0.07;
const KILL_EVERY_MS = { min: 30, max: 250 };
/** The killer stops when every client is done, or after this long. */
const KILL_WINDOW_MS = 40_000;
/**
 * After the killer stops, clients go on until everything is confirmed, but give up when no
 * mutation was confirmed for STALL_MS (a hung server: longer than one push attempt may
 * take, 15 s) or after DRAIN_MS in all; generous, for a shared 2-core machine.
 */
const STALL_MS = 20_000;
const DRAIN_MS = 60_000;
/** A client's patience for one push before it resends. */
const PUSH_TIMEOUT_MS = 3_000;
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

const DRIVERS = ADAPTERS.filter((a) => a.concurrent);
const skipped = DATABASE_URL
  ? undefined
  : 'DATABASE_URL is not set; the chaos suite needs a real Postgres server';

function clientSpecs(seed: number): ChaosClientSpec[] {
  const random = createRandom(seed);
  const specs: ChaosClientSpec[] = [];
  for (let g = 0; g < GROUPS; g++) {
    for (let c = 0; c < CLIENTS_PER_GROUP; c++) {
      const kinds = Array.from({ length: MUTATIONS_PER_CLIENT }, (): ChaosKind => {
        const roll = random.next();
        if (roll < INCREMENT_SHARE) return 'increment';
        return roll < INCREMENT_SHARE + REFUSE_SHARE ? 'refuse' : 'write';
      });
      specs.push({
        clientGroupID: `chaos-g${g}`,
        clientID: `chaos-g${g}-c${c}`,
        kinds,
        seed: random.int(1, 2 ** 31),
      });
    }
  }
  return specs;
}

/** A fresh client's first push, which every server must still apply after the chaos. */
async function freshPush(transport: Transport, clientID: string): Promise<string> {
  const reply = await transport.send(
    {
      clientGroupID: 'chaos-g0',
      pushVersion: 1,
      timestamp: Date.now(),
      requestID: `${clientID}-1`,
      mutations: [
        {
          type: 'custom',
          id: 1,
          clientID,
          name: 'chaos.write',
          args: [{ clientGroupID: 'chaos-g0' }],
          timestamp: Date.now(),
        },
      ],
    },
    10_000,
  );
  if (typeof reply === 'string') return `${transport.name}: ${reply}`;
  const result = reply.body?.mutations?.[0]?.result;
  return reply.status === 200 && result && Object.keys(result).length === 0
    ? 'ok'
    : `${transport.name}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`;
}

/** Closes the fixture, or drops its database by force if its pool no longer answers. */
async function closeFixture(fx: AdapterFixture) {
  const closed = await Promise.race([fx.close().then(() => true), sleep(10_000).then(() => false)]);
  if (closed) return;
  const name = new URL(fx.url!).pathname.slice(1);
  const admin = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

// Anything escaping the engine in this process; a real server would crash on it.
const escaped: string[] = [];
let escapedCount = 0;
const onEscape = (kind: string) => (error: unknown) => {
  escapedCount++;
  if (escaped.length < 10) escaped.push(`${kind}: ${String(error)}`);
};
const onUncaught = onEscape('uncaughtException');
const onRejection = onEscape('unhandledRejection');

describe.skipIf(skipped !== undefined)(
  `chaos: killed connections under load${skipped ? ` [skipped: ${skipped}]` : ''}`,
  () => {
    beforeAll(() => {
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onRejection);
    });
    afterAll(() => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
    });

    for (const driver of DRIVERS) {
      it(
        `${driver.name}: nothing lost, duplicated or stuck; the process survives and serves`,
        async () => {
          const started = Date.now();
          escaped.length = 0;
          escapedCount = 0;
          const fx = await driver.create();
          for (const statement of CHAOS_DDL) await fx.query(statement);
          const child = await startChildServer(fx.url!, driver.name);
          const rejections: string[] = [];
          const transports = [inProcessServer(fx, rejections), child.transport];
          const clients = clientSpecs(SEED);
          const stats = createStats();
          const killer = startKiller({
            adminURL: DATABASE_URL!,
            database: new URL(fx.url!).pathname.slice(1),
            seed: SEED,
            minMs: KILL_EVERY_MS.min,
            maxMs: KILL_EVERY_MS.max,
          });
          try {
            let drainEnds = Number.POSITIVE_INFINITY;
            const giveUp = () =>
              Date.now() > drainEnds ||
              (drainEnds < Number.POSITIVE_INFINITY && Date.now() - stats.lastProgress > STALL_MS);
            const running = Promise.all(
              clients.map((spec) =>
                runChaosClient(spec, {
                  transports,
                  stats,
                  maxBatch: MAX_BATCH,
                  timeoutMs: PUSH_TIMEOUT_MS,
                  giveUp,
                }),
              ),
            );
            await Promise.race([running, sleep(KILL_WINDOW_MS)]);
            const killed = await killer.stop();
            drainEnds = Date.now() + DRAIN_MS;
            const confirmed = await running;
            const acked = new Map(
              clients.map((c, i) => [`${c.clientGroupID}/${c.clientID}`, confirmed[i]!]),
            );
            const audit = await auditChaos(fx.url!, clients, acked);
            const fresh = await Promise.all(
              transports.map((t, i) => freshPush(t, `chaos-fresh-${i}`)),
            );
            const seconds = ((Date.now() - started) / 1000).toFixed(1);
            console.log(
              `chaos ${driver.name} seed=${SEED}: ${clients.length * MUTATIONS_PER_CLIENT} mutations, ` +
                `${stats.pushes} pushes (${stats.status503} 503, ${stats.ooo} ooo, ${stats.timeouts} timed out, ` +
                `${stats.network} unreachable, ${stats.dropped} dropped, ${stats.duplicates} doubled, ` +
                `${stats.reorders} reordered), ${killed.kills} kills in ${killed.ticks} ticks; ` +
                `lost ${audit.lost}, duplicated ${audit.duplicated}, stuck ${audit.stuck}, ` +
                `leaked ${audit.leaked}, child crashes ${child.crashes.length}, ` +
                `escaped ${escapedCount}; ${seconds}s`,
            );
            // Everything on one object, so a failure shows every figure at once.
            expect(
              {
                lost: audit.lost,
                duplicated: audit.duplicated,
                stuck: audit.stuck,
                leaked: audit.leaked,
                lmidNotHighestConfirmed: audit.lmidMismatch,
                counter: audit.counter.value - audit.counter.increments,
                counterVsEffects: audit.counter.value - audit.counter.applied,
                samples: audit.samples,
                anomalies: stats.anomalies,
                unexpectedStatuses: stats.unexpected,
                handlerRejections: rejections,
                childCrashes: child.crashes,
                escapedInTestProcess: escapedCount,
                escapedSamples: [...escaped],
                freshPush: fresh,
                killerErrors: killed.errors,
              },
              `chaos seed ${SEED} (rerun with CHAOS_SEED=${SEED})`,
            ).toEqual({
              lost: 0,
              duplicated: 0,
              stuck: 0,
              leaked: 0,
              lmidNotHighestConfirmed: 0,
              counter: 0,
              counterVsEffects: 0,
              samples: [],
              anomalies: [],
              unexpectedStatuses: [],
              handlerRejections: [],
              childCrashes: [],
              escapedInTestProcess: 0,
              escapedSamples: [],
              freshPush: ['ok', 'ok'],
              killerErrors: [],
            });
            // The chaos really happened: connections died and reordered pushes were refused.
            expect(killed.kills, `seed ${SEED}`).toBeGreaterThan(0);
            expect(stats.ooo, `seed ${SEED}`).toBeGreaterThan(0);
          } finally {
            await killer.stop().catch(() => {});
            await child.stop();
            await closeFixture(fx);
          }
        },
        KILL_WINDOW_MS + DRAIN_MS + 60_000,
      );
    }
  },
);
