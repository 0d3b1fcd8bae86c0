// @vitest-environment jsdom
// test/react.test.tsx: the hooks from the packed @reprise/react, rendered by react-dom
// against a real client talking to the real handlers over PGlite.
import { createClient } from '@reprise/client';
import { RepriseProvider } from '@reprise/react';
import { defineVisibility, handleMutateRequest, handlePullRequest } from '@reprise/server';
import { createTestDatabase } from '@reprise/server/testing';
import { createRoot } from 'react-dom/client';
import { expect, it, vi } from 'vitest';

const eventually = (check: () => void) => vi.waitFor(check, { timeout: 20_000 });

import { OpenIssues } from '../src/issues.js';
import { mutators, schema } from '../src/schema.js';

const APP_DDL = `
  CREATE TABLE issue (id text PRIMARY KEY, title text NOT NULL, owner_id text NOT NULL,
    open boolean NOT NULL DEFAULT true, priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE comment (id text PRIMARY KEY, issue_id text NOT NULL, author_id text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`;
const visibility = defineVisibility(schema, { issue: () => 'all' });

it('renders live rows, the sync status and the server’s refusal', async () => {
  await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL });
  let down = false;
  const serverFor =
    (userID: string): typeof fetch =>
    async (input, init) => {
      if (down) throw new TypeError('fetch failed');
      const request = new Request(String(input), init);
      if (request.url.endsWith('/mutate')) {
        return handleMutateRequest({
          db: t.db,
          schema,
          mutators,
          request,
          userID,
          context: { userID },
        });
      }
      return handlePullRequest({ db: t.db, schema, visibility, request, userID, scopes: ['all'] });
    };
  // `claims`: the user the client's own context names. The server knows better.
  const open = (userID: string, claims = userID) =>
    createClient({
      schema,
      mutators,
      userID,
      server: 'http://app.test/api',
      context: { userID: claims },
      fetch: serverFor(userID),
      poke: false,
      pullIntervalMs: 0,
    });
  const bob = await open('bob');
  await bob.mutate.issue.create({ id: 'i1', title: 'Printer on fire' }).client;
  await bob.idle();

  down = true;
  // A client whose context claims to be bob, as a tampered one could: its optimistic
  // close of bob's issue applies; the server, which knows the caller is ana, refuses it.
  const ana = await open('ana', 'bob');
  const root = createRoot(document.body.appendChild(document.createElement('div')));
  root.render(
    <RepriseProvider client={ana}>
      <OpenIssues />
    </RepriseProvider>,
  );
  const page = () => document.body.textContent;
  await eventually(() => expect(page()).toContain('Offline, 0 unsaved (not yet synced)'));

  down = false;
  await ana.pull();
  await eventually(() => expect(page()).toContain('Online, 0 unsaved'));
  expect(page()).toContain('Printer on fire');
  expect(page()).not.toContain('not yet synced');

  down = true; // the close waits in the queue, applied optimistically
  document.querySelector('button')!.click();
  await eventually(() => expect(page()).toContain('Offline, 1 unsaved'));
  expect(page()).not.toContain('Printer on fire');

  down = false;
  await ana.pull();
  await ana.idle();
  await eventually(() =>
    expect(document.querySelector('[role="alert"]')?.textContent).toBe(
      'Only bob, who opened this issue, can close it',
    ),
  );
  await eventually(() => expect(page()).toContain('Online, 0 unsaved'));
  expect(page()).toContain('Printer on fire'); // the rebase brought it back
  root.unmount();
  await ana.close();
  await bob.close();
});
