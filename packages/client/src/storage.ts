// Where a client keeps its state between page loads: a tiny async key-value contract that
// memory, IndexedDB and app-provided stores all implement. Values are structured-clone
// data (Dates and BigInts included), never functions.

/**
 * A custom store for `createClient({storage})`. Implementations must keep values as a
 * structured clone would (IndexedDB does), and `set` must be durable once it resolves.
 *
 * @example
 * const map = new Map<string, unknown>();
 * const storage: ClientStorage = {
 *   get: async (key) => structuredClone(map.get(key)),
 *   set: async (key, value) => void map.set(key, structuredClone(value)),
 *   delete: async (key) => void map.delete(key),
 *   keys: async () => [...map.keys()],
 * };
 */
export interface ClientStorage {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  keys(): Promise<string[]>;
  /**
   * Optional: applies the writes (a value of `undefined` deletes the key) all or none.
   * Without it the client writes them one by one, in order, and a crash part way leaves
   * the snapshot newer than its cookie until the next pull repairs it.
   */
  batch?(writes: readonly StorageWrite[]): Promise<void>;
}

/** One write of a batch: a key and its new value, `undefined` to delete it. */
export type StorageWrite = readonly [key: string, value: unknown];

/** One queued mutation, as persisted and as pushed. */
export interface PendingMutation {
  readonly id: number;
  readonly name: string;
  readonly args: unknown;
  readonly timestamp: number;
}

/** A queued mutation with the client it belongs to: this one, or one it adopted. */
export interface QueuedMutation {
  readonly clientID: string;
  readonly mutation: PendingMutation;
}

/**
 * The server state a client group last pulled: its cookie and the last mutation id of each
 * of its clients. Its rows are stored in buckets (persisted-snapshot.ts); `rows` is read
 * from records written before that.
 */
export interface GroupRecord {
  readonly clientGroupID: string;
  readonly cookie: string | null;
  readonly lastMutationIDs?: Readonly<Record<string, number>>;
  /** Each table's bucket count (persisted-snapshot.ts); 64 for a table not listed. */
  readonly buckets?: Readonly<Record<string, number>>;
  readonly rows?: Readonly<Record<string, readonly Record<string, unknown>[]>>;
}

/**
 * One client (tab) of a group: its id and its confirmed mutation id. Its queue is stored
 * one mutation per key (`pendingKey`), so queueing one costs one small write; `pending`
 * is read too, from records written before that.
 */
export interface ClientRecord {
  readonly clientID: string;
  readonly clientGroupID: string;
  readonly lastMutationID: number;
  readonly pending?: readonly PendingMutation[];
}

/**
 * A store that lives as long as the object does: create one and pass it to several
 * `createClient` calls to simulate a reload or a second tab.
 *
 * @example
 * const storage = createMemoryStorage();
 * const first = createClient({...options, storage});
 * await first.close();
 * const reloaded = createClient({...options, storage}); // same clientID, queue and rows
 */
export function createMemoryStorage(): ClientStorage {
  const map = new Map<string, unknown>();
  return {
    get: async (key) => structuredClone(map.get(key)),
    set: async (key, value) => {
      map.set(key, structuredClone(value));
    },
    delete: async (key) => {
      map.delete(key);
    },
    keys: async () => [...map.keys()],
    batch: async (writes) => {
      for (const [key, value] of writes) {
        if (value === undefined) map.delete(key);
        else map.set(key, structuredClone(value));
      }
    },
  };
}

export const groupKey = (clientGroupID: string) => `group/${clientGroupID}`;
export const clientKey = (clientID: string) => `client/${clientID}`;
/** The prefix of one client's queued mutations' keys. */
export const pendingPrefix = (clientID: string) => `pending/${clientID}/`;
export const pendingKey = (clientID: string, id: number) => `${pendingPrefix(clientID)}${id}`;
