import type { ClientStorage } from './storage';

// A ClientStorage over one IndexedDB object store. IndexedDB structured-clones values, so
// Dates and BigInts in rows and args come back as they went in.

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Opens (creating if needed) the database `name` and stores the client's state in it.
 * Uses the global `indexedDB` unless one is given (tests pass fake-indexeddb's).
 *
 * @example
 * const client = createClient({...options, storage: createIndexedDBStorage('my-app')});
 */
export function createIndexedDBStorage(
  name = 'reprise',
  factory: IDBFactory | undefined = globalThis.indexedDB,
): ClientStorage {
  if (!factory) throw new TypeError('IndexedDB is not available here; use storage: "memory"');
  const STORE = 'kv';
  const open = factory.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  const db = done(open);
  const run = async <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>) => {
    const tx = (await db).transaction(STORE, mode);
    // Resolve writes only once they are durable, not merely queued.
    const complete = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    const result = await done(fn(tx.objectStore(STORE)));
    if (mode === 'readwrite') await complete;
    else complete.catch(() => {});
    return result;
  };
  return {
    get: (key) => run('readonly', (s) => s.get(key)),
    set: async (key, value) => {
      await run('readwrite', (s) => s.put(value, key));
    },
    delete: async (key) => {
      await run('readwrite', (s) => s.delete(key));
    },
    keys: async () => (await run('readonly', (s) => s.getAllKeys())).map(String),
    // One transaction: IndexedDB commits all of it or none.
    batch: async (writes) => {
      const tx = (await db).transaction(STORE, 'readwrite');
      const store = tx.objectStore(STORE);
      for (const [key, value] of writes) {
        if (value === undefined) store.delete(key);
        else store.put(value, key);
      }
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    },
  };
}
