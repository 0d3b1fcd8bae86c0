// test/signup.test.ts
import { createClient } from '@reprise/client';
import {
  defineVisibility,
  handleMutateRequest,
  handlePullRequest,
  silentLogger,
} from '@reprise/server';
import { createTestDatabase } from '@reprise/server/testing';
import { expect, it } from 'vitest';
import { accountMutators, accounts } from '../src/signup.js';
import { signUpRoute } from '../src/signup-route.js';

const ACCOUNTS_DDL = `
  CREATE TABLE app_user (id text PRIMARY KEY, email text NOT NULL, password text NOT NULL);
  CREATE TABLE profile (id text PRIMARY KEY, user_id text NOT NULL, display_name text NOT NULL,
    avatar text NOT NULL);
  CREATE TABLE settings (id text PRIMARY KEY, user_id text NOT NULL, theme text NOT NULL,
    notifications boolean NOT NULL);
  CREATE TABLE subscription (id text PRIMARY KEY, user_id text NOT NULL, plan text NOT NULL,
    expires_at timestamptz NOT NULL);
`;
const signUpRequest = (body: unknown, key?: string) =>
  new Request('http://app.test/auth/sign-up', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });

it('signs up through the route: four rows, one welcome mail, no password in the answer', async () => {
  await using t = await createTestDatabase({
    schema: accounts,
    mutators: accountMutators,
    ddl: ACCOUNTS_DDL,
  });
  const sent: string[] = [];
  const mailer = { send: async (mail: { to: string }) => void sent.push(mail.to) };
  const options = { db: t.db, schema: accounts, context: { mailer }, logger: silentLogger };

  const refused = await signUpRoute(signUpRequest({ email: 'ana', password: 'short' }), options);
  expect(refused.status).toBe(400);
  expect(await refused.json()).toEqual({
    errors: ['Invalid email', 'Password must be 8+ characters', 'Name is required'],
  });

  const body = {
    userId: 'u1',
    email: 'Ana@Example.com',
    password: 'correct horse',
    name: 'Ana',
    plan: 'pro',
  };
  const res = await signUpRoute(signUpRequest(body, 'signup-u1'), options);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ id: 'u1', email: 'ana@example.com' });
  const again = await signUpRoute(signUpRequest(body, 'signup-u1'), options); // a retry
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(await again.json()).toEqual({ id: 'u1', email: 'ana@example.com' });
  expect(sent).toEqual(['ana@example.com']);
  for (const table of ['app_user', 'profile', 'settings', 'subscription']) {
    expect(await t.sql(`SELECT id FROM ${table}`)).toEqual([{ id: 'u1' }]);
  }
});

it('runs the same transaction optimistically in the browser, then on the server', async () => {
  await using t = await createTestDatabase({
    schema: accounts,
    mutators: accountMutators,
    ddl: ACCOUNTS_DDL,
  });
  const visibility = defineVisibility(accounts, {
    user: 'id',
    profile: 'userId',
    settings: 'userId',
    subscription: 'userId',
  });
  // The client's fetch goes straight to the handlers; in an app it is your server.
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const server = { db: t.db, schema: accounts, request, userID: 'u2', logger: silentLogger };
    return request.url.endsWith('/mutate')
      ? handleMutateRequest({ ...server, mutators: accountMutators, context: {} })
      : handlePullRequest({ ...server, visibility, scopes: ['u2'] });
  };
  const client = await createClient({
    schema: accounts,
    mutators: accountMutators,
    userID: 'u2',
    server: 'http://app.test',
    fetch,
    context: {}, // no mailer here: onSuccess runs on the server only
  });
  const args = { userId: 'u2', email: 'bo@example.com', password: 'open sesame', name: 'Bo' };
  const { client: applied, server } = client.mutate.user.signUp(args);
  await applied; // already in the local store, before the server has seen it
  expect(await client.query.profile.run()).toMatchObject([{ id: 'u2', displayName: 'Bo' }]);
  expect(await client.query.subscription.run()).toEqual([]); // the free plan skips step 4

  const result = await server;
  expect(result.ok && result.data.user).toEqual({ id: 'u2', email: 'bo@example.com' });
  await client.idle();
  expect(await client.query.user.run()).toEqual([{ id: 'u2', email: 'bo@example.com' }]);
  expect(await client.query.settings.run()).toMatchObject([
    { theme: 'light', notifications: true },
  ]);
  await client.close();
});
