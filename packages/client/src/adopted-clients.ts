import { type ClientLease, leaseClient } from './client-lease';
import { loadPending } from './pending-queue';
import {
  type ClientRecord,
  type ClientStorage,
  clientKey,
  type PendingMutation,
  pendingKey,
  type QueuedMutation,
  type StorageWrite,
} from './storage';

// A tab that closes with unpushed mutations leaves them in storage, and while another tab
// of the group stays open no new client resumes them. So a live client adopts them: it
// holds the closed client's lease, replays its queue in the view, pushes it under the
// closed client's own id and mutation ids (the server deduplicates per client, so a push
// the closed tab left in flight is not applied twice), and forgets it once a pull confirms.

/** One adopted client's queue past the id the server confirmed. */
export interface AdoptedQueue {
  readonly clientID: string;
  readonly confirmed: number;
  readonly pending: readonly PendingMutation[];
}

interface Adopted {
  readonly clientID: string;
  confirmed: number;
  pending: PendingMutation[];
  stale: string[];
  readonly lease: ClientLease;
}

/** What a pull confirmed of the adopted queues, and the writes that forget it. */
export interface AdoptedConfirmation {
  readonly dropped: QueuedMutation[];
  /** Deletes the confirmed keys and, for a client with nothing left, its record last. */
  readonly writes: StorageWrite[];
  /** The leases to free once `writes` are stored. */
  readonly finished: ClientLease[];
}

export class AdoptedClients {
  private readonly byID = new Map<string, Adopted>();

  constructor(
    private readonly storage: ClientStorage,
    private readonly clientGroupID: string,
  ) {}

  /** The adopted queues, in the order they were adopted. */
  list(): AdoptedQueue[] {
    return [...this.byID.values()];
  }

  /** How many adopted mutations wait for the server's confirmation. */
  get count(): number {
    let count = 0;
    for (const adopted of this.byID.values()) count += adopted.pending.length;
    return count;
  }

  /**
   * Adopts every client of the group that no live client holds and that has mutations past
   * its confirmed id (the record's, or `groupLMIDs`' when newer). Returns whether it adopted
   * any, and the `unheard` mutations: confirmed by `groupLMIDs` while their closed client
   * never heard it, so the adopter reports their outcome.
   */
  async adopt(
    groupLMIDs: Readonly<Record<string, number>>,
  ): Promise<{ adopted: boolean; unheard: QueuedMutation[] }> {
    const { storage } = this;
    let adopted = false;
    const unheard: QueuedMutation[] = [];
    const listed = await storage.keys();
    const queued = new Set(
      listed.filter((key) => key.startsWith('pending/')).map((key) => key.split('/')[1]),
    );
    for (const key of listed) {
      // Only clients with queued mutations are worth a read and a Web Lock request. (A
      // record of the old shape, its queue inside, is moved to keys when a client
      // resumes it; adoption leaves it to that.)
      if (!key.startsWith('client/') || !queued.has(key.slice('client/'.length))) continue;
      const seen = (await storage.get(key)) as ClientRecord | undefined;
      if (seen?.clientGroupID !== this.clientGroupID || this.byID.has(seen.clientID)) continue;
      const lease = await leaseClient(storage, seen.clientID);
      if (!lease) continue;
      // Its owner may have written more before it let go: read it (and list its queue)
      // again under the lease.
      const record = (await storage.get(key)) as ClientRecord | undefined;
      if (!record) {
        lease.release();
        continue;
      }
      const confirmed = Math.max(record.lastMutationID, groupLMIDs[record.clientID] ?? 0);
      const queue = await loadPending(storage, await storage.keys(), record, confirmed);
      const { pending, stale } = queue;
      for (const mutation of queue.unheard) unheard.push({ clientID: record.clientID, mutation });
      if (pending.length === 0) {
        // A delete that fails leaves keys a later adoption finds confirmed and drops.
        try {
          // The record learns the confirmed id before the keys go. The group's record may
          // not hold it yet (its write can still be on its way), and a client that resumes
          // this one reads both: with neither, it would hand the confirmed ids out again,
          // and the server would answer the new mutations "already processed".
          if (stale.length > 0 && confirmed > record.lastMutationID) {
            await storage.set(key, { ...record, lastMutationID: confirmed });
          }
          for (const staleKey of stale) await storage.delete(staleKey);
        } finally {
          lease.release();
        }
        continue;
      }
      this.byID.set(record.clientID, {
        clientID: record.clientID,
        confirmed,
        pending,
        stale,
        lease,
      });
      adopted = true;
    }
    return { adopted, unheard };
  }

  /** Drops the adopted mutations `lmids` confirm; a client left with none is let go. */
  confirm(lmids: Readonly<Record<string, number>>): AdoptedConfirmation {
    const result: AdoptedConfirmation = { dropped: [], writes: [], finished: [] };
    for (const adopted of this.byID.values()) {
      const confirmed = lmids[adopted.clientID];
      if (confirmed === undefined || confirmed <= adopted.confirmed) continue;
      adopted.confirmed = confirmed;
      const { clientID } = adopted;
      for (const mutation of adopted.pending) {
        if (mutation.id > confirmed) continue;
        result.dropped.push({ clientID, mutation });
        result.writes.push([pendingKey(clientID, mutation.id), undefined]);
      }
      adopted.pending = adopted.pending.filter((m) => m.id > confirmed);
      if (adopted.pending.length) {
        // Its record learns the confirmed id first, as in `adopt`, for whoever resumes it.
        const record: ClientRecord = {
          clientID,
          clientGroupID: this.clientGroupID,
          lastMutationID: confirmed,
        };
        result.writes.unshift([clientKey(clientID), record]);
        continue;
      }
      // The keys go before the record: a crash between leaves a record, never lost keys.
      for (const key of adopted.stale) result.writes.push([key, undefined]);
      result.writes.push([clientKey(clientID), undefined]);
      result.finished.push(adopted.lease);
      this.byID.delete(clientID);
    }
    return result;
  }

  /** Lets every adopted client go, so a later client resumes or adopts it. */
  release(): void {
    for (const adopted of this.byID.values()) adopted.lease.release();
    this.byID.clear();
  }
}
