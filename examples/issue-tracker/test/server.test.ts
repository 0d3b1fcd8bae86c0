import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp, prepareDatabase, toNodeHandler } from '../src/server';

// The example server over real HTTP, on an in-memory PGlite.

let server: Server;
let base: string;
let pglite: PGlite;

beforeAll(async () => {
  pglite = new PGlite();
  const db = createPGliteDatabase(pglite);
  await prepareDatabase(db);
  server = createServer(toNodeHandler(createApp(db)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await pglite.close();
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
    message: 'Only the owner can change this issue',
    details: { id: 'i1' },
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
