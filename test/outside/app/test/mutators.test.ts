// test/mutators.test.ts
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { mutators, q, schema } from '../src/schema.js';

// Your tables as SQL, e.g. a drizzle-kit migration file's contents; several statements are fine.
const APP_DDL = `
  CREATE TABLE issue (id text PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL,
    open boolean NOT NULL DEFAULT true, priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE comment (id text PRIMARY KEY, issue_id text NOT NULL, author_id text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`;
const ana = { userID: 'ana', context: { userID: 'ana' } };
const bob = { userID: 'bob', context: { userID: 'bob' } };

it('lets only the owner close an issue', async () => {
  await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL }); // engine: 'pg-mem' too
  await t.mutate(mutators.issue.create({ id: 'i1', title: 'Printer on fire' }), ana);

  const refused = await t.mutate(mutators.issue.close({ id: 'i1' }), bob);
  expect(refused.ok || refused.error.message).toBe('Only ana, who opened this issue, can close it');
  expect(await t.run(q.issue.where('id', 'i1').one())).toMatchObject({ open: true });

  expect(await t.mutate(mutators.issue.close({ id: 'i1' }), ana)).toEqual({
    ok: true,
    data: undefined,
  });
  expect(await t.run(q.issue.where('id', 'i1').one())).toMatchObject({ open: false });
});
