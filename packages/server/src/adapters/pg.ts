import { createHash } from 'node:crypto';
import type { Client, ClientBase, Notification, Pool, PoolClient, QueryResult } from 'pg';
import {
  type Database,
  type DatabaseTransaction,
  isConnectionLost,
  isolationClause,
  type ListenOptions,
  quoteIdent,
  sqlSavepoints,
  toDatabaseError,
  withDeadline,
  withDriverTransaction,
} from '../db/database';

type Queryable = Pick<Client, 'query'>;

/** Options of `createPgDatabase`. */
export interface PgDatabaseOptions {
  /**
   * The most one statement of a transaction may wait for its answer (default 30 s). Past
   * it the statement fails as transient and its connection is destroyed, not given back to
   * the pool, so a connection that stopped answering cannot hold a request or the pool.
   */
  readonly queryTimeoutMs?: number;
  /**
   * Prepares each parameterised statement once per connection, as a named statement, instead
   * of parsing and planning it again on every call (default true). Turn it off behind
   * PgBouncer before 1.21 in transaction mode, which keeps no prepared statements.
   */
  readonly prepare?: boolean;
}

export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/**
 * The most statements one connection keeps prepared: past it, new texts run unnamed, so
 * an app whose queries vary without end (an `IN` list of every length) costs each
 * connection a bounded number of server-side plans.
 */
const MAX_PREPARED_PER_CONNECTION = 200;

/** The statement names prepared on each connection. */
const preparedOn = new WeakMap<object, Set<string>>();
/** Statement names by text, bounded like a connection's set. */
const statementNames = new Map<string, string>();

