import type { PendingQuery, Row, Sql, TransactionSql } from 'postgres';
import {
  type Database,
  type DatabaseError,
  type DatabaseTransaction,
  isolationClause,
  type ListenOptions,
  timeoutError,
  toDatabaseError,
} from '../db/database';
import { type Timed, unwatch, watch } from '../db/deadline-clock';

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
    query: (text, params = []) => {
      const query = prepared(sql, text, params).execute();
      return new Promise((resolve, reject) => {
        const wait: Timed = {
          at: performance.now() + timeoutMs,
          expire: () => {
            cancel(query);
            reject(noAnswer(text, timeoutMs));
          },
        };
        watch(wait);
        query.then(
          (rows) => {
            unwatch(wait);
            resolve(rows as never);
          },
          (error: unknown) => {
            unwatch(wait);
            reject(toDatabaseError(error, text));
          },
        );
      });
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

/**
 * A statement through postgres.js, prepared once per connection. Without parameters
 * postgres.js sends the simple query protocol unless told otherwise, which takes several
 * statements at once but parses and plans the text every time: `single` says the text is
 * one statement of the engine's own, to prepare like any other.
 */
function prepared(
  sql: Sql | TransactionSql,
  text: string,
  params: readonly unknown[],
  single?: true,
) {
  return sql.unsafe(text, params as never[], single ? SINGLE : PREPARE) as PendingQuery<Row[]>;
}

const PREPARE = { prepare: true };
// postgres.js reads `simple` from the options (src/index.js) but does not declare it.
const SINGLE = { prepare: true, simple: false } as { prepare: boolean };

/**
 * A transaction's bound on the server, on the shared clock: armed while the transaction
 * waits on the driver (BEGIN, SAVEPOINT, RELEASE, COMMIT) or on a statement it sent, reset
 * by every answer, and off while only the app's code runs. When it expires, every wait of
 * the transaction fails at once with a transient error, and the backend is freed: the
 * statements still on their way are cancelled (a CancelRequest on a socket of its own, so
 * it works with the pool exhausted) and postgres.js rolls back; with none, the driver's own
 * statement is stuck and the backend is terminated, so postgres.js drops the connection.
 */
class TransactionWatch implements Timed {
  at = Number.POSITIVE_INFINITY;
  abandoned: DatabaseError | undefined;
  pid: number | undefined;
  /** The driver's own statement being waited for, if any. */
  private driverWait: string | undefined;
  /** Statements sent and not yet answered: their SQL, and how to fail their wait. */
  private readonly statements = new Map<
    PendingQuery<Row[]>,
    { text: string; fail: (error: unknown) => void }
  >();
  /** How to fail the other waits: the whole transaction's, a savepoint's. */
  private readonly waits = new Set<(error: unknown) => void>();

  constructor(
    private readonly timeoutMs: number,
    private readonly terminate: (pid: number | undefined) => void,
  ) {}

  /** The transaction now waits on the driver's own `what`. */
  driver(what: string) {
    this.driverWait = what;
    this.at = performance.now() + this.timeoutMs;
  }

  /** The driver's statement was answered: the app's code runs. */
  answered() {
    this.driverWait = undefined;
    this.progressed();
  }

  private progressed() {
    this.at =
      this.statements.size > 0 || this.driverWait !== undefined
        ? performance.now() + this.timeoutMs
        : Number.POSITIVE_INFINITY;
  }

  /** Waits for a statement sent on the transaction's connection. */
  statement<R>(query: PendingQuery<Row[]>, text: string): Promise<R> {
    this.pid ??= backendPid(query);
    this.at = performance.now() + this.timeoutMs;
    return new Promise<R>((resolve, reject) => {
      this.statements.set(query, { text, fail: reject });
      query.then(
        (rows) => {
          this.statements.delete(query);
          this.progressed();
          resolve(rows as R);
        },
        (error: unknown) => {
          this.statements.delete(query);
          this.progressed();
          reject(toDatabaseError(error, text));
        },
      );
    });
  }

  /** Settles as `work` does, or fails when the transaction is abandoned first. */
  bound<R>(work: Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.abandoned) {
        work.catch(() => undefined);
        reject(this.abandoned);
        return;
      }
      this.waits.add(reject);
      work.then(
        (value) => {
          this.waits.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.waits.delete(reject);
          reject(error);
        },
      );
    });
  }

  expire() {
    const [oldest] = this.statements.values();
    const error = noAnswer(oldest?.text ?? this.driverWait ?? 'a statement', this.timeoutMs);
    this.abandoned = error;
    if (this.statements.size) for (const query of this.statements.keys()) cancel(query);
    else this.terminate(this.pid);
    for (const { fail } of this.statements.values()) fail(error);
    for (const fail of this.waits) fail(error);
  }
}

