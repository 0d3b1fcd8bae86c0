import type { ClientRecord, ClientStorage } from './storage';

// A stored client is driven by one live `createClient` at a time, or two would push
// different mutations under the same ids. Within one JavaScript realm a set says which are
// taken; across browser tabs, which share IndexedDB but not memory, a Web Lock named after
// the client does, held until `release` or until the tab goes away (a reload frees it).

export interface ClientLease {
  release(): void;
}

const taken = new WeakMap<ClientStorage, Set<string>>();

interface LockRequester {
  request(
    name: string,
    options: { ifAvailable: true },
    callback: (lock: unknown) => Promise<void> | undefined,
  ): Promise<unknown>;
}

function webLocks(): LockRequester | undefined {
  return (globalThis as { navigator?: { locks?: LockRequester } }).navigator?.locks;
}

/**
 * Takes `clientID` of `storage` for this client, or answers undefined when a live client
 * (in this realm, or in another tab) holds it.
 *
 * @example
 * const lease = await leaseClient(storage, record.clientID);
 * if (lease) resume(record); else fork();
 */
export async function leaseClient(
  storage: ClientStorage,
  clientID: string,
): Promise<ClientLease | undefined> {
  const held = taken.get(storage) ?? new Set<string>();
  taken.set(storage, held);
  if (held.has(clientID)) return undefined;
  held.add(clientID);
  // Releasing twice (a client closed twice) must not free a lease another client took since.
  let released = false;
  const free = () => {
    if (!released) held.delete(clientID);
    released = true;
  };
  const locks = webLocks();
  if (!locks) return { release: free };

  let unlock: (() => void) | undefined;
  const granted = await new Promise<boolean>((resolve, reject) => {
    locks
      .request(`reprise-client-${clientID}`, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        if (lock === null) return undefined;
        return new Promise<void>((resolveLock) => {
          unlock = resolveLock;
        });
      })
      .catch(reject);
  });
  if (!granted) {
    held.delete(clientID);
    return undefined;
  }
  return {
    release() {
      free();
      unlock?.();
    },
  };
}

/** A random id, for a new client or client group. */
export function newID(): string {
  return globalThis.crypto.randomUUID().replaceAll('-', '');
}

/**
 * Leases the first client of the group in `keys` that no live client holds (a reload
 * resumes it), or a new client when all are held (a second tab).
 *
 * @example
 * const {record, lease} = await claimClientRecord(storage, await storage.keys(), groupID);
 */
export async function claimClientRecord(
  storage: ClientStorage,
  keys: readonly string[],
  clientGroupID: string,
): Promise<{ record: ClientRecord; lease: ClientLease }> {
  for (const key of keys) {
    if (!key.startsWith('client/')) continue;
    // Gone since the listing (an adopted client another tab finished with): skip it.
    const record = (await storage.get(key)) as ClientRecord | undefined;
    if (record?.clientGroupID !== clientGroupID) continue;
    const lease = await leaseClient(storage, record.clientID);
    if (lease) return { record, lease };
  }
  const record: ClientRecord = { clientID: newID(), clientGroupID, lastMutationID: 0 };
  const lease = await leaseClient(storage, record.clientID);
  if (!lease) throw new Error(`A new client id is already taken: ${record.clientID}`);
  return { record, lease };
}
