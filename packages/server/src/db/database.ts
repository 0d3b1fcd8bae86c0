// db/: what every subsystem needs to talk to Postgres. This file is the one `Database` /
// `DatabaseTransaction` contract the adapters implement, and the classification of driver
// errors (transient or not) and time bounds; beside it the engine's tables and migrations,
// retries, the clients table's claim, and logging.

import { type Timed, unwatch, watch } from './deadline-clock';

/** Transaction isolation levels Reprise can ask for. */
export type IsolationLevel = 'serializable' | 'repeatable read' | 'read committed';

/** One open transaction, as every adapter exposes it. */
export interface DatabaseTransaction<TWrapped = unknown> {
  /** Runs one parameterised statement (`$1`, `$2`…) and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * Runs `fn` inside a savepoint: released when `fn` resolves, rolled back to (and the
   * error rethrown) when it throws. `fn` must use the transaction it is given.
   */
  savepoint<T>(fn: (tx: DatabaseTransaction<TWrapped>) => Promise<T>): Promise<T>;
  /**
   * `savepoint`, with `statement` (SQL without parameters) run first inside the savepoint,
   * sent together with the `SAVEPOINT` in one round trip. Optional: where the driver cannot
   * send two statements at once, callers run the statement on its own.
   */
  readonly savepointWith?: <T>(
    statement: string,
    fn: (tx: DatabaseTransaction<TWrapped>) => Promise<T>,
  ) => Promise<T>;
  /**
   * Queues a statement whose rows nobody reads to run after everything else in the
   * transaction, sent together with `COMMIT` where the driver pipelines (postgres.js), which
   * saves a round trip. One statement, which the adapter may prepare. If it fails, the
   * transaction rolls back and `transaction` rejects with its error. Optional: without it,
   * callers `await query(...)` as their last step.
   */
  readonly queryAtCommit?: (sql: string, params?: readonly unknown[]) => void;
  /**
   * Queues a statement without parameters to run as the transaction commits, in the same
   * simple query as `COMMIT` (node-postgres, which sends one statement at a time): no
   * round trip of its own, but parsed and planned each time, so keep it to a function
   * call. If it fails, `COMMIT` does not run and `transaction` rejects with its error.
   */
  readonly commitWith?: (sql: string) => void;
  /**
   * `query`, with the statement queued on the connection before the call returns, so that
   * it runs ahead of anything sent later through `wrappedTransaction`, whatever path that
   * takes. The engine then names a mutation for the capture triggers in its first write,
   * and sends the naming statement ahead of raw SQL without waiting for it; and, unless the
   * database is embedded, it queues a client's claim and starts the client's first mutation
   * without waiting for the answer. Optional: without it, each mutation is named by a
   * statement of its own before it runs, and starts once its claim is answered.
   */
  readonly queued?: <R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ) => Promise<R[]>;
  /** The driver's own transaction object, handed to mutators as-is. */
  readonly wrappedTransaction: TWrapped;
}

/**
 * The one contract every driver adapter implements: run a function inside a transaction
 * at a given isolation level, committing when it resolves and rolling back when it throws.
 */
export interface Database<TWrapped = unknown> {
  /** The adapter's name, for logs: `postgres-js`, `pg`, `pg-mem`, `pglite`, `drizzle:…`. */
  readonly name: string;
  readonly capabilities: {
    /** `pg_advisory_xact_lock` and friends exist. */
    readonly advisoryLocks: boolean;
    /**
     * The database implements only part of Postgres's SQL (pg-mem), so the engine keeps to
     * its plainest statements there, at the cost of an extra round trip or two.
     */
    readonly partialSQL: boolean;
    /**
     * Statements of one transaction may be sent before the previous one answers, and run
     * in the order they were called (postgres.js pipelines them). The engine then sends a
     * statement whose answer it needs only later without waiting, saving a round trip.
     * Absent means false.
     */
    readonly pipelining?: boolean;
    /**
     * The database runs inside this process on one connection (PGlite): a `NOTIFY` in a
     * writing transaction costs nothing there, so the capture triggers announce every
     * write themselves. Absent means false.
     */
    readonly embedded?: boolean;
  };
  transaction<T>(
    fn: (tx: DatabaseTransaction<TWrapped>) => Promise<T>,
    options: { isolation: IsolationLevel },
  ): Promise<T>;
  /** Runs one statement outside any explicit transaction. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * Calls `onPayload` with the payload of every `NOTIFY` on `channel` (the exact,
   * case-sensitive name), from a connection kept for listening, until the function it
   * resolves to is called. It resolves once `LISTEN` is in place, so every notification
   * committed afterwards arrives. Absent where the database has no notifications (pg-mem);
   * readers poll there instead. Over a node-postgres pool it keeps one of the pool's
   * connections until stopped, so stop listening before `pool.end()`.
   */
  listen?(
    channel: string,
    onPayload: (payload: string) => void,
    options?: ListenOptions,
  ): Promise<() => Promise<void>>;
}

