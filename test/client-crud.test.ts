import { createMemoryStorage, type SettledMutation } from '@reprise/client';
import { defineWritePolicy, handleMutateRequest, silentLogger } from '@reprise/server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import {
  clientIssues,
  createTestServer,
  mutators,
  openClient,
  serverIssues,
  type TestClient,
  type TestServer,
} from './fixtures/client';
import { post, pushBody } from './fixtures/push';

// client.crud.* end to end: the real client against handleMutateRequest({crud: true,
// writePolicy}) on PGlite and a real Postgres. Each call is a `_crud.*` mutation, so it is
// applied at once, pushed, confirmed by a pull, and a refused one disappears on rebase.

const policy = defineWritePolicy(schema, {
  issue: { owner: 'ownerID' },
  comment: { parent: 'issue', via: 'issueID' },
  counter: 'unrestricted',
});

const kinds = ADAPTERS.filter((a) => ['pglite', 'postgres.js (real server)'].includes(a.name));

for (const kind of kinds) {
  const title = kind.unavailable ? `${kind.name} [skipped: ${kind.unavailable}]` : kind.name;
  describe.skipIf(kind.unavailable !== undefined)(`client.crud: ${title}`, () => {
    let fx: AdapterFixture;
    let server: TestServer;
    const clients: TestClient[] = [];
    beforeEach(async () => {
      fx = await kind.create();
      server = createTestServer(fx, { crud: policy });
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) await client.close();
      await fx.close();
    });
    const open = async (options: Parameters<typeof openClient>[2] = {}) => {
      const client = await openClient(server, fx, options);
      clients.push(client);
      return client;
    };

    it('a put is visible at once, and confirmed and seen by another client after the push', async () => {
      const alice = await open();
      const { client, server: confirmed } = alice.crud.issue.put({
        id: 'i1',
        title: 'Hello',
        ownerID: 'alice',
      });
      await client;
      expect(await clientIssues(alice)).toMatchObject([{ id: 'i1', title: 'Hello', open: true }]);
      expect(alice.pending).toBe(1);
      expect(await confirmed).toEqual({ ok: true, data: undefined });
      await alice.idle();
      expect(alice.pending).toBe(0);
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', title: 'Hello', open: true }]);
      const other = await open();
      await other.pull();
      expect(await clientIssues(other)).toMatchObject([{ id: 'i1', title: 'Hello' }]);
    });

    it('patch and delete reach the server, and a patch of a missing row changes nothing', async () => {
      const alice = await open();
      alice.crud.issue.put({ id: 'i1', title: 'A', ownerID: 'alice' });
      alice.crud.issue.put({ id: 'i2', title: 'B', ownerID: 'alice' });
      alice.crud.issue.patch('i1', { title: 'A2', open: false });
      alice.crud.issue.delete('i2');
      const missing = alice.crud.issue.patch('nope', { title: 'x' });
      await alice.idle();
      expect(await missing.server).toEqual({ ok: true, data: undefined });
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', title: 'A2', open: false }]);
      expect(await serverIssues(fx)).toHaveLength(1);
      expect(await clientIssues(alice)).toEqual(await serverIssues(fx));
    });

    it('dates, bigints and json keep their types on the way to Postgres', async () => {
      const alice = await open();
      const createdAt = new Date('2026-01-02T03:04:05.000Z');
      alice.crud.issue.put({
        id: 'i1',
        title: 'T',
        ownerID: 'alice',
        createdAt,
        views: 9007199254740993n,
        labels: ['a', 'b'],
      });
      await alice.idle();
      const [row] = await serverIssues(fx);
      expect(row).toMatchObject({ createdAt, views: 9007199254740993n, labels: ['a', 'b'] });
    });

    it('a patch the write policy forbids applies locally, then disappears on rebase with its reason', async () => {
      const alice = await open();
      alice.crud.issue.put({ id: 'i1', title: 'Mine', ownerID: 'alice' });
      await alice.idle();
      const settled: SettledMutation[] = [];
      alice.onMutationSettled((s) => settled.push(s));
      const { client, server: verdict } = alice.crud.issue.patch('i1', { ownerID: 'bob' });
      await client;
      expect(await clientIssues(alice)).toMatchObject([{ id: 'i1', ownerID: 'bob' }]);
      const outcome = await verdict;
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(outcome.error.message).toMatch(/^forbidden: update of issue/);
      expect(outcome.error.code === 'app' && outcome.error.details).toMatchObject({
        reason: 'forbidden',
        table: 'issue',
      });
      await alice.idle();
      expect(await clientIssues(alice)).toMatchObject([{ id: 'i1', ownerID: 'alice' }]);
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', ownerID: 'alice' }]);
      expect(settled).toMatchObject([{ name: '_crud.patch', outcome: { ok: false } }]);
    });

    it('a put with a forged owner is refused, and the queue goes on past it', async () => {
      const alice = await open();
      const forged = alice.crud.issue.put({ id: 'x', title: 'Not mine', ownerID: 'bob' });
      const after = alice.crud.issue.put({ id: 'y', title: 'Mine', ownerID: 'alice' });
      await Promise.all([forged.client, after.client]);
      expect((await clientIssues(alice)).map((r) => r.id)).toEqual(['x', 'y']);
      expect(await forged.server).toMatchObject({ ok: false, error: { message: /forbidden/ } });
      expect(await after.server).toEqual({ ok: true, data: undefined });
      await alice.idle();
      expect((await clientIssues(alice)).map((r) => r.id)).toEqual(['y']);
      expect(await serverIssues(fx, 'bob')).toEqual([]);
    });

    it.each([
      [
        'a value of the wrong type',
        { id: 'i9', title: 42, ownerID: 'alice' },
        /"title" must be a string/,
      ],
      [
        'a missing non-null column',
        { id: 'i9', ownerID: 'alice' },
        /missing non-null column "title"/,
      ],
    ])('a put with %s is refused by the server, naming the column', async (_, row, message) => {
      const alice = await open();
      const { server: verdict } = alice.crud.issue.put(row as never);
      expect(await verdict).toMatchObject({
        ok: false,
        error: { code: 'app', message, details: { reason: 'invalid' } },
      });
      await alice.idle();
      expect(await clientIssues(alice)).toEqual([]);
      expect(await serverIssues(fx)).toEqual([]);
    });

    it('a pending patch is rebased onto what another client wrote meanwhile', async () => {
      // a's pushes are lost on the way while its pulls go through.
      let holdPushes = false;
      const a = await open({
        client: {
          fetch: (input, init) =>
            holdPushes && String(input).includes('/mutate')
              ? Promise.reject(new TypeError('fetch failed: push lost'))
              : server.fetch(input, init),
        },
      });
      a.crud.issue.put({ id: 'i1', title: 'First', ownerID: 'alice' });
      await a.idle();
      holdPushes = true;
      await a.crud.issue.patch('i1', { open: false }).client;
      const b = await open();
      await b.crud.issue.patch('i1', { title: 'From b' }).client;
      await b.idle();
      await a.pull();
      // The server's new title under a's pending patch, before a has pushed it.
      expect(await clientIssues(a)).toMatchObject([{ id: 'i1', title: 'From b', open: false }]);
      expect(a.pending).toBe(1);
      holdPushes = false;
      await a.idle();
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', title: 'From b', open: false }]);
    });

    it('calls queued offline survive a reload and are pushed by the next client', async () => {
      const storage = createMemoryStorage();
      const first = await open({ storage });
      first.setOnline(false);
      first.mutate.issue.create({ id: 'i1', title: 'Named' });
      first.crud.issue.patch('i1', { title: 'Patched' });
      await first.crud.comment.put({ id: 'c1', issueID: 'i1', body: 'hi' }).client;
      expect(first.pending).toBe(3);
      await first.close();
      expect(await serverIssues(fx)).toEqual([]);

      const second = await open({ storage });
      expect(second.pending).toBe(3);
      expect(await clientIssues(second)).toMatchObject([{ id: 'i1', title: 'Patched' }]);
      await second.idle();
      expect(second.pending).toBe(0);
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', title: 'Patched' }]);
      const [{ count }] = (await fx.db.query('SELECT count(*)::int AS count FROM comment')) as [
        { count: number },
      ];
      expect(count).toBe(1);
    });

    it('the server checks raw _crud mutations as the CRUD endpoint does, and goes on past refusals', async () => {
      const calls = [
        {
          name: '_crud.put',
          args: { table: 'issue', row: { id: 'i1', title: 'T', owner_id: 'alice' } },
        },
        { name: '_crud.patch', args: { table: 'issue', id: 'i1', changes: { id: 'i2' } } },
        { name: '_crud.patch', args: { table: 'issue', id: 'i1', changes: { colour: 'red' } } },
        { name: '_crud.patch', args: { table: 'issue', id: 'i1', changes: { title: null } } },
        { name: '_crud.delete', args: { table: 'nope', id: 'i1' } },
        { name: '_crud.put', args: { row: {} } },
        { name: '_crud.patch', args: { table: 'issue', id: 'i1', changes: { open: false } } },
      ];
      const { status, body } = await post(
        fx,
        pushBody(calls.map((c, i) => ({ id: i + 1, ...c }))),
        { crud: true, writePolicy: policy },
      );
      expect(status).toBe(200);
      const results = body.mutations.map((m: { result: { message?: string } }) =>
        m.result.message === undefined ? 'applied' : m.result.message,
      );
      expect(results).toEqual([
        'applied',
        'issue: the primary key "id" cannot change',
        'issue: "colour" is not a column of issue',
        'issue: "title" cannot be null',
        'Unknown table "nope"',
        expect.stringMatching(/^Invalid arguments for _crud.put: table:/),
        'applied',
      ]);
      expect(await serverIssues(fx)).toMatchObject([{ id: 'i1', title: 'T', open: false }]);
    });

    it('a server without crud: true refuses CRUD calls, and they disappear', async () => {
      const plain = createTestServer(fx);
      const alice = await openClient(plain, fx);
      clients.push(alice);
      const { server: verdict } = alice.crud.counter.put({ id: 'k', value: 1 });
      expect(await verdict).toMatchObject({
        ok: false,
        error: { message: /CRUD writes are off on this server/ },
      });
      await alice.idle();
      expect(await alice.query.counter.run()).toEqual([]);
    });
  });
}

describe('handleMutateRequest({crud: true})', () => {
  it('needs a write policy', async () => {
    // pg-mem: the refusal comes before any statement, and a fresh PGlite can take longer
    // than the test's time on a busy machine.
    const fx = await ADAPTERS.find((a) => a.name.startsWith('pg-mem'))!.create();
    try {
      const request = new Request('http://test.local/api/mutate', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      await expect(
        handleMutateRequest({
          db: fx.db,
          schema,
          mutators,
          request,
          userID: 'alice',
          crud: true,
          logger: silentLogger,
        }),
      ).rejects.toThrow(/crud: true needs a writePolicy/);
    } finally {
      await fx.close();
    }
  });
});
