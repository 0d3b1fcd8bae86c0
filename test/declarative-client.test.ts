import { type Client, createClient, createClientTransaction } from '@reprise/client';
import {
  defineVisibility,
  handleMutateRequest,
  handlePullRequest,
  PUBLIC_SCOPE,
  silentLogger,
} from '@reprise/server';
import { createMemoryStore, runMutator } from '@reprise/shared';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema, type TestContext } from './fixtures/app';
import { declarativeMutators as mutators } from './fixtures/declarative';

// A declarative transaction called from the client runs optimistically on its store, then
// authoritatively on the server: the rows it wrote and the results it gave must agree.

// A client's first sync on PGlite under a loaded 2-core box can take a minute.
const SLOW = { timeout: 120_000 };

const visibility = defineVisibility(schema, {
  issue: () => PUBLIC_SCOPE,
  comment: () => PUBLIC_SCOPE,
  counter: () => PUBLIC_SCOPE,
});

for (const kind of ADAPTERS) {
  const title = kind.unavailable ? `${kind.name} [skipped: ${kind.unavailable}]` : kind.name;
  describe.skipIf(kind.unavailable !== undefined)(
    `defineTransaction on the client: ${title}`,
    () => {
      let fx: AdapterFixture;
      const clients: Client<typeof schema, typeof mutators>[] = [];
      // One database per suite, emptied before each test: a PGlite start is slow on a busy box.
      beforeAll(async () => {
        fx = await kind.create();
      });
      afterAll(() => fx?.close());
      beforeEach(() => fx.reset());
      afterEach(async () => {
        for (const client of clients.splice(0)) await client.close();
      });

      const open = async (userID = 'alice') => {
        const context: TestContext = { userID, raw: fx.raw };
        const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
          const request = new Request(String(input), init);
          const options = { db: fx.db, schema, request, userID, logger: silentLogger };
          if (request.url.endsWith('/mutate')) {
            return handleMutateRequest({ ...options, mutators, context });
          }
          if (request.url.endsWith('/pull')) {
            return handlePullRequest({ ...options, visibility, scopes: [userID] });
          }
          return new Response('not found', { status: 404 });
        };
        const client = await createClient({
          schema,
          mutators,
          server: 'http://test.local/api',
          userID,
          context,
          fetch,
          backoff: { baseMs: 5, maxMs: 50 },
          pullIntervalMs: 0,
        });
        clients.push(client);
        return client;
      };
      const rows = async (client: Client<typeof schema, typeof mutators>) => ({
        issue: await client.query.issue.orderBy('id').run(),
        comment: await client.query.comment.orderBy('id').run(),
        counter: await client.query.counter.orderBy('id').run(),
      });

      it(
        'writes the same rows optimistically as the server does, and they stay after the pull',
        SLOW,
        async () => {
          await fx.query(`INSERT INTO counter (id, value) VALUES ('issues', 0)`);
          const alice = await open();
          await alice.idle();
          alice.setOnline(false);
          const call = alice.mutate.decl.openIssue({ id: 'i1', title: 'Printer', comment: 'Hot' });
          await call.client;
          const optimistic = await rows(alice);
          expect(optimistic.issue).toMatchObject([{ id: 'i1', ownerID: 'alice' }]);
          expect(optimistic.comment).toEqual([{ id: 'i1/1', issueID: 'i1', body: 'Hot' }]);
          expect(optimistic.counter).toEqual([{ id: 'issues', value: 1 }]);

          alice.setOnline(true);
          const outcome = await call.server;
          await alice.idle();
          expect(outcome.ok).toBe(true);
          expect(await rows(alice)).toEqual(optimistic);
          expect(alice.pending).toBe(0);
          expect(await fx.query('SELECT id, issue_id, body FROM comment')).toEqual([
            { id: 'i1/1', issue_id: 'i1', body: 'Hot' },
          ]);

          // Another client sees what the server stored: the same rows again.
          const bob = await open('bob');
          await bob.idle();
          expect(await rows(bob)).toEqual(optimistic);
        },
      );

      it('gives the same results on the client store as in Postgres', SLOW, async () => {
        await fx.query(`INSERT INTO counter (id, value) VALUES ('issues', 0)`);
        const alice = await open();
        await alice.idle();
        const pushed = await alice.mutate.decl.openIssue({
          id: 'i1',
          title: 'Printer',
          comment: 'x',
        }).server;
        // The same transaction over a store holding what the server held before it.
        const store = createMemoryStore(schema);
        store.put('counter', { id: 'issues', value: 0 });
        const tx = createClientTransaction(schema, store, {
          clientID: 'c',
          mutationID: 1,
          reason: 'optimistic',
        });
        const local = await runMutator(mutators.decl.openIssue, {
          tx,
          args: { id: 'i1', title: 'Printer', comment: 'x' },
          ctx: { userID: 'alice', raw: fx.raw },
        });
        expect(pushed).toEqual({ ok: true, data: local });

        // A failing transaction fails on both sides, and the client's rows come back.
        const bob = await open('bob');
        await bob.idle();
        const closedByBob = await bob.mutate.decl.closeIssue({ id: 'i1' }).client.then(
          () => 'applied',
          (error: Error) => error.message,
        );
        expect(closedByBob).toBe('Only the owner may close it');
      });
    },
  );
}
