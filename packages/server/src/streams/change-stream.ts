// streams/: change streams for server code. This file is the entry; filters, batches
// read from the changelog, the iterator and the named stream's lease are beside it.

import { randomUUID } from 'node:crypto';
import type { AnySchema, ServerRowOf, TableName } from '@reprise/shared';
import { ensureCaptured } from '../changes/capture';
import { type ChangeWatcher, createChangeWatcher } from '../changes/change-watcher';
import { type Change, type ChangeAction, currentCursor } from '../changes/changelog';
import { canSee, scopesOf, type Visibility } from '../changes/visibility';
import type { Database } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { observePendingChanges } from '../telemetry';
import { type ActionFilters, compileChangeFilter } from './change-filter';
import { type ChangeIterator, type Durable, openChangeIterator } from './stream-iterator';
import { acquireLease } from './stream-lease';
import { pendingChanges } from './stream-pending';

// Change streams for server code, after Prisma Pulse: `stream()` is resumable by name and
// delivers at least once in commit order; `subscribe()` is live only. Both read the
// changelog that pull reads, so they see every captured write, whoever made it.

interface EventBase<T extends string> {
  /**
   * The change's id in the changelog, as a string: unique and the same on every delivery,
   * so a consumer can use it as an idempotency key.
   */
  readonly id: string;
  readonly table: T;
}
export interface CreateEvent<Row = Record<string, unknown>, T extends string = string>
  extends EventBase<T> {
  readonly action: 'create';
  readonly created: Row;
}
export interface UpdateEvent<Row = Record<string, unknown>, T extends string = string>
  extends EventBase<T> {
  readonly action: 'update';
  readonly before: Row;
  readonly after: Row;
}
export interface DeleteEvent<Row = Record<string, unknown>, T extends string = string>
  extends EventBase<T> {
  readonly action: 'delete';
  readonly deleted: Row;
}
/** One committed write, as change streams deliver it. */
export type ChangeEvent<Row = Record<string, unknown>, T extends string = string> =
  | CreateEvent<Row, T>
  | UpdateEvent<Row, T>
  | DeleteEvent<Row, T>;

type TableFilters<S extends AnySchema, T extends TableName<S>> = {
  readonly table: T;
} & ActionFilters<ServerRowOf<S, T>>;

/** Which changes to receive: one table or all, and per action, which rows. */
export type ChangeFilters<S extends AnySchema = AnySchema> =
  | { [T in TableName<S>]: TableFilters<S, T> }[TableName<S>]
  | ({ readonly table?: undefined } & ActionFilters);

export type ChangeStreamOptions<S extends AnySchema = AnySchema> = ChangeFilters<S> &
  ScopeOption & {
    /**
     * Makes the stream durable: its position is stored under this name, and a stream opened
     * again with it (in this process or another) resumes where the last one was acknowledged.
     */
    readonly name?: string;
  };

interface ScopeOption {
  /**
   * Only what a user holding these scopes may see, by the `visibility` given to
   * `createChangeStreams`, as pull would send it: a row that moves into the scopes comes as
   * a create, one that moves out as a delete of the row as it was, and nothing of a row
   * outside them at any point.
   */
  readonly scopes?: readonly string[];
}

/** Options that pick nothing out: every table, every action. */
type NoFilters = { readonly table?: undefined };
type TableOf<O> = O extends { readonly table: infer T extends string } ? T : never;
type ActionsOf<O> = [Extract<keyof O, ChangeAction>] extends [never]
  ? ChangeAction
  : Extract<keyof O, ChangeAction>;
type TableEvent<S extends AnySchema, T> =
  T extends TableName<S> ? ChangeEvent<ServerRowOf<S, T>, T> : never;
/** The events a stream with options `O` delivers: its table's rows, its actions. */
export type ChangeEventOf<S extends AnySchema, O> = Extract<
  TableEvent<S, [TableOf<O>] extends [never] ? TableName<S> : TableOf<O>>,
  { readonly action: ActionsOf<O> }
>;

