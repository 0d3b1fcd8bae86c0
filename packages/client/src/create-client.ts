import {
  type AnyMutators,
  type AnySchema,
  CRUD_MUTATORS_KEY,
  isMutator,
  toApplicationError,
} from '@reprise/shared';
import { ClientClosedError } from './client-closed-error';
import { type CrudAPI, createClientCrudMutators, createCrudAPI } from './crud-api';
import { createIndexedDBStorage } from './indexeddb-storage';
import { type ClientQueryBuilder, createClientQueryBuilder, LiveQueries } from './live-query';
import { LocalState } from './local-state';
import { type ClientStorage, createMemoryStorage, type PendingMutation } from './storage';
import { SyncLoop } from './sync-loop';
import type { Endpoints } from './sync-requests';
import type {
  AuthOption,
  AuthState,
  ClientOptions,
  MutateAPI,
  MutationCall,
  MutationOutcome,
  ServerOption,
  SettledMutation,
} from './types';

/** A running client. */
export interface Client<S extends AnySchema, M extends AnyMutators> {
  readonly clientID: string;
  readonly clientGroupID: string;
  /** `client.mutate.issue.create(args)`: typed from the mutators, returns `{client, server}`. */
  readonly mutate: MutateAPI<M>;
  /**
   * `client.crud.issue.put(row)`, `.patch(id, changes)`, `.delete(id)`: row operations,
   * typed from the schema, queued and pushed as `_crud.*` mutations; each returns
   * `{client, server}` like `mutate`. The server must opt in (`crud: true`).
   */
  readonly crud: CrudAPI<S>;
  /** `client.query.issue.where(…)`: `.run()`, `.materialize()`, `.subscribe(cb)`. */
  readonly query: ClientQueryBuilder<S>;
  /** How many mutations wait for the server's confirmation, adopted ones (of closed tabs) too. */
  readonly pending: number;
  /** False while the server is unreachable or `setOnline(false)` holds the client offline. */
  readonly online: boolean;
  readonly authState: AuthState;
  /**
   * False until a pull from the server has been applied since this client opened: until
   * then the view holds only what the storage kept from an earlier session (or nothing).
   * True after, for good: the view then holds every row the user may see as of the last
   * pull, with the pending mutations applied on top.
   */
  readonly synced: boolean;
  /** Resolves once every mutation is pushed and confirmed by a pull, and stored. */
  idle(): Promise<void>;
  /** Pulls now (and pushes whatever is queued). */
  pull(): Promise<void>;
  /** Forces the client offline (false) or lets it reconnect (true). */
  setOnline(online: boolean): void;
  onOnlineChange(listener: (online: boolean) => void): () => void;
  /** Calls `listener` when `synced` turns true; returns the unsubscribe function. */
  onSyncedChange(listener: (synced: boolean) => void): () => void;
  onMutationSettled(listener: (settled: SettledMutation) => void): () => void;
  /** Calls `listener` with `pending` whenever it changes; returns the unsubscribe function. */
  onPendingChange(listener: (pending: number) => void): () => void;
  /** New credentials after an auth error; pushing resumes. */
  setAuth(auth: AuthOption | undefined): void;
  /** Stops syncing, frees the client's claim on the storage and waits for writes. */
  close(): Promise<void>;
}

const idbStorages = new Map<string, ClientStorage>();

function resolveStorage(storage: ClientOptions<any, any>['storage']): ClientStorage {
  if (storage === undefined || storage === 'memory') return createMemoryStorage();
  if (storage !== 'indexeddb') return storage;
  const idb = idbStorages.get('reprise') ?? createIndexedDBStorage('reprise');
  idbStorages.set('reprise', idb);
  return idb;
}

function endpoints(server: ServerOption): Endpoints {
  if (typeof server !== 'string') return server;
  const base = server.replace(/\/+$/, '');
  return { mutate: `${base}/mutate`, pull: `${base}/pull`, poke: `${base}/poke` };
}

/**
 * Creates a client: loads the persisted store and queue, then syncs with the server.
 * `server` resolves exactly once, never rejects: `{ok: true, data}` with the mutator's
 * return value, or `{ok: false, error}` with the `ApplicationError` (a client-side
 * validation failure too), or a `ClientClosedError` when the client closed first.
 *
 * @example
 * const client = await createClient({schema, mutators, server: '/api', userID: 'ana', auth: () => `Bearer ${token}`});
 * const {client: applied, server} = client.mutate.issue.create({id: 'i1', title: 'Hi'});
 * const result = await server; // {ok: true, data: undefined}
 */
