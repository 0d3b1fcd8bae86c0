import {
  type CompiledQuery,
  type DatabaseConnection,
  type Kysely,
  PostgresDialect,
  type QueryResult,
  SingleConnectionProvider,
  Transaction,
} from 'kysely';
import type { Pool } from 'pg';
import { type Database, DatabaseError } from '../db/database';
import { type Connection, createPgDatabaseOf, type PgDatabaseOptions } from './pg';

/** Options of `createKyselyDatabase`. */
export interface KyselyDatabaseOptions extends PgDatabaseOptions {
  /**
   * The node-postgres pool under the Kysely instance's `PostgresDialect`. Each transaction
   * runs on a client the adapter checks out of it (waiting at most `queryTimeoutMs`) and
   * gives back itself, destroying one whose connection was lost.
   */
  readonly pool: Pool;
}

/** Kysely's statements of a transaction, sent through the connection the engine holds. */
class ReprisedConnection implements DatabaseConnection {
  constructor(private readonly connection: Connection) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    let result: Awaited<ReturnType<Connection['result']>>;
    try {
      result = await this.connection.result<R>(query.sql, query.parameters);
    } catch (error) {
      // Mutators see the driver's own error, as they would under Kysely's PostgresDialect;
      // the engine classifies it just as well.
      throw error instanceof DatabaseError ? error.cause : error;
    }
    const { command, rowCount, rows } = result;
    const counted =
      command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
    return {
      ...(counted && rowCount !== null ? { numAffectedRows: BigInt(rowCount) } : {}),
      rows: (rows ?? []) as R[],
    };
  }

  /** The whole result as one chunk: the engine's connection has no cursor to stream with. */
  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    yield await this.executeQuery<R>(query);
  }
}

/**
 * Reprise's database over Kysely with node-postgres (`PostgresDialect` over a `pg.Pool`).
 * Mutators get a Kysely `Transaction<DB>` as `tx.dbTransaction.wrappedTransaction`, built
 * from `kysely`'s own executor (so its plugins apply) and bound to the connection the
 * mutation's transaction runs on: the engine's statements and the mutator's share it, commit
 * or roll back together, and each waits at most `queryTimeoutMs`.
 *
 * Kysely's own transactions are not used, since they leave no way to bound a wait or to
 * keep a connection dying mid-transaction (an unheard `'error'` event) from ending the
 * process; the pool is given explicitly for that, as Kysely does not expose it.
 *
 * @example
 * import {Kysely, PostgresDialect} from 'kysely';
 * import pg from 'pg';
 * const pool = new pg.Pool({connectionString: process.env.DATABASE_URL});
 * const kysely = new Kysely<DB>({dialect: new PostgresDialect({pool})});
 * const db = createKyselyDatabase(kysely, {pool});
 */
export function createKyselyDatabase<DB>(
  kysely: Kysely<DB>,
  options: KyselyDatabaseOptions,
): Database<Transaction<DB>> {
  const { pool } = options;
  if (typeof pool?.connect !== 'function') {
    throw new TypeError('createKyselyDatabase needs {pool}: the pg.Pool under its PostgresDialect');
  }
  // Transaction<DB> wants a dialect and driver too; a Transaction never uses the driver
  // (it refuses `transaction()` and `destroy()`), and the dialect only for introspection.
  const dialect = new PostgresDialect({ pool });
  const driver = dialect.createDriver();
  const executor = kysely.getExecutor();
  return createPgDatabaseOf(
    pool,
    options,
    'kysely',
    (connection) =>
      new Transaction<DB>({
        config: { dialect },
        dialect,
        driver,
        executor: executor.withConnectionProvider(
          new SingleConnectionProvider(new ReprisedConnection(connection)),
        ),
      }),
  );
}