/** Options of `Database.listen`. */
export interface ListenOptions {
  /**
   * Called after the listening connection was lost and listening resumed on a new one.
   * Notifications sent in between are lost, so listeners should assume anything changed.
   */
  readonly onReconnect?: () => void;
}

/**
 * SQLSTATE classes in which the database, not the statement, failed: connection exceptions
 * (08), transaction rollbacks (40: serialization failure, deadlock), insufficient resources
 * (53), operator intervention (57: shutdown, a cancelled or timed-out statement) and system
 * errors (58). Retrying on a fresh connection may succeed.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '40', '53', '57', '58']);

/** Exceptions within those classes: the statement's own fault, not the database's. */
const PERMANENT_SQLSTATES = new Set([
  '08P01', // protocol_violation: our bug, not the network's
  '40002', // transaction_integrity_constraint_violation: a deferred constraint failed
]);

/** Lock waits that ran out: another transaction held the row for too long. */
const TRANSIENT_SQLSTATES = new Set(['55P03', '55006']);

/** Drivers' and Node's codes for a connection that was lost, refused or timed out. */
const TRANSIENT_CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
  'EAI_AGAIN',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_SOCKET_CLOSED',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'REPRISE_TIMEOUT',
]);

/**
 * What drivers say, with no code, once a connection is gone: node-postgres ("Connection
 * terminated unexpectedly", "Client has encountered a connection error and is not
 * queryable", "Client was closed and is not queryable"), sockets ("write after end",
 * "socket hang up") and the server's own farewell ("terminating connection").
 */
const CONNECTION_LOST_MESSAGE =
  /Connection terminated|connection (?:closed|ended|error)|terminating connection|is not queryable|write after end|socket hang up|server closed the connection/i;

/**
 * A statement failed in the driver. It keeps the SQL that failed and the driver's error
 * as `cause`, and says whether retrying the transaction may succeed.
 */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  readonly code = 'database' as const;
  /** The SQLSTATE, or the driver's connection error code. */
  readonly sqlState: string | undefined;
  readonly sql: string | undefined;
  readonly transient: boolean;

  constructor(cause: unknown, sql?: string) {
    const root = rootCause(cause);
    const message = driverMessage(root);
    super(sql === undefined ? message : `${message} (while running: ${truncate(sql)})`, { cause });
    const code = (root as { code?: unknown } | null)?.code;
    this.sqlState = typeof code === 'string' ? code : undefined;
    this.sql = sql;
    this.transient = isTransientCause(cause);
  }

  /** The driver's own message, without the SQL: safe to show to the app's users. */
  get driverMessage(): string {
    return driverMessage(rootCause(this.cause));
  }
}

/** Wrappers such as drizzle's put the driver error in `cause`; find the innermost. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 8; depth++) {
    const next = nextLink(current);
    const code = (current as { code?: unknown } | null)?.code;
    if (next === undefined || next === null || (typeof code === 'string' && !isPrismaCode(code))) {
      return current;
    }
    current = next;
  }
  return current;
}

/**
 * Prisma's own error codes (`P1001`, `P2010`, `P2034`), which stand above the driver's. Not
 * PL/pgSQL's SQLSTATEs (`P0001` for `RAISE EXCEPTION`): those are the driver's own.
 */
