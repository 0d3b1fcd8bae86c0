import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createMemoryStorage } from '@reprise/client';
import { PULLER } from './changes-app';
import {
  changeReply,
  createStubServer,
  goOffline,
  type NotesClient,
  openStubClient,
  resetReply,
  type StubServer,
} from './client-stub';
import { median, renderTable } from './report';

// `npm run bench -- client`: what the client costs on its own. Optimistic mutate latency
// over 10k local rows, the rebase a pull triggers under N pending mutations, and the heap a
// 100k-row local store takes. The server is a stub (client-stub.ts): no database runs.

type Progress = (message: string) => void;

const LOCAL_ROWS = 10_000;
const MEMORY_ROWS = 100_000;
const REBASE_PENDING = [0, 10, 100, 1000] as const;
/** Mutations confirmed by a pull this often in the "online" latency row. */
const CONFIRM_EVERY = 50;

const us = (ms: number) => (ms * 1000).toFixed(0);
const ms = (value: number, digits = 1) => value.toFixed(digits);

/** Clients not closed yet: a failed run closes them, or their parked retries keep node up. */
const open = new Set<NotesClient>();

async function closeClient(client: NotesClient): Promise<void> {
  open.delete(client);
  await client.close();
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A full GC: `--expose-gc` if given, else turned on at run time. */
function exposeGC(): () => void {
  if (globalThis.gc) return globalThis.gc;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const localNote = (id: number) => ({ id: `local-${id}`, ownerID: PULLER, title: `L${id}` });

/** Creates notes one by one (awaiting `client`), confirming them by a pull every `confirmEvery`. */
class Mutations {
  /** The id of the last mutation made; the offline probe was 1. */
  lastID = 1;
  private confirmedThrough = 1;
  constructor(
    private readonly client: NotesClient,
    private readonly stub: StubServer,
  ) {}

  async make(count: number, confirmEvery = Number.POSITIVE_INFINITY): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = ++this.lastID;
      const started = performance.now();
      await this.client.mutate.note.create(localNote(id)).client;
      times.push(performance.now() - started);
      if ((i + 1) % confirmEvery === 0) await this.confirm();
    }
    return times;
  }

  /** A pull that says the server has applied every mutation made so far, with their rows. */
  async confirm(): Promise<void> {
    const lmid = this.lastID;
    const rows: ReturnType<typeof localNote>[] = [];
    for (let id = this.confirmedThrough + 1; id <= lmid; id++) rows.push(localNote(id));
    this.confirmedThrough = lmid;
    this.stub.reply = () => changeReply(lmid, { [this.client.clientID]: lmid }, rows);
    await this.client.pull();
    if (this.client.pending !== 0) throw new Error(`${this.client.pending} still pending`);
  }
}

async function openOffline(rows: number) {
  const stub = createStubServer(() => resetReply(rows));
  const client = await openStubClient(stub);
  open.add(client);
  await goOffline(client, stub);
  const count = (await client.query.note.run()).length;
  if (count !== rows) throw new Error(`expected ${rows} local rows, found ${count}`);
  return { stub, client, mutations: new Mutations(client, stub) };
}

async function mutateLatency(calls: number, progress: Progress): Promise<string[][]> {
  const rows: string[][] = [];
  for (const [label, confirmEvery] of [
    [`offline: queue grows 0 → ${calls}`, Number.POSITIVE_INFINITY],
    [`queue confirmed every ${CONFIRM_EVERY}`, CONFIRM_EVERY],
  ] as const) {
    progress(`client: mutate latency, ${label}`);
    const { client, mutations } = await openOffline(LOCAL_ROWS);
    await mutations.make(200);
    await mutations.confirm();
    const times = await mutations.make(calls, confirmEvery);
    const local = (await client.query.note.run()).length;
    if (local !== LOCAL_ROWS + 200 + calls) throw new Error(`${local} local rows`);
    await closeClient(client);
    const total = times.reduce((sum, t) => sum + t, 0);
    rows.push([
      label,
      String(calls),
      us(percentile(times, 50)),
      us(percentile(times, 99)),
      us(Math.max(...times)),
      ms(total, 0),
    ]);
  }
  return rows;
}

