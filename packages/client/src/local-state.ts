import {
  type AnyMutators,
  type AnySchema,
  createMemoryStore,
  type DraftWrite,
  encodePrimaryKey,
  flattenMutators,
  type MemoryDraft,
  type MemoryStore,
  type Mutator,
  mustGetTable,
  type PatchOperation,
  runMutator,
  toApplicationError,
} from '@reprise/shared';
import { AdoptedClients, type AdoptedQueue } from './adopted-clients';
import { ClientClosedError } from './client-closed-error';
import { type ClientLease, claimClientRecord, newID } from './client-lease';
import { createClientTransaction } from './client-transaction';
import { deepEqual } from './deep-equal';
import { loadPending, toStored } from './pending-queue';
import { loadSnapshot, type PatchedRow, type SnapshotBuckets } from './persisted-snapshot';
import {
  type ClientRecord,
  type ClientStorage,
  clientKey,
  type GroupRecord,
  groupKey,
  type PendingMutation,
  pendingKey,
  type QueuedMutation,
  type StorageWrite,
} from './storage';

// The client's data: the last server snapshot, the pending queue, and the view (snapshot +
// pending replayed) that queries read. Every change runs under one lock, so a pull's
// rebase never interleaves with an optimistic mutate; every change is persisted in order.

/** Rows by table, each under its encoded primary key, as an object holding that key. */
type RowKeys = Map<string, Map<unknown, Readonly<Record<string, unknown>>>>;

export interface LocalStateOptions {
  readonly schema: AnySchema;
  readonly mutators: AnyMutators;
  readonly storage: ClientStorage;
  readonly userID: string;
  readonly context: unknown;
  readonly clientGroupID?: string | undefined;
}

export class LocalState {
  snapshot: MemoryStore;
  /** The view, which a rebase writes in place. */
  private store: MemoryStore;
  /**
   * While a rebase runs: a draft over `store` holding the rows the rebase has changed so
   * far as they were before it, so that readers see the view before the pull until the
   * rebase is done. It is never committed unless the rebase fails, to put them back.
   */
  private before: MemoryDraft | undefined;
  /**
   * Where the view may differ from the snapshot: the rows the replays and optimistic
   * mutations wrote since the last rebase, and the rows pulls patched since. A rebase
   * brings these rows back to the snapshot and replays, instead of copying the snapshot.
   */
  private dirty: RowKeys = new Map();
  /** Set while the view is not the snapshot plus replays (at open, after a reset). */
  private rebuildView = true;
  private lock: Promise<unknown> = Promise.resolve();
  private writes: Promise<unknown> = Promise.resolve();
  private readonly byName: ReadonlyMap<string, Mutator>;
  /** The last mutation id the server confirmed, for every client of the group. */
  private groupLMIDs: Record<string, number> = {};
  private lease: ClientLease | undefined;
  /** Closed clients' queues this client pushes for them (adopted-clients.ts). */
  readonly adopted: AdoptedClients;
  private released = false;

  private constructor(
    private readonly options: LocalStateOptions,
    readonly clientID: string,
    readonly clientGroupID: string,
    public cookie: string | null,
    public lastMutationID: number,
    public pending: PendingMutation[],
    snapshot: MemoryStore,
    /** The snapshot's rows as the storage's buckets hold them. */
    private readonly buckets: SnapshotBuckets,
  ) {
    this.byName = flattenMutators(options.mutators);
    this.adopted = new AdoptedClients(options.storage, clientGroupID);
    this.snapshot = snapshot;
    this.store = snapshot;
  }

  /**
   * What queries read: the snapshot with the queues replayed. While a pull's rebase runs
   * (its replays may await), the view as it was before that pull.
   */
  get view(): MemoryStore {
    return this.before ?? this.store;
  }

