// An app with only `pg` installed (with drizzle-orm, which @reprise/shared needs for the
// schema, and kysely): the main entry and the pg, drizzle, kysely and node entries load, and
// nothing else is here.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
for (const absent of ['@electric-sql/pglite', 'postgres', 'pg-mem']) {
  assert.throws(
    () => require.resolve(`${absent}/package.json`),
    `${absent} should not be installed`,
  );
}

const server = await import('@reprise/server');
assert.equal(typeof server.handleMutateRequest, 'function');
const { createPgDatabase } = await import('@reprise/server/pg');
const { createDrizzleDatabase } = await import('@reprise/server/drizzle');
const { toNodeHandler } = await import('@reprise/server/node');
// The Prisma entry imports nothing of Prisma's: it loads without @prisma/client installed.
const { createPrismaDatabase } = await import('@reprise/server/prisma');
assert.equal(typeof createPrismaDatabase, 'function');
assert.equal(typeof createPgDatabase, 'function');
assert.equal(typeof createDrizzleDatabase, 'function');
assert.equal(typeof toNodeHandler, 'function');

// The testing entry loads too, and names the package to install for the engine asked for.
const { createTestDatabase } = await import('@reprise/server/testing');
const { createSchema, defineMutators } = await import('@reprise/shared');
await assert.rejects(
  createTestDatabase({ schema: createSchema({ tables: {} }), mutators: defineMutators({}) }),
  /needs the "@electric-sql\/pglite" package; install it with: npm install --save-dev @electric-sql\/pglite/,
);
// The driver's own subpath still says what is missing, rather than loading half.
await assert.rejects(import('@reprise/server/pglite'), /@electric-sql\/pglite/);

// README's Kysely block, as written.
const kysely = await import('./kysely.mjs');
if (process.env.DATABASE_URL) {
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  const db = createPgDatabase(pool);
  assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
  await pool.end();
  const rows = await kysely.db.transaction(
    (tx) => tx.wrappedTransaction.selectNoFrom((eb) => eb.lit(1).as('one')).execute(),
    { isolation: 'serializable' },
  );
  assert.deepEqual(rows, [{ one: 1 }]);
  await checkJobs(pg, process.env.DATABASE_URL);
}
await kysely.end();
console.log('app-pg: @reprise/server with only pg installed');

/**
 * Jobs from the packed package, in a database of their own: a mutation enqueues a job
 * (graphile-worker's add_job in its transaction), and graphile-worker, loaded by the
 * package, runs it.
 */
async function checkJobs(pg, serverURL) {
  const { createJobQueue, defineJob, migrate, processMutateRequest } = server;
  const { defineMutator } = await import('@reprise/shared');
  const admin = new pg.Pool({ connectionString: serverURL, max: 1 });
  const name = `reprise_outside_jobs_${process.pid}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverURL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString() });
  try {
    const db = createPgDatabase(pool);
    await migrate(db);
    const ran = [];
    // Any Standard Schema will do; this one takes every payload.
    const anything = {
      '~standard': { version: 1, vendor: 'app', validate: (value) => ({ value }) },
    };
    const job = defineJob('hello', anything, (payload, info) => void ran.push([info.id, payload]));
    const queue = createJobQueue({ db, jobs: [job], connectionString: url.toString() });
    await queue.migrate();
    const mutators = defineMutators({
      hello: defineMutator(async ({ tx, args }) => tx.enqueue('hello', args)),
    });
    const reply = await processMutateRequest({
      db,
      schema: createSchema({ tables: {} }),
      mutators,
      jobs: queue,
      userID: 'u',
      body: {
        clientGroupID: 'g',
        pushVersion: 1,
        timestamp: 0,
        requestID: 'r',
        mutations: [
          {
            type: 'custom',
            id: 1,
            clientID: 'c',
            name: 'hello',
            args: [{ to: 'ana' }],
            timestamp: 0,
          },
        ],
      },
    });
    assert.deepEqual(reply.body.mutations, [{ id: { clientID: 'c', id: 1 }, result: {} }]);
    assert.deepEqual(await queue.runPending(), { completed: 1, failed: 0 });
    assert.deepEqual(ran, [[ran[0]?.[0], { to: 'ana' }]]);
    assert.match(ran[0][0], /^\d+$/);
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
