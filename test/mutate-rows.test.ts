import { createClientTransaction } from '@reprise/client';
import { runQuery as runServerQuery } from '@reprise/server';
import {
  createBuilder,
  createMemoryStore,
  createMutatorDefiner,
  defineMutators,
  runMutator,
} from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema, type TestContext } from './fixtures/app';
import { post, pushBody } from './fixtures/push';

// tx.mutate's rows and where forms, on every adapter: the same mutator run on the client's
// store and, authoritatively, in Postgres returns the same rows and leaves the same rows.

const q = createBuilder(schema);
const defineMutator = createMutatorDefiner<typeof schema, TestContext>();

const mutators = defineMutators({
  script: defineMutator(async ({ tx, ctx }) => {
    const m = tx.mutate.issue;
    const inserted = await m.insert({ id: 'a', title: 'A', ownerID: ctx.userID }); // open: default
    const upserted = await m.upsert({ id: 'b', title: 'B', ownerID: ctx.userID });
    const overwritten = await m.upsert({ id: 'b', title: 'B2', ownerID: ctx.userID });
    await m.insert({ id: 'c', title: 'C', ownerID: 'other', open: false, labels: ['x'] });
    await m.insert({ id: 'd', title: 'D', ownerID: ctx.userID, labels: ['y'] });
    const closed = await m.update({ ownerID: ctx.userID, open: true }, { open: false });
    const byKey = await m.update({ id: 'a', title: 'A2' });
    const missing = await m.update({ id: 'zz', title: 'never' });
    const nullMatch = await m.update({ labels: null }, { title: 'no labels' });
    const noneMatch = await m.update({ ownerID: 'nobody' }, { title: 'x' });
    const deleted = await m.delete({ ownerID: 'other', open: false });
    const deletedByKey = await m.delete({ id: 'd' });
    const deletedMissing = await m.delete({ id: 'd' });
    return {
      inserted,
      upserted,
      overwritten,
      closed,
      byKey,
      missing: missing ?? 'none',
      nullMatch,
      noneMatch,
      deleted,
      deletedByKey,
      deletedMissing,
    };
  }),
  emptyWhere: defineMutator(async ({ tx }) => {
    await tx.mutate.issue.delete({});
  }),
  unknownColumn: defineMutator(async ({ tx }) => {
    await tx.mutate.issue.update({ nope: 1 } as never, { open: false });
  }),
  keyChange: defineMutator(async ({ tx }) => {
    await tx.mutate.issue.update({ ownerID: 'alice' }, { id: 'moved' });
  }),
});

/** Runs a mutator on a client store; its return value as JSON (the wire's form), or its error. */
async function onClient(name: keyof typeof mutators, store = createMemoryStore(schema)) {
  const tx = createClientTransaction(schema, store.fork(), {
    clientID: 'c1',
    mutationID: 1,
    reason: 'optimistic',
  });
  try {
    const data = await runMutator(mutators[name] as never, {
      tx,
      args: undefined,
      ctx: { userID: 'alice', raw: async () => [] },
    });
    return {
      data: JSON.parse(JSON.stringify(data ?? null)),
      rows: await tx.run(q.issue),
    };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`tx.mutate rows and where: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
    });
    beforeEach(async () => {
      await fx.reset();
    });
    afterAll(async () => {
      await fx?.close();
    });

    async function onServer(name: string) {
      const res = await post(fx, pushBody([{ id: 1, name }]), { mutators });
      return res.body.mutations[0].result;
    }

    it('returns the same rows and leaves the same rows on the client and the server', async () => {
      const server = await onServer('script');
      const client = await onClient('script');
      expect(server.message ?? server).toHaveProperty('data');
      expect(client.error ?? client).toHaveProperty('data');
      expect(server.data).toEqual(client.data);
      const serverRows = await runServerQuery(fx.db, schema, q.issue, {
        partialSQL: fx.db.capabilities.partialSQL,
      });
      expect(serverRows).toEqual(client.rows);

      // And what they return is what the script says, not merely the same on both sides.
      const row = (id: string, extra: Record<string, unknown>) => ({
        id,
        title: id.toUpperCase(),
        ownerID: 'alice',
        open: true,
        labels: null,
        createdAt: null,
        views: null,
        ...extra,
      });
      expect(server.data).toEqual({
        inserted: row('a', {}),
        upserted: row('b', {}),
        overwritten: row('b', { title: 'B2' }),
        closed: [
          row('a', { open: false }),
          row('b', { title: 'B2', open: false }),
          row('d', { open: false, labels: ['y'] }),
        ],
        byKey: row('a', { title: 'A2', open: false }),
        missing: 'none',
        nullMatch: [
          row('a', { title: 'no labels', open: false }),
          row('b', { title: 'no labels', open: false }),
        ],
        noneMatch: [],
        deleted: [row('c', { ownerID: 'other', open: false, labels: ['x'] })],
        deletedByKey: [row('d', { open: false, labels: ['y'] })],
        deletedMissing: [],
      });
    });

    it('refuses a bad where or data with the same message on both sides', async () => {
      for (const [name, message] of [
        ['emptyWhere', 'issue.delete: where names no column; give at least one to match rows on'],
        ['unknownColumn', 'issue.update: "nope" is not a column of issue'],
        ['keyChange', 'issue.update: data cannot change the primary key "id"'],
      ] as const) {
        await fx.reset();
        const server = await onServer(name);
        expect(server).toMatchObject({ error: 'app', message });
        expect(await onClient(name)).toEqual({ error: message });
      }
    });
  });
}
