import { ENGINE_SCHEMA_VERSION, migrate } from '@reprise/server';
import { createMutatorDefiner, defineMutators } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import type { schema, TestContext } from './fixtures/app';
import { post, pushBody } from './fixtures/push';

// tx.mutate's documented semantics (row missing / row exists), and the engine's migrate,
// on every adapter.

const defineMutator = createMutatorDefiner<typeof schema, TestContext>();
type Step = (tx: any) => Promise<void>;
const steps = new Map<string, Step>();
const scripted = defineMutators({
  run: defineMutator(async ({ tx, args }: { tx: unknown; args: string }) => {
    await steps.get(args)!(tx);
  }),
});

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`tx.mutate semantics: ${title}`, () => {
    let fx: AdapterFixture;
    let nextID = 0;
    beforeAll(async () => {
      fx = await adapter.create();
    });
    beforeEach(async () => {
      await fx.reset();
      nextID = 0;
    });
    afterAll(async () => {
      await fx.close();
    });

    /** Runs `step` as a mutation and returns its result. */
    async function mutate(step: Step) {
      const key = `step${++nextID}`;
      steps.set(key, step);
      const res = await post(fx, pushBody([{ id: nextID, name: 'run', args: key }]), {
        mutators: scripted,
      });
      return res.body.mutations[0].result;
    }

    const issues = () =>
      fx.query<Record<string, unknown>>(
        'SELECT id, title, owner_id, open, labels, created_at, views FROM issue ORDER BY id',
      );

    it('insert adds a missing row and keeps json, timestamp and bigint values', async () => {
      const at = new Date('2026-05-06T07:08:09.000Z');
      const result = await mutate((tx) =>
        tx.mutate.issue.insert({
          id: 'a',
          title: 'A',
          ownerID: 'o',
          labels: ['x', 'y'],
          createdAt: at,
          views: 1234567890123n, // pg-mem keeps bigints as JS numbers
        }),
      );
      expect(result).toEqual({});
      const [row] = await issues();
      expect(row!.labels).toEqual(['x', 'y']);
      expect(new Date(row!.created_at as string).toISOString()).toBe(at.toISOString());
      expect(String(row!.views)).toBe('1234567890123');
      expect(row!.open).toBe(true);
    });

    it('insert of an existing row throws and changes nothing', async () => {
      await mutate((tx) => tx.mutate.issue.insert({ id: 'a', title: 'A', ownerID: 'o' }));
      const result = await mutate((tx) =>
        tx.mutate.issue.insert({ id: 'a', title: 'B', ownerID: 'o' }),
      );
      expect(result.error).toBe('app');
      expect((await issues())[0]!.title).toBe('A');
    });

    it('upsert inserts a missing row and overwrites only the given columns of an existing one', async () => {
      await mutate((tx) =>
        tx.mutate.issue.upsert({ id: 'a', title: 'A', ownerID: 'o', open: false }),
      );
      await mutate((tx) => tx.mutate.issue.upsert({ id: 'a', title: 'A2', ownerID: 'o' }));
      const [row] = await issues();
      expect(row).toMatchObject({ id: 'a', title: 'A2', open: false });
    });

    it('update changes the given columns of an existing row and does nothing for a missing one', async () => {
      await mutate((tx) => tx.mutate.issue.insert({ id: 'a', title: 'A', ownerID: 'o' }));
      expect(await mutate((tx) => tx.mutate.issue.update({ id: 'a', open: false }))).toEqual({});
      expect(await mutate((tx) => tx.mutate.issue.update({ id: 'zz', title: 'ghost' }))).toEqual(
        {},
      );
      expect(await issues()).toMatchObject([{ id: 'a', title: 'A', open: false }]);
    });

    it('update records the row before and after it in the changelog, nothing for a missing row', async () => {
      await mutate((tx) =>
        tx.mutate.issue.insert({ id: 'a', title: 'A', ownerID: 'o', views: 5n }),
      );
      await mutate((tx) => tx.mutate.issue.update({ id: 'a', title: 'A2', labels: ['x'] }));
      await mutate((tx) => tx.mutate.issue.update({ id: 'zz', title: 'ghost' }));
      type Stored = { action: string; key: string; before: string | null; after: string | null };
      const stored = await fx.query<Stored>(
        `SELECT "action", "key"::text AS "key", "before"::text AS "before", "after"::text AS "after"
         FROM reprise.changes ORDER BY "id"`,
      );
      const decode = (text: string | null) => (text === null ? null : JSON.parse(text));
      const changes = stored.map((row) => ({
        action: row.action,
        key: decode(row.key),
        before: decode(row.before),
        after: decode(row.after),
      }));
      // toMatchObject: pg-mem's jsonb leaves out keys whose value is null. int8 is stored
      // as its text, exact beyond 2^53, and json as its text (a JSON null apart from NULL).
      const row = { id: 'a', ownerID: 'o', open: true, views: '5' };
      expect(changes).toMatchObject([
        { action: 'create', key: { id: 'a' }, before: null, after: { ...row, title: 'A' } },
        {
          action: 'update',
          key: { id: 'a' },
          before: { ...row, title: 'A' },
          after: { ...row, title: 'A2', labels: '["x"]' },
        },
      ]);
    });

    it('delete removes an existing row and does nothing for a missing one', async () => {
      await mutate((tx) => tx.mutate.issue.insert({ id: 'a', title: 'A', ownerID: 'o' }));
      expect(await mutate((tx) => tx.mutate.issue.delete({ id: 'zz' }))).toEqual({});
      expect(await mutate((tx) => tx.mutate.issue.delete({ id: 'a' }))).toEqual({});
      expect(await issues()).toEqual([]);
    });

    it('refuses unknown columns and a missing primary key with a clear message', async () => {
      const unknown = await mutate((tx) =>
        tx.mutate.issue.insert({ id: 'a', title: 'A', ownerID: 'o', colour: 'red' }),
      );
      expect(unknown.message).toBe('issue.insert: "colour" is not a column of issue');
      const noKey = await mutate((tx) => tx.mutate.issue.update({ title: 'x' }));
      expect(noKey.message).toBe('issue.update needs the primary key "id"');
      expect(await issues()).toEqual([]);
    });

    it('migrate is idempotent', async () => {
      const again = await migrate(fx.db);
      expect(again.applied).toEqual([]);
      const other = await migrate(fx.db, { schema: 'reprise_other' });
      expect(other.applied).toEqual(Array.from({ length: ENGINE_SCHEMA_VERSION }, (_, i) => i + 1));
      expect((await migrate(fx.db, { schema: 'reprise_other' })).applied).toEqual([]);
    });
  });
}