  /**
   * Loads the group's state: a client of the group that no live client holds is resumed
   * (a reload); otherwise a new client forks the group's snapshot (a second tab).
   */
  static async open(options: LocalStateOptions): Promise<LocalState> {
    const { storage, userID } = options;
    const userKey = `user/${userID}`;
    const groupID = options.clientGroupID ?? ((await storage.get(userKey)) as string) ?? newID();
    await storage.set(userKey, groupID);
    const group = (await storage.get(groupKey(groupID))) as GroupRecord | undefined;
    const keys = await storage.keys();
    const { record, lease } = await claimClientRecord(storage, keys, groupID);
    // The group's snapshot may be newer than this client's record (written by a pull that
    // stopped half way, or by another tab): it wins.
    const confirmed = Math.max(
      record.lastMutationID,
      group?.lastMutationIDs?.[record.clientID] ?? 0,
    );
    const queue = await loadPending(storage, keys, record, confirmed);
    const loaded = await loadSnapshot(options.schema, storage, keys, groupID, group);
    const state = new LocalState(
      options,
      record.clientID,
      groupID,
      group?.cookie ?? null,
      confirmed,
      queue.pending,
      loaded.store,
      loaded.buckets,
    );
    state.lease = lease;
    state.groupLMIDs = { ...group?.lastMutationIDs };
    // Mutations the group's pulls confirmed for a closed client before this one opened are
    // dropped unreported: their results are older than the cookie, so not known here.
    await state.adopted.adopt(state.groupLMIDs);
    await state.exclusive(() => state.rebase());
    if (record.pending?.length) {
      // A record from before per-mutation keys: its queue moves to them.
      for (const m of state.pending) {
        await state.persist(pendingKey(state.clientID, m.id), toStored(m));
      }
    }
    await state.persistClient();
    for (const key of queue.stale) await storage.delete(key);
    return state;
  }

