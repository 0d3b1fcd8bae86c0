// test/jobs.test.ts
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { jobs, outbox, serverMutators } from '../src/jobs.js';
import { schema } from '../src/schema.js';

const APP_DDL = `
  CREATE TABLE issue (id text PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL,
    open boolean NOT NULL DEFAULT true, priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE comment (id text PRIMARY KEY, issue_id text NOT NULL, author_id text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`;
const ana = { userID: 'ana', context: { userID: 'ana' } };

it('notifies the team of a new issue, once it committed', async () => {
  await using t = await createTestDatabase({
    schema,
    mutators: serverMutators,
    jobs,
    ddl: APP_DDL,
  });
  await t.mutate(serverMutators.issue.create({ id: 'i1', title: 'Printer on fire' }), ana);
  expect(outbox.size).toBe(0); // queued, not run: jobs run when a worker gets to them

  expect(await t.runJobs()).toEqual({ completed: 1, failed: 0 });
  expect([...outbox.values()]).toEqual(['New issue i1: Printer on fire']);
});
