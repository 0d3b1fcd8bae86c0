import { type ClientStorage, createMemoryStorage } from '@reprise/client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  clientIssues,
  createTestServer,
  openClient,
  serverIssues,
  type TestClient,
} from './fixtures/client';

// Random interleavings of mutate, push, pull, lost push responses and reloads on two
// clients: after both are idle, both stores equal Postgres. Each run is short (up to
// STEPS steps) so that RUNS runs fit in about a minute on PGlite.

const RUNS = Number(process.env.CLIENT_PROPERTY_RUNS ?? 1000);
const STEPS = 6;
const ids = fc.constantFrom('a', 'b', 'c');
const who = fc.constantFrom(0, 1);
const step = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), who, id: ids }),
  fc.record({
    kind: fc.constant('rename' as const),
    who,
    id: ids,
    title: fc.string({ maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('remove' as const), who, id: ids }),
  fc.record({ kind: fc.constant('push' as const), who }),
  fc.record({ kind: fc.constant('pull' as const), who }),
  fc.record({ kind: fc.constant('drop' as const) }),
  fc.record({ kind: fc.constant('reload' as const), who }),
);

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

describe('client convergence (property)', () => {
  let fx: AdapterFixture;
  beforeAll(async () => {
    fx = await pglite.create();
  });
  afterAll(() => fx.close());

  it(`${RUNS} random runs of two clients end equal to Postgres`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: STEPS }), async (steps) => {
        await fx.reset();
        const server = createTestServer(fx);
        const storages: ClientStorage[] = [createMemoryStorage(), createMemoryStorage()];
        const clients: TestClient[] = [
          await openClient(server, fx, { storage: storages[0]! }),
          await openClient(server, fx, { storage: storages[1]! }),
        ];
        try {
          for (const s of steps) {
            if (s.kind === 'drop') server.dropPushResponses++;
            else if (s.kind === 'reload') {
              await clients[s.who]!.close();
              clients[s.who] = await openClient(server, fx, { storage: storages[s.who]! });
            } else if (s.kind === 'push' || s.kind === 'pull') await clients[s.who]!.pull();
            else {
              const m = clients[s.who]!.mutate.issue;
              const call =
                s.kind === 'create'
                  ? m.create({ id: s.id, title: 'new' })
                  : s.kind === 'rename'
                    ? m.rename({ id: s.id, title: s.title })
                    : m.remove({ id: s.id });
              await call.client.catch(() => {}); // a local refusal (duplicate id) is fine
            }
          }
          await Promise.all(clients.map((c) => c.idle()));
          await Promise.all(clients.map((c) => c.pull()));
          const expected = await serverIssues(fx);
          expect(await clientIssues(clients[0]!)).toEqual(expected);
          expect(await clientIssues(clients[1]!)).toEqual(expected);
        } finally {
          for (const c of clients) await c.close();
        }
      }),
      { numRuns: RUNS },
    );
  }, 180_000);
});
