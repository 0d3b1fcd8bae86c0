import { createClient, createMemoryStorage } from '@reprise/client';
import {
  createEntityContext,
  createPokeHub,
  defineVisibility,
  defineWritePolicy,
  handleCrudRequest,
  handleMutateRequest,
  handlePullRequest,
  migrate,
  type PokeHub,
  silentLogger,
} from '@reprise/server';
import {
  createBuilder,
  createMutatorDefiner,
  createSchema,
  defineMutators,
  encodeRich,
  filterInput,
  filterOutput,
  type PullResponse,
  type SchemaMutate,
} from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  expectTypeOf,
  it,
} from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';

// Field policies on every adapter: a `returned: false` column is searched for in every
// answer that leaves the server (push results, pull resets and patches, pokes, the CRUD
// endpoint) and in the client's store, and never found; `input: false` is refused on the
// CRUD path.

const account = pgTable('account', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').notNull().default('member'),
  apiKey: text('api_key'),
});
const schema = createSchema({
  tables: { account },
  fields: {
    account: {
      passwordHash: { returned: false },
      role: { input: false },
      apiKey: { input: false, returned: false },
    },
  },
});
const DDL = `CREATE TABLE account (id TEXT PRIMARY KEY, email TEXT NOT NULL,
  password_hash TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'member', api_key TEXT)`;
const q = createBuilder(schema);
const visibility = defineVisibility(schema, { account: 'id' });
const writePolicy = defineWritePolicy(schema, { account: { owner: 'id' } });

/** Every secret value holds this; no answer may. */
const SECRET = 'SEKRET';
const HIDDEN_NAMES = /passwordHash|password_hash|apiKey|api_key/;

const defineMutator = createMutatorDefiner<typeof schema, { userID: string }>();
const mutators = defineMutators({
  account: {
    signUp: defineMutator(
      z.object({ email: z.string(), password: z.string() }),
      async ({ tx, args, ctx }) =>
        // Written on both sides; only the server keeps it.
        tx.mutate.account.insert({
          id: ctx.userID,
          email: args.email,
          passwordHash: `hash:${SECRET}:${args.password}`,
        }),
    ),
    rotateKey: defineMutator(async ({ tx, ctx }) =>
      tx.mutate.account.update({ id: ctx.userID }, { apiKey: `key-${SECRET}` }),
    ),
    me: defineMutator(async ({ tx, ctx }) => tx.run(q.account.where('id', ctx.userID).one())),
    byHash: defineMutator(async ({ tx }) =>
      // A client query cannot name it: the type says so, and so does the checker.
      tx.run(q.account.where('passwordHash' as never, `hash:${SECRET}:pw` as never)),
    ),
  },
});

it('types: client rows, queries and CRUD calls leave the policies’ columns out', () => {
  type Client = Awaited<ReturnType<typeof createClient<typeof schema, typeof mutators>>>;
  type Rows = Awaited<ReturnType<Client['query']['account']['run']>>;
  expectTypeOf<Rows[number]>().toEqualTypeOf<{ id: string; email: string; role: string }>();
  const client = undefined as unknown as Client;
  const never = () => {
    // @ts-expect-error: a returned: false column is not a query column
    client.query.account.where('apiKey', 'k');
    // @ts-expect-error: nor can a client set an input: false one
    client.crud.account.put({ id: 'a', email: 'e', passwordHash: 'h', role: 'admin' });
    client.crud.account.put({ id: 'a', email: 'e', passwordHash: 'h' });
  };
  expect(typeof never).toBe('function');
  // tx.mutate runs on the client too: its rows and its where have no returned: false column.
  type Mutate = SchemaMutate<typeof schema>['account'];
  expectTypeOf<Awaited<ReturnType<Mutate['insert']>>>().toEqualTypeOf<Rows[number]>();
  expectTypeOf<Parameters<Mutate['delete']>[0]>().not.toHaveProperty('apiKey');
});

