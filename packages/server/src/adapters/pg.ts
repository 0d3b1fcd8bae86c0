import type { Client, Pool, PoolClient } from 'pg';
import {
  type Database,
  type DatabaseTransaction,
  isolationClause,
  sqlSavepoint,
  toDatabaseError,
  withDriverTransaction,
} from '../database';

type Queryable = Pick<Client, 'query'>;

async function run<R>(client: Queryable, text: string, params: readonly unknown[]) {
  try {
    return (await client.query(text, params as unknown[])).rows as R[];
  } catch (error) {
    throw toDatabaseError(error, text);
  }
}

function isPool(value: Pool | Client): value is Pool {
  return 'totalCount' in value && 'idleCount' in value;
}

/** Runs transactions one at a time, for a single connection shared by all callers. */
function createMutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const result = tail.then(fn);
    tail = result.catch(() => undefined);
    return result;
  };
}

/**
 * Reprise's database over node-postgres, from a `pg.Pool` (one connection per
 * transaction) or a single `pg.Client` (transactions take turns). Mutators get the
 * connection running the transaction as `tx.dbTransaction.wrappedTransaction`.
 *
 * @example
 * import pg from 'pg';
 * const db = createPgDatabase(new pg.Pool({connectionString: process.env.DATABASE_URL}));
 */
export function createPgDatabase(poolOrClient: Pool | Client): Database<PoolClient | Client> {
  const exclusive = createMutex();
  const withConnection = isPool(poolOrClient)
    ? async <T>(fn: (client: PoolClient | Client) => Promise<T>) => {
        const client = await poolOrClient.connect().catch((error: unknown) => {
          throw toDatabaseError(error, 'connect');
        });
        let broken: Error | undefined;
        try {
          return await fn(client);
        } catch (error) {
          // A connection that failed mid-transaction is not given back to the pool.
          if (toDatabaseError(error).transient) broken = error as Error;
          throw error;
        } finally {
          client.release(broken);
        }
      }
    : <T>(fn: (client: PoolClient | Client) => Promise<T>) => exclusive(() => fn(poolOrClient));

  return {
    name: 'pg',
    capabilities: { advisoryLocks: true, partialSQL: false },
    transaction: (fn, { isolation }) =>
      withConnection((client) =>
        withDriverTransaction(
          async (body) => {
            await run(client, `BEGIN ${isolationClause(isolation)}`, []);
            try {
              const value = await body();
              await run(client, 'COMMIT', []);
              return value;
            } catch (error) {
              await run(client, 'ROLLBACK', []).catch(() => undefined);
              throw error;
            }
          },
          () => {
            const tx: DatabaseTransaction<PoolClient | Client> = {
              query: (text, params = []) => run(client, text, params),
              savepoint: sqlSavepoint(
                (text) => run(client, text, []),
                () => tx,
              ),
              wrappedTransaction: client,
            };
            return fn(tx);
          },
        ),
      ),
    query: (text, params = []) =>
      isPool(poolOrClient)
        ? run(poolOrClient, text, params)
        : exclusive(() => run(poolOrClient, text, params)),
  };
}

/** The parts of a pg-mem database this adapter uses. */
export interface PgMemLike {
  backup(): { restore(): void };
  adapters: { createPg(): { Client: new () => Client } };
}

/**
 * Reprise's database over pg-mem, through its node-postgres adapter. pg-mem cannot roll
 * back or use savepoints, so transactions take turns and roll back by restoring a
 * snapshot; statements inside run through node-postgres as usual.
 *
 * @example
 * import {newDb} from 'pg-mem';
 * const db = createPgMemDatabase(newDb());
 */
export function createPgMemDatabase(mem: PgMemLike): Database<Client> {
  const { Client: MemClient } = mem.adapters.createPg();
  const client = new MemClient();
  const connected = client.connect();
  const exclusive = createMutex();
  return {
    name: 'pg-mem',
    capabilities: { advisoryLocks: false, partialSQL: true },
    transaction: (fn) =>
      exclusive(async () => {
        await connected;
        const snapshot = mem.backup();
        const tx: DatabaseTransaction<Client> = {
          query: (text, params = []) => run(client, text, params),
          savepoint: async (inner) => {
            const point = mem.backup();
            try {
              return await inner(tx);
            } catch (error) {
              point.restore();
              throw error;
            }
          },
          wrappedTransaction: client,
        };
        try {
          return await fn(tx);
        } catch (error) {
          snapshot.restore();
          throw error;
        }
      }),
    query: (text, params = []) =>
      exclusive(async () => {
        await connected;
        return run(client, text, params);
      }),
  };
}
