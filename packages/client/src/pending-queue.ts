import {
  type ClientRecord,
  type ClientStorage,
  type PendingMutation,
  pendingPrefix,
} from './storage';

/**
 * A client's queue past `confirmed`, from its per-mutation keys and a legacy
 * `record.pending`; `stale` are the keys of mutations already confirmed.
 *
 * @example
 * const {pending, stale} = await loadPending(storage, await storage.keys(), record, 3);
 */
export async function loadPending(
  storage: ClientStorage,
  keys: readonly string[],
  record: ClientRecord,
  confirmed: number,
): Promise<{ pending: PendingMutation[]; stale: string[] }> {
  const byID = new Map<number, PendingMutation>();
  for (const m of record.pending ?? []) byID.set(m.id, m);
  const prefix = pendingPrefix(record.clientID);
  const stale: string[] = [];
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const m = (await storage.get(key)) as PendingMutation | undefined;
    if (m && m.id > confirmed) byID.set(m.id, m);
    else stale.push(key);
  }
  const pending = [...byID.values()].filter((m) => m.id > confirmed);
  return { pending: pending.sort((a, b) => a.id - b.id), stale };
}
