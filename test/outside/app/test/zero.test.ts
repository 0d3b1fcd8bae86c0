// test/zero.test.ts
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { mutators, schema } from '../src/schema.js';
import { migrateForZero, zeroMutate } from '../src/zero.js';

const APP_DDL = `
  CREATE TABLE issue (id text PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL,
    open boolean NOT NULL DEFAULT true, priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE comment (id text PRIMARY KEY, issue_id text NOT NULL, author_id text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`;
// A push as zero-cache forwards it from Zero's client.
const push = (
  mutations: { id: number; name: string; args: unknown }[],
  url = 'http://api.test/mutate?schema=zero_0&appID=zero',
) =>
  new Request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientGroupID: 'g1',
      pushVersion: 1,
      timestamp: 1,
      requestID: 'r1',
      mutations: mutations.map((m) => ({ type: 'custom', clientID: 'c1', timestamp: 1, ...m })),
    }),
  });

it("keeps LMIDs and errors where zero-cache reads them, and answers as Zero's server", async () => {
  await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL });
  await migrateForZero(t.db);
  const res = await zeroMutate(
    t.db,
    push([
      { id: 1, name: 'issue.create', args: [{ id: 'i1', title: 'Hi' }] },
      { id: 2, name: 'issue.close', args: [{ id: 'nope' }] },
    ]),
    'ana',
  );
  expect((await res.json()).mutations.map((m: { result: unknown }) => m.result)).toEqual([
    {},
    { error: 'app', message: 'There is no issue nope' },
  ]);
  expect(
    await t.sql(`SELECT "clientID", "lastMutationID"::int AS lmid FROM zero_0.clients`),
  ).toEqual([{ clientID: 'c1', lmid: 2 }]);
  expect(await t.sql(`SELECT "mutationID"::int AS id, result FROM zero_0.mutations`)).toEqual([
    { id: 2, result: { error: 'app', message: 'There is no issue nope' } },
  ]);
  // zero-cache's cleanup, once the client has the result: id 0, no LMID, no answer.
  const cleanup = { clientGroupID: 'g1', clientID: 'c1', upToMutationID: 2 };
  const done = await zeroMutate(
    t.db,
    push([{ id: 0, name: '_zero_cleanupResults', args: [cleanup] }]),
    'ana',
  );
  expect(await done.json()).toEqual({ kind: 'MutateResponse', userID: 'ana', mutations: [] });
  expect(await t.sql('SELECT * FROM zero_0.mutations')).toEqual([]);
  // Without zero-cache's query parameters: a PushFailed, with HTTP 200 as Zero answers it.
  const bare = push(
    [{ id: 3, name: 'issue.create', args: [{ id: 'i3', title: 'x' }] }],
    'http://api.test/mutate',
  );
  const failed = await zeroMutate(t.db, bare, 'ana');
  expect(failed.status).toBe(200);
  expect(await failed.json()).toMatchObject({ kind: 'PushFailed', reason: 'parse' });
});
