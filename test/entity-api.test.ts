import {
  createChangeStreams,
  createEntityContext,
  defineWritePolicy,
  silentLogger,
  WriteForbiddenError,
} from '@reprise/server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { ops, pullOK } from './fixtures/pull';
import { count } from './fixtures/push';

// The entity API on every adapter: rows back from every call, atomic transactions, writes
// recorded for pulls (captured on Postgres, recorded by the engine on pg-mem), and the
// write policy checked when one is given.

const writePolicy = defineWritePolicy(schema, {
  issue: { owner: 'ownerID' },
  comment: { parent: 'issue', via: 'issueID' },
  counter: 'unrestricted',
});

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`entity API: ${title}`, () => {
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

    const issueRow = (id: string, extra: Record<string, unknown> = {}) => ({
      id,
      title: id.toUpperCase(),
      ownerID: 'alice',
      open: true,
      labels: null,
      createdAt: null,
      views: null,
      ...extra,
    });

    it('create returns the row as stored; find, update and delete return rows', async () => {
      const e = createEntityContext({ db: fx.db, schema });
      // `open` takes its SQL default.
      expect(await e.issue.create({ id: 'a', title: 'A', ownerID: 'alice' })).toEqual(
        issueRow('a'),
      );
      await e.issue.create({ id: 'b', title: 'B', ownerID: 'alice', labels: ['x'] });
      await e.issue.create({ id: 'c', title: 'C', ownerID: 'bob', open: false });

      expect(await e.issue.findOne({ id: 'b' })).toEqual(issueRow('b', { labels: ['x'] }));
      expect(await e.issue.findOne({ id: 'zz' })).toBeUndefined();
      expect((await e.issue.findMany({ ownerID: 'alice' })).map((r) => r.id)).toEqual(['a', 'b']);
      expect((await e.issue.findMany()).map((r) => r.id)).toEqual(['a', 'b', 'c']);
      // null matches NULL.
      expect((await e.issue.findMany({ labels: null })).map((r) => r.id)).toEqual(['a', 'c']);

      expect(await e.issue.update({ ownerID: 'alice', open: true }, { open: false })).toEqual([
        issueRow('a', { open: false }),
        issueRow('b', { open: false, labels: ['x'] }),
      ]);
      expect(await e.issue.update({ ownerID: 'nobody' }, { open: true })).toEqual([]);
      expect(await e.issue.delete({ ownerID: 'bob' })).toEqual([
        issueRow('c', { ownerID: 'bob', open: false }),
      ]);
      expect(await e.issue.delete({ id: 'c' })).toEqual([]);
      expect(await count(fx, 'issue')).toBe(2);
    });

    it('refuses a write whose where names no column, or a column the table lacks', async () => {
      const e = createEntityContext({ db: fx.db, schema });
      await e.issue.create({ id: 'a', title: 'A', ownerID: 'alice' });
      await expect(e.issue.delete({})).rejects.toThrow(
        'issue.delete: where names no column; give at least one to match rows on',
      );
      await expect(e.issue.update({ nope: 1 } as never, { open: false })).rejects.toThrow(
        'issue.update: "nope" is not a column of issue',
      );
      await expect(e.issue.update({ id: 'a' }, { id: 'b' })).rejects.toThrow(
        'issue.update: data cannot change the primary key "id"',
      );
      expect(await e.issue.findOne({ id: 'a' })).toMatchObject({ open: true });
    });

    it('transaction(fn) commits all of its writes, or none when fn throws', async () => {
      const e = createEntityContext({ db: fx.db, schema });
      const created = await e.transaction(async (t) => {
        const issue = await t.issue.create({ id: 'a', title: 'A', ownerID: 'alice' });
        await t.comment.create({ id: 'c1', issueID: issue.id, body: 'first' });
        return issue.id;
      });
      expect(created).toBe('a');
      const changes = await count(fx, 'reprise.changes');

      const failure = new Error('operation 3 failed');
      await expect(
        e.transaction(async (t) => {
          await t.issue.create({ id: 'b', title: 'B', ownerID: 'alice' });
          await t.comment.update({ issueID: 'a' }, { body: 'edited' });
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await e.issue.findMany()).toHaveLength(1);
      expect(await e.comment.findOne({ id: 'c1' })).toMatchObject({ body: 'first' });
      expect(await count(fx, 'reprise.changes')).toBe(changes); // nothing recorded either

      // A database error inside rolls back the same way.
      await expect(
        e.transaction(async (t) => {
          await t.counter.create({ id: 'n', value: 1 });
          await t.issue.create({ id: 'a', title: 'dup', ownerID: 'alice' });
        }),
      ).rejects.toThrow();
      expect(await e.counter.findMany()).toEqual([]);
    });

    it('its writes reach pulls: puts, changes and deletes, to the users who may see them', async () => {
      const e = createEntityContext({ db: fx.db, schema });
      const first = await pullOK(fx, null);
      await e.issue.create({ id: 'a', title: 'A', ownerID: 'alice' });
      await e.issue.create({ id: 'b', title: 'B', ownerID: 'bob' });
      const second = await pullOK(fx, first.cookie as string);
      expect(ops(second)).toEqual(['put issue a']);
      await e.issue.update({ id: 'a' }, { title: 'A2' });
      const third = await pullOK(fx, second.cookie as string);
      expect(third.patch).toEqual([
        { op: 'put', tableName: 'issue', value: issueRow('a', { title: 'A2' }) },
      ]);
      await e.issue.delete({ ownerID: 'alice' });
      expect(ops(await pullOK(fx, third.cookie as string))).toEqual(['del issue a']);
      // The changes carry no mutation: they came from outside any.
      const rows = await fx.query<{ clientID: string | null }>(
        'SELECT "clientID" FROM reprise.changes',
      );
      expect(rows.length).toBeGreaterThanOrEqual(4);
      expect(rows.every((r) => r.clientID === null)).toBe(true);
    });

    it('its writes reach change streams, in order', async () => {
      const changes = createChangeStreams({
        db: fx.db,
        schema,
        pollIntervalMs: 20,
        logger: silentLogger,
      });
      try {
        const subscription = await changes.subscribe({ table: 'issue' });
        const e = createEntityContext({ db: fx.db, schema });
        await e.transaction(async (t) => {
          await t.issue.create({ id: 'a', title: 'A', ownerID: 'alice' });
          await t.issue.update({ id: 'a' }, { title: 'A2' });
        });
        await e.issue.delete({ id: 'a' });
        const events = [];
        for (let i = 0; i < 3; i++) {
          const next = await Promise.race([
            subscription.next(),
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error('no event within 5 s')), 5000),
            ),
          ]);
          events.push(next.value);
        }
        expect(events.map((event) => event?.action)).toEqual(['create', 'update', 'delete']);
        expect(events[1]).toMatchObject({ before: { title: 'A' }, after: { title: 'A2' } });
      } finally {
        await changes.close();
      }
    });

    it('checks the write policy for the given user, rolling back the transaction', async () => {
      await createEntityContext({ db: fx.db, schema }).issue.create({
        id: 'a',
        title: 'A',
        ownerID: 'alice',
      });
      const bob = createEntityContext({ db: fx.db, schema, writePolicy, userID: 'bob' });
      await expect(bob.issue.create({ id: 'f', title: 'F', ownerID: 'alice' })).rejects.toThrow(
        WriteForbiddenError,
      );
      await expect(bob.issue.update({ id: 'a' }, { title: 'mine now' })).rejects.toThrow(
        'forbidden: update of issue {"id":"a"}: issue.ownerID is not one of your scope keys',
      );
      await expect(bob.comment.create({ id: 'c', issueID: 'a', body: 'x' })).rejects.toThrow(
        WriteForbiddenError,
      );
      await expect(
        bob.transaction(async (t) => {
          await t.issue.create({ id: 'b', title: 'B', ownerID: 'bob' });
          await t.issue.delete({ ownerID: 'alice' });
        }),
      ).rejects.toThrow('forbidden: delete of issue {"id":"a"}');
      expect((await bob.issue.findMany()).map((r) => [r.id, r.title])).toEqual([['a', 'A']]);
      expect(await bob.issue.create({ id: 'b', title: 'B', ownerID: 'bob' })).toMatchObject({
        ownerID: 'bob',
      });
      expect(await bob.counter.create({ id: 'n', value: 1 })).toEqual({ id: 'n', value: 1 });
    });
  });
}
