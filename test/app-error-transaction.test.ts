import type { Database, DatabaseTransaction } from '@reprise/server';
import {
  ApplicationError,
  createBuilder,
  createMutatorDefiner,
  defineMutators,
  type MutatorDefinition,
} from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema, type TestContext } from './fixtures/app';
import { count, lmid, post, pushBody } from './fixtures/push';

// A push's mutations run without savepoints. When one is refused with an ApplicationError
// before it could have written, its failure is recorded in that same transaction; when it
// may have written (or, as the first mutation, failed otherwise), the transaction rolls
// back and a second one records it, with a savepoint for a later mutation. Both leave the
// same state behind.

const defineMutator = createMutatorDefiner<typeof schema, TestContext>();
const q = createBuilder(schema);
const refusal = (id: string) => new ApplicationError('Refused', { details: { id } });
const byID = z.object({ id: z.string() });

/** `onFailure` calls, with how many results were committed when each ran. */
const failures: Array<{ id: string; committedResults: number }> = [];
let fx: AdapterFixture;

/** The definition with an `onFailure` hook that notes its call. */
const noted = <D extends MutatorDefinition>(definition: D): D => ({
  ...definition,
  onFailure: async (_error: unknown, { args }: { args: unknown }) => {
    failures.push({
      id: (args as { id: string }).id,
      committedResults: await count(fx, 'reprise."mutationResults"'),
    });
  },
});

/** What became of the call `t.refuseThenWriteLate` leaves behind. */
let late: Promise<string> | undefined;
/** How often `t.crash` and `t.refuseAfterWritingOnce` ran. */
let runs = 0;

const mutators = defineMutators({
  t: {
    create: defineMutator(byID, async ({ tx, args }) => {
      await tx.mutate.issue.insert({ id: args.id, title: 'kept', ownerID: 'alice' });
    }),
    refuseAtOnce: noted(
      defineMutator(byID, async ({ args }) => {
        throw refusal(args.id);
      }),
    ),
    refuseAfterReading: noted(
      defineMutator(byID, async ({ tx, args }) => {
        const found = await tx.run(q.issue.where('id', args.id).one());
        throw refusal(found ? `${args.id} exists` : args.id);
      }),
    ),
    refuseAfterFailedRead: noted(
      defineMutator(byID, async ({ tx, args }) => {
        await tx.run(q.issue.where('id', args.id).one()).catch(() => undefined);
        throw refusal(args.id);
      }),
    ),
    refuseAfterWriting: noted(
      defineMutator(byID, async ({ tx, args }) => {
        await tx.mutate.issue.insert({ id: args.id, title: 'doomed', ownerID: 'alice' });
        throw refusal(args.id);
      }),
    ),
    refuseAfterRawWrite: noted(
      defineMutator(byID, async ({ tx, args, ctx }) => {
        if (tx.location === 'server') {
          await ctx.raw(
            tx.dbTransaction.wrappedTransaction,
            `INSERT INTO comment (id, issue_id, body) VALUES ($1, 'x', 'raw')`,
            [args.id],
          );
        }
        throw refusal(args.id);
      }),
    ),
    refuseWithWriteInFlight: noted(
      defineMutator(byID, async ({ tx, args }) => {
        // Not awaited: the insert may not have reached the database when the mutator throws.
        tx.mutate.issue
          .insert({ id: args.id, title: 'doomed', ownerID: 'alice' })
          .catch(() => undefined);
        throw refusal(args.id);
      }),
    ),
    refuseThenWriteLate: noted(
      defineMutator(byID, async ({ tx, args }) => {
        late = new Promise((resolve) => {
          setTimeout(() => {
            try {
              tx.mutate.issue.insert({ id: args.id, title: 'late', ownerID: 'alice' }).then(
                () => resolve('written'),
                (error: Error) => resolve(error.message),
              );
            } catch (error) {
              resolve((error as Error).message);
            }
          }, 0);
        });
        throw refusal(args.id);
      }),
    ),
    crash: noted(
      defineMutator(byID, async () => {
        runs++;
        throw new TypeError('boom');
      }),
    ),
    // Refuses after writing the first time it runs, and writes the second time.
    refuseAfterWritingOnce: noted(
      defineMutator(byID, async ({ tx, args }) => {
        await tx.mutate.issue.insert({ id: args.id, title: 'second time', ownerID: 'alice' });
        if (++runs === 1) throw refusal(args.id);
      }),
    ),
  },
});

/** Counts the transactions the engine opens and those that commit. */
function counting(db: Database<any>) {
  const counts = { begun: 0, committed: 0 };
  const counted: Database<any> = {
    ...db,
    async transaction(fn, options) {
      counts.begun++;
      const value = await db.transaction(fn, options);
      counts.committed++;
      return value;
    },
  };
  return { db: counted, counts };
}

