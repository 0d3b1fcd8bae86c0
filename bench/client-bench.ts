import { setImmediate } from 'node:timers/promises';
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
/** Issue 17's targets: mutate p99 with confirming pulls landing, and a rebase of 1,000. */
const MUTATE_P99_TARGET_US = 1000;
const REBASE_TARGET_MS = 20;
const REBASE_TARGET_PENDING = 1000;

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

/** How the "confirmed" rows' pulls run beside the mutate calls. */
type PullMode = 'awaited' | 'in flight';

/**
 * Creates notes one by one (awaiting `client`), confirming them by a pull every
 * `confirmEvery`: awaited between two calls, or started and left running while the calls go
 * on, each call then coming in a task of its own (as a user's input would), so a pull's
 * work lands between or before them.
 */
class Mutations {
  /** The id of the last mutation made; the offline probe was 1. */
  lastID = 1;
  /** The last mutation whose row a pull's reply carried. */
  private sentThrough = 1;
  constructor(
    private readonly client: NotesClient,
    private readonly stub: StubServer,
  ) {}

  async make(
    count: number,
    confirmEvery = Number.POSITIVE_INFINITY,
    mode: PullMode = 'awaited',
  ): Promise<number[]> {
    const times: number[] = [];
    const pulls: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const id = ++this.lastID;
      if (mode === 'in flight') await setImmediate();
      const started = performance.now();
      await this.client.mutate.note.create(localNote(id)).client;
      times.push(performance.now() - started);
      if ((i + 1) % confirmEvery !== 0) continue;
      if (mode === 'awaited') await this.confirm();
      else pulls.push(this.pullConfirming());
    }
    await Promise.all(pulls);
    return times;
  }

  /**
   * A pull that says the server has applied every mutation made so far, with the rows of
   * those no reply has carried yet (a pull asked for while one runs fetches once, after it).
   */
  private pullConfirming(): Promise<void> {
    const lmid = this.lastID;
    this.stub.reply = () => {
      const rows: ReturnType<typeof localNote>[] = [];
      for (let id = this.sentThrough + 1; id <= lmid; id++) rows.push(localNote(id));
      this.sentThrough = lmid;
      return changeReply(lmid, { [this.client.clientID]: lmid }, rows);
    };
    return this.client.pull();
  }

  /** Confirms every mutation made so far, and checks that none is left pending. */
  async confirm(): Promise<void> {
    await this.pullConfirming();
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

interface LatencyRun {
  readonly times: number[];
  /** The calls made right after a confirming pull (the first call of each run too). */
  readonly afterPull: number[];
}

/** One fresh client: 200 warm-up calls and a confirm, then `calls` timed ones. */
async function latencyRun(
  calls: number,
  confirmEvery: number,
  mode: PullMode,
): Promise<LatencyRun> {
  const { client, mutations } = await openOffline(LOCAL_ROWS);
  await mutations.make(200);
  await mutations.confirm();
  const times = await mutations.make(calls, confirmEvery, mode);
  if (Number.isFinite(confirmEvery)) await mutations.confirm();
  const local = (await client.query.note.run()).length;
  if (local !== LOCAL_ROWS + 200 + calls) throw new Error(`${local} local rows`);
  await closeClient(client);
  const afterPull = times.filter((_, i) => Number.isFinite(confirmEvery) && i % confirmEvery === 0);
  return { times, afterPull };
}

/**
 * Each row: `reps` runs on fresh clients, each run's p50, p99 and max, and their medians.
 * The target (issue 17) is on the rows where pulls confirm the queue every 50 calls.
 */
async function mutateLatency(
  calls: number,
  reps: number,
  progress: Progress,
  missed: string[],
): Promise<string[][]> {
  const rows: string[][] = [];
  for (const [label, confirmEvery, mode] of [
    [`offline: queue grows 0 → ${calls}`, Number.POSITIVE_INFINITY, 'awaited'],
    [`queue confirmed every ${CONFIRM_EVERY}`, CONFIRM_EVERY, 'awaited'],
    [`confirmed every ${CONFIRM_EVERY}, pull in flight`, CONFIRM_EVERY, 'in flight'],
  ] as const) {
    const runs: LatencyRun[] = [];
    for (let rep = 0; rep < reps; rep++) {
      progress(`client: mutate latency, ${label}, run ${rep + 1}/${reps}`);
      runs.push(await latencyRun(calls, confirmEvery, mode));
    }
    const p50 = median(runs.map((r) => percentile(r.times, 50)));
    const p99s = runs.map((r) => percentile(r.times, 99));
    const p99 = median(p99s);
    const afterPull = runs.flatMap((r) => r.afterPull);
    const targeted = Number.isFinite(confirmEvery);
    const met = p99 * 1000 < MUTATE_P99_TARGET_US;
    if (targeted && !met) missed.push(`mutate p99 ${us(p99)} µs with ${label}`);
    rows.push([
      label,
      String(calls),
      us(p50),
      us(p99),
      p99s.map(us).join(' '),
      us(median(runs.map((r) => Math.max(...r.times)))),
      afterPull.length ? us(percentile(afterPull, 50)) : '-',
      targeted ? `< ${MUTATE_P99_TARGET_US}` : '-',
      targeted ? (met ? 'yes' : 'NO (missed)') : '-',
    ]);
  }
  return rows;
}

/**
 * One client per pending count, all open at once; their pulls take turns (the order
 * rotating each round), so a change in the machine's load lands on every count alike.
 */
async function rebaseTimes(
  pulls: number,
  progress: Progress,
  missed: string[],
): Promise<string[][]> {
  const clients: Array<Awaited<ReturnType<typeof openOffline>> & { pending: number }> = [];
  for (const pending of REBASE_PENDING) {
    progress(`client: a client with ${pending} pending`);
    const opened = await openOffline(LOCAL_ROWS);
    await opened.mutations.make(pending);
    clients.push({ ...opened, pending });
  }
  progress(`client: ${pulls} pulls + rebase each, taking turns`);
  const runs = clients.map(() => [] as number[]);
  for (let n = 0; n <= pulls; n++) {
    for (let k = 0; k < clients.length; k++) {
      const i = (k + n) % clients.length;
      const { client, stub } = clients[i]!;
      stub.reply = () => changeReply(1000 + n);
      const started = performance.now();
      await client.pull();
      if (n > 0) runs[i]!.push(performance.now() - started); // the first round warms up
    }
  }
  const results: Array<{ pending: number; runs: number[] }> = [];
  for (const [i, { client, pending }] of clients.entries()) {
    if (client.pending !== pending) throw new Error(`${client.pending} pending, not ${pending}`);
    const renamed = await client.query.note.where('id', 'note-000001').run();
    if (!renamed[0]?.title.startsWith('Renamed')) throw new Error('the pull was not applied');
    await closeClient(client);
    results.push({ pending, runs: runs[i]! });
  }
  const base = median(results[0]!.runs);
  return results.map(({ pending, runs }) => {
    const rebase = median(runs) - base;
    const targeted = pending === REBASE_TARGET_PENDING;
    const met = rebase < REBASE_TARGET_MS;
    if (targeted && !met) missed.push(`rebase of ${pending} pending ${ms(rebase, 2)} ms`);
    return [
      String(pending),
      ms(median(runs), 2),
      runs.map((r) => ms(r, 1)).join(' '),
      pending ? ms(rebase, 2) : '-',
      pending ? us(rebase / pending) : '-',
      targeted ? `< ${REBASE_TARGET_MS}` : '-',
      targeted ? (met ? 'yes' : 'NO (missed)') : '-',
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
  const missed: string[] = [];
  try {
    const latency = await mutateLatency(calls, reps, progress, missed);
    const rebase = await rebaseTimes(4 * reps + 1, progress, missed);
    const memory = await memoryPerRow(reps, progress);
    console.log(
      `\nClient: optimistic mutate (await client.mutate.note.create(…).client), ${LOCAL_ROWS} rows pulled first, ${reps} runs (median)\n`,
    );
    console.log(
      renderTable(
        [
          'queue',
          'calls',
          'p50 µs',
          'p99 µs',
          'p99 per run',
          'max µs',
          'p50 after a pull',
          'target p99',
          'met?',
        ],
        latency,
      ),
    );
    console.log(
      `\nClient: pull of one row from another client, ${LOCAL_ROWS} rows, N pending (rebase = pull − pull with 0 pending)\n`,
    );
    console.log(
      renderTable(
        ['pending', 'pull ms', 'runs ms', 'rebase ms', 'µs/pending', 'target ms', 'met?'],
        rebase,
      ),
    );
    console.log(`\nClient: heap after a reset pull of ${MEMORY_ROWS} rows (after GC)\n`);
    console.log(renderTable(['held by', 'bytes/row', 'MB/100k', 'runs MB'], memory));
    console.log(
      missed.length
        ? `\nCLIENT TARGETS MISSED (${missed.length}):\n${missed.map((m) => `  - ${m}`).join('\n')}`
        : '\nClient targets met.',
    );
    return false;
  } catch (error) {
    console.log(`\nClient bench failed: ${error instanceof Error ? error.stack : String(error)}`);
    return true;
  } finally {
    await Promise.all([...open].map(closeClient));
  }
}