/** The name to prepare `text` under on `client`, or undefined to run it unnamed. */
function statementName(client: object, text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= 4 * MAX_PREPARED_PER_CONNECTION) return undefined;
    name = `reprise_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  let names = preparedOn.get(client);
  if (!names) {
    names = new Set();
    preparedOn.set(client, names);
  }
  if (!names.has(name)) {
    if (names.size >= MAX_PREPARED_PER_CONNECTION) return undefined;
    names.add(name);
  }
  return name;
}

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

/** The error each connection of a guarded pool last reported, if any. */
const connectionErrors = new WeakMap<ClientBase, Error>();
const guardedPools = new WeakSet<Pool>();

/**
 * node-postgres emits `'error'` on a client whose connection dies, and on the pool when
 * the client was idle; unheard, either throws "Unhandled 'error' event" and ends the
 * process. The pool listens to its clients only while they are idle, so a connection killed
 * while a transaction holds it (or while drizzle's session does) would take the process
 * down. Every client the pool hands out gets a listener that keeps the error for the
 * transaction to see, and the pool one that lets it drop a dead idle connection quietly.
 *
 * @example
 * guardPool(pool); // createPgDatabase and createDrizzleDatabase do this themselves
 */
export function guardPool(pool: Pool): void {
  if (guardedPools.has(pool)) return;
  guardedPools.add(pool);
  // The pool has already removed the client; the next checkout opens a fresh one.
  pool.on('error', () => undefined);
  pool.on('acquire', (client) => {
    if (client.listeners('error').includes(keepError)) return;
    client.on('error', keepError);
  });
}

function keepError(this: ClientBase, error: Error) {
  connectionErrors.set(this, error);
}

/**
 * Checks a client out of a guarded pool for `fn`, waiting at most `timeoutMs` for it, and
 * gives it back; a client whose connection was lost (or stopped answering) is destroyed
 * instead, so the pool opens a fresh one. A transaction that merely failed, such as a
 * serialization failure, leaves its connection in the pool.
 */
export async function withPoolClient<T>(
  pool: Pool,
  timeoutMs: number,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  guardPool(pool);
  const connecting = pool.connect();
  const client = await withDeadline(connecting, timeoutMs, 'a connection').catch(
    (error: unknown) => {
      // A connection that arrives after all goes straight back.
      connecting.then(
        (late) => late.release(),
        () => undefined,
      );
      throw toDatabaseError(error, 'connect');
    },
  );
  connectionErrors.delete(client);
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (error) {
    // A failed transaction on a live connection (a serialization failure) keeps it.
    if (isConnectionLost(error)) broken = error as Error;
    throw error;
  } finally {
    client.release(connectionErrors.get(client) ?? broken);
  }
}

/**
 * The connection a transaction runs on, failing fast once it is known to be broken. Each
 * statement waits at most `timeoutMs`; past it the socket is destroyed.
 */
export class Connection {
  broken: Error | undefined;
  /** Set when the transaction is over: the client may serve someone else by now. */
  ended = false;

  constructor(
    readonly client: PoolClient | Client,
    private readonly timeoutMs: number,
    private readonly pooled: boolean,
    private readonly prepare = false,
  ) {}

  async run<R>(text: string, params: readonly unknown[]): Promise<R[]> {
    return (await this.result<R>(text, params)).rows;
  }

  /** Runs one statement and returns node-postgres's whole result (command, row count). */
  async result<R>(text: string, params: readonly unknown[]): Promise<QueryResult<R & {}>> {
    if (this.ended) {
      throw new Error('This transaction is over: its connection has gone back to the pool');
    }
    const lost = this.broken ?? connectionErrors.get(this.client);
    if (lost) throw toDatabaseError(lost, text);
    try {
      const name = this.prepare && params.length > 0 ? statementName(this.client, text) : undefined;
      const sent = name
        ? this.client.query<R & {}>({ name, text, values: params as unknown[] })
        : this.client.query<R & {}>(text, params as unknown[]);
      return await withDeadline(sent, this.timeoutMs, 'a statement');
    } catch (error) {
      const failure = toDatabaseError(error, text);
      if (isConnectionLost(failure) && this.pooled) {
        this.broken ??= failure;
        if (!connectionErrors.has(this.client)) connectionErrors.set(this.client, failure);
      }
      if (failure.sqlState === 'REPRISE_TIMEOUT') this.destroy();
      throw failure;
    }
  }

  /** Closes the socket at once, so that the statement still waiting fails too. */
  private destroy() {
    const stream = (this.client as { connection?: { stream?: { destroy?(): void } } }).connection
      ?.stream;
    stream?.destroy?.();
  }
}

/**
 * Reprise's database over node-postgres, from a `pg.Pool` (one connection per
 * transaction) or a single `pg.Client` (transactions take turns). Mutators get the
 * connection running the transaction as `tx.dbTransaction.wrappedTransaction`. A
 * connection lost mid-transaction is destroyed rather than given back to the pool, and
 * the transaction fails as transient, so the push retries it on a fresh connection.
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({connectionString: process.env.DATABASE_URL});
 * pool.on('error', (error) => console.warn('idle connection lost', error)); // as pg asks
 * const db = createPgDatabase(pool);
 */
export function createPgDatabase(
  poolOrClient: Pool | Client,
  options: PgDatabaseOptions = {},
): Database<PoolClient | Client> {
  return createPgDatabaseOf(poolOrClient, options, 'pg', (connection) => connection.client);
}

/**
 * `createPgDatabase` with another object as `wrappedTransaction`, made from the connection
 * the transaction runs on: the Kysely adapter hands mutators a Kysely transaction whose
 * statements go through that connection, and so keep its bounds.
 */
export function createPgDatabaseOf<TWrapped>(
  poolOrClient: Pool | Client,
  options: PgDatabaseOptions,
  name: string,
  wrap: (connection: Connection) => TWrapped,
): Database<TWrapped> {
  const timeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const prepare = options.prepare ?? true;
  const exclusive = createMutex();
  if (isPool(poolOrClient)) guardPool(poolOrClient);
  const using = async <T>(connection: Connection, fn: (connection: Connection) => Promise<T>) => {
    try {
      return await fn(connection);
    } finally {
      connection.ended = true;
    }
  };
  const withConnection = isPool(poolOrClient)
    ? <T>(fn: (connection: Connection) => Promise<T>) =>
        withPoolClient(poolOrClient, timeoutMs, (client) =>
          using(new Connection(client, timeoutMs, true, prepare), fn),
        )
    : <T>(fn: (connection: Connection) => Promise<T>) =>
        exclusive(() => using(new Connection(poolOrClient, timeoutMs, false, prepare), fn));

  return {
    name,
    capabilities: { advisoryLocks: true, partialSQL: false },
    transaction: (fn, { isolation }) =>
      withConnection((connection) => {
        const atCommit: string[] = [];
        return withDriverTransaction(
          async (body) => {
            await connection.run(`BEGIN ${isolationClause(isolation)}`, []);
            try {
              const value = await body();
              // One simple query: if a statement before COMMIT fails, COMMIT does not run.
              await connection.run(
                atCommit.length ? `${atCommit.join(';\n')};\nCOMMIT` : 'COMMIT',
                [],
              );
              return value;
            } catch (error) {
              // On a broken connection there is nothing to roll back: the server already did.
              if (!connection.broken) await connection.run('ROLLBACK', []).catch(() => undefined);
              throw error;
            }
          },
          () => {
            const tx: DatabaseTransaction<TWrapped> = {
              query: (text, params = []) => connection.run(text, params),
              commitWith: (text) => {
                atCommit.push(text);
              },
              // node-postgres queues a statement as `query` is called.
              queued: (text, params = []) => connection.run(text, params),
              // Without parameters node-postgres sends the simple query protocol, which
              // takes several statements at once.
              ...sqlSavepoints(
                (text) => connection.run(text, []),
                () => tx,
                (text) => connection.run(text, []),
              ),
              wrappedTransaction: wrap(connection),
            };
            return fn(tx);
          },
        );
      }),
    query: (text, params = []) => withConnection((connection) => connection.run(text, params)),
    listen: (channel, onPayload, listenOptions) =>
      isPool(poolOrClient)
        ? listenOnPool(poolOrClient, channel, onPayload, listenOptions)
        : listenOnClient(poolOrClient, exclusive, channel, onPayload),
  };
}

const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * `LISTEN` on a connection taken from the pool for good. When it breaks, listening moves
 * to a new one (retrying with backoff) and `onReconnect` says notifications may be lost.
 */
async function listenOnPool(
  pool: Pool,
  channel: string,
  onPayload: (payload: string) => void,
  options: ListenOptions = {},
): Promise<() => Promise<void>> {
  const listenSQL = `LISTEN ${quoteIdent(channel)}`;
  let stopped = false;
  let current: { client: PoolClient; detach(error?: Error): void } | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const onNotification = (message: Notification) => {
    if (!stopped && message.channel === channel) onPayload(message.payload ?? '');
  };
  const connect = async () => {
    const client = await pool.connect();
    // node-postgres emits 'error' on a checked-out client whose connection dies; unhandled,
    // it would take the process down. 'end' follows it, or comes alone.
    const onLost = (error?: Error) => {
      if (current?.client !== client) return;
      current = undefined;
      listening.detach(error ?? new Error('The listening connection ended'));
      if (!stopped) reconnect(0);
    };
    const listening = {
      client,
      detach(error?: Error) {
        client.off('notification', onNotification);
        client.off('error', onLost);
        client.off('end', onLost);
        // A broken connection may still report errors while the pool destroys it.
        if (error) client.on('error', () => {});
        client.release(error);
      },
    };
    client.on('notification', onNotification);
    client.on('error', onLost);
    client.on('end', onLost);
    try {
      await client.query(listenSQL);
    } catch (error) {
      listening.detach(error as Error);
      throw error;
    }
    return listening;
  };
  function reconnect(attempt: number) {
    // A pool being shut down will not hand out connections again.
    if ((pool as { ending?: boolean }).ending) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]!;
    retry = setTimeout(() => {
      retry = undefined;
      connect().then(
        (next) => {
          if (stopped) return next.detach(new Error('Stopped listening'));
          current = next;
          options.onReconnect?.();
        },
        () => {
          if (!stopped) reconnect(attempt + 1);
        },
      );
    }, delay);
    retry.unref?.();
  }

  current = await connect().catch((error: unknown) => {
    throw toDatabaseError(error, listenSQL);
  });
  return async () => {
    if (stopped) return;
    stopped = true;
    if (retry) clearTimeout(retry);
    const last = current;
    current = undefined;
    if (!last) return;
    // UNLISTEN before the connection goes back to the pool; if that fails, drop it.
    const failed = await last.client.query(`UNLISTEN ${quoteIdent(channel)}`).then(
      () => undefined,
      (error: Error) => error,
    );
    last.detach(failed);
  };
}

/** `LISTEN` on the app's single client, taking turns with transactions. */
async function listenOnClient(
  client: Client,
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>,
  channel: string,
  onPayload: (payload: string) => void,
): Promise<() => Promise<void>> {
  let stopped = false;
  const onNotification = (message: Notification) => {
    if (!stopped && message.channel === channel) onPayload(message.payload ?? '');
  };
  client.on('notification', onNotification);
  try {
    await exclusive(() => run(client, `LISTEN ${quoteIdent(channel)}`, []));
  } catch (error) {
    client.off('notification', onNotification);
    throw error;
  }
  return async () => {
    if (stopped) return;
    stopped = true;
    client.off('notification', onNotification);
    await exclusive(() => run(client, `UNLISTEN ${quoteIdent(channel)}`, [])).catch(
      () => undefined,
    );
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
