// test/accounts.test.ts
import { createEntityContext, defineVisibility, handlePullRequest } from '@reprise/server';
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { accountSchema, signUp } from '../src/accounts.js';

const ACCOUNT_DDL = `CREATE TABLE account (id text PRIMARY KEY, email text NOT NULL,
  password_hash text NOT NULL, role text NOT NULL DEFAULT 'member')`;

it('keeps the password hash on the server, and the role out of callers’ hands', async () => {
  await using t = await createTestDatabase({
    schema: accountSchema,
    mutators: {},
    ddl: ACCOUNT_DDL,
  });
  const body = { id: 'a1', email: 'ana@example.com', password: 'hunter22', role: 'admin' };
  const res = await signUp(t.db, body);
  expect(await res.json()).toEqual({ id: 'a1', email: 'ana@example.com', role: 'member' });

  // Server code reads whole rows, and may look one up by a returned: false column.
  const entities = createEntityContext({ db: t.db, schema: accountSchema });
  const stored = await entities.account.findOne({ email: 'ana@example.com' });
  expect(stored?.passwordHash).toMatch(/^[0-9a-f]{32}:[0-9a-f]{64}$/);
  await entities.transaction(async (e) => {
    await e.account.update({ id: 'a1' }, { role: 'admin' }); // server code may set it
  });

  // A pull, like every answer to a client, never carries it.
  const visibility = defineVisibility(accountSchema, { account: 'id' });
  const pull = await handlePullRequest({
    db: t.db,
    schema: accountSchema,
    visibility,
    userID: 'a1',
    scopes: ['a1'],
    request: new Request('http://app.test/pull', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientGroupID: 'g1', cookie: null }),
    }),
  });
  const { patch } = await pull.json();
  expect(patch).toEqual([
    { op: 'clear' },
    {
      op: 'put',
      tableName: 'account',
      value: { id: 'a1', email: 'ana@example.com', role: 'admin' },
    },
  ]);
});