export async function createClient<S extends AnySchema, M extends AnyMutators>(
  options: ClientOptions<S, M>,
): Promise<Client<S, M>> {
  if (Object.hasOwn(options.mutators, CRUD_MUTATORS_KEY)) {
    throw new TypeError(
      `createClient: the mutator name "${CRUD_MUTATORS_KEY}" is reserved for client.crud`,
    );
  }
  const state = await LocalState.open({
    schema: options.schema,
    // The CRUD calls are mutations too: stored, pushed and rebased with the app's own.
    mutators: { ...options.mutators, ...createClientCrudMutators(options.schema) },
    storage: resolveStorage(options.storage),
    userID: options.userID,
    context: options.context,
    clientGroupID: options.clientGroupID,
  });
  const live = new LiveQueries(() => state.view);
  const waiting = new Map<number, (outcome: MutationOutcome) => void>();
  /** `clientID/id` of each settled mutation, this client's and adopted ones. */
  const settledIDs = new Set<string>();
  const settledListeners = new Set<(settled: SettledMutation) => void>();
  const onlineListeners = new Set<(online: boolean) => void>();
  const pendingListeners = new Set<(pending: number) => void>();
  const syncedListeners = new Set<(synced: boolean) => void>();
  let lastSynced = false;
  let lastPending = state.pendingCount;
  const notifyPending = () => {
    const pending = state.pendingCount;
    if (pending === lastPending) return;
    lastPending = pending;
    for (const listener of pendingListeners) listener(pending);
  };
  let idleWaiters: (() => void)[] = [];
  let lastOnline = true;
  const names = new Map<number, string>(state.pending.map((m) => [m.id, m.name]));

  let closed = false;
  const settle = (clientID: string, id: number, outcome: MutationOutcome, name?: string) => {
    // After close, `server` promises have settled with a ClientClosedError; a verdict that
    // arrives late (a push in flight) is the next client's to report.
    if (closed || settledIDs.has(`${clientID}/${id}`)) return;
    settledIDs.add(`${clientID}/${id}`);
    const own = clientID === state.clientID;
    if (own) {
      waiting.get(id)?.(outcome);
      waiting.delete(id);
    }
    const settled = {
      clientID,
      id,
      name: name ?? (own ? names.get(id) : undefined) ?? '',
      outcome,
    };
    for (const listener of settledListeners) listener(settled);
  };

  const sync: SyncLoop = new SyncLoop(
    {
      state,
      settle,
      changed: () => {
        live.refresh();
        notifyPending();
        if (sync.synced && !lastSynced) {
          lastSynced = true;
          for (const listener of syncedListeners) listener(true);
        }
        if (sync.online && !sync.forcedOffline) {
          if (!lastOnline) for (const l of onlineListeners) l(true);
          lastOnline = true;
        } else if (lastOnline) {
          lastOnline = false;
          for (const l of onlineListeners) l(false);
        }
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const wake of waiters) wake();
      },
    },
    {
      endpoints: endpoints(options.server),
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      auth: options.auth,
      maxBatchSize: options.maxBatchSize ?? 100,
      backoff: { baseMs: options.backoff?.baseMs ?? 250, maxMs: options.backoff?.maxMs ?? 30_000 },
      pullIntervalMs: options.pullIntervalMs ?? 30_000,
      poke: options.poke ?? true,
      onAuthError: options.onAuthError,
    },
  );

  const call = (name: string, args: unknown): MutationCall => {
    let resolveServer!: (outcome: MutationOutcome) => void;
    const server = new Promise<MutationOutcome>((resolve) => {
      resolveServer = resolve;
    });
    // The resolver is registered inside mutate, before the mutation can be pushed: a push
    // or pull that confirms it at once still finds whom to tell.
    const queued = (mutation: PendingMutation) => {
      names.set(mutation.id, name);
      waiting.set(mutation.id, resolveServer);
    };
    const applied = state.mutate(name, args, queued).then(
      () => {
        live.refresh();
        notifyPending();
        sync.schedulePush();
      },
      (error: unknown) => {
        const refused = error instanceof ClientClosedError ? error : toApplicationError(error);
        resolveServer({ ok: false, error: refused });
        throw error;
      },
    );
    // Fire-and-forget callers need not handle `client`; awaiting it still throws.
    applied.catch(() => {});
    return { client: applied, server };
  };

  const mutateTree = (tree: AnyMutators): unknown =>
    Object.fromEntries(
      Object.entries(tree).map(([key, value]) => [
        key,
        isMutator(value) ? (args?: unknown) => call(value.mutatorName, args) : mutateTree(value),
      ]),
    );

  const client: Client<S, M> = {
    clientID: state.clientID,
    clientGroupID: state.clientGroupID,
    mutate: mutateTree(options.mutators) as MutateAPI<M>,
    crud: createCrudAPI(options.schema, call),
    query: createClientQueryBuilder(options.schema, live),
    get pending() {
      return state.pendingCount;
    },
    get online() {
      return sync.online && !sync.forcedOffline;
    },
    get authState() {
      return sync.authState;
    },
    get synced() {
      return lastSynced;
    },
    async idle() {
      for (;;) {
        if (closed) throw new ClientClosedError('The client was closed before it was idle');
        await state.flushed();
        if (state.pendingCount === 0 && !sync.pushing && !sync.pulling) return;
        const woken = new Promise<void>((resolve) => idleWaiters.push(resolve));
        if (!sync.pushing && !sync.pulling && !sync.retrying) {
          if (sync.hasUnpushed()) void sync.push();
          else void sync.pull();
        }
        await woken;
        // Let timers (coalesced pushes, backoff) run between rounds.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    },
    pull: async () => {
      sync.schedulePush();
      await sync.pull();
    },
    setOnline: (online) => sync.setForcedOffline(!online),
    onOnlineChange(listener) {
      onlineListeners.add(listener);
      return () => onlineListeners.delete(listener);
    },
    onSyncedChange(listener) {
      syncedListeners.add(listener);
      return () => syncedListeners.delete(listener);
    },
    onMutationSettled(listener) {
      settledListeners.add(listener);
      return () => settledListeners.delete(listener);
    },
    onPendingChange(listener) {
      pendingListeners.add(listener);
      return () => pendingListeners.delete(listener);
    },
    setAuth: (auth) => sync.setAuth(auth),
    async close() {
      sync.close();
      await state.close();
      closed = true;
      // Unconfirmed mutations stay stored: the next client of the group pushes them. Their
      // promises here settle now, rather than never.
      const unsettled = [...waiting.values()];
      waiting.clear();
      for (const resolve of unsettled) resolve({ ok: false, error: new ClientClosedError() });
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
    },
  };
  // Before the first pull: a client that starts offline sends nothing at all.
  if (options.online === false) sync.setForcedOffline(true);
  sync.start();
  return client;
}