async function rebaseTimes(pulls: number, progress: Progress): Promise<string[][]> {
  const results: Array<{ pending: number; runs: number[] }> = [];
  for (const pending of REBASE_PENDING) {
    progress(`client: pull + rebase with ${pending} pending`);
    const { client, stub, mutations } = await openOffline(LOCAL_ROWS);
    await mutations.make(pending);
    const runs: number[] = [];
    for (let n = 0; n <= pulls; n++) {
      stub.reply = () => changeReply(1000 + n);
      const started = performance.now();
      await client.pull();
      if (n > 0) runs.push(performance.now() - started); // the first one warms up
    }
    if (client.pending !== pending) throw new Error(`${client.pending} pending, not ${pending}`);
    const renamed = await client.query.note.where('id', 'note-000001').run();
    if (!renamed[0]?.title.startsWith('Renamed')) throw new Error('the pull was not applied');
    await closeClient(client);
    results.push({ pending, runs });
  }
  const base = median(results[0]!.runs);
  return results.map(({ pending, runs }) => {
    const rebase = median(runs) - base;
    return [
      String(pending),
      ms(median(runs), 2),
      runs.map((r) => ms(r, 1)).join(' '),
      pending ? ms(rebase, 2) : '-',
      pending ? us(rebase / pending) : '-',
    ];
  });
}

/**
 * The heap a client holds after a reset pull of MEMORY_ROWS rows with the default memory
 * storage, then again with the storage's copy of the snapshot (group record and row
 * buckets) deleted, which leaves the client's own store. Its own frame, so the last run's client is
 * unreachable when the next one measures `before`.
 */
async function loadedHeap(heap: () => number): Promise<{ total: number; store: number }> {
  const before = heap();
  const storage = createMemoryStorage();
  const stub = createStubServer(() => resetReply(MEMORY_ROWS));
  const client = await openStubClient(stub, storage);
  open.add(client);
  stub.reply = () => changeReply(0);
  const total = heap() - before;
  for (const key of await storage.keys()) {
    if (key.startsWith('group/') || key.startsWith('rows/')) await storage.delete(key);
  }
  const store = heap() - before;
  const count = (await client.query.note.run()).length;
  if (count !== MEMORY_ROWS) throw new Error(`expected ${MEMORY_ROWS} rows, found ${count}`);
  await closeClient(client);
  return { total, store };
}

async function memoryPerRow(reps: number, progress: Progress): Promise<string[][]> {
  const gc = exposeGC();
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  progress(`client: heap for ${MEMORY_ROWS} rows`);
  const runs: Array<{ total: number; store: number }> = [];
  for (let rep = 0; rep < reps; rep++) runs.push(await loadedHeap(heap));
  const row = (label: string, deltas: number[]) => {
    const perRow = median(deltas) / MEMORY_ROWS;
    return [
      label,
      perRow.toFixed(0),
      ((perRow * 100_000) / 2 ** 20).toFixed(1),
      deltas.map((d) => (d / 2 ** 20).toFixed(1)).join(' '),
    ];
  };
  return [
    row(
      'client + memory storage (default)',
      runs.map((r) => r.total),
    ),
    row(
      'client store alone (stored snapshot deleted)',
      runs.map((r) => r.store),
    ),
  ];
}

/** Runs the section and prints its tables; true when it failed. */
export async function runClientBench(options: {
  reps: number;
  scale: number;
  progress: Progress;
}): Promise<boolean> {
  const { reps, scale, progress } = options;
  const calls = Math.max(100, Math.round(1000 * scale));
  try {
    const latency = await mutateLatency(calls, progress);
    const rebase = await rebaseTimes(2 * reps + 1, progress);
    const memory = await memoryPerRow(reps, progress);
    console.log(
      `\nClient: optimistic mutate (await client.mutate.note.create(…).client), ${LOCAL_ROWS} rows pulled first\n`,
    );
    console.log(renderTable(['queue', 'calls', 'p50 µs', 'p99 µs', 'max µs', 'total ms'], latency));
    console.log(
      `\nClient: pull of one row from another client, ${LOCAL_ROWS} rows, N pending (rebase = pull − pull with 0 pending)\n`,
    );
    console.log(renderTable(['pending', 'pull ms', 'runs ms', 'rebase ms', 'µs/pending'], rebase));
    console.log(`\nClient: heap after a reset pull of ${MEMORY_ROWS} rows (after GC)\n`);
    console.log(renderTable(['held by', 'bytes/row', 'MB/100k', 'runs MB'], memory));
    return false;
  } catch (error) {
    console.log(`\nClient bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    return true;
  } finally {
    await Promise.all([...open].map(closeClient));
  }
}
