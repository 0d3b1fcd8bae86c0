// test/upload.test.ts
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { mutators, schema } from '../src/schema.js';
import { upload } from '../src/upload.js';

const APP_DDL = `
  CREATE TABLE issue (id text PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL,
    open boolean NOT NULL DEFAULT true, priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE comment (id text PRIMARY KEY, issue_id text NOT NULL, author_id text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`;
const post = (body: unknown) =>
  new Request('http://app.test/upload', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

it('applies a PowerSync upload once, and refuses what is not yours', async () => {
  await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL });
  // PowerSync: {clientID: await db.getClientId(), batch: transaction.crud.map((op) => op.toJSON())}
  const batch = {
    clientID: 'ps-1',
    batch: [
      { op_id: 1, op: 'PUT', type: 'issue', id: 'i1', data: { title: 'Hi', owner_id: 'ana' } },
      { op_id: 2, op: 'PATCH', type: 'issue', id: 'i1', data: { open: 0 } },
      { op_id: 3, op: 'PUT', type: 'issue', id: 'i2', data: { title: 'Forged', owner_id: 'bob' } },
    ],
  };
  const res = await upload(t.db, post(batch), 'ana');
  expect(res.status).toBe(200); // refusals are per operation; 5xx only when the database failed
  const { results } = await res.json();
  expect(results.map((r: { status: string }) => r.status)).toEqual([
    'applied',
    'applied',
    'refused',
  ]);
  expect(results[2].message).toBe(
    'forbidden: insert of issue {"id":"i2"}: issue.ownerID is not one of your scope keys',
  );
  const again = await (await upload(t.db, post(batch), 'ana')).json(); // a resend applies once
  expect(again.results.map((r: { status: string }) => r.status)).toEqual(
    Array(3).fill('alreadyProcessed'),
  );
});

it('applies Prisma IDB outbox events and answers its PushResult shape', async () => {
  await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL });
  await t.sql(`INSERT INTO issue (id, title, owner_id, open) VALUES ('i1', 'Hi', 'ana', false)`);
  const comment = { id: 'c1', issueID: 'i1', authorID: 'ana', body: 'Fixed?' };
  const events = [
    { id: 'e1', entityType: 'Comment', operation: 'create', payload: comment },
    { id: 'e2', entityType: 'Issue', operation: 'update', payload: { id: 'i1', title: 'Hello' } },
    { id: 'e3', entityType: 'Issue', operation: 'delete', payload: { id: 'i1' } },
  ];
  const res = await upload(t.db, post({ events }), 'bob');
  expect(await res.json()).toEqual([
    {
      id: 'e1',
      status: 'refused',
      appliedChangelogId: null,
      error: {
        type: 'CUSTOM_VALIDATION_FAILED',
        message: 'This issue is closed',
        retryable: false,
      },
    },
    {
      id: 'e2',
      status: 'refused',
      appliedChangelogId: null,
      error: {
        type: 'SCOPE_VIOLATION',
        message:
          'forbidden: update of issue {"id":"i1"}: issue.ownerID is not one of your scope keys',
        retryable: false,
      },
    },
    {
      id: 'e3',
      status: 'refused',
      appliedChangelogId: null,
      error: {
        type: 'SCOPE_VIOLATION',
        message:
          'forbidden: delete of issue {"id":"i1"}: issue.ownerID is not one of your scope keys',
        retryable: false,
      },
    },
  ]);
});
