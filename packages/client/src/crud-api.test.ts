import {
  ApplicationError,
  createSchema,
  decodeRich,
  defineMutator,
  defineMutators,
  isEnvelope,
} from '@reprise/shared';
import { boolean, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { type Client, createClient } from './create-client';
import { createMemoryStorage } from './storage';

const item = pgTable('item', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  done: boolean('done').notNull().default(false),
  note: text('note'),
});
const cell = pgTable(
  'cell',
  { row: integer('row').notNull(), col: integer('col').notNull(), value: text('value') },
  (t) => [primaryKey({ columns: [t.row, t.col] })],
);
const schema = createSchema({ tables: { item, cell } });
const mutators = defineMutators({ noop: defineMutator(async () => {}) });

interface Pushed {
  readonly name: string;
  readonly args: unknown[];
}

const clients: Client<typeof schema, typeof mutators>[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

/** A client whose server is unreachable; every push body it tried to send is in `pushed`. */
async function offlineClient(storage = createMemoryStorage()) {
  const pushed: Pushed[] = [];
  const client = await createClient({
    schema,
    mutators,
    server: 'http://test.local/api',
    userID: 'ana',
    storage,
    pullIntervalMs: 0,
    poke: false,
    backoff: { baseMs: 1, maxMs: 5 },
    fetch: async (input, init) => {
      if (String(input).includes('/mutate') && typeof init?.body === 'string') {
        const json: unknown = JSON.parse(init.body);
        const body = (isEnvelope(json) ? decodeRich(json) : json) as { mutations: Pushed[] };
        pushed.push(...body.mutations.map(({ name, args }) => ({ name, args })));
      }
      throw new TypeError('fetch failed: offline');
    },
  });
  clients.push(client);
  return { client, pushed };
}

describe('client.crud', () => {
  it('put applies at once, filling defaults, and queues a _crud.put mutation', async () => {
    const { client, pushed } = await offlineClient();
    const { client: applied } = client.crud.item.put({ id: 'a', name: 'A' });
    await applied;
    expect(await client.query.item.run()).toEqual([
      { id: 'a', name: 'A', done: false, note: null },
    ]);
    expect(client.pending).toBe(1);
    await expect.poll(() => pushed.length).toBeGreaterThan(0);
    expect(pushed[0]).toEqual({
      name: '_crud.put',
      args: [{ table: 'item', row: { id: 'a', name: 'A' } }],
    });
  });

  it('put over an existing row overwrites only the columns given', async () => {
    const { client } = await offlineClient();
    await client.crud.item.put({ id: 'a', name: 'A', note: 'kept' }).client;
    await client.crud.item.put({ id: 'a', name: 'B' }).client;
    expect(await client.query.item.run()).toEqual([
      { id: 'a', name: 'B', done: false, note: 'kept' },
    ]);
  });

  it('patch sets the given columns, and leaves a missing row missing', async () => {
    const { client } = await offlineClient();
    await client.crud.item.put({ id: 'a', name: 'A' }).client;
    await client.crud.item.patch('a', { done: true }).client;
    await client.crud.item.patch('nope', { done: true }).client;
    expect(await client.query.item.run()).toEqual([{ id: 'a', name: 'A', done: true, note: null }]);
    expect(client.pending).toBe(3);
  });

  it('delete removes the row, and deleting a missing row is fine', async () => {
    const { client } = await offlineClient();
    await client.crud.item.put({ id: 'a', name: 'A' }).client;
    await client.crud.item.delete('a').client;
    await client.crud.item.delete('a').client;
    expect(await client.query.item.run()).toEqual([]);
  });

  it('a composite key is addressed by an object of its columns', async () => {
    const { client } = await offlineClient();
    await client.crud.cell.put({ row: 1, col: 2, value: 'x' }).client;
    await client.crud.cell.patch({ row: 1, col: 2 }, { value: 'y' }).client;
    expect(await client.query.cell.run()).toEqual([{ row: 1, col: 2, value: 'y' }]);
    await client.crud.cell.delete({ row: 1, col: 2 }).client;
    expect(await client.query.cell.run()).toEqual([]);
  });

  it('a patch that changes the primary key is refused locally, like a throwing mutator', async () => {
    const { client } = await offlineClient();
    await client.crud.item.put({ id: 'a', name: 'A' }).client;
    const { client: applied, server } = client.crud.item.patch('a', { id: 'b' });
    await expect(applied).rejects.toThrow(/primary key "id" cannot change/);
    const outcome = await server;
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error).toBeInstanceOf(ApplicationError);
    expect(client.pending).toBe(1);
    expect((await client.query.item.run()).map((r) => r.id)).toEqual(['a']);
  });

  it('an unknown column is refused locally and nothing is queued', async () => {
    const { client } = await offlineClient();
    // @ts-expect-error: item has no column "colour"
    const { client: applied, server } = client.crud.item.put({ id: 'a', name: 'A', colour: 1 });
    await expect(applied).rejects.toThrow(/no column "colour"/);
    expect((await server).ok).toBe(false);
    expect(client.pending).toBe(0);
  });

  it('queued CRUD calls survive a reload and apply again on the new client', async () => {
    const storage = createMemoryStorage();
    const first = await offlineClient(storage);
    await first.client.crud.item.put({ id: 'a', name: 'A' }).client;
    await first.client.crud.item.patch('a', { note: 'n' }).client;
    await first.client.close();
    const second = await offlineClient(storage);
    expect(second.client.pending).toBe(2);
    expect(await second.client.query.item.run()).toEqual([
      { id: 'a', name: 'A', done: false, note: 'n' },
    ]);
  });

  it('the app may not define a "_crud" mutator of its own', async () => {
    const taken = defineMutators({ _crud: { put: defineMutator(async () => {}) } });
    await expect(
      createClient({ schema, mutators: taken, server: 'http://x', userID: 'ana' }),
    ).rejects.toThrow(/reserved/);
  });

  it('is typed from the schema', async () => {
    const { client } = await offlineClient();
    expectTypeOf(client.crud.item.patch).parameter(0).toEqualTypeOf<string>();
    expectTypeOf(client.crud.cell.delete)
      .parameter(0)
      .toEqualTypeOf<{ row?: number; col?: number; value?: string | null }>();
    // Never called: the calls below are for the type checker only.
    const wrongCalls = () => {
      // @ts-expect-error: "name" is a string column
      client.crud.item.patch('a', { name: 3 });
      // @ts-expect-error: put needs the non-null column "name"
      client.crud.item.put({ id: 'b' });
      // @ts-expect-error: no table "nope"
      void client.crud.nope;
    };
    expect(typeof wrongCalls).toBe('function');
  });
});
