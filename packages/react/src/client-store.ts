import type { Client, MaterializedView, SettledMutation } from '@reprise/client';
import type { ApplicationError, QueryAST } from '@reprise/shared';

// What the hooks read, kept per client so that every component asking for the same query
// shares one live view, and each snapshot stays the same object until something changed
// (useSyncExternalStore re-renders whenever getSnapshot returns a new object).

/** Any client, whatever its schema and mutators. */
export type AnyClient = Client<any, any>;

/**
 * Whether a query's rows come from the server: `'complete'` once the client has applied a
 * pull in this session (`client.synced`), `'unknown'` while it holds only what its storage
 * kept from an earlier session, or nothing yet. Pending mutations show in both.
 */
export interface QueryStatus {
  readonly type: 'complete' | 'unknown';
}

/** `useQuery`'s answer: the rows (or row, for `.one()`) and the status. */
export type QueryState<TResult> = readonly [TResult, QueryStatus];

/** A queued mutation the server refused with an ApplicationError. */
export type Refusal = SettledMutation & {
  readonly outcome: { readonly ok: false; readonly error: ApplicationError };
};

/**
 * A query the hooks can follow: one from `client.query`. Described by the members the hooks
 * use rather than as `Query<any, …>`: a query over a table with relationships is not
 * assignable to that (its `related()` accepts only its own relationships' names).
 */
export interface LiveQuery {
  readonly ast: QueryAST;
  readonly single: boolean;
  /** Phantom: what the query's rows are (see `Query`). */
  readonly '~result': unknown;
  materialize(): MaterializedView<unknown>;
}

const COMPLETE: QueryStatus = Object.freeze({ type: 'complete' });
const UNKNOWN: QueryStatus = Object.freeze({ type: 'unknown' });

/**
 * How long a view nobody subscribed to is kept. A render that React throws away never
 * subscribes; StrictMode unsubscribes and subscribes again at once.
 */
const RELEASE_MS = 1000;

/** The key of a query: same AST, same view. */
export function queryKey(query: Pick<LiveQuery, 'ast' | 'single'>): string {
  return JSON.stringify([query.ast, query.single], (_key, value: unknown) =>
    typeof value === 'bigint' ? `${value}n` : value,
  );
}

/** One live query shared by the components that use it. */
export class QueryEntry {
  private view: MaterializedView<unknown> | undefined;
  private snapshot: QueryState<unknown> | undefined;
  private readonly listeners = new Set<() => void>();
  private stopView: (() => void) | undefined;
  private stopSynced: (() => void) | undefined;
  private releaseTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly store: ClientStore,
    readonly key: string,
    private readonly query: LiveQuery,
  ) {}

  /** The current rows and status; the same array until one of them changes. */
  readonly getSnapshot = (): QueryState<unknown> => {
    const view = this.open();
    const status = this.store.client.synced ? COMPLETE : UNKNOWN;
    const last = this.snapshot;
    if (last === undefined || last[0] !== view.data || last[1] !== status) {
      this.snapshot = [view.data, status];
    }
    return this.snapshot as QueryState<unknown>;
  };

  readonly subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    clearTimeout(this.releaseTimer);
    if (this.listeners.size === 1) {
      const view = this.open();
      const notify = () => {
        for (const listener of [...this.listeners]) listener();
      };
      this.stopView = view.subscribe(notify);
      this.stopSynced = this.store.client.onSyncedChange(notify);
    }
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size > 0) return;
      this.stopView?.();
      this.stopSynced?.();
      this.stopView = this.stopSynced = undefined;
      this.scheduleRelease();
    };
  };

  /** How many components follow this query. */
  get subscribers(): number {
    return this.listeners.size;
  }

  private open(): MaterializedView<unknown> {
    if (this.view) return this.view;
    this.view = this.query.materialize();
    this.store.entries.set(this.key, this);
    if (this.listeners.size === 0) this.scheduleRelease();
    return this.view;
  }

  private scheduleRelease(): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(() => {
      if (this.listeners.size > 0 || !this.view) return;
      this.view.destroy();
      this.view = undefined;
      if (this.store.entries.get(this.key) === this) this.store.entries.delete(this.key);
    }, RELEASE_MS);
  }
}

/** The hooks' state for one client. */
export class ClientStore {
  /** The queries with a live view, by key. */
  readonly entries = new Map<string, QueryEntry>();
  private refusal: Refusal | undefined;
  private readonly refusalListeners = new Set<() => void>();

  constructor(readonly client: AnyClient) {
    // From the first render of the provider on, so that a refusal that arrives before any
    // component asks for it is not lost. It lives as long as the client.
    client.onMutationSettled((settled) => {
      if (settled.outcome.ok || settled.outcome.error.code !== 'app') return;
      this.refusal = settled as Refusal;
      for (const listener of [...this.refusalListeners]) listener();
    });
  }

  entry(query: LiveQuery): QueryEntry {
    const key = queryKey(query);
    return this.entries.get(key) ?? new QueryEntry(this, key, query);
  }

  readonly getRefusal = (): Refusal | undefined => this.refusal;

  readonly subscribeRefusal = (onChange: () => void): (() => void) => {
    this.refusalListeners.add(onChange);
    return () => this.refusalListeners.delete(onChange);
  };
}

const stores = new WeakMap<AnyClient, ClientStore>();

/** The store of `client`, made on first use. */
export function storeFor(client: AnyClient): ClientStore {
  let store = stores.get(client);
  if (!store) {
    store = new ClientStore(client);
    stores.set(client, store);
  }
  return store;
}
