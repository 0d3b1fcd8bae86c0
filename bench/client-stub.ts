import { type Client, type ClientStorage, createClient } from '@reprise/client';
import type { PullResponse } from '@reprise/shared';
import { noteMutators, notesSchema, PULLER } from './changes-app';

// The client section's server: a `fetch` that answers pulls with a reply the bench sets and
// fails every push as a network error, so mutations stay pending and the retry is parked
// for an hour. Nothing runs a database: the bench times the client, not the handlers.

export type NotesClient = Client<typeof notesSchema, typeof noteMutators>;

export interface StubServer {
  readonly fetch: typeof fetch;
  /** What the next pull gets. */
  reply: () => PullResponse;
  pulls: number;
  pushes: number;
}

export function createStubServer(reply: () => PullResponse): StubServer {
  const stub: StubServer = {
    reply,
    pulls: 0,
    pushes: 0,
    fetch: async (input) => {
      if (String(input).endsWith('/mutate')) {
        stub.pushes++;
        throw new TypeError('fetch failed: server unreachable');
      }
      stub.pulls++;
      return new Response(JSON.stringify(stub.reply()), {
        headers: { 'content-type': 'application/json' },
      });
    },
  };
  return stub;
}

/** The puller's `i`-th server row; the title is ~25 characters, like a short note. */
export const serverNote = (i: number) => ({
  id: `note-${String(i).padStart(6, '0')}`,
  ownerID: PULLER,
  title: `Server note number ${i}`,
});

/** A reset pull that gives the client `rows` notes. */
export function resetReply(rows: number): PullResponse {
  const patch: PullResponse['patch'] = [{ op: 'clear' }];
  for (let i = 1; i <= rows; i++)
    patch.push({ op: 'put', tableName: 'note', value: serverNote(i) });
  return { cookie: 'c0', lastMutationIDChanges: {}, patch, mutationResults: [] };
}

/**
 * Another client's rename of one server row. `confirm` sets the group's LMIDs, and `rows`
 * are the rows the confirmed mutations wrote, as the server would send them.
 */
export function changeReply(
  n: number,
  confirm: Record<string, number> = {},
  rows: readonly Record<string, unknown>[] = [],
): PullResponse {
  const value = { ...serverNote(1 + (n % 100)), title: `Renamed by another client ${n}` };
  const patch: PullResponse['patch'] = [{ op: 'put', tableName: 'note', value }];
  for (const row of rows) patch.push({ op: 'put', tableName: 'note', value: row });
  return { cookie: `c${n}`, lastMutationIDChanges: confirm, patch, mutationResults: [] };
}

/** A client of the stub that has applied its first pull (`stub.reply` at the time). */
export async function openStubClient(
  stub: StubServer,
  storage?: ClientStorage,
): Promise<NotesClient> {
  const client = await createClient({
    schema: notesSchema,
    mutators: noteMutators,
    server: 'http://bench.local/api',
    auth: `Bearer ${PULLER}`,
    userID: PULLER,
    fetch: stub.fetch,
    poke: false,
    pullIntervalMs: 0,
    backoff: { baseMs: 3_600_000, maxMs: 3_600_000 },
    ...(storage ? { storage } : {}),
  });
  await client.idle();
  return client;
}

/**
 * Makes the client's first push fail, so a retry is parked for an hour: from then on
 * mutations queue and `client.pull()` pulls without pushing. The probe mutation is then
 * confirmed by a pull, so the queue starts empty.
 */
export async function goOffline(client: NotesClient, stub: StubServer): Promise<void> {
  await client.mutate.note.create({ id: 'offline-probe', ownerID: PULLER, title: 'probe' }).client;
  while (stub.pushes === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  if (client.online) throw new Error('the client should be offline after a failed push');
  stub.reply = () => changeReply(0, { [client.clientID]: 1 });
  await client.pull();
  if (client.pending !== 0) throw new Error(`${client.pending} mutations still pending`);
}