function isPrismaCode(code: string): boolean {
  return /^P[1-9]\d{3}$/.test(code);
}

/**
 * Prisma's codes for a server that cannot be reached, a connection that closed or timed out,
 * a pool with no connection free, a transaction that could not start or expired (P2028), and
 * a write conflict or deadlock (P2034). The first three also mean the connection is lost.
 */
const TRANSIENT_PRISMA_CODES = new Set([
  'P1001',
  'P1002',
  'P1008',
  'P1017',
  'P2024',
  'P2028',
  'P2034',
]);
const CONNECTION_LOST_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017']);

/** Prisma's driver-adapter error kinds that carry no SQLSTATE, as the code they stand for. */
const PRISMA_KIND_CODES: Record<string, string> = {
  ConnectionClosed: 'ECONNRESET',
  DatabaseNotReachable: 'ECONNREFUSED',
  SocketTimeout: 'ETIMEDOUT',
  TransactionWriteConflict: '40001',
};

const prismaCauses = new WeakMap<object, Error>();

/**
 * The next link of an error chain: its `cause`, or for a Prisma error the driver's failure,
 * which Prisma keeps as a plain object in `meta.driverAdapterError.cause` (the SQLSTATE in
 * `originalCode`), made an Error with that code so that it classifies as the driver's own.
 */
function nextLink(error: unknown): unknown {
  if (error === null || typeof error !== 'object') return undefined;
  const { cause, meta } = error as { cause?: unknown; meta?: { driverAdapterError?: unknown } };
  if (cause !== undefined && cause !== null) return cause;
  const driver = (meta?.driverAdapterError as { cause?: unknown } | undefined)?.cause as
    | {
        originalCode?: unknown;
        originalMessage?: unknown;
        code?: unknown;
        message?: unknown;
        kind?: unknown;
      }
    | undefined;
  if (driver === null || typeof driver !== 'object') return undefined;
  let link = prismaCauses.get(error);
  if (!link) {
    const text = [driver.originalMessage, driver.message, driver.kind].find(
      (part) => typeof part === 'string',
    );
    const code = [driver.originalCode, driver.code, PRISMA_KIND_CODES[String(driver.kind)]].find(
      (part) => typeof part === 'string',
    );
    link = Object.assign(new Error(String(text ?? 'database error')), { code });
    prismaCauses.set(error, link);
  }
  return link;
}

/**
 * The driver's message for a database error (one carrying a SQLSTATE, however wrapped),
 * without SQL text or parameters; `undefined` for any other error.
 */
export function databaseErrorMessage(error: unknown): string | undefined {
  if (error instanceof DatabaseError) return error.driverMessage;
  const code = (rootCause(error) as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)
    ? driverMessage(rootCause(error))
    : undefined;
}

/**
 * What a client may be told about a database failure: the server's own message for an
 * error with a SQLSTATE, or the engine's for a timeout; for anything else (a lost socket,
 * whose message can name the database's host and port) a plain sentence. Never SQL.
 *
 * @example
 * failed(503, 'database', `Database error; try again: ${publicDatabaseReason(error)}`);
 */
export function publicDatabaseReason(error: unknown): string {
  const root = rootCause(error instanceof DatabaseError ? error.cause : error);
  const code = (root as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^[0-9A-Z]{5}$/.test(code) || code === 'REPRISE_TIMEOUT')) {
    return driverMessage(root);
  }
  return 'the connection to the database failed';
}

function driverMessage(error: unknown): string {
  // Prisma's driver adapters put a plain object with the driver's message under `cause`.
  const own = (error as { message?: unknown } | null)?.message;
  const message =
    error instanceof Error ? error.message : typeof own === 'string' ? own : String(error);
  const firstLine = message.split('\n')[0] ?? message;
  // pg-mem prefixes the message with the statement: "ERROR: insert into ... - <reason>".
  const memReason = /^ERROR: .* - (.+)$/.exec(firstLine);
  return memReason ? memReason[1]! : firstLine;
}

