import type { Database } from '@reprise/server';
import { createMutatorDefiner, defineMutators } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import type { schema, TestContext } from './fixtures/app';
import { lmid, post, pushBody } from './fixtures/push';

// A client's claim (its LMID and its group's owner) goes out ahead of its first mutation,
// which starts before the claim is answered, on the guess that it is the client's next.
// When the guess is wrong (a resend, a gap, another user's group) what the mutation did is
// rolled back and the push runs again with each claim answered first. The mutator here
// appends to a title, so a mutation applied twice, or applied where it should not be,
// shows in the row.

const defineMutator = createMutatorDefiner<typeof schema, TestContext>();

/** How often `t.append` ran, on every try. */
let runs = 0;

const mutators = defineMutators({
  t: {
    append: defineMutator(z.object({ id: z.string(), mark: z.string() }), async ({ tx, args }) => {
      runs++;
      await tx.mutate.issue.update({ id: args.id, title: args.mark });
    }),
    // Fails in the database: the issue exists.
    insertAgain: defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
      await tx.mutate.issue.insert({ id: args.id, title: 'again', ownerID: 'alice' });
    }),
  },
});

/** Counts the transactions the engine opens, and keeps the text of every statement in them. */
function counting(db: Database<any>) {
  const counts = { begun: 0, statements: [] as string[] };
  const counted: Database<any> = {
    ...db,
    transaction(fn, options) {
      counts.begun++;
      return db.transaction(
        (tx) =>
          fn({
            ...tx,
            query: (text, params) => {
              counts.statements.push(text);
              return tx.query(text, params);
            },
            ...(tx.queued && {
              queued: (text: string, params?: readonly unknown[]) => {
                counts.statements.push(text);
                return tx.queued!(text, params);
              },
            }),
          }),
        options,
      );
    },
  };
  return { db: counted, counts };
}