/**
 * One transaction. Each wait on the server is bounded (TransactionWatch); when one runs out
 * the caller gets a transient error at once, and the transaction is rolled back.
 */
async function transaction<T>(
  sql: Sql,
  fn: (tx: DatabaseTransaction<TransactionSql>) => Promise<T>,
  isolation: Parameters<Database['transaction']>[1]['isolation'],
  timeoutMs: number,
  terminate: (pid: number | undefined) => void,
): Promise<T> {
  const watched = new TransactionWatch(timeoutMs, terminate);
  const query =
    (scope: TransactionSql): DatabaseTransaction['query'] =>
    (text, params = []) => {
      if (watched.abandoned) return Promise.reject(watched.abandoned);
      return watched.statement(prepared(scope, text, params).execute(), text);
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
        if (watched.abandoned) throw watched.abandoned;
        watched.driver('SAVEPOINT');
        let thrown: { error: unknown } | undefined;
        const boxed = scope.savepoint(async (inner) => {
          watched.answered();
          try {
            return { value: await savepointFn(wrap(inner)) };
          } catch (error) {
            thrown = { error };
            throw error;
          } finally {
            watched.driver('RELEASE SAVEPOINT');
          }
        });
        try {
          return (await watched.bound(boxed)).value;
        } catch (error) {
          if (thrown && thrown.error === error) throw error;
          throw toDatabaseError(error, 'SAVEPOINT');
        } finally {
          watched.answered();
        }
      },
      wrappedTransaction: scope,
    };
  };

  const atCommit: Array<{ text: string; params: readonly unknown[] }> = [];
  const toCommit = (text: string, params: readonly unknown[] = []) => {
    atCommit.push({ text, params });
  };
  const sent: Array<{ text: string; result: Promise<unknown> }> = [];
  // Errors the app's function throws pass through untouched; anything else (BEGIN, COMMIT,
  // a dropped connection) becomes a DatabaseError.
  let thrown: { error: unknown } | undefined;
  watched.driver('BEGIN');
  watch(watched);
  let boxed: { value: Awaited<T> };
  try {
    // postgres.js awaits arrays returned from `begin`, so the value travels boxed.
    const work = sql.begin(isolationClause(isolation), async (inner) => {
      watched.answered();
      // Abandoned while waiting for a connection: roll back at once.
      if (watched.abandoned) throw watched.abandoned;
      let value: Awaited<T>;
      try {
        value = await fn(wrap(inner, toCommit));
      } catch (error) {
        thrown = { error };
        throw error;
      }
      if (watched.abandoned) throw watched.abandoned;
      // Sent without waiting, so postgres.js pipelines its COMMIT right behind them.
      for (const { text, params } of atCommit) {
        const result = prepared(inner, text, params, true).execute();
        result.catch(() => undefined);
        sent.push({ text, result });
      }
      watched.driver('COMMIT');
      return { value };
    }) as Promise<{ value: Awaited<T> }>;
    boxed = await watched.bound(work);
  } catch (error) {
    if (thrown && thrown.error === error) throw error;
    throw toDatabaseError(error, 'BEGIN/COMMIT');
  } finally {
    unwatch(watched);
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
