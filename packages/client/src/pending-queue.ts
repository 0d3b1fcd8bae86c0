import { decodeRich, encodeRich } from '@reprise/shared';
import {
  type ClientRecord,
  type ClientStorage,
  type PendingMutation,
  pendingPrefix,
} from './storage';

/**
 * A client's queue past `confirmed`, from its per-mutation keys and a legacy
 * `record.pending`; `stale` are the keys of mutations already confirmed, and `unheard` the
 * confirmed mutations past the record's own `lastMutationID`: ones the client never saw
 * confirmed (another client's pull did), whose outcome it may not have reported.
 *
 * @example
 * const {pending, stale} = await loadPending(storage, await storage.keys(), record, 3);
 */
export async function loadPending(
  storage: ClientStorage,
  keys: readonly string[],
  record: ClientRecord,
  confirmed: number,
): Promise<{ pending: PendingMutation[]; stale: string[]; unheard: PendingMutation[] }> {
  const byID = new Map<number, PendingMutation>();
  for (const m of record.pending ?? []) byID.set(m.id, m);
  const prefix = pendingPrefix(record.clientID);
  const stale: string[] = [];
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const m = fromStored(await storage.get(key));
    if (m) byID.set(m.id, m);
    if (!m || m.id <= confirmed) stale.push(key);
  }
  const all = [...byID.values()].sort((a, b) => a.id - b.id);
  return {
    pending: all.filter((m) => m.id > confirmed),
    stale,
    unheard: all.filter((m) => m.id > record.lastMutationID && m.id <= confirmed),
  };
}

/** A pending mutation as stored: its args in superjson's envelope, with `rich` set. */
interface StoredMutation extends PendingMutation {
  readonly rich?: true;
}

/**
 * A pending mutation as storage keeps it. The args go through the wire's encoding, since a
 * structured clone (IndexedDB) keeps neither a `Timestamp`'s microseconds nor `JSON_NULL`.
 *
 * @example
 * await storage.set(pendingKey(clientID, m.id), toStored(m));
 */
export function toStored(mutation: PendingMutation): StoredMutation {
  return { ...mutation, args: encodeRich(mutation.args), rich: true };
}

/** The stored mutation back; one stored before `rich` existed holds its args as they were. */
function fromStored(value: unknown): PendingMutation | undefined {
  const stored = value as StoredMutation | undefined;
  if (!stored?.rich) return stored;
  const { rich: _, ...mutation } = stored;
  return { ...mutation, args: decodeRich(stored.args as Parameters<typeof decodeRich>[0]) };
}
