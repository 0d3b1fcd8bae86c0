import { beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture, type AdapterKind } from './fixtures/adapters';
import { count, lmid, post, pushBody } from './fixtures/push';

// Concurrency: two processes (two pools) pushing for one client, and many clients racing on
// a read-modify-write mutator. On the real server these race for real; the embedded
// databases run them too, though they take transactions one at a time.

const HOT_CLIENTS = 20;
// The target is 20 × 200 (measured: 0 of 4,000 pushes answered 503 on postgres.js and
// node-postgres); the suite runs half of it on the two drivers, to keep CI short. How often
// pushes conflict and how the back-off spreads their retries is the engine's; an ORM over
// node-postgres (kysely, Prisma) only has to hand each serialization failure back so the
// engine retries it, which a tenth of the run shows as well: every client but one conflicts
// in each round. (At full length those two took 13 of the file's 30 s run alone.)
const HOT_INCREMENTS = 100;
const HOT_INCREMENTS_OVER_ORM = 10;
const hotIncrements = (adapter: AdapterKind) =>
  adapter.over === undefined ? HOT_INCREMENTS : HOT_INCREMENTS_OVER_ORM;

const increment = (id: number, clientID: string) => ({
  id,
  clientID,
  name: 'counter.increment',
  args: { id: 'hits' },
});

async function counterValue(fx: AdapterFixture) {
  const rows = await fx.query<{ value: number }>(`SELECT value FROM counter WHERE id = 'hits'`);
  return Number(rows[0]?.value ?? 0);
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`concurrency: ${title}`, () => {
    // The adapter's first fixture builds its template (and, for PGlite, loads it): this
    // file starts first, while every worker is starting up, and that once took 26–32 s of
    // the first test's 30. Built here, the tests' own fixtures come from the template.
    beforeAll(async () => {
      const fx = await adapter.create();
      await fx.close();
    }, 120_000);

    it("one client's mutations apply once each when two pools receive the same pushes at once", async () => {
      const a = await adapter.create();
      // A second pool over the same database stands in for a second server process.
      const b = adapter.connect ? await adapter.connect(a) : { ...a, close: async () => {} };
      try {
        const ids = Array.from({ length: 20 }, (_, i) => i + 1);
        const body = pushBody(ids.map((id) => increment(id, 'c1')));
        const [ra, rb] = await Promise.all([post(a, body), post(b, body)]);
        const applied = ids.map(
          (_, i) =>
            [ra, rb].filter((r) => r.status === 200 && !('error' in r.body.mutations[i].result))
              .length,
        );
        // Each id was applied by exactly one of the two pushes; the other saw it as done.
        expect(applied).toEqual(ids.map(() => 1));
        expect(await counterValue(a)).toBe(20);
        expect(await lmid(a)).toBe(20);
      } finally {
        await b.close();
        await a.close();
      }
    });

    it('8 clients running a read-modify-write mutator 200 times leave the counter exact', async () => {
      const fx = await adapter.create();
      try {
        const clients = Array.from({ length: 8 }, (_, i) => `client${i}`);
        let successes = 0;
        await Promise.all(
          clients.map(async (clientID, c) => {
            // Each client pushes its 25 mutations in batches of 1 to 5, resending whatever a
            // push reports unprocessed, as the client's push loop would.
            let next = 1;
            for (let round = 0; next <= 25 && round < 200; round++) {
              const size = Math.min(25 - next + 1, 1 + ((round + c) % 5));
              const batch = Array.from({ length: size }, (_, i) => increment(next + i, clientID));
              const res = await post(fx, pushBody(batch, { clientGroupID: `g-${clientID}` }), {
                userID: 'alice',
              });
              if (res.body.kind !== 'MutateResponse') continue;
              for (const m of res.body.mutations) {
                if (!('error' in m.result)) successes++;
              }
              next += res.body.mutations.length;
            }
          }),
        );
        expect(successes).toBe(200);
        expect(await counterValue(fx)).toBe(successes);
        expect(await count(fx, 'reprise.clients')).toBe(8);
      } finally {
        await fx.close();
      }
    });

    // A hot row under serializable isolation: every push but one in each round conflicts.
    // Retries back off with jitter under a time budget, so almost none run out (target:
    // at most 1% of pushes answered 503), and the counter stays exact.
    it.runIf(adapter.concurrent && !adapter.name.startsWith('drizzle'))(
      `${HOT_CLIENTS} clients each incrementing one row ${hotIncrements(adapter)} times: exact, with at most 1% of pushes answered 503`,
      async () => {
        const increments = hotIncrements(adapter);
        const fx = await adapter.create();
        try {
          let pushes = 0;
          let unavailable = 0;
          await Promise.all(
            Array.from({ length: HOT_CLIENTS }, async (_, c) => {
              const clientID = `hot${c}`;
              for (let next = 1; next <= increments; ) {
                const res = await post(
                  fx,
                  pushBody([increment(next, clientID)], { clientGroupID: `g-${clientID}` }),
                );
                pushes++;
                if (res.status === 503) unavailable++;
                if (res.status === 200) next++;
              }
            }),
          );
          console.log(`${adapter.name}: ${pushes} pushes, ${unavailable} answered 503`);
          expect(await counterValue(fx)).toBe(HOT_CLIENTS * increments);
          expect(unavailable / pushes).toBeLessThanOrEqual(0.01);
        } finally {
          await fx.close();
        }
      },
      240_000,
    );
  });
}
