import type { Sql, TransactionSql } from 'postgres';
import {
  type Database,
  type DatabaseTransaction,
  isolationClause,
  type ListenOptions,
  toDatabaseError,
  withDriverTransaction,
} from '../database';

async function run<R>(sql: Sql | TransactionSql, text: string, params: readonly unknown[]) {
  try {
    return (await sql.unsafe(text, params as never[], { prepare: true })) as unknown as R[];
  } catch (error) {
    throw toDatabaseError(error, text);
  }
}

/**
 * Reprise's database over postgres.js. Mutators get the postgres.js transaction `sql` as
 * `tx.dbTransaction.wrappedTransaction`.
 *
 * @example
 * import postgres from 'postgres';
 * const db = createPostgresJsDatabase(postgres(process.env.DATABASE_URL!));
 */
export function createPostgresJsDatabase(sql: Sql): Database<TransactionSql> {
  // postgres.js fails a whole `begin` when any statement in its scope fails, even a caught
  // one, so each savepoint runs in the driver's own savepoint scope with its own `sql`.
  const wrap = (scope: TransactionSql): DatabaseTransaction<TransactionSql> => ({
    query: (text, params = []) => run(scope, text, params),
    savepoint: async (fn) => {
      const boxed = await scope.savepoint(async (inner) => ({ value: await fn(wrap(inner)) }));
      return boxed.value;
    },
    wrappedTransaction: scope,
  });
  return {
    name: 'postgres-js',
    capabilities: { advisoryLocks: true, partialSQL: false },
    async transaction(fn, { isolation }) {
      let txSql: TransactionSql | undefined;
      const atCommit: Array<{ text: string; params: readonly unknown[] }> = [];
      const sent: Array<{ text: string; result: Promise<unknown> }> = [];
      // postgres.js awaits arrays returned from `begin`, so the value travels boxed.
      const boxed = await withDriverTransaction(
        (body) =>
          sql.begin(isolationClause(isolation), (inner) => {
            txSql = inner;
            return body();
          }) as Promise<{ value: Awaited<ReturnType<typeof fn>> }>,
        async () => {
          const value = await fn({
            ...wrap(txSql!),
            queryAtCommit: (text, params = []) => {
              atCommit.push({ text, params });
            },
          });
          // Sent without waiting, so postgres.js pipelines its COMMIT right behind them.
          for (const { text, params } of atCommit) {
            const result = txSql!.unsafe(text, params as never[], { prepare: true }).execute();
            result.catch(() => undefined);
            sent.push({ text, result });
          }
          return { value };
        },
      );
      // A statement that failed aborted the transaction, and the server turned its COMMIT
      // into a ROLLBACK without an error: its own error is the only sign.
      for (const { text, result } of sent) {
        await result.catch((error: unknown) => {
          throw toDatabaseError(error, text);
        });
      }
      return boxed.value;
    },
    query: (text, params = []) => run(sql, text, params),
    listen: (channel, onPayload, options) => listen(sql, channel, onPayload, options),
  };
}

/** `LISTEN` through postgres.js, which keeps one connection for it and re-listens on reconnect. */
async function listen(
  sql: Sql,
  channel: string,
  onPayload: (payload: string) => void,
  options: ListenOptions = {},
): Promise<() => Promise<void>> {
  let listening = false;
  let stopped = false;
  const meta = await sql
    .listen(
      channel,
      // After a reconnect postgres.js keeps calling a listener that unlisten no longer
      // finds, so a stopped listener ignores what still arrives.
      (payload) => {
        if (!stopped) onPayload(payload);
      },
      () => {
        if (listening && !stopped) options.onReconnect?.();
        listening = true;
      },
    )
    .catch((error: unknown) => {
      throw toDatabaseError(error, `LISTEN ${channel}`);
    });
  return async () => {
    if (stopped) return;
    stopped = true;
    await meta.unlisten().catch(() => undefined);
  };
}