/** Live events, at most once; nothing is stored. */
export interface ChangeSubscription<E> extends AsyncIterable<E> {
  next(): Promise<IteratorResult<E, undefined>>;
  /** Same as `stop`, for `for await` loops that break. */
  return(): Promise<IteratorResult<E, undefined>>;
  /** Ends the iteration; a pending `next()` resolves as done. */
  stop(): Promise<void>;
  [Symbol.asyncIterator](): this;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Events in commit order, at least once. Asking for the next event acknowledges the
 * previous one; `ack()` acknowledges explicitly. Stopping (or breaking out of a loop) does
 * not acknowledge the last event handed out: a named stream delivers it again.
 */
export interface ChangeStream<E> extends ChangeSubscription<E> {
  /** The durable name, if any. */
  readonly name: string | undefined;
  /**
   * Acknowledges every event handed out so far; for a named stream, resolves once the
   * position is stored, so those events are not delivered again after a restart.
   */
  ack(): Promise<void>;
}

export interface ChangeStreamsOptions<S extends AnySchema = AnySchema> {
  readonly db: Database<any>;
  /** The app's schema: types the events, and lets filters be checked against its columns. */
  readonly schema?: S;
  /** Who may see each table's rows, as for pull; needed by streams opened with `scopes`. */
  readonly visibility?: Visibility<S>;
  /** Where the engine's own tables live (default `reprise`). */
  readonly engineSchema?: string;
  /** How often to look for commits where the database has no `LISTEN` (default 1000 ms). */
  readonly pollIntervalMs?: number;
  /**
   * How often to look for commits all the same where it has (default 10,000 ms): for a
   * commit whose process stopped before announcing it.
   */
  readonly listeningPollIntervalMs?: number;
  /**
   * How long a named stream's consumer holds it without renewing (default 30 s); it renews
   * every third of that. After a crash, the name is free again once the lease runs out.
   */
  readonly leaseMs?: number;
  readonly logger?: Logger;
}

export interface ChangeStreams<S extends AnySchema = AnySchema> {
  /**
   * Opens a stream of change events from now on; with `name`, a durable one that resumes
   * where the last consumer of that name stopped. Rejects with `ChangeStreamError`
   * (`leaseHeld`) while another consumer holds the name: one consumer per name at a time.
   */
  stream<const O extends ChangeStreamOptions<S> = NoFilters>(
    options?: O,
  ): Promise<ChangeStream<ChangeEventOf<S, O>>>;
  /** Opens a live subscription to change events from now on. */
  subscribe<const O extends ChangeFilters<S> & ScopeOption = NoFilters>(
    filters?: O,
  ): Promise<ChangeSubscription<ChangeEventOf<S, O>>>;
  /**
   * Stops every stream and subscription (named ones store their position and free their
   * name), and stops listening; call it before closing the database.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_LEASE_MS = 30_000;
const OPTION_KEYS = new Set(['table', 'create', 'update', 'delete', 'scopes']);

/**
 * The change as a holder of `granted` sees it: pull's rule applied to one event, or
 * undefined when it shows them nothing.
 */
function viewOf(visibility: Visibility, granted: ReadonlySet<string>) {
  return (change: Change): Change | undefined => {
    const sees = (row: Change['after']) => canSee(scopesOf(visibility, change.table, row), granted);
    const before = change.before !== undefined && sees(change.before);
    const after = change.after !== undefined && sees(change.after);
    if (before && after) return change;
    if (after) {
      const { before: _, ...created } = change;
      return { ...created, action: 'create' };
    }
    if (before) {
      const { after: _, ...deleted } = change;
      return { ...deleted, action: 'delete' };
    }
    return undefined;
  };
}

function toEvent(change: Change): ChangeEvent {
  const base = { id: String(change.id), table: change.table };
  switch (change.action) {
    case 'create':
      return { ...base, action: 'create', created: change.after ?? {} };
    case 'update':
      return { ...base, action: 'update', before: change.before ?? {}, after: change.after ?? {} };
    case 'delete':
      return { ...base, action: 'delete', deleted: change.before ?? {} };
  }
}

function wrap<E>(iterator: ChangeIterator<E>, name: string | undefined): ChangeStream<E> {
  const stream: ChangeStream<E> = {
    name,
    next: () => iterator.next(),
    ack: () => iterator.ack(),
    stop: () => iterator.stop(),
    async return() {
      await iterator.stop();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
    [Symbol.asyncDispose]: () => iterator.stop(),
  };
  return stream;
}

/**
 * Creates the change streams of one process. Each instance listens once, however many
 * streams it serves; close it on shutdown.
 *
 * @example
 * const changes = createChangeStreams({db, schema});
 * const stream = await changes.stream({name: 'search-index', table: 'issue', update: {open: true}});
 * for await (const event of stream) {
 *   if (event.action === 'update') await index(event.after); // the next turn acknowledges it
 * }
 */
export function createChangeStreams<S extends AnySchema = AnySchema>(
  options: ChangeStreamsOptions<S>,
): ChangeStreams<S> {
  const { db, schema } = options;
  const logger = options.logger ?? consoleLogger;
  const tables = engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA);
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const open = new Set<ChangeIterator<unknown>>();
  let closed = false;
  let watcher: ChangeWatcher | undefined;
  const stopGauge = observePendingChanges(
    () => pendingChanges(db, tables),
    (error) => logger.warn({ event: 'stream.pending', error }),
  );

  const startWatcher = () => {
    watcher ??= createChangeWatcher({
      db,
      tables,
      logger,
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      ...(options.listeningPollIntervalMs === undefined
        ? {}
        : { listeningPollIntervalMs: options.listeningPollIntervalMs }),
    });
    return watcher.start().then(() => watcher!);
  };

  const openIterator = async (
    { scopes, ...filters }: ChangeFilters<S> & ScopeOption,
    name: string | undefined,
    onExpired: 'fail' | 'skip',
  ) => {
    if (closed) throw new Error('These change streams are closed');
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new TypeError('A change stream name must be a non-empty string');
    }
    for (const key of Object.keys(filters)) {
      if (!OPTION_KEYS.has(key)) {
        throw new TypeError(
          `Change stream option "${key}" is unknown; use name, table, create, update or delete`,
        );
      }
    }
    const filter = compileChangeFilter(schema, filters);
    let match = filter;
    let event = toEvent;
    if (scopes !== undefined) {
      if (!options.visibility) {
        throw new TypeError(
          'A change stream with `scopes` needs `visibility` in createChangeStreams',
        );
      }
      if (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string')) {
        throw new TypeError('Change stream option "scopes" must be an array of strings');
      }
      const view = viewOf(options.visibility as Visibility, new Set(scopes));
      match = (change) => {
        const seen = view(change);
        return seen !== undefined && filter(seen);
      };
      event = (change) => toEvent(view(change)!);
    }
    if (schema) {
      const wanted = filters.table === undefined ? schema.tableInfo.keys() : [filters.table];
      await ensureCaptured(db, tables, schema, wanted);
    }
    // Listening first: a commit after the starting position then always wakes the reader.
    const started = await startWatcher();
    let durable: Durable | undefined;
    let start: Parameters<typeof openChangeIterator>[0]['start'];
    if (name === undefined) {
      start = {
        cursor: await db.transaction((tx) => currentCursor(tx, db, tables), {
          isolation: 'read committed',
        }),
      };
    } else {
      durable = { name, owner: randomUUID(), leaseMs };
      start = await acquireLease(db, tables, name, durable.owner, leaseMs);
    }
    const iterator: ChangeIterator<ChangeEvent> = openChangeIterator({
      db,
      tables,
      schema,
      watcher: started,
      logger,
      start,
      match,
      toEvent: event,
      durable,
      onExpired,
      onStop: () => open.delete(iterator),
    });
    open.add(iterator);
    if (closed) await iterator.stop();
    return iterator;
  };

  return {
    async stream(streamOptions) {
      const { name, ...filters } = (streamOptions ?? {}) as ChangeStreamOptions<S>;
      const iterator = await openIterator(filters as ChangeFilters<S> & ScopeOption, name, 'fail');
      return wrap(iterator, name) as ChangeStream<never>;
    },
    async subscribe(filters) {
      const iterator = await openIterator((filters ?? {}) as ChangeFilters<S>, undefined, 'skip');
      return wrap(iterator, undefined) as ChangeStream<never>;
    },
    async close() {
      closed = true;
      stopGauge();
      await Promise.all([...open].map((iterator) => iterator.stop()));
      await watcher?.close();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