function truncate(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** Postgres's routines for a prepared statement that is gone or whose plan no longer fits. */
const STALE_PLAN_ROUTINES = new Set(['FetchPreparedStatement', 'RevalidateCachedQuery']);

/** True for a driver error from a prepared statement that is gone or whose plan went stale. */
export function isStalePlan(error: unknown): boolean {
  const routine = (error as { routine?: unknown } | null)?.routine;
  return typeof routine === 'string' && STALE_PLAN_ROUTINES.has(routine);
}

function isTransientCause(error: unknown): boolean {
  // Any link of the chain may say so: app code and drizzle wrap driver errors in their own.
  let current = error;
  for (let depth = 0; depth < 8 && current !== null && current !== undefined; depth++) {
    if (current instanceof DatabaseError) return current.transient;
    if (isTransientLink(current)) return true;
    current = nextLink(current);
  }
  return false;
}

function isTransientLink(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_CONNECTION_CODES.has(code) || TRANSIENT_SQLSTATES.has(code)) return true;
    if (TRANSIENT_PRISMA_CODES.has(code)) return true;
    if (TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2)) && !PERMANENT_SQLSTATES.has(code)) {
      return true;
    }
  }
  // A prepared statement that is gone, or whose cached plan no longer fits its tables
  // (DDL since it was prepared): the drivers prepare afresh when the transaction runs again.
  if (isStalePlan(error)) return true;
  return error instanceof Error && CONNECTION_LOST_MESSAGE.test(error.message);
}

/**
 * True when an error says the connection itself is gone or unusable (a lost socket, the
 * server ending the session, no answer in time), as opposed to a transaction that failed
 * on a healthy connection (a serialization failure, a deadlock): such a connection must
 * be destroyed, not given back to a pool.
 *
 * @example
 * client.release(isConnectionLost(error) ? error : undefined);
 */
export function isConnectionLost(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 8 && current !== null && current !== undefined; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (TRANSIENT_CONNECTION_CODES.has(code) || CONNECTION_LOST_SQLSTATES.has(code)) return true;
      if (CONNECTION_LOST_PRISMA_CODES.has(code)) return true;
      if (code.startsWith('08') && code !== '08P01') return true;
    }
    if (current instanceof Error && CONNECTION_LOST_MESSAGE.test(current.message)) return true;
    current = nextLink(current);
  }
  return false;
}

/** SQLSTATEs (and Prisma's code) of a transaction that lost to a concurrent one. */
const WRITE_CONFLICT_CODES = new Set(['40001', '40P01', 'P2034']);

/**
 * True when a transaction failed because a concurrent one won: a serialization failure or
 * a deadlock, as opposed to a lost connection or a timeout. Running it again at once, after
 * the winner, usually succeeds.
 *
 * @example
 * if (isWriteConflict(error)) turn = await gate.enter(budgetLeft);
 */
export function isWriteConflict(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 8 && current !== null && current !== undefined; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && WRITE_CONFLICT_CODES.has(code)) return true;
    current = nextLink(current);
  }
  return false;
}

/** The server ended the session: shutdown, crash, or not accepting connections. */
const CONNECTION_LOST_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57P05']);

/**
 * True when an error means "try the transaction again": a serialization failure, a
 * deadlock, or a lost connection.
 *
 * @example
 * if (isTransientError(error)) await retry();
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof DatabaseError) return error.transient;
  return isTransientCause(error);
}

/**
 * The error of a database call that got no answer in time. It is transient: the call may
 * still complete, so the transaction is retried and the exactly-once checks sort it out.
 */
export function timeoutError(what: string, ms: number, sql?: string): DatabaseError {
  const error = Object.assign(new Error(`The database did not answer ${what} within ${ms} ms`), {
    code: 'REPRISE_TIMEOUT',
  });
  return new DatabaseError(error, sql);
}

