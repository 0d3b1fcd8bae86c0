import { handleMutateRequest, silentLogger } from '@reprise/server';
import { ApplicationError, createMutatorDefiner, defineMutators } from '@reprise/shared';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture, DATABASE_URL } from './fixtures/adapters';
import { type RawExec, schema } from './fixtures/app';
import { count, lmid, pushBody } from './fixtures/push';

// A connection lost in the middle of a mutation must never use up the mutation's id: the
// transaction runs again on a fresh connection and the mutation applies exactly once. The
// kills are real (pg_terminate_backend); only whether a mutator kills on this run is
// scripted.

interface Ctx {
  readonly userID: string;
  readonly raw: RawExec;
  /** Kills the backend with this pid from another connection. */
  readonly kill: (pid: number) => Promise<void>;
}

const defineMutator = createMutatorDefiner<typeof schema, Ctx>();
/** How many times each mutation id has run on the server, per test. */
const runs = new Map<string, number>();
const ranBefore = (id: string) => {
  const n = runs.get(id) ?? 0;
  runs.set(id, n + 1);
  return n > 0;
};
const insert = (tx: any, id: string) =>
  tx.mutate.issue.insert({ id, title: 'kept', ownerID: 'alice' });

const mutators = defineMutators({
  issue: {
    create: defineMutator(async ({ tx, args }: { tx: any; args: { id: string } }) => {
      await insert(tx, args.id);
    }),
  },
  faulty: {
    /** Kills its own connection with a statement, the first time it runs. */
    killedInStatement: defineMutator(async ({ tx, args, ctx }: any) => {
      if (!ranBefore(args.id)) {
        await ctx.raw(
          tx.dbTransaction.wrappedTransaction,
          'SELECT pg_terminate_backend(pg_backend_pid())',
          [],
        );
      }
      await insert(tx, args.id);
    }),
    /**
     * The first time it runs, its connection is killed from outside while the mutator is
     * busy in JavaScript, so the driver hears of it with no statement running.
     */
    killedBetweenStatements: defineMutator(async ({ tx, args, ctx }: any) => {
      const wrapped = tx.dbTransaction.wrappedTransaction;
      const [row] = (await ctx.raw(wrapped, 'SELECT pg_backend_pid() AS pid', [])) as Array<{
        pid: number;
      }>;
      if (!ranBefore(args.id)) {
        await ctx.kill(row!.pid);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await insert(tx, args.id);
    }),
    /** Throws an error nobody can classify, the first time only. */
    flakyOnce: defineMutator(async ({ tx, args }: any) => {
      if (!ranBefore(args.id)) throw new Error('mystery failure');
      await insert(tx, args.id);
    }),
    /** Writes, then throws a plain error every time. */
    alwaysThrows: defineMutator(async ({ tx, args }: any) => {
      ranBefore(args.id);
      await insert(tx, args.id);
      throw new TypeError('always broken');
    }),
    refuses: defineMutator(async ({ args }: any) => {
      ranBefore(args.id);
      throw new ApplicationError('No.');
    }),
  },
});

async function push(fx: AdapterFixture, kill: Ctx['kill'], specs: Array<[string, string]>) {
  const body = pushBody(specs.map(([name, id], i) => ({ id: i + 1, name, args: { id } })));
  const response = await handleMutateRequest({
    db: fx.db,
    schema,
    mutators,
    context: { userID: 'alice', raw: fx.raw, kill },
    userID: 'alice',
    logger: silentLogger,
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    request: new Request('http://localhost/mutate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  });
  const json = (await response.json()) as any;
  return { status: response.status, results: json.mutations?.map((m: any) => m.result) };
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`lost connections: ${title}`, () => {
    let fx: AdapterFixture;
    let admin: postgres.Sql | undefined;
    const kill = async (pid: number) => {
      await admin!`SELECT pg_terminate_backend(${pid})`;
    };
    beforeAll(async () => {
      fx = await adapter.create();
      if (adapter.concurrent) admin = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
    });
    beforeEach(async () => {
      runs.clear();
      await fx.reset();
    });
    afterAll(async () => {
      await admin?.end();
      await fx.close();
    });

    it('an error that does not happen again on a fresh transaction is not the mutation result', async () => {
      const res = await push(fx, kill, [['faulty.flakyOnce', 'a']]);
      expect(res.results).toEqual([{}]);
      expect(runs.get('a')).toBe(2);
      expect(await count(fx, 'issue')).toBe(1);
      expect(await count(fx, 'reprise."mutationResults"')).toBe(0);
    });

    it('an error that happens again is the result, after one more run, with no writes kept', async () => {
      const res = await push(fx, kill, [
        ['faulty.alwaysThrows', 'a'],
        ['issue.create', 'b'],
      ]);
      expect(res.results).toEqual([{ error: 'app', message: 'always broken' }, {}]);
      expect(runs.get('a')).toBe(2);
      expect(await count(fx, 'issue')).toBe(1);
      expect(await lmid(fx)).toBe(2);
    });

    it('an ApplicationError is the result at once: the mutator runs once', async () => {
      const res = await push(fx, kill, [['faulty.refuses', 'a']]);
      expect(res.results).toEqual([{ error: 'app', message: 'No.' }]);
      expect(runs.get('a')).toBe(1);
    });

    if (!adapter.concurrent) return;

    for (const name of ['faulty.killedInStatement', 'faulty.killedBetweenStatements']) {
      for (const position of ['first', 'second'] as const) {
        it(`${name} as the ${position} mutation of its transaction applies once, and the pool serves on`, async () => {
          const specs: Array<[string, string]> =
            position === 'first'
              ? [
                  [name, 'k'],
                  ['issue.create', 'after'],
                ]
              : [
                  ['issue.create', 'before'],
                  [name, 'k'],
                ];
          const res = await push(fx, kill, specs);
          expect(res).toEqual({ status: 200, results: [{}, {}] });
          expect(runs.get('k')).toBe(2);
          expect(await count(fx, 'issue')).toBe(2);
          expect(await count(fx, 'reprise."mutationResults"')).toBe(0);
          expect(await lmid(fx)).toBe(2);
        });
      }
    }
  });
}