const append = (id: number, mark: string, clientID = 'c1') => ({
  id,
  clientID,
  name: 't.append',
  args: { id: 'i1', mark },
});

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  // A real-server adapter without DATABASE_URL is skipped, and its title says why.
  describe.skipIf(adapter.unavailable !== undefined)(`claim overlap: ${title}`, () => {
    let fx: AdapterFixture;
    /** Whether the engine starts mutations before claims are answered here (`queued`). */
    let overlaps = false;
    beforeAll(async () => {
      fx = await adapter.create();
      overlaps =
        !fx.db.capabilities.partialSQL &&
        !fx.db.capabilities.embedded &&
        (await fx.db.transaction(async (tx) => tx.queued !== undefined, {
          isolation: 'read committed',
        }));
    });
    beforeEach(async () => {
      await fx.reset();
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('i1', '', 'alice')`);
      runs = 0;
    });
    afterAll(async () => {
      await fx.close();
    });

    const send = async (
      mutations: ReturnType<typeof append>[],
      options: { userID?: string | null } = {},
    ) => {
      const { db, counts } = counting(fx.db);
      const res = await post(fx, pushBody(mutations), { db, mutators, ...options });
      return { res, counts };
    };
    const titleNow = async () =>
      (await fx.query<{ title: string }>(`SELECT title FROM issue WHERE id = 'i1'`))[0]!.title;

    it('a push of the next mutations takes one transaction', async () => {
      await send([append(1, 'a')]);
      const { res, counts } = await send([append(2, 'b')]);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([{}]);
      expect(counts.begun).toBe(1);
      expect(await titleNow()).toBe('b');
    });

    it('a resend of applied mutations applies only the new one, once', async () => {
      await send([append(1, 'a'), append(2, 'b')]);
      await fx.query(`UPDATE issue SET title = 'edited' WHERE id = 'i1'`);
      const { res } = await send([append(1, 'a'), append(2, 'b'), append(3, 'c')]);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'alreadyProcessed' },
        { error: 'alreadyProcessed' },
        {},
      ]);
      expect(await titleNow()).toBe('c');
      expect(await lmid(fx)).toBe(3);
      // Nothing of the first try stayed: a resend alone changes nothing.
      await fx.query(`UPDATE issue SET title = 'edited' WHERE id = 'i1'`);
      runs = 0;
      const again = await send([append(3, 'c')]);
      expect(again.res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'alreadyProcessed' },
      ]);
      expect(await titleNow()).toBe('edited');
      expect(await lmid(fx)).toBe(3);
      // Where mutations start early, the guess ran the mutator and was rolled back.
      expect(runs).toBe(overlaps ? 1 : 0);
      expect(again.counts.begun).toBe(overlaps ? 2 : 1);
    });

    it('a gap applies nothing, though the mutation started before the claim was answered', async () => {
      await send([append(1, 'a')]);
      const { res } = await send([append(3, 'c'), append(4, 'd')]);
      expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'oooMutation' });
      expect(await titleNow()).toBe('a');
      expect(await lmid(fx)).toBe(1);
    });

    it("another user's group is refused and keeps nothing of the mutation", async () => {
      await send([append(1, 'a')]);
      const { res } = await send([append(2, 'b')], { userID: 'bob' });
      expect(res.status).toBe(403);
      expect(await titleNow()).toBe('a');
      expect(await lmid(fx)).toBe(1);
    });

    it("a client's next push does not read its group: the client's row names its user", async () => {
      await send([append(1, 'a')]);
      const { res, counts } = await send([append(2, 'b')]);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([{}]);
      // pg-mem's claim, in plain statements, reads the group on every push.
      expect(counts.statements.filter((text) => text.includes('clientGroups'))).toHaveLength(
        fx.db.capabilities.partialSQL ? 1 : 0,
      );
    });

    it("a new client of another user's group is refused and keeps nothing of the mutation", async () => {
      await send([append(1, 'a')]);
      const { res, counts } = await send([append(1, 'b', 'c2')], { userID: 'bob' });
      expect(res.status).toBe(403);
      expect(counts.statements.some((text) => text.includes('clientGroups'))).toBe(true);
      expect(await titleNow()).toBe('a');
      expect(await lmid(fx, 'c2')).toBeUndefined();
    });

    it('an anonymous group takes anonymous pushes from old and new clients, and refuses a user', async () => {
      await send([append(1, 'a')], { userID: null });
      const next = await send([append(2, 'b')], { userID: null });
      expect(next.res.body.mutations.map((m: any) => m.result)).toEqual([{}]);
      const fresh = await send([append(1, 'c', 'c2')], { userID: null });
      expect(fresh.res.body.mutations.map((m: any) => m.result)).toEqual([{}]);
      // Each client's next mutation: c1 and c2 known to the group, c3 new to it.
      for (const [clientID, id] of [
        ['c1', 3],
        ['c2', 2],
        ['c3', 1],
      ] as const) {
        const { res } = await send([append(id, 'd', clientID)], { userID: 'alice' });
        expect(res.status).toBe(403);
      }
      expect(await titleNow()).toBe('c');
      expect(await lmid(fx, 'c3')).toBeUndefined();
    });

    it("an anonymous push to a user's client is refused", async () => {
      await send([append(1, 'a')]);
      const { res } = await send([append(2, 'b')], { userID: null });
      expect(res.status).toBe(403);
      expect(await titleNow()).toBe('a');
      expect(await lmid(fx)).toBe(1);
    });

    it("one client's wrong guess does not cost another client of the push its mutations", async () => {
      await send([append(1, 'a', 'c1'), append(1, 'b', 'c2')]);
      const { res } = await send([
        append(2, 'c', 'c1'),
        append(1, 'b', 'c2'),
        append(2, 'd', 'c2'),
      ]);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        {},
        { error: 'alreadyProcessed' },
        {},
      ]);
      expect(await titleNow()).toBe('d');
      expect(await lmid(fx, 'c1')).toBe(2);
      expect(await lmid(fx, 'c2')).toBe(2);
    });

    it("a new group's first mutation that fails in the database is recorded, the next applied", async () => {
      const { res } = await send([
        { id: 1, clientID: 'c1', name: 't.insertAgain', args: { id: 'i1', mark: '' } },
        append(2, 'b'),
      ]);
      expect(res.body.mutations[0].result).toMatchObject({ error: 'app' });
      expect(res.body.mutations[1].result).toEqual({});
      expect(await titleNow()).toBe('b');
      expect(await lmid(fx)).toBe(2);
      const owners = await fx.query<{ userID: string }>(
        `SELECT "userID" FROM reprise."clientGroups" WHERE "clientGroupID" = 'cg1'`,
      );
      expect(owners).toEqual([{ userID: 'alice' }]);
    });
  });
}
