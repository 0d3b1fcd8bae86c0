import type { PGlite, Transaction } from '@electric-sql/pglite';
import {
  type Database,
  type DatabaseTransaction,
  isolationClause,
  sqlSavepoint,
  toDatabaseError,
  withDriverTransaction,
} from '../database';

type Queryable = Pick<Transaction, 'query'>;

async function run<R>(db: Queryable, text: string, params: readonly unknown[]) {
  try {
    return (await db.query<R>(text, params as unknown[])).rows;
  } catch (error) {
    throw toDatabaseError(error, text);
  }
}

/**
 * Reprise's database over PGlite, the embedded default. Mutators get PGlite's transaction
 * object as `tx.dbTransaction.wrappedTransaction`.
 *
 * @example
 * import {PGlite} from '@electric-sql/pglite';
 * const db = createPGliteDatabase(new PGlite('./data'));
 */
export function createPGliteDatabase(pglite: PGlite): Database<Transaction> {
  return {
    name: 'pglite',
    capabilities: { advisoryLocks: true },
    transaction(fn, { isolation }) {
      let pgTx: Transaction | undefined;
      // PGlite serialises transactions itself: it has one connection.
      return withDriverTransaction(
        (body) =>
          pglite.transaction((inner) => {
            pgTx = inner;
            return body();
          }),
        async () => {
          const inner = pgTx!;
          await run(inner, `SET TRANSACTION ${isolationClause(isolation)}`, []);
          const tx: DatabaseTransaction<Transaction> = {
            query: (text, params = []) => run(inner, text, params),
            savepoint: sqlSavepoint(
              (text) => run(inner, text, []),
              () => tx,
            ),
            wrappedTransaction: inner,
          };
          return fn(tx);
        },
      );
    },
    query: (text, params = []) => run(pglite, text, params),
  };
}
