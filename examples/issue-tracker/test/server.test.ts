import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { toNodeHandler } from '@reprise/server/node';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, createApp, prepareDatabase } from '../src/server';

// The example server over real HTTP, on an in-memory PGlite.

let server: Server;
let base: string;
let pglite: PGlite;
let app: App;
let assetsDir: string;

beforeAll(async () => {
  pglite = new PGlite();
  const db = createPGliteDatabase(pglite);
  await prepareDatabase(db);
  assetsDir = await mkdtemp(join(tmpdir(), 'reprise-assets-'));
  await mkdir(join(assetsDir, 'assets'));
  await writeFile(join(assetsDir, 'index.html'), '<h1>tracker</h1>');
  await writeFile(join(assetsDir, 'assets', 'app-1234.js'), 'console.log(1)');
  app = createApp({ db, assetsDir });
  server = createServer(toNodeHandler(app.fetch));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
  await new Promise((resolve) => server.close(resolve));
  await pglite.close();
  await rm(assetsDir, { recursive: true, force: true });
});

function push(user: string, mutations: Array<{ id: number; name: string; args: unknown }>) {
  return fetch(`${base}/mutate?schema=zero_0&appID=zero`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: `user=${user}` },
    body: JSON.stringify({
      clientGroupID: `group-${user}`,
      pushVersion: 1,
      timestamp: Date.now(),
      requestID: 'r1',
      mutations: mutations.map((m) => ({
        type: 'custom',
        clientID: `client-${user}`,
        timestamp: Date.now(),
        ...m,
        args: [m.args],
      })),
    }),
  });
}

it('answers the health route', async () => {
  const response = await fetch(`${base}/health`);
  expect(await response.json()).toEqual({ ok: true, database: 'pglite' });
});

it('applies a push over HTTP and refuses to close an issue the caller does not own', async () => {
  const created = await push('ana', [
    { id: 1, name: 'issue.create', args: { id: 'i1', title: 'Printer on fire' } },
  ]);
  expect(created.status).toBe(200);
  expect((await created.json()).mutations[0].result).toEqual({});

  const refused = await push('bo', [{ id: 1, name: 'issue.close', args: { id: 'i1' } }]);
  const body = await refused.json();
  expect(body.mutations[0].result).toEqual({
    error: 'app',
    message: 'Only ana, who opened this issue, can close it',
    details: { issueID: 'i1', ownerID: 'ana' },
  });

  const closed = await push('ana', [{ id: 2, name: 'issue.close', args: { id: 'i1' } }]);
  expect((await closed.json()).mutations[0].result).toEqual({});
  const rows = await pglite.query<{ open: boolean }>(`SELECT open FROM issue WHERE id = 'i1'`);
  expect(rows.rows[0]!.open).toBe(false);
});

it('serves the pushed issue to a pull, and only newer changes to the next pull', async () => {
  const pull = async (cookie: string | null) => {
    const response = await fetch(`${base}/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: 'user=cy' },
      body: JSON.stringify({ clientGroupID: 'group-cy', cookie }),
    });
    expect(response.status).toBe(200);
    return response.json();
  };
  const first = await pull(null);
  expect(first.patch[0]).toEqual({ op: 'clear' });
  expect(first.patch.map((op: { value?: { id: string } }) => op.value?.id)).toContain('i1');

  await push('cy', [{ id: 1, name: 'issue.create', args: { id: 'i2', title: 'Paper jam' } }]);
  const second = await pull(first.cookie);
  expect(second.patch).toHaveLength(1);
  expect(second.patch[0]).toMatchObject({
    op: 'put',
    tableName: 'issue',
    value: { id: 'i2', title: 'Paper jam' },
  });
  expect(second.lastMutationIDChanges).toEqual({ 'client-cy': 1 });
});

it('signs in with a name in a cookie, and refuses the sync routes without one', async () => {
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    body: new URLSearchParams({ name: 'dee' }),
    redirect: 'manual',
  });
  expect(login.status).toBe(303);
  const cookie = login.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^user=dee;.*HttpOnly/);
  const me = await fetch(`${base}/api/me`, { headers: { cookie: cookie.split(';')[0]! } });
  expect(await me.json()).toEqual({ userID: 'dee' });

  for (const [method, path] of [
    ['POST', '/mutate'],
    ['POST', '/pull'],
    ['GET', '/poke'],
    ['GET', '/api/me'],
  ] as const) {
    const refused = await fetch(`${base}${path}`, { method });
    expect(refused.status, path).toBe(401);
  }
  const badName = await fetch(`${base}/login`, {
    method: 'POST',
    body: new URLSearchParams({ name: '<script>' }),
    redirect: 'manual',
  });
  expect(badName.status).toBe(400);
});

it('streams a poke to a signed-in user when another user commits a change', async () => {
  const aborter = new AbortController();
  const response = await fetch(`${base}/poke`, {
    headers: { cookie: 'user=eve' },
    signal: aborter.signal,
  });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.getReader();
  const events: string[] = [];
  const readUntil = async (event: string) => {
    const decoder = new TextDecoder();
    while (!events.some((e) => e.includes(`event: ${event}`))) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the poke stream ended');
      events.push(decoder.decode(value));
    }
  };
  await readUntil('ready');
  await push('fay', [{ id: 1, name: 'issue.create', args: { id: 'i-poke', title: 'Poke me' } }]);
  await readUntil('poke');
  aborter.abort();
});

it('serves the built page, and never a file outside it', async () => {
  const page = await fetch(`${base}/`);
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(await page.text()).toBe('<h1>tracker</h1>');
  const script = await fetch(`${base}/assets/app-1234.js`);
  expect(script.headers.get('cache-control')).toContain('immutable');
  expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
  expect((await fetch(`${base}/..%2Fpackage.json`)).status).toBe(404);
  expect((await fetch(`${base}/assets/missing.js`)).status).toBe(404);
});

it('says how to build the page when it is not built', async () => {
  const unbuilt = createApp({
    db: createPGliteDatabase(pglite),
    assetsDir: join(assetsDir, 'none'),
  });
  const response = await unbuilt.fetch(new Request('http://localhost/'));
  expect(response.status).toBe(503);
  expect(await response.text()).toContain('npm start');
  await unbuilt.close();
});
