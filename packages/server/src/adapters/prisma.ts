import type { Pool, PoolClient } from 'pg';
import {
  type Database,
  type DatabaseTransaction,
  type IsolationLevel,
  sqlSavepoint,
  toDatabaseError,
  withDriverTransaction,
} from '../db/database';
import {
  Connection,
  createPgDatabase,
  DEFAULT_QUERY_TIMEOUT_MS,
  guardPool,
  type PgDatabaseOptions,
} from './pg';

/** The part of a `PrismaClient` this adapter uses: its interactive transactions. */
export interface PrismaClientLike<TTransaction> {
  $transaction<R>(
    fn: (tx: TTransaction) => Promise<R>,
    options?: { maxWait?: number; timeout?: number; isolationLevel?: string },
  ): Promise<R>;
}

/** Options of `createPrismaDatabase`. */
export interface PrismaDatabaseOptions extends PgDatabaseOptions {
  /**
   * The node-postgres pool the client's `PrismaPg` adapter was made with. The engine's own
   * statements run on the pool client that holds Prisma's transaction, through node-postgres
   * (with its types and the `pg` adapter's bounds); statements outside a transaction and
   * `listen` use the pool directly.
   */
  readonly pool: Pool;
  /**
   * Prisma's bound on a whole interactive transaction (its `timeout`, default 5 s in Prisma;
   * here 30 s). Past it Prisma rolls the transaction back; the engine then retries it.
   */
  readonly transactionTimeoutMs?: number;
}

const PRISMA_ISOLATION: Record<IsolationLevel, string> = {
  serializable: 'Serializable',
  'repeatable read': 'RepeatableRead',
  'read committed': 'ReadCommitted',
};

/**
 * The pool client running the transaction whose backend is `pid`. Prisma does not hand out
 * the connection of an interactive transaction, so it is found by the one thing both sides
 * know: node-postgres keeps each client's backend pid (`processID`), and the pool its
 * clients in `_clients` (pg-pool's own list, unchanged since pg-pool 2).
 */
function clientOf(pool: Pool, pid: number): PoolClient {
  const clients = (pool as unknown as { _clients?: Array<PoolClient & { processID?: number }> })
    ._clients;
  const client = clients?.find((candidate) => candidate.processID === pid);
  if (!client) {
    throw new Error(
      `No client of the given pool runs backend ${pid}: pass createPrismaDatabase the pg.Pool ` +
        'that the PrismaPg adapter was made with',
    );
  }
  return client;
}

/**
 * Reprise's database over Prisma 7 with its node-postgres driver adapter (`@prisma/adapter-pg`
 * over a `pg.Pool`). Mutators get Prisma's interactive transaction client as
 * `tx.dbTransaction.wrappedTransaction`, so `wrappedTransaction.issue.count()` reads inside
 * the mutation's transaction, and its writes commit or roll back with the engine's.
 *
 * Each transaction is Prisma's own (`$transaction`, at the engine's isolation level); the
 * engine's statements run on the same connection through node-postgres, each waiting at most
 * `queryTimeoutMs`. A connection lost under it is destroyed, not pooled (node-postgres drops a
 * client that is no longer queryable), and the transaction fails as transient.
 *
 * @example
 * import {PrismaPg} from '@prisma/adapter-pg';
 * import pg from 'pg';
 * import {PrismaClient} from './generated/prisma/client';
 * const pool = new pg.Pool({connectionString: process.env.DATABASE_URL});
 * const prisma = new PrismaClient({adapter: new PrismaPg(pool)});
 * const db = createPrismaDatabase(prisma, {pool});
 */
export function createPrismaDatabase<TTransaction>(
  prisma: PrismaClientLike<TTransaction>,
  options: PrismaDatabaseOptions,
): Database<TTransaction> {
  const { pool } = options;
  if (typeof pool?.connect !== 'function') {
    throw new TypeError('createPrismaDatabase needs {pool}: the pg.Pool given to PrismaPg');
  }
  guardPool(pool);
  const timeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const prismaOptions = { maxWait: timeoutMs, timeout: options.transactionTimeoutMs ?? 30_000 };
  const outside = createPgDatabase(pool, options);

  return {
    name: 'prisma',
    capabilities: { advisoryLocks: true, partialSQL: false },
    transaction(fn, { isolation }) {
      let tx: DatabaseTransaction<TTransaction> | undefined;
      return withDriverTransaction(
        (body) =>
          prisma.$transaction(
            async (prismaTx) => {
              const connection = await connectionOf(prismaTx, pool, timeoutMs);
              tx = {
                query: (text, params = []) => connection.run(text, params),
                // Straight to node-postgres, which queues it at once; Prisma's own
                // statements reach the same connection later.
                queued: (text, params = []) => connection.run(text, params),
                savepoint: sqlSavepoint(
                  (text) => connection.run(text, []),
                  () => tx!,
                ),
                wrappedTransaction: prismaTx,
              };
              try {
                return await body();
              } finally {
                connection.ended = true;
              }
            },
            { ...prismaOptions, isolationLevel: PRISMA_ISOLATION[isolation] },
          ),
        () => fn(tx!),
      );
    },
    query: outside.query,
    ...(outside.listen ? { listen: outside.listen } : {}),
  };
}

/** The node-postgres connection under a Prisma transaction, asked for its backend's pid. */
async function connectionOf(prismaTx: unknown, pool: Pool, timeoutMs: number) {
  const sql = 'SELECT pg_backend_pid() AS pid';
  let pid: number;
  try {
    const run = (prismaTx as { $queryRawUnsafe(sql: string): Promise<Array<{ pid: number }>> })
      .$queryRawUnsafe;
    const rows = await run.call(prismaTx, sql);
    pid = Number(rows[0]!.pid);
  } catch (error) {
    throw toDatabaseError(error, sql);
  }
  return new Connection(clientOf(pool, pid), timeoutMs, true);
}
