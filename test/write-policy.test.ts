import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  createOwnedTables,
  ownedPolicy,
  pushAs,
  resetOwnedTables,
  script,
} from './fixtures/owned-app';

// Write policies on the named-mutator path: every tx.mutate write is checked, whatever the
// mutator itself forgot, on every adapter.

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(
    `write policy, named mutators: ${title}`,
    () => {
      let fx: AdapterFixture;
      const ids = new Map<string, number>();
      beforeAll(async () => {
        fx = await adapter.create();
        await createOwnedTables(fx.db);
      });
      beforeEach(async () => {
        await fx.reset();
        await resetOwnedTables(fx.db);
        ids.clear();
      });
      afterAll(async () => {
        await fx.close();
      });

      /** Runs one mutation as `user` and returns its result. */
      async function as(user: string, mutation: { name: string; args: unknown }, options = {}) {
        const id = (ids.get(user) ?? 0) + 1;
        ids.set(user, id);
        const [result] = await pushAs(fx.db, user, [{ id, ...mutation }], options);
        return result;
      }
      const rows = (table: string) =>
        fx.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY id`);

      /** ana's project p1 with task t1 and note n1; bob's project p2 with task t2. */
      async function seed() {
        const results = [
          await as(
            'ana',
            script(async (tx) => {
              await tx.mutate.project.insert({ id: 'p1', ownerID: 'ana', name: 'A' });
              await tx.mutate.task.insert({ id: 't1', projectID: 'p1', title: 'T1' });
              await tx.mutate.note.insert({ id: 'n1', taskID: 't1', body: 'ana wrote this' });
            }),
          ),
          await as(
            'bob',
            script(async (tx) => {
              await tx.mutate.project.insert({ id: 'p2', ownerID: 'bob', name: 'B' });
              await tx.mutate.task.insert({ id: 't2', projectID: 'p2', title: 'T2' });
            }),
          ),
        ];
        expect(results).toEqual([{}, {}]);
      }

      it('a named mutator that forgot its own check cannot overwrite another user’s row', async () => {
        await seed();
        const result = await as('bob', {
          name: 'note.edit',
          args: { id: 'n1', body: 'bob was here' },
        });
        expect(result).toMatchObject({
          error: 'app',
          details: { reason: 'forbidden', table: 'note', key: { id: 'n1' } },
        });
        expect(result.message).toMatch(/^forbidden: update of note \{"id":"n1"\}/);
        expect((await rows('note'))[0]!.body).toBe('ana wrote this');
        // The owner's own edit goes through the same mutator.
        expect(await as('ana', { name: 'note.edit', args: { id: 'n1', body: 'edited' } })).toEqual(
          {},
        );
        expect((await rows('note'))[0]!.body).toBe('edited');
      });

      it('ownership runs through a two-level chain (note → task → project.ownerID)', async () => {
        await seed();
        const intoAna = script((tx) =>
          tx.mutate.note.insert({ id: 'n2', taskID: 't1', body: 'x' }),
        );
        expect(await as('bob', intoAna)).toMatchObject({ details: { reason: 'forbidden' } });
        const intoBob = script((tx) =>
          tx.mutate.note.insert({ id: 'n3', taskID: 't2', body: 'y' }),
        );
        expect(await as('bob', intoBob)).toEqual({});
        expect((await rows('note')).map((r) => r.id)).toEqual(['n1', 'n3']);
        const del = script((tx) => tx.mutate.note.delete({ id: 'n1' }));
        expect(await as('bob', del)).toMatchObject({ details: { reason: 'forbidden' } });
        expect(
          await as(
            'ana',
            script((tx) => tx.mutate.note.delete({ id: 'n1' })),
          ),
        ).toEqual({});
        expect((await rows('note')).map((r) => r.id)).toEqual(['n3']);
      });

      it('a forged ownerID on insert is refused and writes nothing', async () => {
        const forged = script((tx) =>
          tx.mutate.project.insert({ id: 'p9', ownerID: 'ana', name: 'F' }),
        );
        const result = await as('bob', forged);
        expect(result.details).toEqual({
          reason: 'forbidden',
          table: 'project',
          key: { id: 'p9' },
        });
        expect(result.message).toContain('project.ownerID is not one of your scope keys');
        expect(await rows('project')).toEqual([]);
      });

      it('an update cannot move a row into someone else’s scope, directly or through a parent', async () => {
        await seed();
        const give = script((tx) => tx.mutate.project.update({ id: 'p2', ownerID: 'ana' }));
        const result = await as('bob', give);
        expect(result.message).toContain('the new values are out of scope');
        const move = script((tx) => tx.mutate.task.update({ id: 't2', projectID: 'p1' }));
        expect(await as('bob', move)).toMatchObject({
          details: { reason: 'forbidden', table: 'task' },
        });
        const upsert = script((tx) =>
          tx.mutate.task.upsert({ id: 't2', projectID: 'p1', title: 'moved' }),
        );
        expect(await as('bob', upsert)).toMatchObject({ details: { reason: 'forbidden' } });
        expect((await rows('project')).map((r) => r.owner_id)).toEqual(['ana', 'bob']);
        expect((await rows('task')).map((r) => r.project_id)).toEqual(['p1', 'p2']);
        // Taking over someone else's row by upsert is the same refusal.
        const takeOver = script((tx) =>
          tx.mutate.project.upsert({ id: 'p1', ownerID: 'bob', name: 'X' }),
        );
        expect(await as('bob', takeOver)).toMatchObject({ details: { reason: 'forbidden' } });
      });

      it('a refused write rolls back the whole mutation and the queue goes on', async () => {
        await seed();
        const mixed = script(async (tx) => {
          await tx.mutate.task.update({ id: 't2', title: 'renamed' }); // allowed
          await tx.mutate.note.delete({ id: 'n1' }); // ana's: refused
        });
        const after = script((tx) => tx.mutate.task.update({ id: 't2', done: true }));
        const [first, second] = await pushAs(fx.db, 'bob', [
          { id: 2, ...mixed },
          { id: 3, ...after },
        ]);
        expect(first.details.reason).toBe('forbidden');
        expect(second).toEqual({});
        const t2 = (await rows('task')).find((r) => r.id === 't2')!;
        expect(t2.title).toBe('T2');
        expect(t2.done).toBe(true);
        expect((await rows('note')).map((r) => r.id)).toEqual(['n1']);
      });

      it('tenant scope keys: a list of the user’s tenants, or a function of the mutation', async () => {
        const tenants = { scopeKey: ['org1', 'org2'] };
        const inOrg2 = script((tx) =>
          tx.mutate.doc.insert({ id: 'd1', tenantID: 'org2', title: 'a' }),
        );
        expect(await as('ana', inOrg2, tenants)).toEqual({});
        const inOrg3 = script((tx) =>
          tx.mutate.doc.insert({ id: 'd2', tenantID: 'org3', title: 'b' }),
        );
        expect(await as('ana', inOrg3, tenants)).toMatchObject({
          details: { reason: 'forbidden' },
        });
        // A function of the mutation: here the client names its workspace, checked by the app.
        const member = new Set(['org3']);
        const byMutation = {
          scopeKey: (m: { clientID: string }) =>
            member.has(`org${m.clientID.slice(1)}`) ? 'org3' : [],
        };
        const again = script((tx) =>
          tx.mutate.doc.insert({ id: 'd2', tenantID: 'org3', title: 'b' }),
        );
        // clientID 'c1' maps to org1, not a membership: refused; the key list was the only way.
        expect(await as('ana', again, byMutation)).toMatchObject({
          details: { reason: 'forbidden' },
        });
        member.add('org1');
        const third = script((tx) =>
          tx.mutate.doc.insert({ id: 'd2', tenantID: 'org3', title: 'b' }),
        );
        expect(await as('ana', third, byMutation)).toEqual({});
        expect((await rows('doc')).map((r) => [r.id, r.tenant_id])).toEqual([
          ['d1', 'org2'],
          ['d2', 'org3'],
        ]);
      });

      it('an unrestricted table takes anyone’s writes; a table with no rule takes none', async () => {
        expect(
          await as(
            'bob',
            script((tx) => tx.mutate.audit.insert({ id: 'a1', what: 'x' })),
          ),
        ).toEqual({});
        const result = await as(
          'bob',
          script((tx) => tx.mutate.secret.insert({ id: 's', value: 'v' })),
        );
        expect(result.message).toContain('the write policy has no rule for secret');
        expect(await rows('secret')).toEqual([]);
      });

      it('an allow rule may query in the write’s transaction and sees its earlier writes', async () => {
        const policy = {
          ...ownedPolicy,
          // A note may be written only while its task has fewer than 2 notes.
          note: {
            allow: async (row: { taskID: string }, ctx: any) => {
              const [n] = await ctx.query(
                'SELECT count(*)::int AS n FROM note WHERE task_id = $1',
                [row.taskID],
              );
              return ctx.image === 'existing' || Number(n.n) < 2;
            },
          },
        };
        await seed();
        const two = script(async (tx) => {
          await tx.mutate.note.insert({ id: 'n2', taskID: 't1', body: 'b' });
          await tx.mutate.note.insert({ id: 'n3', taskID: 't1', body: 'c' });
        });
        const result = await as('ana', two, { writePolicy: policy });
        expect(result.message).toContain('the policy of note does not allow it');
        expect((await rows('note')).map((r) => r.id)).toEqual(['n1']);
      });

      /** Runs `sql` in another connection's transaction, held open until `release()`. */
      async function holdOpen(other: AdapterFixture, sql: string) {
        let release!: () => void;
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        let ready!: () => void;
        const isReady = new Promise<void>((resolve) => {
          ready = resolve;
        });
        const done = other.db.transaction(
          async (tx) => {
            await tx.query(sql);
            ready();
            await held;
          },
          { isolation: 'read committed' },
        );
        await isReady;
        return { release, done };
      }

      it.skipIf(!adapter.concurrent)(
        'under read committed, an upsert that meets a row committed after its check checks that row',
        async () => {
          const other = await adapter.connect!(fx);
          try {
            const ana = await holdOpen(other, `INSERT INTO project VALUES ('p5', 'ana', 'A5')`);
            const upsert = script((tx) =>
              tx.mutate.project.upsert({ id: 'p5', ownerID: 'bob', name: 'mine' }),
            );
            const pending = as('bob', upsert, { isolation: 'read committed' });
            await new Promise((resolve) => setTimeout(resolve, 150));
            ana.release();
            await ana.done;
            expect(await pending).toMatchObject({ details: { reason: 'forbidden' } });
            expect(await rows('project')).toEqual([{ id: 'p5', owner_id: 'ana', name: 'A5' }]);
          } finally {
            await other.close();
          }
        },
      );

      it.skipIf(!adapter.concurrent)(
        'under read committed, a write waits for a concurrent owner change and is then refused',
        async () => {
          await seed();
          const other = await adapter.connect!(fx);
          try {
            // Another transaction hands p2 to ana and holds its row lock for a moment.
            let release!: () => void;
            const held = new Promise<void>((resolve) => {
              release = resolve;
            });
            let locked!: () => void;
            const isLocked = new Promise<void>((resolve) => {
              locked = resolve;
            });
            const transfer = other.db.transaction(
              async (tx) => {
                await tx.query(`UPDATE project SET owner_id = 'ana' WHERE id = 'p2'`);
                locked();
                await held;
              },
              { isolation: 'read committed' },
            );
            await isLocked;
            const rename = script((tx) => tx.mutate.project.update({ id: 'p2', name: 'mine' }));
            const pending = as('bob', rename, { isolation: 'read committed' });
            await new Promise((resolve) => setTimeout(resolve, 150));
            release();
            await transfer;
            expect(await pending).toMatchObject({ details: { reason: 'forbidden' } });
            expect((await rows('project')).find((r) => r.id === 'p2')).toMatchObject({
              owner_id: 'ana',
              name: 'B',
            });
          } finally {
            await other.close();
          }
        },
      );
    },
  );
}
