import type { PendingQuery, Row, Sql, TransactionSql } from 'postgres';
import {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  isolationClause,
  type ListenOptions,
  timeoutError,
  toDatabaseError,
  withDriverTransaction,
} from '../db/database';

/** Options of `createPostgresJsDatabase`. */
export interface PostgresJsOptions {
  /**
   * The longest the adapter waits for any one answer from the server: a connection and
   * `BEGIN`, each statement, a savepoint, `COMMIT`, `LISTEN`. Past it the call rejects with a
   * transient `DatabaseError` (so the engine retries or answers 503), and the statement is
   * cancelled (a stuck `COMMIT`'s backend is terminated), so that the connection is either
   * rolled back clean by the server or, if the server is gone, stays out of the pool until
   * postgres.js sees it close.
   * Default 30 000 ms. Time spent in the app's own code between statements is not counted.
   */
  readonly queryTimeoutMs?: number;
}

const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/**
 * No answer in time to `sql`: a transient error, so the engine retries or answers 503. The
 * SQL is kept on the error for logs, out of its message.
 */
function noAnswer(sql: string, ms: number) {
  return timeoutError('a statement', ms, sql);
}

/** The backend a postgres.js query was sent to (`query.state`, set when it is written). */
function backendPid(query: unknown): number | undefined {
  const pid = (query as { state?: { pid?: unknown } | null } | undefined)?.state?.pid;
  return typeof pid === 'number' ? pid : undefined;
}

/**
 * Reprise's database over postgres.js. Mutators get the postgres.js transaction `sql` as
 * `tx.dbTransaction.wrappedTransaction`. Every call waits at most `queryTimeoutMs` for the
 * server (see `PostgresJsOptions`).
 *
 * postgres.js 3.4.9 can crash the process when a connection dies under it; this repository
 * patches it at install time (`patches/`, applied by `patch-package` on `npm ci`).
 *
 * @example
 * import postgres from 'postgres';
 * const db = createPostgresJsDatabase(postgres(process.env.DATABASE_URL!), {
 *   queryTimeoutMs: 10_000,
 * });
 */
export function createPostgresJsDatabase(
  sql: Sql,
  options: PostgresJsOptions = {},
): Database<TransactionSql> {
  const timeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError('queryTimeoutMs must be a positive number');
  passDateTextThrough(sql);

  // Ends a backend stuck in a driver statement (COMMIT) from another pool connection; bounded
  // too, and best effort: if the server cannot be reached, TCP keepalive ends it instead.
  const terminate = (pid: number | undefined) => {
    if (pid === undefined) return;
    const kill = sql`SELECT pg_terminate_backend(${pid})`.execute();
    const timer = setTimeout(() => kill.cancel(), timeoutMs);
    kill.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  };

  return {
    name: 'postgres-js',
    capabilities: { advisoryLocks: true, partialSQL: false, pipelining: true },
    transaction: (fn, { isolation }) => transaction(sql, fn, isolation, timeoutMs, terminate),
    query: async (text, params = []) => {
      const query = prepared(sql, text, params).execute();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          cancel(query);
          reject(noAnswer(text, timeoutMs));
        }, timeoutMs);
      });
      try {
        return (await Promise.race([query, late])) as never;
      } catch (error) {
        throw toDatabaseError(error, text);
      } finally {
        clearTimeout(timer);
        query.catch(() => undefined);
      }
    },
    listen: (channel, onPayload, listenOptions) =>
      listen(sql, channel, onPayload, listenOptions ?? {}, timeoutMs),
  };
}

const DATE_TYPES = ['1082', '1114', '1184']; // date, timestamp, timestamptz

/**
 * postgres.js serializes a parameter of a date type with `new Date(value).toISOString()`,
 * even when it is text: microseconds are lost and `infinity` or a BC year throws. The engine
 * sends timestamps as Postgres's own text (`formatTimestamp`), so text goes as it is; other
 * values keep the driver's serializer. drizzle's postgres.js driver does the same.
 */
