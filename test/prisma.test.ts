import { PrismaPg } from '@prisma/adapter-pg';
import { handleMutateRequest, isTransientError, migrate, silentLogger } from '@reprise/server';
import { createPrismaDatabase } from '@reprise/server/prisma';
import { ApplicationError, createMutatorDefiner, defineMutators } from '@reprise/shared';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { createServerDatabase, DATABASE_URL } from './fixtures/adapters';
import { FIXTURE_DDL, schema } from './fixtures/app';
import { pushBody } from './fixtures/push';
import { type Prisma, PrismaClient } from './prisma/generated/client';

// What only the Prisma adapter promises, beyond the adapter suites every adapter runs
// (fixtures/adapters.ts): mutators get Prisma's interactive transaction client, whose model
// calls run in the mutation's transaction; Prisma's own errors (a write conflict, a killed
// connection) are retried like the driver's; and Prisma's transaction bound holds.

interface Ctx {
  readonly kill: (pid: number) => Promise<void>;
}
const defineMutator = createMutatorDefiner<typeof schema, Ctx, Prisma.TransactionClient>();
const runs = new Map<string, number>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const mutators = defineMutators({
  /** Writes through tx.mutate and Prisma's model API, counts both, refuses when asked to. */
  both: defineMutator(async ({ tx, args }: { tx: any; args: { id: string; refuse?: boolean } }) => {
    const prisma: Prisma.TransactionClient = tx.dbTransaction.wrappedTransaction;
    await tx.mutate.issue.insert({ id: args.id, title: 'engine', ownerID: 'ana' });
    await prisma.comment.create({ data: { id: `${args.id}-c`, issueID: args.id, body: 'prisma' } });
    // The engine's insert is visible to Prisma: one transaction, one connection.
    const issues = await prisma.issue.count({ where: { id: args.id } });
    if (issues !== 1) throw new Error(`Prisma saw ${issues} issues`);
    if (args.refuse) throw new ApplicationError('refused after writing');
  }),
  /** Read-modify-write through Prisma's model API: serializable conflicts under load. */
  increment: defineMutator(async ({ tx }: { tx: any }) => {
    const prisma: Prisma.TransactionClient = tx.dbTransaction.wrappedTransaction;
    runs.set('increment', (runs.get('increment') ?? 0) + 1);
    const row = await prisma.counter.findUnique({ where: { id: 'hot' } });
    await sleep(10); // so that concurrent pushes overlap, and conflict
    await prisma.counter.update({ where: { id: 'hot' }, data: { value: (row?.value ?? 0) + 1 } });
  }),
  /** The first run has its connection killed from outside, then counts through Prisma. */
  killed: defineMutator(async ({ tx, args, ctx }: { tx: any; args: { id: string }; ctx: Ctx }) => {
    const prisma: Prisma.TransactionClient = tx.dbTransaction.wrappedTransaction;
    const n = runs.get(args.id) ?? 0;
    runs.set(args.id, n + 1);
    if (n === 0) {
      const [row] = await prisma.$queryRaw<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
      await ctx.kill(row!.pid);
      await sleep(100);
    }
    await prisma.issue.count();
    await tx.mutate.issue.insert({ id: args.id, title: 'kept', ownerID: 'ana' });
  }),
});