/**
 * Settles as `work` does, or rejects with `timeoutError` after `ms`, whichever comes
 * first; `work`'s late rejection is then ignored. `ms` of 0 or Infinity means no bound. The
 * bound is checked every `TICK_MS` (deadline-clock.ts), so it may fire that much later.
 *
 * @example
 * await withDeadline(push, 30_000, 'a push transaction');
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  if (!(ms > 0 && ms < Number.POSITIVE_INFINITY)) return work;
  // On the shared clock, and one promise: no timer and no race for each bounded wait.
  return new Promise<T>((resolve, reject) => {
    const wait: Timed = {
      at: performance.now() + ms,
      expire: () => reject(timeoutError(what, ms)),
    };
    watch(wait);
    work.then(
      (value) => {
        unwatch(wait);
        resolve(value);
      },
      (error: unknown) => {
        unwatch(wait);
        reject(error);
      },
    );
  });
}

/** Wraps a driver error with the SQL that failed; leaves a `DatabaseError` as it is. */
export function toDatabaseError(error: unknown, sql?: string): DatabaseError {
  return error instanceof DatabaseError ? error : new DatabaseError(error, sql);
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Builds `BEGIN`'s isolation clause, refusing anything that is not a known level. */
export function isolationClause(level: IsolationLevel): string {
  if (level !== 'serializable' && level !== 'repeatable read' && level !== 'read committed') {
    throw new TypeError(`Unknown isolation level "${String(level)}"`);
  }
  return `isolation level ${level}`;
}

/**
 * `savepoint` for drivers that take plain `SAVEPOINT` statements on the same connection.
 * Names are unique within the transaction, so savepoints may nest.
 */
export function sqlSavepoint<TWrapped>(
  run: (sql: string) => Promise<unknown>,
  self: () => DatabaseTransaction<TWrapped>,
): DatabaseTransaction<TWrapped>['savepoint'] {
  return sqlSavepoints(run, self).savepoint;
}

/**
 * `savepoint` and `savepointWith` for drivers that take plain `SAVEPOINT` statements on
 * the same connection; `runMany` runs several statements separated by semicolons in one
 * round trip (the simple query protocol). Names are unique within the transaction, so
 * savepoints may nest.
 */
export function sqlSavepoints<TWrapped>(
  run: (sql: string) => Promise<unknown>,
  self: () => DatabaseTransaction<TWrapped>,
  runMany?: (sql: string) => Promise<unknown>,
): Pick<DatabaseTransaction<TWrapped>, 'savepoint' | 'savepointWith'> {
  let counter = 0;
  const inSavepoint = async <T>(
    fn: (tx: DatabaseTransaction<TWrapped>) => Promise<T>,
    statement?: string,
  ): Promise<T> => {
    const name = `reprise_sp_${++counter}`;
    if (statement === undefined) await run(`SAVEPOINT ${name}`);
    else {
      await runMany!(`SAVEPOINT ${name}; ${statement}`).catch(async (error: unknown) => {
        // The statement failed inside the savepoint: undo it, so the transaction goes on
        // as after any failed savepoint (this fails too if the SAVEPOINT itself did).
        await run(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
        throw error;
      });
    }
    let value: T;
    try {
      value = await fn(self());
    } catch (error) {
      // If even this fails the connection is gone; that error says so and aborts the whole.
      await run(`ROLLBACK TO SAVEPOINT ${name}`);
      throw error;
    }
    await run(`RELEASE SAVEPOINT ${name}`);
    return value;
  };
  return {
    savepoint: (fn) => inSavepoint(fn),
    ...(runMany ? { savepointWith: (statement, fn) => inSavepoint(fn, statement) } : {}),
  };
}

/**
 * Runs `fn` through a driver's transaction wrapper. Errors `fn` throws pass through
 * untouched; anything else (BEGIN, COMMIT, a dropped connection) becomes a
 * `DatabaseError`, so callers can tell app failures from database ones.
 */
export async function withDriverTransaction<T>(
  begin: (body: () => Promise<T>) => Promise<T>,
  fn: () => Promise<T>,
): Promise<T> {
  let thrown: { error: unknown } | undefined;
  try {
    return await begin(async () => {
      try {
        return await fn();
      } catch (error) {
        thrown = { error };
        throw error;
      }
    });
  } catch (error) {
    if (thrown && thrown.error === error) throw error;
    throw toDatabaseError(error, 'BEGIN/COMMIT');
  }
}