/** The text of an answer, whatever its encoding, for the secret search. */
function expectNoSecret(text: string) {
  expect(text).not.toContain(SECRET);
  expect(text).not.toMatch(HIDDEN_NAMES);
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`field policies: ${title}`, () => {
    let fx: AdapterFixture;
    let hubs: PokeHub[] = [];
    beforeAll(async () => {
      fx = await adapter.create();
      await fx.query(DDL);
      await migrate(fx.db, { capture: schema });
    });
    beforeEach(async () => {
      await fx.reset();
      await fx.query('DELETE FROM account');
    });
    afterEach(async () => {
      await Promise.all(hubs.map((hub) => hub.close()));
      hubs = [];
    });
    afterAll(async () => {
      await fx?.close();
    });

    let nextID = new Map<string, number>();
    beforeEach(() => {
      nextID = new Map();
    });

    const handlers = (userID: string) => ({
      mutate: (request: Request) =>
        handleMutateRequest({
          db: fx.db,
          schema,
          mutators,
          userID,
          context: { userID },
          logger: silentLogger,
          request,
        }),
      pull: (request: Request) =>
        handlePullRequest({
          db: fx.db,
          schema,
          visibility,
          scopes: [userID],
          userID,
          logger: silentLogger,
          request,
        }),
    });

    /** Pushes one mutation as `userID`; returns the response's text and its result. */
    async function push(userID: string, name: string, args?: unknown) {
      const id = (nextID.get(userID) ?? 0) + 1;
      nextID.set(userID, id);
      const body = {
        clientGroupID: `${userID}-cg`,
        pushVersion: 1,
        timestamp: 1,
        requestID: 'r',
        mutations: [
          {
            type: 'custom',
            id,
            clientID: `${userID}-c`,
            name,
            args: args === undefined ? [] : [args],
            timestamp: 1,
          },
        ],
      };
      const response = await handlers(userID).mutate(
        new Request('http://x/mutate', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      );
      const text = await response.text();
      expect(response.status).toBe(200);
      return { text, result: JSON.parse(text).mutations[0].result };
    }

    async function pull(userID: string, cookie: string | null) {
      const response = await handlers(userID).pull(
        new Request('http://x/pull', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ clientGroupID: `${userID}-cg`, cookie }),
        }),
      );
      const text = await response.text();
      expect(response.status).toBe(200);
      return { text, body: JSON.parse(text) as PullResponse };
    }

    it('push results carry rows without returned: false columns, defaults applied', async () => {
      const signUp = await push('ana', 'account.signUp', { email: 'ana@x.test', password: 'pw' });
      expectNoSecret(signUp.text);
      expect(signUp.result).toEqual({ data: { id: 'ana', email: 'ana@x.test', role: 'member' } });
      const rotate = await push('ana', 'account.rotateKey');
      expectNoSecret(rotate.text);
      expect(rotate.result.data).toEqual([{ id: 'ana', email: 'ana@x.test', role: 'member' }]);
      const me = await push('ana', 'account.me');
      expectNoSecret(me.text);
      expect(me.result.data).toEqual({ id: 'ana', email: 'ana@x.test', role: 'member' });
      // The server kept both secrets.
      const [stored] = await fx.query<{ password_hash: string; api_key: string }>(
        'SELECT password_hash, api_key FROM account',
      );
      expect(stored).toEqual({ password_hash: `hash:${SECRET}:pw`, api_key: `key-${SECRET}` });
    });

    it('a query filtering on a returned: false column is refused, naming it', async () => {
      await push('ana', 'account.signUp', { email: 'ana@x.test', password: 'pw' });
      const { text, result } = await push('ana', 'account.byHash');
      expect(result.error).toBe('app');
      expect(result.message).toContain('"passwordHash" of account is returned: false');
      expect(text).not.toContain(SECRET);
    });

    it('pull resets and incremental patches never carry returned: false columns', async () => {
      await push('ana', 'account.signUp', { email: 'ana@x.test', password: 'pw' });
      const reset = await pull('ana', null);
      expectNoSecret(reset.text);
      expect(reset.body.patch).toEqual([
        { op: 'clear' },
        {
          op: 'put',
          tableName: 'account',
          value: { id: 'ana', email: 'ana@x.test', role: 'member' },
        },
      ]);

      // Written by a mutator, and by server code outside one (the entity API), which pg-mem
      // records in the engine and Postgres captures with its triggers.
      await push('ana', 'account.rotateKey');
      const entities = createEntityContext({ db: fx.db, schema });
      await entities.account.update({ id: 'ana' }, { passwordHash: `hash:${SECRET}:2` });
      const patch = await pull('ana', reset.body.cookie as string);
      expectNoSecret(patch.text);
      expect(patch.body.patch).toEqual([
        {
          op: 'put',
          tableName: 'account',
          value: { id: 'ana', email: 'ana@x.test', role: 'member' },
        },
      ]);
    });

    it('pokes carry nothing of the row', async () => {
      const hub = createPokeHub({
        db: fx.db,
        schema,
        visibility,
        pollIntervalMs: 20,
        logger: silentLogger,
      });
      hubs.push(hub);
      const response = await hub.handlePokeRequest({
        request: new Request('http://x/poke'),
        scopes: ['ana'],
      });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (marker: string) => {
        const deadline = Date.now() + 10_000;
        while (!text.includes(marker) && Date.now() < deadline) {
          const chunk = await reader.read();
          if (chunk.done) break;
          text += decoder.decode(chunk.value, { stream: true });
        }
      };
      await readUntil('event: ready');
      await push('ana', 'account.signUp', { email: 'ana@x.test', password: 'pw' });
      await readUntil('event: poke');
      await reader.cancel();
      expect(text).toContain('event: poke');
      expectNoSecret(text);
    });

    it('the client store never holds returned: false columns, not even optimistically', async () => {
      const storage = createMemoryStorage();
      const { mutate, pull: pullHandler } = handlers('ana');
      const client = await createClient({
        schema,
        mutators,
        server: 'http://test.local/api',
        userID: 'ana',
        context: { userID: 'ana' },
        storage,
        pullIntervalMs: 0,
        poke: false,
        fetch: async (input, init) => {
          const request = new Request(String(input), init);
          return request.url.endsWith('/mutate') ? mutate(request) : pullHandler(request);
        },
      });
      try {
        const call = client.mutate.account.signUp({ email: 'ana@x.test', password: 'pw' });
        await call.client;
        // Optimistic: the mutator wrote passwordHash; the store dropped it.
        expect(await client.query.account.run()).toEqual([
          { id: 'ana', email: 'ana@x.test', role: 'member' },
        ]);
        expect(await call.server).toEqual({
          ok: true,
          data: { id: 'ana', email: 'ana@x.test', role: 'member' },
        });
        client.mutate.account.rotateKey();
        await client.idle();
        expect(await client.query.account.run()).toEqual([
          { id: 'ana', email: 'ana@x.test', role: 'member' },
        ]);
        const stored: unknown[] = [];
        for (const key of await storage.keys()) stored.push(await storage.get(key));
        expectNoSecret(JSON.stringify(encodeRich(stored)));
      } finally {
        await client.close();
      }
    });

    it('input: false is refused on the CRUD endpoint and client.crud, and dropped by filterInput', async () => {
      const post = (body: unknown) =>
        handleCrudRequest({
          db: fx.db,
          schema,
          writePolicy,
          userID: 'ana',
          logger: silentLogger,
          request: new Request('http://x/crud', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
        });
      const response = await post({
        clientID: 'ps',
        batch: [
          {
            op_id: 1,
            op: 'PUT',
            type: 'account',
            id: 'ana',
            data: { email: 'a@x.test', password_hash: 'h', role: 'admin' },
          },
          {
            op_id: 2,
            op: 'PUT',
            type: 'account',
            id: 'ana',
            data: { email: 'a@x.test', password_hash: 'h' },
          },
          { op_id: 3, op: 'PATCH', type: 'account', id: 'ana', data: { api_key: 'k' } },
        ],
      });
      const text = await response.text();
      expect(response.status).toBe(200);
      expect(text).not.toContain(SECRET); // a refusal names the column, never a stored value
      const { results } = JSON.parse(text);
      expect(results.map((r: { status: string }) => r.status)).toEqual([
        'refused',
        'applied',
        'refused',
      ]);
      expect(results[0]).toMatchObject({
        reason: 'invalid',
        message: 'account: "role" cannot be set by a client (input: false)',
      });
      expect(results[2].message).toBe('account: "apiKey" cannot be set by a client (input: false)');
      expect(await fx.query('SELECT id, role, api_key FROM account')).toEqual([
        { id: 'ana', role: 'member', api_key: null },
      ]);

      const body = { email: 'b@x.test', role: 'admin', api_key: 'k', password: 'pw' };
      expect(filterInput(body, account)).toEqual({ email: 'b@x.test', password: 'pw' });
    });

    it('the entity API reads whole rows on the server; filterOutput strips them', async () => {
      const entities = createEntityContext({ db: fx.db, schema });
      const created = await entities.account.create({
        id: 'ana',
        email: 'ana@x.test',
        passwordHash: `hash:${SECRET}`,
      });
      expect(created).toEqual({
        id: 'ana',
        email: 'ana@x.test',
        passwordHash: `hash:${SECRET}`,
        role: 'member',
        apiKey: null,
      });
      // Server code may look a row up by a returned: false column.
      const found = await entities.account.findOne({ passwordHash: `hash:${SECRET}` });
      expect(found?.id).toBe('ana');
      const out = JSON.stringify(filterOutput(found!, account));
      expectNoSecret(out);
      expect(JSON.parse(out)).toEqual({ id: 'ana', email: 'ana@x.test', role: 'member' });
    });
  });
}