describe.skipIf(!DATABASE_URL)('prisma adapter', () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let pool: pg.Pool;
  let prisma: PrismaClient;
  let admin: postgres.Sql;
  let clients = 0;

  beforeAll(async () => {
    server = await createServerDatabase();
    pool = new pg.Pool({ connectionString: server.url, max: 4 });
    pool.on('error', () => {});
    prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    admin = postgres(server.url, { max: 1, onnotice: () => {} });
    for (const statement of FIXTURE_DDL) await admin.unsafe(statement);
    await migrate(createPrismaDatabase(prisma, { pool }));
  });
  beforeEach(async () => {
    runs.clear();
    await admin`DELETE FROM issue`;
    await admin`DELETE FROM comment`;
    await admin`DELETE FROM counter`;
  });
  afterAll(async () => {
    await admin?.end();
    await prisma?.$disconnect();
    await pool?.end();
    await server?.drop();
  });

  async function push(name: string, args: object = {}, clientID = `c${++clients}`) {
    const response = await handleMutateRequest({
      db: createPrismaDatabase(prisma, { pool }),
      schema,
      mutators,
      context: {
        kill: async (pid: number) => void (await admin`SELECT pg_terminate_backend(${pid})`),
      },
      userID: 'ana',
      logger: silentLogger,
      request: new Request('http://localhost/mutate', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(pushBody([{ id: 1, name, args }], { clientID })),
      }),
    });
    return ((await response.json()) as any).mutations?.[0]?.result;
  }
  const ids = async (table: string) =>
    (await admin.unsafe(`SELECT id FROM ${table} ORDER BY id`)).map((row) => row.id);

  it("hands mutators Prisma's interactive transaction client, typed from the client", () => {
    const db = createPrismaDatabase(prisma, { pool });
    type Wrapped = Parameters<Parameters<typeof db.transaction>[0]>[0]['wrappedTransaction'];
    expectTypeOf<Wrapped['issue']['count']>().toBeFunction();
    expectTypeOf<Wrapped>().toEqualTypeOf<Prisma.TransactionClient>();
  });

  it("commits Prisma's model writes with the engine's, and Prisma reads the engine's", async () => {
    expect(await push('both', { id: 'i1' })).toEqual({});
    expect(await ids('issue')).toEqual(['i1']);
    expect(await ids('comment')).toEqual(['i1-c']);
  });

  it("rolls back Prisma's model writes with the engine's when the mutator refuses", async () => {
    expect(await push('both', { id: 'i2', refuse: true })).toEqual({
      error: 'app',
      message: 'refused after writing',
    });
    expect(await ids('issue')).toEqual([]);
    expect(await ids('comment')).toEqual([]);
  });

  it("retries Prisma's write conflicts (P2034) rather than storing them: the counter is exact", async () => {
    await admin`INSERT INTO counter (id, value) VALUES ('hot', 0)`;
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, c) => {
        const out = [];
        for (let i = 1; i <= 4; i++) out.push(await pushOne(`hot${c}`, i));
        return out;
      }),
    );
    expect(results.flat().filter((result) => JSON.stringify(result) !== '{}')).toEqual([]);
    const [row] = await admin`SELECT value FROM counter WHERE id = 'hot'`;
    expect(row!.value).toBe(32);
    // Conflicts did happen, and were retried.
    expect(runs.get('increment')).toBeGreaterThan(32);
  });
  async function pushOne(clientID: string, id: number) {
    for (;;) {
      const response = await handleMutateRequest({
        db: createPrismaDatabase(prisma, { pool }),
        schema,
        mutators,
        context: { kill: async () => {} },
        userID: 'ana',
        logger: silentLogger,
        request: new Request('http://localhost/mutate', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(
            pushBody([{ id, name: 'increment' }], { clientID, clientGroupID: `g-${clientID}` }),
          ),
        }),
      });
      // A 503 (retries ran out) is resent, as a client does; anything else is the result.
      if (response.status === 503) continue;
      return ((await response.json()) as any).mutations[0].result;
    }
  }

  it('a connection killed between Prisma calls: the mutation applies once, the pool serves on', async () => {
    expect(await push('killed', { id: 'k' })).toEqual({});
    expect(runs.get('k')).toBe(2);
    expect(await ids('issue')).toEqual(['k']);
    expect(await push('both', { id: 'after' })).toEqual({});
    expect(pool.totalCount).toBeLessThanOrEqual(4);
  });

  it('a transaction past transactionTimeoutMs is expired by Prisma, and fails as transient', async () => {
    const db = createPrismaDatabase(prisma, { pool, transactionTimeoutMs: 300 });
    const error = await db
      .transaction(
        async (tx) => {
          await tx.wrappedTransaction.issue.count();
          await sleep(600);
          await tx.wrappedTransaction.issue.count();
        },
        { isolation: 'serializable' },
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'P2028' });
    expect(isTransientError(error)).toBe(true);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
