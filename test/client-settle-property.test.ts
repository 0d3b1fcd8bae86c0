import type { MutationCall, SettledMutation } from '@reprise/client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  clientIssues,
  createTestServer,
  openClient,
  serverIssues,
  slowStorage,
  type TestClient,
} from './fixtures/client';
import { count, lmid } from './fixtures/push';

// Random interleavings of mutate (not awaited), awaited pulls, unawaited pulls (what a poke
// does), lost push answers, pauses and reloads on two tabs of one group over one storage
// whose writes take a random few milliseconds. Afterwards every `server` promise has
// settled once, with the server's recorded outcome (or ClientClosedError for a tab that
// closed first), each tab reported each mutation at most once, and every queued mutation
// was applied exactly once.

const RUNS = Number(process.env.CLIENT_SETTLE_RUNS ?? 25);
const STEPS = 12;
const who = fc.constantFrom(0, 1);
const step = fc.oneof(
  fc.record({ kind: fc.constantFrom('create', 'comment', 'refuse'), who }),
  fc.record({ kind: fc.constantFrom('pull', 'poke', 'reload'), who }),
  fc.record({ kind: fc.constant('drop'), who }),
  fc.record({ kind: fc.constant('pause'), who, ms: fc.integer({ min: 0, max: 30 }) }),
);

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const AT = new Date('2026-01-02T03:04:05.000Z');

interface Call {
  readonly kind: 'create' | 'comment' | 'refuse';
  readonly tab: Tab;
  readonly call: MutationCall<unknown>;
  /** Settles true once `client` resolved (queued), false if it rejected. */
  readonly queued: Promise<boolean>;
}

interface Tab {
  readonly client: TestClient;
  readonly settled: SettledMutation[];
}

async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
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

describe('server promises under random timing (property)', () => {
  let fx: AdapterFixture;
  beforeAll(async () => {
    fx = await pglite.create();
  });
  afterAll(() => fx.close());

  it(`${RUNS} random runs: every server promise settles once with the recorded outcome`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: STEPS }),
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }),
        async (steps, delays) => {
          await fx.reset();
          const server = createTestServer(fx);
          let write = 0;
          const storage = slowStorage(0);
          // Each write takes the next delay of the run, cycling.
          const timed = {
            ...storage,
            set: async (key: string, value: unknown) => {
              await sleep(delays[write++ % delays.length]!);
              await storage.set(key, value);
            },
            batch: async (writes: Parameters<NonNullable<typeof storage.batch>>[0]) => {
              await sleep(delays[write++ % delays.length]!);
              await storage.batch!(writes);
            },
          };
          const open = async (): Promise<Tab> => {
            const client = await openClient(server, fx, { storage: timed });
            const settled: SettledMutation[] = [];
            client.onMutationSettled((s) => settled.push(s));
            return { client, settled };
          };
          const tabs: Tab[] = [await open(), await open()];
          const all: Tab[] = [...tabs];
          const calls: Call[] = [];
          let n = 0;
          try {
            for (const s of steps) {
              const tab = tabs[s.who]!;
              const m = tab.client.mutate;
              if (s.kind === 'drop') server.dropPushResponses++;
              else if (s.kind === 'pause') await sleep(s.ms);
              else if (s.kind === 'pull') await tab.client.pull();
              else if (s.kind === 'poke') void tab.client.pull();
              else if (s.kind === 'reload') {
                await tab.client.close();
                tabs[s.who] = await open();
                all.push(tabs[s.who]!);
              } else {
                const id = `${s.kind}${++n}`;
                const call =
                  s.kind === 'create'
                    ? m.issue.create({ id, title: id })
                    : s.kind === 'comment'
                      ? m.comment.add({ id, issueID: 'x', body: id })
                      : m.review.refuse({ id });
                const queued = call.client.then(
                  () => true,
                  () => false,
                );
                calls.push({ kind: s.kind, tab, call, queued });
              }
            }
            for (const tab of tabs) await within(tab.client.idle(), 'idle');

            for (const { kind, tab, call, queued } of calls) {
              const outcome = await within(call.server, kind);
              expect(await queued).toBe(true);
              if (!outcome.ok && outcome.error.code === 'closed') continue;
              if (kind === 'create') expect(outcome).toEqual({ ok: true, data: undefined });
              if (kind === 'comment') {
                expect(outcome).toEqual({
                  ok: true,
                  data: { commentID: expect.any(String), at: AT },
                });
              }
              if (kind === 'refuse') {
                expect(!outcome.ok && outcome.error.message).toBe('Refused');
              }
              // The tab reported its own mutation once, with the same outcome.
              const reports = tab.settled.filter(
                (r) => r.clientID === tab.client.clientID && r.name !== '' && r.outcome === outcome,
              );
              expect(reports).toHaveLength(1);
            }
            for (const tab of all) {
              const keys = tab.settled.map((r) => `${r.clientID}/${r.id}`);
              expect(new Set(keys).size).toBe(keys.length);
            }
            // Every queued mutation applied exactly once: closed tabs' ones by a reload or
            // an adopter. Refused ones leave no row but use up their id.
            const byKind = (kind: Call['kind']) => calls.filter((c) => c.kind === kind).length;
            expect(await count(fx, 'issue')).toBe(byKind('create'));
            expect(await count(fx, 'comment')).toBe(byKind('comment'));
            const ids = new Set(all.map((t) => t.client.clientID));
            let applied = 0;
            for (const id of ids)
              applied += (await lmid(fx, id, tabs[0]!.client.clientGroupID)) ?? 0;
            expect(applied).toBe(calls.length);
            for (const tab of tabs) await tab.client.pull();
            for (const tab of tabs) {
              expect(await clientIssues(tab.client)).toEqual(await serverIssues(fx));
            }
          } finally {
            for (const tab of tabs) await tab.client.close();
          }
        },
      ),
      { numRuns: RUNS },
    );
  }, 300_000);
});
