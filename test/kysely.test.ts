import { handleMutateRequest, isTransientError, migrate, silentLogger } from '@reprise/server';
import { createKyselyDatabase } from '@reprise/server/kysely';
import { ApplicationError, createMutatorDefiner, defineMutators } from '@reprise/shared';
import { CamelCasePlugin, Kysely, PostgresDialect, sql, Transaction } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { createServerDatabase, DATABASE_URL } from './fixtures/adapters';
import { FIXTURE_DDL, schema } from './fixtures/app';
import { pushBody } from './fixtures/push';

// What only the Kysely adapter promises, beyond the adapter suites every adapter runs
// (fixtures/adapters.ts): mutators get Kysely's own Transaction, bound to the mutation's
// connection, with the app's plugins; and the connection under it keeps the node-postgres
// adapter's bounds (a wait past queryTimeoutMs, a killed connection, a query too late).

interface DB {
  issue: { id: string; title: string; owner_id: string; open: boolean };
  comment: { id: string; issue_id: string; body: string };
}

const defineMutator = createMutatorDefiner<typeof schema, unknown, Transaction<DB>>();
let lastTransaction: Transaction<DB> | undefined;

const mutators = defineMutators({
  /** Writes through tx.mutate and Kysely's builder; refuses when asked to. */
  both: defineMutator(async ({ tx, args }: { tx: any; args: { id: string; refuse?: boolean } }) => {
    const trx: Transaction<DB> = tx.dbTransaction.wrappedTransaction;
    lastTransaction = trx;
    await tx.mutate.issue.insert({ id: args.id, title: 'engine', ownerID: 'ana' });
    await trx
      .insertInto('comment')
      .values({ id: `${args.id}-c`, issue_id: args.id, body: 'kysely' })
      .execute();
    if (args.refuse) throw new ApplicationError('refused after writing');
  }),
  /** Reads its own insert back through the builder, in camelCase (the app's plugin). */
  camel: defineMutator(async ({ tx, args }: { tx: any; args: { id: string } }) => {
    await tx.mutate.issue.insert({ id: args.id, title: 'camel', ownerID: 'bo' });
    const trx = tx.dbTransaction.wrappedTransaction as unknown as Transaction<CamelDB>;
    const row = await trx
      .selectFrom('issue')
      .select(['id', 'ownerId'])
      .where('id', '=', args.id)
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('comment')
      .values({ id: `${args.id}-c`, issueId: row.id, body: `owner ${row.ownerId}` })
      .execute();
  }),
});

interface CamelDB {
  issue: { id: string; title: string; ownerId: string };
  comment: { id: string; issueId: string; body: string };
}

describe.skipIf(!DATABASE_URL)('kysely adapter', () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let pool: pg.Pool;
  let admin: postgres.Sql;

  beforeAll(async () => {
    server = await createServerDatabase();
    pool = new pg.Pool({ connectionString: server.url, max: 3 });
    pool.on('error', () => {});
    admin = postgres(server.url, { max: 1, onnotice: () => {} });
    for (const statement of FIXTURE_DDL) await admin.unsafe(statement);
    await migrate(createKyselyDatabase(kyselyOf(), { pool }));
  });
  beforeEach(async () => {
    await admin`DELETE FROM issue`;
    await admin`DELETE FROM comment`;
  });
  afterAll(async () => {
    await admin?.end();
    await pool?.end();
    await server?.drop();
  });

  let pushes = 0;
  async function push(kysely: Kysely<any>, name: string, args: object) {
    const response = await handleMutateRequest({
      db: createKyselyDatabase(kysely, { pool }),
      schema,
      mutators,
      context: {},
      userID: 'ana',
      logger: silentLogger,
      request: new Request('http://localhost/mutate', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(pushBody([{ id: 1, name, args }], { clientID: `c${++pushes}` })),
      }),
    });
    return ((await response.json()) as any).mutations[0].result;
  }
  const kyselyOf = (plugins = [] as CamelCasePlugin[]) =>
    new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins });
  const rows = (table: string) => admin.unsafe(`SELECT id FROM ${table} ORDER BY id`);

  it("hands mutators Kysely's Transaction, typed from the Database", () => {
    const db = createKyselyDatabase(kyselyOf(), { pool });
    expectTypeOf(db.transaction<Transaction<DB>>)
      .parameter(0)
      .parameter(0)
      .toHaveProperty('wrappedTransaction')
      .toEqualTypeOf<Transaction<DB>>();
  });

  it("commits the builder's writes with the engine's, in the mutation's transaction", async () => {
    expect(await push(kyselyOf(), 'both', { id: 'i1' })).toEqual({});
    expect(lastTransaction).toBeInstanceOf(Transaction);
    expect(lastTransaction!.isTransaction).toBe(true);
    expect(await rows('issue')).toEqual([{ id: 'i1' }]);
    expect(await rows('comment')).toEqual([{ id: 'i1-c' }]);
  });

  it("rolls back the builder's writes with the engine's when the mutator refuses", async () => {
    expect(await push(kyselyOf(), 'both', { id: 'i2', refuse: true })).toEqual({
      error: 'app',
      message: 'refused after writing',
    });
    expect(await rows('issue')).toEqual([]);
    expect(await rows('comment')).toEqual([]);
  });

  it("applies the Kysely instance's plugins inside the transaction", async () => {
    expect(await push(kyselyOf([new CamelCasePlugin()]), 'camel', { id: 'i3' })).toEqual({});
    const [comment] = await admin`SELECT issue_id, body FROM comment`;
    expect(comment).toEqual({ issue_id: 'i3', body: 'owner bo' });
  });

  it('refuses a query on the Transaction once its mutation is over, not running it on a pooled connection', async () => {
    expect(await push(kyselyOf(), 'both', { id: 'i4' })).toEqual({});
    const late = lastTransaction!.selectFrom('issue').selectAll().execute();
    await expect(late).rejects.toThrow(/transaction is over/);
  });

  it('fails a statement past queryTimeoutMs as transient and destroys its connection', async () => {
    const db = createKyselyDatabase(kyselyOf(), { pool, queryTimeoutMs: 300 });
    let pid = 0;
    const started = Date.now();
    const error = await db
      .transaction(
        async (tx) => {
          pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
          await sql`SELECT pg_sleep(3)`.execute(tx.wrappedTransaction);
        },
        { isolation: 'read committed' },
      )
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(isTransientError(error)).toBe(true);
    // The pool never hands out the abandoned connection again.
    for (let i = 0; i < 6; i++) {
      const [row] = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(row!.pid).not.toBe(pid);
    }
  });

  it('destroys a connection killed under a transaction, and the pool serves on without it', async () => {
    const db = createKyselyDatabase(kyselyOf(), { pool });
    let pid = 0;
    const error = await db
      .transaction(
        async (tx) => {
          pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
          await admin`SELECT pg_terminate_backend(${pid})`;
          await new Promise((resolve) => setTimeout(resolve, 100));
          await tx.wrappedTransaction.selectFrom('issue').selectAll().execute();
        },
        { isolation: 'serializable' },
      )
      .catch((e: unknown) => e);
    expect(isTransientError(error)).toBe(true);
    const [alive] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`;
    expect(alive!.n).toBe(0);
    for (let i = 0; i < 6; i++) {
      const [row] = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(row!.pid).not.toBe(pid);
    }
    expect(pool.totalCount).toBeLessThanOrEqual(3);
  });
});