/** Makes the mutator's reads of `issue` fail as a bad statement would, on the database. */
function failingReads(db: Database<any>): Database<any> {
  const wrap = (tx: DatabaseTransaction<any>): DatabaseTransaction<any> => ({
    ...tx,
    query: async (text, params) => {
      if (/^SELECT .* FROM "issue"/s.test(text)) {
        // Fails in the database where it can, so a real server aborts the transaction.
        await tx.query('SELECT 1/0');
        throw Object.assign(new Error('division by zero'), { code: '22012' });
      }
      return tx.query(text, params);
    },
    savepoint: (fn) => tx.savepoint((inner) => fn(wrap(inner))),
  });
  return { ...db, transaction: (fn, options) => db.transaction((tx) => fn(wrap(tx)), options) };
}

const results = async () =>
  (
    await fx.query<{ mutationID: string | number; result: any }>(
      `SELECT "mutationID", "result" FROM reprise."mutationResults" ORDER BY "mutationID"`,
    )
  ).map((r) => ({ mutationID: Number(r.mutationID), result: r.result.json }));

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`application errors: ${title}`, () => {
    beforeAll(async () => {
      fx = await adapter.create();
    });
    beforeEach(async () => {
      await fx.reset();
      failures.length = 0;
      late = undefined;
      runs = 0;
    });
    afterAll(async () => {
      await fx.close();
    });

    /** Pushes `name` as mutation 1 of a new client, then `t.create` as mutation 2. */
    const pushRefusal = async (name: string, id = 'x1', db = fx.db) => {
      const { db: counted, counts } = counting(db);
      const res = await post(
        fx,
        pushBody([
          { id: 1, name, args: { id } },
          { id: 2, name: 't.create', args: { id: 'ok2' } },
        ]),
        { db: counted, mutators },
      );
      return { res, counts };
    };
    const expectRecorded = async (details: { id: string }) => {
      expect(await lmid(fx)).toBe(2);
      expect(await results()).toEqual([
        { mutationID: 1, result: { error: 'app', message: 'Refused', details } },
      ]);
      const issues = await fx.query<{ id: string }>('SELECT id FROM issue ORDER BY id');
      expect(issues.map((r) => r.id)).toEqual(['ok2']);
      expect(await count(fx, 'comment')).toBe(0);
      // Once, after the result committed.
      expect(failures).toEqual([{ id: 'x1', committedResults: 1 }]);
    };

    it('a refusal before any statement is recorded in its own transaction: one commit for the push', async () => {
      const { res, counts } = await pushRefusal('t.refuseAtOnce');
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'app', message: 'Refused', details: { id: 'x1' } },
        {},
      ]);
      expect(counts).toEqual({ begun: 1, committed: 1 });
      await expectRecorded({ id: 'x1' });
    });

    it('a refusal after reads through tx.run is recorded in the same transaction', async () => {
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('x1', 'old', 'bob')`);
      const { counts } = await pushRefusal('t.refuseAfterReading');
      expect(counts).toEqual({ begun: 1, committed: 1 });
      expect(await results()).toEqual([
        {
          mutationID: 1,
          result: { error: 'app', message: 'Refused', details: { id: 'x1 exists' } },
        },
      ]);
      expect(await lmid(fx)).toBe(2);
    });

    it('a validation failure or an unknown name as the first mutation costs one transaction', async () => {
      const { db, counts } = counting(fx.db);
      const res = await post(
        fx,
        pushBody([
          { id: 1, name: 'issue.create', args: { id: 'i1', title: '' } },
          { id: 2, name: 'no.such' },
          { id: 3, name: 'issue.create', args: { id: 'i3', title: 'Three' } },
        ]),
        { db },
      );
      expect(res.body.mutations.map((m: any) => m.result.error ?? 'ok')).toEqual([
        'app',
        'app',
        'ok',
      ]);
      expect(counts).toEqual({ begun: 1, committed: 1 });
      expect(await lmid(fx)).toBe(3);
      expect((await results()).map((r) => r.mutationID)).toEqual([1, 2]);
      expect(await count(fx, 'issue')).toBe(1);
    });

    it('a refusal after a tx.mutate write rolls back and is recorded by a second transaction', async () => {
      const { counts } = await pushRefusal('t.refuseAfterWriting');
      await expectRecorded({ id: 'x1' });
      expect(counts).toEqual({ begun: 2, committed: 1 });
    });

    it('a refusal after raw SQL through wrappedTransaction rolls back: two transactions', async () => {
      const { counts } = await pushRefusal('t.refuseAfterRawWrite');
      await expectRecorded({ id: 'x1' });
      expect(counts).toEqual({ begun: 2, committed: 1 });
    });

    it('a refusal with a tx.mutate write still in flight rolls back: two transactions', async () => {
      const { counts } = await pushRefusal('t.refuseWithWriteInFlight');
      await expectRecorded({ id: 'x1' });
      expect(counts).toEqual({ begun: 2, committed: 1 });
    });

    it('a refusal after a read that failed in the database rolls back: two transactions', async () => {
      const { counts } = await pushRefusal('t.refuseAfterFailedRead', 'x1', failingReads(fx.db));
      await expectRecorded({ id: 'x1' });
      expect(counts).toEqual({ begun: 2, committed: 1 });
    });

    it('tx.mutate used after the mutator refused throws, and nothing is written', async () => {
      const { counts } = await pushRefusal('t.refuseThenWriteLate');
      expect(await late).toMatch(/tx\.mutate was used after mutation 1 of client c1 had failed/);
      await expectRecorded({ id: 'x1' });
      expect(counts).toEqual({ begun: 1, committed: 1 });
    });

    it('any other throw as the first mutation still runs again in a fresh transaction', async () => {
      const { db, counts } = counting(fx.db);
      const res = await post(
        fx,
        pushBody([
          { id: 1, name: 't.crash', args: { id: 'x1' } },
          { id: 2, name: 't.create', args: { id: 'ok2' } },
        ]),
        { db, mutators },
      );
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'app', message: 'boom' },
        {},
      ]);
      expect(runs).toBe(2);
      expect(counts).toEqual({ begun: 2, committed: 1 });
      expect(failures).toEqual([{ id: 'x1', committedResults: 1 }]);
    });

    describe('as a later mutation of the push', () => {
      /** Pushes `t.create` ok1, then `name` as mutation 2, then `t.create` ok3. */
      const pushBetween = async (name: string, db = fx.db, id = 'x2') => {
        const { db: counted, counts } = counting(db);
        const res = await post(
          fx,
          pushBody([
            { id: 1, name: 't.create', args: { id: 'ok1' } },
            { id: 2, name, args: { id } },
            { id: 3, name: 't.create', args: { id: 'ok3' } },
          ]),
          { db: counted, mutators },
        );
        expect(res.status).toBe(200);
        return { results: res.body.mutations.map((m: any) => m.result), counts };
      };
      const issueIDs = async () =>
        (await fx.query<{ id: string }>('SELECT id FROM issue ORDER BY id')).map((r) => r.id);
      const expectRecorded = async (result: object) => {
        expect(await lmid(fx)).toBe(3);
        expect(await results()).toEqual([{ mutationID: 2, result }]);
        // The mutations around it applied once each, whatever ran twice.
        expect(await issueIDs()).toEqual(['ok1', 'ok3']);
        expect(await count(fx, 'comment')).toBe(0);
      };
      const refused = { error: 'app', message: 'Refused', details: { id: 'x2' } };
      /** Pushes each refusing mutator between two creates, from a fresh database. */
      const expectRefusals = async (names: string[], begun: number) => {
        for (const name of names) {
          await fx.reset();
          failures.length = 0;
          const { results: answers, counts } = await pushBetween(name);
          expect(answers, name).toEqual([{}, refused, {}]);
          expect(counts, name).toEqual({ begun, committed: 1 });
          await expectRecorded(refused);
          // Once, after the result committed: not for an attempt that rolled back.
          expect(failures, name).toEqual([{ id: 'x2', committedResults: 1 }]);
        }
      };

      it('a refusal before any write is recorded in the same transaction', async () => {
        await expectRefusals(
          ['t.refuseAtOnce', 't.refuseAfterReading', 't.refuseThenWriteLate'],
          1,
        );
        expect(await late).toMatch(/tx\.mutate was used after mutation 2 of client c1 had failed/);
      });

      it('any other throw runs again in a savepoint of a fresh transaction', async () => {
        const { results: answers, counts } = await pushBetween('t.crash');
        expect(answers).toEqual([{}, { error: 'app', message: 'boom' }, {}]);
        expect(runs).toBe(2);
        expect(counts).toEqual({ begun: 2, committed: 1 });
        await expectRecorded({ error: 'app', message: 'boom' });
      });

      it('a refusal after it may have written rolls back, and runs again in a savepoint', async () => {
        await expectRefusals(
          ['t.refuseAfterWriting', 't.refuseAfterRawWrite', 't.refuseWithWriteInFlight'],
          2,
        );
      });

      it('a refusal after a read that failed in the database rolls back and runs again', async () => {
        const { counts } = await pushBetween('t.refuseAfterFailedRead', failingReads(fx.db));
        expect(counts).toEqual({ begun: 2, committed: 1 });
        await expectRecorded(refused);
      });

      it('a statement that fails in the database rolls back; its error is recorded in a savepoint', async () => {
        const { results: answers, counts } = await pushBetween('t.create', fx.db, 'ok1');
        expect(answers[1]).toMatchObject({ error: 'app' });
        expect(JSON.stringify(answers[1])).not.toMatch(/INSERT|issue \(/);
        expect(counts).toEqual({ begun: 2, committed: 1 });
        expect(await lmid(fx)).toBe(3);
        expect((await results()).map((r) => r.mutationID)).toEqual([2]);
        expect(await issueIDs()).toEqual(['ok1', 'ok3']);
      });

      it('a mutator that decides otherwise when it runs again gets what the second run did', async () => {
        const { results: answers, counts } = await pushBetween('t.refuseAfterWritingOnce');
        expect(answers).toEqual([{}, {}, {}]);
        expect(runs).toBe(2);
        expect(counts).toEqual({ begun: 2, committed: 1 });
        expect(await lmid(fx)).toBe(3);
        expect(await results()).toEqual([]);
        expect(await issueIDs()).toEqual(['ok1', 'ok3', 'x2']);
        expect(failures).toEqual([]);
      });
    });
  });
}
