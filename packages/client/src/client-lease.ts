import type { ClientStorage } from './storage';

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
  const locks = webLocks();
  if (!locks) return { release: () => held.delete(clientID) };

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
      held.delete(clientID);
      unlock?.();
    },
  };
}