function passDateTextThrough(sql: Sql) {
  const serializers = (sql.options as { serializers?: Record<string, (value: unknown) => unknown> })
    .serializers;
  if (!serializers) return;
  for (const type of DATE_TYPES) {
    const serialize = serializers[type];
    if (!serialize || (serialize as { passesText?: true }).passesText) continue;
    const passing = (value: unknown) => (typeof value === 'string' ? value : serialize(value));
    serializers[type] = Object.assign(passing, { passesText: true as const });
  }
}

/** Cancels a statement, best effort: the server may be unreachable. */
function cancel(query: PendingQuery<Row[]>) {
  // Typed `void`, but it returns the CancelRequest's promise.
  const sent: unknown = query.cancel();
  if (sent instanceof Promise) sent.catch(() => undefined);
}

function prepared(sql: Sql | TransactionSql, text: string, params: readonly unknown[]) {
  return sql.unsafe(text, params as never[], { prepare: true }) as PendingQuery<Row[]>;
}

/**
 * One transaction. Each wait on the server is bounded; when one runs out the transaction is
 * abandoned: the caller gets a transient error at once, and the backend is terminated so that
 * postgres.js rolls back, drops the connection and opens a fresh one.
 */
async function transaction<T>(
  sql: Sql,
  fn: (tx: DatabaseTransaction<TransactionSql>) => Promise<T>,
  isolation: Parameters<Database['transaction']>[1]['isolation'],
  timeoutMs: number,
  terminate: (pid: number | undefined) => void,
): Promise<T> {
  let pid: number | undefined;
  /** The transaction's statements still waiting for an answer. */
  const pending = new Set<PendingQuery<Row[]>>();
  let abandoned: ReturnType<typeof noAnswer> | undefined;
  let abandon!: (error: ReturnType<typeof noAnswer>) => void;
  const aborted = new Promise<never>((_, reject) => {
    abandon = (error) => {
      if (abandoned) return;
      abandoned = error;
      reject(error);
      // A statement of ours is stuck: cancelling it (a CancelRequest on a socket of its
      // own, so it works with the pool exhausted) aborts the transaction and postgres.js
      // rolls it back. Otherwise the driver's own BEGIN, SAVEPOINT or COMMIT is stuck.
      if (pending.size) for (const query of pending) cancel(query);
      else terminate(pid);
    };
  });
  aborted.catch(() => undefined);
  /** Abandons the transaction unless the returned function is called within the bound. */
  const deadline = (what: string) => {
    const timer = setTimeout(() => abandon(noAnswer(what, timeoutMs)), timeoutMs);
    return () => clearTimeout(timer);
  };
  const bounded = async <R>(promise: Promise<R>, what: string): Promise<R> => {
    const stop = deadline(what);
    try {
      return await Promise.race([promise, aborted]);
    } finally {
      stop();
    }
  };

  const query =
    (scope: TransactionSql): DatabaseTransaction['query'] =>
    async (text, params = []) => {
      if (abandoned) throw abandoned;
      const query = prepared(scope, text, params).execute();
      pid ??= backendPid(query);
      pending.add(query);
      query.then(
        () => pending.delete(query),
        () => pending.delete(query),
      );
      try {
        return (await bounded(query, text)) as never;
      } catch (error) {
        throw toDatabaseError(error, text);
      }
    };
  const wrap = (
    scope: TransactionSql,
    queryAtCommit?: DatabaseTransaction['queryAtCommit'],
  ): DatabaseTransaction<TransactionSql> => {
    const run = query(scope);
    return {
      query: run,
      // postgres.js queues a statement as it is executed, before any await.
      queued: run,
      ...(queryAtCommit ? { queryAtCommit } : {}),
      // postgres.js fails a whole `begin` when any statement in its scope fails, even a caught
      // one, so each savepoint runs in the driver's own savepoint scope with its own `sql`.
      // SAVEPOINT, RELEASE and ROLLBACK TO are the driver's own statements: each wait on them
      // is bounded, the app's time in between is not.
      savepoint: async (savepointFn) => {
        if (abandoned) throw abandoned;
        let stop = deadline('SAVEPOINT');
        let thrown: { error: unknown } | undefined;
        const boxed = scope.savepoint(async (inner) => {
          stop();
          try {
            return { value: await savepointFn(wrap(inner)) };
          } catch (error) {
            thrown = { error };
            throw error;
          } finally {
            stop = deadline('RELEASE SAVEPOINT');
          }
        });
        boxed.catch(() => undefined);
        try {
          return (await Promise.race([boxed, aborted])).value;
        } catch (error) {
          if (thrown && thrown.error === error) throw error;
          throw toDatabaseError(error, 'SAVEPOINT');
        } finally {
          stop();
        }
      },
      wrappedTransaction: scope,
    };
  };

  let txSql: TransactionSql | undefined;
  let stopCommit: (() => void) | undefined;
  const atCommit: Array<{ text: string; params: readonly unknown[] }> = [];
  const sent: Array<{ text: string; result: Promise<unknown> }> = [];
  const stopBegin = deadline('BEGIN');
  // postgres.js awaits arrays returned from `begin`, so the value travels boxed.
  const work = withDriverTransaction(
    (body) =>
      sql.begin(isolationClause(isolation), (inner) => {
        txSql = inner;
        return body();
      }) as Promise<{ value: Awaited<T> }>,
    async () => {
      stopBegin();
      // Abandoned while waiting for a connection: roll back at once.
      if (abandoned) throw abandoned;
      const value = await fn(
        wrap(txSql!, (text, params = []) => {
          atCommit.push({ text, params });
        }),
      );
      if (abandoned) throw abandoned;
      // Sent without waiting, so postgres.js pipelines its COMMIT right behind them.
      for (const { text, params } of atCommit) {
        const result = prepared(txSql!, text, params).execute();
        result.catch(() => undefined);
        sent.push({ text, result });
      }
      stopCommit = deadline('COMMIT');
      return { value };
    },
  );
  work.catch(() => undefined);
  let boxed: { value: Awaited<T> };
  try {
    boxed = await Promise.race([work, aborted]);
  } catch (error) {
    // BEGIN or COMMIT failed in the driver: classify it as the statements are.
    if (error instanceof DatabaseError && !error.transient && error.sql === 'BEGIN/COMMIT') {
      throw toDatabaseError(error.cause, 'BEGIN/COMMIT');
    }
    throw error;
  } finally {
    stopBegin();
    stopCommit?.();
  }
  // A statement that failed aborted the transaction, and the server turned its COMMIT
  // into a ROLLBACK without an error: its own error is the only sign.
  for (const { text, result } of sent) {
    await result.catch((error: unknown) => {
      throw toDatabaseError(error, text);
    });
  }
  return boxed.value;
}

/** `LISTEN` through postgres.js, which keeps one connection for it and re-listens on reconnect. */
async function listen(
  sql: Sql,
  channel: string,
  onPayload: (payload: string) => void,
  options: ListenOptions,
  timeoutMs: number,
): Promise<() => Promise<void>> {
  let listening = false;
  let stopped = false;
  const request = sql.listen(
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
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(noAnswer(`LISTEN ${channel}`, timeoutMs)), timeoutMs);
  });
  let meta: Awaited<typeof request>;
  try {
    meta = await Promise.race([request, late]);
  } catch (error) {
    // Given up on: if LISTEN still succeeds later, undo it.
    stopped = true;
    request.then((late) => late.unlisten()).catch(() => undefined);
    throw toDatabaseError(error, `LISTEN ${channel}`);
  } finally {
    clearTimeout(timer);
  }
  return async () => {
    if (stopped) return;
    stopped = true;
    await meta.unlisten().catch(() => undefined);
  };
}
