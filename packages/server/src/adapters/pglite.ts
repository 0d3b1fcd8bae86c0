import type { PGlite, Transaction } from '@electric-sql/pglite';
import {
  type Database,
  type DatabaseTransaction,
  quoteIdent,
  sqlSavepoints,
  toDatabaseError,
  withDriverTransaction,
} from '../db/database';
import { type PreparedRunner, preparedRunner } from './pglite-statements';

type Queryable = Pick<Transaction, 'query'>;

async function run<R>(db: Queryable, text: string, params: readonly unknown[]) {
  try {
    return (await db.query<R>(text, params as unknown[])).rows;
  } catch (error) {
    throw toDatabaseError(error, text);
  }
}

async function runPrepared<R>(prepared: PreparedRunner, text: string, params: readonly unknown[]) {
  try {
    return await prepared<R>(text, params);
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
  const prepared = preparedRunner(pglite);
  return {
    name: 'pglite',
    capabilities: { advisoryLocks: true, partialSQL: false, embedded: true },
    transaction(fn) {
      let pgTx: Transaction | undefined;
      // PGlite has one connection and runs transactions one at a time, so they never
      // overlap: every isolation level already behaves as serializable, and setting one
      // would only cost a statement per push.
      return withDriverTransaction(
        (body) =>
          pglite.transaction((inner) => {
            pgTx = inner;
            return body();
          }),
        async () => {
          const inner = pgTx!;
          // The engine's statements run prepared; the mutators' own go through `inner`.
          const tx: DatabaseTransaction<Transaction> = {
            query: (text, params = []) => runPrepared(prepared, text, params),
            // Through the transaction the mutators get, whose queue PGlite joins as the
            // call is made: it runs before any statement they send after it.
            queued: (text, params = []) =>
              inner.query(text, [...params]).then(
                (result) => result.rows as never[],
                (error: unknown) => Promise.reject(toDatabaseError(error, text)),
              ),
            ...sqlSavepoints(
              (text) => runPrepared(prepared, text, []),
              () => tx,
              (text) =>
                inner.exec(text).catch((error) => Promise.reject(toDatabaseError(error, text))),
            ),
            wrappedTransaction: inner,
          };
          return fn(tx);
        },
      );
    },
    query: (text, params = []) => run(pglite, text, params),
    async listen(channel, onPayload) {
      // PGlite puts the name into LISTEN as given: quoted, it keeps its case. It runs in this
      // process, so there is no connection to lose.
      const unlisten = await pglite.listen(quoteIdent(channel), onPayload).catch((error) => {
        throw toDatabaseError(error, `LISTEN ${channel}`);
      });
      let stopped = false;
      return async () => {
        if (stopped) return;
        stopped = true;
        await unlisten().catch(() => undefined);
      };
    },
  };
}