  /**
   * Stops changes and frees this client's claims once its writes are stored, so a later
   * client over the same storage resumes them. Under the lock: a pull still applying
   * (adopting, say) finishes first, and none starts after.
   */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      this.released = true;
    });
    await this.writes;
    this.adopted.release();
    this.lease?.release();
  }

  /** The queues to push, in order: the adopted clients' first, then this client's. */
  queues(): AdoptedQueue[] {
    const own = { clientID: this.clientID, confirmed: this.lastMutationID, pending: this.pending };
    return [...this.adopted.list(), own];
  }

  /** How many mutations, this client's and adopted ones, wait for confirmation. */
  get pendingCount(): number {
    return this.pending.length + this.adopted.count;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => {});
    return run;
  }

  private persist(key: string, value: unknown): Promise<void> {
    const write = this.writes.then(() => this.options.storage.set(key, value));
    this.writes = write.catch(() => {});
    return write;
  }

  /** Stores `writes` in order, all or none where the storage has batches. */
  private persistAll(writes: readonly StorageWrite[]): Promise<void> {
    const { storage } = this.options;
    const write = this.writes.then(async () => {
      if (storage.batch) return storage.batch(writes);
      for (const [key, value] of writes) {
        if (value === undefined) await storage.delete(key);
        else await storage.set(key, value);
      }
    });
    this.writes = write.catch(() => {});
    return write;
  }

  /** Resolves once every change started so far is applied and stored. */
  async flushed(): Promise<void> {
    await this.lock;
    await this.writes;
  }

  private persistClient(): Promise<void> {
    const record: ClientRecord = {
      clientID: this.clientID,
      clientGroupID: this.clientGroupID,
      lastMutationID: this.lastMutationID,
    };
    return this.persist(clientKey(this.clientID), record);
  }

  /**
   * Forgets confirmed mutations. The record's new `lastMutationID` is written first, so a
   * crash before the deletes leaves keys that the next load ignores, never a lost one.
   */
  private async forget(confirmed: readonly PendingMutation[]): Promise<void> {
    await this.persistClient();
    const { storage } = this.options;
    for (const m of confirmed) {
      const key = pendingKey(this.clientID, m.id);
      const write = this.writes.then(() => storage.delete(key));
      this.writes = write.catch(() => {});
    }
  }

  mustMutator(name: string): Mutator {
    const mutator = this.byName.get(name);
    if (!mutator) throw new TypeError(`There is no mutator named "${name}"`);
    return mutator;
  }

  /**
   * Runs the mutation in a draft of `store` and returns the draft, its writes not yet in
   * `store` (`draft.commit()` puts them there). Throws what the mutator threw.
   */
  private async draft(
    store: MemoryStore,
    mutation: PendingMutation,
    reason: 'optimistic' | 'rebase',
    clientID = this.clientID,
  ): Promise<MemoryDraft> {
    const draft = store.fork();
    const tx = createClientTransaction(this.options.schema, draft, {
      clientID,
      mutationID: mutation.id,
      reason,
    });
    await runMutator(this.mustMutator(mutation.name), {
      tx,
      args: mutation.args,
      ctx: this.options.context,
    });
    return draft;
  }

  /**
   * Runs a mutator optimistically, stores it and queues it. `queued` is called with the
   * mutation just before the push loop can see it, so whoever waits for its outcome is
   * registered before any push or pull can report one.
   *
   * Throws an `ApplicationError` when the mutator throws, the storage's error when the
   * mutation cannot be stored, and a `ClientClosedError` once the client is closed: in
   * every case nothing is queued, the view is unchanged and the id is not used up.
   */
  mutate(
    name: string,
    args: unknown,
    queued: (mutation: PendingMutation) => void,
  ): Promise<PendingMutation> {
    return this.exclusive(async () => {
      if (this.released) throw new ClientClosedError('The client is closed');
      const last = this.pending.at(-1)?.id ?? this.lastMutationID;
      const mutation: PendingMutation = { id: last + 1, name, args, timestamp: Date.now() };
      let draft: MemoryDraft;
      try {
        // The view is never the snapshot itself (see rebase), so committing leaves it alone.
        draft = await this.draft(this.store, mutation, 'optimistic');
      } catch (error) {
        throw toApplicationError(error);
      }
      // Stored before it is pushable: a mutation the server applied is always one a reload
      // finds, and a write that fails leaves no queued mutation, no gap in the ids.
      await this.persist(pendingKey(this.clientID, mutation.id), toStored(mutation));
      this.addKeys(this.dirty, draft.commit());
      queued(mutation);
      this.pending.push(mutation);
      return mutation;
    });
  }

  private addKeys(to: RowKeys, written: readonly DraftWrite[]): void {
    for (const { table, key } of written) {
      const pk = encodePrimaryKey(mustGetTable(this.options.schema, table), key, 'get');
      const keys = to.get(table);
      if (keys) keys.set(pk, key);
      else to.set(table, new Map([[pk, key]]));
    }
  }

  /**
   * Replays the queues (adopted ones first) into `store`, noting what they wrote; `before`,
   * if given, holds each row as it was before the first write to it.
   */
  private async replay(store: MemoryStore, written: RowKeys, before?: MemoryDraft) {
    for (const queue of this.queues()) {
      for (const mutation of queue.pending) {
        let draft: MemoryDraft;
        try {
          draft = await this.draft(store, mutation, 'rebase', queue.clientID);
        } catch {
          continue; // The server decides: its result will settle this mutation.
        }
        const writes = draft.writes();
        if (before) for (const { table, key } of writes) before.hold(table, key);
        draft.commit();
        this.addKeys(written, writes);
      }
    }
  }

  /**
   * view = snapshot + the queues (adopted ones first), replayed in order; a replay that
   * throws is left out. The view is never the snapshot itself. After a reset it starts
   * as a clone of the snapshot (which shares its tables until either writes one);
   * otherwise only the rows where the two may differ are set back to the snapshot's, so a
   * pull costs what it changed and what it replays, not a copy of each table written.
   * That work is done in the view itself, so the replays' queries read plain tables, not
   * a draft laid over them; `before` keeps what it overwrote, so a query that reads the
   * view while a replay awaits sees the view before the pull, never half of it. If the
   * rebase fails half way, `before` puts those rows back: the view is the one before the
   * pull, and the dirty rows (the pull's among them) still cover where it may differ.
   */
  private async rebase() {
    const written: RowKeys = new Map();
    if (this.rebuildView) {
      const view = this.snapshot.clone();
      await this.replay(view, written);
      this.store = view;
      this.rebuildView = false;
      this.dirty = written;
      return;
    }
    const { store } = this;
    const before = store.fork();
    this.before = before;
    try {
      for (const [table, keys] of this.dirty) {
        for (const key of keys.values()) {
          const row = this.snapshot.get(table, key);
          const now = store.get(table, key);
          if (row ? deepEqual(row, now) : !now) continue;
          before.hold(table, key);
          if (row) store.put(table, row);
          else store.delete(table, key);
        }
      }
      await this.replay(store, written, before);
    } catch (error) {
      before.commit();
      throw error;
    } finally {
      this.before = undefined;
    }
    this.dirty = written;
  }

  /**
   * Applies `patch` to the snapshot, in place, noting the rows it touched as dirty. Every
   * row is keyed first, so one the store cannot key fails the pull before anything
   * changed. A `clear` starts a new snapshot (what came before it is gone), and the next
   * rebase rebuilds the view from it.
   */
  private patchSnapshot(patch: readonly PatchOperation[]): void {
    const { schema } = this.options;
    const cleared = patch.reduce((last, op, i) => (op.op === 'clear' ? i : last), -1);
    const ops = patch.slice(cleared + 1).flatMap((op) => {
      if (op.op === 'clear' || !schema.tableInfo.has(op.tableName)) return [];
      const key = op.op === 'put' ? op.value : op.id;
      const pk = encodePrimaryKey(mustGetTable(schema, op.tableName), key, op.op);
      return [{ op, row: { table: op.tableName, pk, key } satisfies PatchedRow }];
    });
    if (cleared >= 0) {
      this.snapshot = createMemoryStore(schema);
      this.rebuildView = true;
    }
    for (const { op } of ops) {
      if (op.op === 'put') this.snapshot.put(op.tableName, op.value);
      else this.snapshot.delete(op.tableName, op.id);
    }
    const rows = ops.map(({ row }) => row);
    if (cleared >= 0) {
      this.buckets.fill(this.snapshot, true);
      return;
    }
    this.buckets.patched(this.snapshot, rows);
    for (const { table, pk, key } of rows) {
      const keys = this.dirty.get(table);
      if (keys) keys.set(pk, key);
      else this.dirty.set(table, new Map([[pk, key]]));
    }
  }

  /**
   * Applies a pull: patches the snapshot, drops the pending mutations (own and adopted) the
   * server has confirmed, adopts closed clients' queues, and replays. Returns what this
   * pull confirmed: the dropped mutations, and closed clients' ones found confirmed when
   * adopting them. Storage failures are swallowed: the confirmations stand in memory.
   */
  applyPull(
    cookie: string,
    patch: readonly PatchOperation[],
    lastMutationIDs: Readonly<Record<string, number>>,
  ): Promise<QueuedMutation[]> {
    return this.exclusive(async () => {
      // A pull that lands after close must not write: another client may own these now.
      if (this.released) return [];
      this.patchSnapshot(patch);
      this.cookie = cookie;
      this.groupLMIDs = { ...this.groupLMIDs, ...lastMutationIDs };
      const confirmed = lastMutationIDs[this.clientID];
      let dropped: PendingMutation[] = [];
      if (confirmed !== undefined && confirmed > this.lastMutationID) {
        this.lastMutationID = confirmed;
        dropped = this.pending.filter((m) => m.id <= confirmed);
        this.pending = this.pending.filter((m) => m.id > confirmed);
      }
      const adopted = this.adopted.confirm(this.groupLMIDs);
      // Adopting reads the storage; if it fails, what was adopted so far is kept and the
      // next pull tries again. This pull's confirmations must be reported all the same.
      const more = await this.adopted.adopt(this.groupLMIDs).catch(() => undefined);
      // A pull that changed nothing (a poke for others' scopes, an interval pull) leaves
      // the view as it is: replaying every pending mutation would give the same rows.
      if (patch.length || dropped.length || adopted.dropped.length || more?.adopted) {
        await this.rebase();
      }
      const group: GroupRecord = {
        clientGroupID: this.clientGroupID,
        cookie,
        lastMutationIDs: this.groupLMIDs,
      };
      // Not awaited: the pull's caller need not wait for the disk. A failed write is
      // swallowed by the write chain too; the next pull's writes repair what they touch.
      this.persistAll(this.buckets.writes(group)).catch(() => {});
      // The confirmations are already in memory: a failed write must not keep them from
      // being reported. A record left behind only makes a reload resend ids the server
      // answers as already processed.
      if (dropped.length) await this.forget(dropped).catch(() => {});
      if (adopted.writes.length) {
        await this.persistAll(adopted.writes).catch(() => {});
        for (const lease of adopted.finished) lease.release();
      }
      return [
        ...(more?.unheard ?? []),
        ...adopted.dropped,
        ...dropped.map((mutation) => ({ clientID: this.clientID, mutation })),
      ];
    });
  }
}
