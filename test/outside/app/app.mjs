// Plain Node, no TypeScript and no build step: the packed packages on their own.
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { defineVisibility, handleMutateRequest, handlePullRequest, migrate } from '@reprise/server';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { createSchema, defineMutator, defineMutators } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';

const note = pgTable('note', {
  id: text('id').primaryKey(),
  body: text('body').notNull(),
  ownerID: text('owner_id').notNull(),
});
const schema = createSchema({ tables: { note } });
const mutators = defineMutators({
  note: {
    add: defineMutator(
      z.object({ id: z.string(), body: z.string() }),
      async ({ tx, args, ctx }) => {
        await tx.mutate.note.insert({ ...args, ownerID: ctx.userID });
      },
    ),
  },
});
const visibility = defineVisibility(schema, { note: 'ownerID' });

const pglite = new PGlite();
const db = createPGliteDatabase(pglite);
await pglite.exec(
  'CREATE TABLE note (id text PRIMARY KEY, body text NOT NULL, owner_id text NOT NULL)',
);
await migrate(db, { capture: schema });

const post = (path, body) =>
  new Request(`http://app.test${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const pushed = await handleMutateRequest({
  db,
  schema,
  mutators,
  userID: 'ana',
  context: { userID: 'ana' },
  request: post('/mutate', {
    clientGroupID: 'g1',
    pushVersion: 1,
    timestamp: 0,
    requestID: 'r1',
    mutations: [
      {
        type: 'custom',
        id: 1,
        clientID: 'c1',
        name: 'note.add',
        args: [{ id: 'n1', body: 'from a plain Node app' }],
        timestamp: 0,
      },
    ],
  }),
});
assert.equal(pushed.status, 200);
assert.deepEqual(await pushed.json(), {
  kind: 'MutateResponse',
  userID: 'ana',
  mutations: [{ id: { clientID: 'c1', id: 1 }, result: {} }],
});

const pulled = await handlePullRequest({
  db,
  schema,
  visibility,
  userID: 'ana',
  scopes: ['ana'],
  request: post('/pull', { clientGroupID: 'g1', cookie: null }),
});
assert.equal(pulled.status, 200);
const pull = await pulled.json();
assert.deepEqual(pull.lastMutationIDChanges, { c1: 1 });
const puts = pull.patch.filter((op) => op.op === 'put');
assert.deepEqual(
  puts.map((op) => op.value),
  [{ id: 'n1', body: 'from a plain Node app', ownerID: 'ana' }],
);

// A write outside the engine (a script, psql) is captured too: the next pull has it.
await pglite.exec(
  `INSERT INTO note VALUES ('n2', 'by a script', 'ana'), ('n3', 'not yours', 'bob')`,
);
const next = await handlePullRequest({
  db,
  schema,
  visibility,
  userID: 'ana',
  scopes: ['ana'],
  request: post('/pull', { clientGroupID: 'g1', cookie: pull.cookie }),
});
assert.deepEqual((await next.json()).patch, [
  { op: 'put', tableName: 'note', value: { id: 'n2', body: 'by a script', ownerID: 'ana' } },
]);

await pglite.close();
console.log('app.mjs: pushed note.add, pulled it back, and pulled a raw write incrementally');
