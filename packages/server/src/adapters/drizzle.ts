import { type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { Pool } from 'pg';
import {
  type Database,
  type DatabaseTransaction,
  toDatabaseError,
  withDriverTransaction,
} from '../db/database';
import { createPgDatabase, DEFAULT_QUERY_TIMEOUT_MS, guardPool, withPoolClient } from './pg';
import { createPostgresJsDatabase } from './postgres-js';

/** Any drizzle Postgres database: over postgres.js, node-postgres or PGlite. */
export type AnyDrizzleDatabase = PgDatabase<PgQueryResultHKT, any, any>;
/** The drizzle transaction mutators receive as `wrappedTransaction`. */
export type AnyDrizzleTransaction = PgTransaction<PgQueryResultHKT, any, any>;

type Executor = Pick<AnyDrizzleDatabase, 'execute'>;

/** Turns `$n`-parameterised text into a drizzle `SQL` with the same parameters. */
function toDrizzleSQL(text: string, params: readonly unknown[]): SQL {
  const parts = text.split(/\$(\d+)/);
  const chunks: SQL[] = parts.map((part, index) =>
    index % 2 === 0 ? sql.raw(part) : sql`${params[Number(part) - 1]}`,
  );
  return sql.join(chunks);
}

async function run<R>(db: Executor, text: string, params: readonly unknown[]): Promise<R[]> {
  try {
    const result = (await db.execute(toDrizzleSQL(text, params))) as unknown;
    // postgres.js returns the rows themselves; node-postgres and PGlite wrap them.
    return (Array.isArray(result) ? result : (result as { rows: R[] }).rows) as R[];
  } catch (error) {
    throw toDatabaseError(error, text);
  }
}

/**
 * Reprise's database over a drizzle database, whichever driver it uses. Mutators get the
 * drizzle transaction as `tx.dbTransaction.wrappedTransaction`, so they can use drizzle's
 * query builder inside the mutation's transaction.
 *
 * @example
 * import {drizzle} from 'drizzle-orm/postgres-js';
 * const db = createDrizzleDatabase(drizzle(process.env.DATABASE_URL!));
 */
export function createDrizzleDatabase(db: AnyDrizzleDatabase): Database<AnyDrizzleTransaction> {
  // Savepoints go through drizzle's nested transactions, which use each driver's own
  // savepoint mechanism (postgres.js needs its scoped one; see the postgres-js adapter).
  const wrap = (scope: AnyDrizzleTransaction): DatabaseTransaction<AnyDrizzleTransaction> => ({
    query: (text, params = []) => run(scope, text, params),
    savepoint: (fn) => scope.transaction((inner) => fn(wrap(inner))),
    wrappedTransaction: scope,
  });
  const driver = (db as { session?: { constructor?: { name?: string } } }).session?.constructor
    ?.name;
  const client = (db as { $client?: unknown }).$client;
  const begin = isPgPool(client) ? pinnedToOneClient(db, client) : db.transaction.bind(db);
  return {
    name: `drizzle:${driver ?? 'unknown'}`,
    capabilities: { advisoryLocks: true, partialSQL: false },
    transaction(fn, { isolation }) {
      let drizzleTx: AnyDrizzleTransaction | undefined;
      return withDriverTransaction(
        (body) =>
          begin(
            (inner) => {
              drizzleTx = inner;
              return body();
            },
            { isolationLevel: isolation },
          ),
        () => fn(wrap(drizzleTx!)),
      );
    },
    query: (text, params = []) => run(db, text, params),
    ...listenerOf(client),
  };
}

type Begin = AnyDrizzleDatabase['transaction'];

/**
 * Transactions over a node-postgres pool, each on a client this adapter checks out and
 * gives back itself. drizzle's own pool transactions leave the client checked out for good
 * when `BEGIN` fails (a connection killed right after checkout), which drains the pool; here
 * drizzle's session runs on the one client, and a broken client is destroyed, not kept.
 * Relies on drizzle's session taking `(client, dialect, schema, options)`, as 0.45 does.
 */
function pinnedToOneClient(db: AnyDrizzleDatabase, pool: Pool): Begin {
  guardPool(pool);
  const session = (db as unknown as { session: DrizzleSession }).session;
  const Session = session.constructor as new (
    client: unknown,
    dialect: unknown,
    schema: unknown,
    options: unknown,
  ) => DrizzleSession;
  return ((fn: Parameters<Begin>[0], config: Parameters<Begin>[1]) =>
    withPoolClient(pool, DEFAULT_QUERY_TIMEOUT_MS, (client) =>
      new Session(client, session.dialect, session.schema, session.options).transaction(fn, config),
    )) as Begin;
}

interface DrizzleSession {
  readonly dialect: unknown;
  readonly schema: unknown;
  readonly options: unknown;
  transaction: Begin;
}

/**
 * `listen` through the driver drizzle runs on, when it can have a connection of its own:
 * postgres.js, a node-postgres pool, or PGlite. A single node-postgres client is left out, as
 * drizzle's transactions share it and a `LISTEN` sent mid-transaction would join them.
 */
function listenerOf(client: unknown): Pick<Database, 'listen'> {
  if (client === null || (typeof client !== 'object' && typeof client !== 'function')) return {};
  const c = client as Record<string, unknown>;
  let listen: Database['listen'];
  if (typeof client === 'function' && typeof c.listen === 'function' && 'begin' in c) {
    listen = createPostgresJsDatabase(client as never).listen;
  } else if (isPgPool(client)) {
    listen = createPgDatabase(client as never).listen;
  } else if (typeof c.listen === 'function' && 'waitReady' in c) {
    // Loaded on first use: the PGlite adapter imports @electric-sql/pglite at runtime, which
    // an app on drizzle over postgres.js or node-postgres need not have installed.
    listen = async (...args) => {
      const { createPGliteDatabase } = await import('./pglite');
      return createPGliteDatabase(client as never).listen!(...args);
    };
  }
  return listen ? { listen } : {};
}

function isPgPool(client: unknown): client is Pool {
  return (
    typeof client === 'object' && client !== null && 'totalCount' in client && 'idleCount' in client
  );
}
