import { createChangeStreams, type Database, silentLogger } from '@reprise/server';
import { notesSchema } from './changes-app';
import { type NoteScript, runNoteScript } from './changes-workload';
import type { RunResult } from './workload';

// Change streams consuming the changelog: a named stream draining changes written before it
// was opened again, and a live subscription keeping up with pushes as they commit.

const open = (db: Database<any>) =>
  createChangeStreams({ db, schema: notesSchema, logger: silentLogger });

/**
 * Creates named streams at the changelog's position now and lets go of them, so each can
 * later be opened to drain what was written in between.
 */
export async function markStreams(db: Database<any>, names: readonly string[]): Promise<void> {
  const changes = open(db);
  try {
    for (const name of names) await (await changes.stream({ name })).stop();
  } finally {
    await changes.close();
  }
}

/** One drain: events read, total time (open to stored position), and time to the first. */
export interface StreamRun {
  readonly events: number;
  readonly ms: number;
  readonly firstMs: number;
}

/**
 * Opens the named stream and reads the `expected` events, each `next()` acknowledging the
 * one before; with `ackEach`, also `await ack()` after every event, which stores the position
 * each time, and stops after `limit` events. Ends with `ack()`, so the time includes storing
 * the final position. The events must come in id order and be the creates and updates
 * expected.
 */
export async function drainStream(
  db: Database<any>,
  name: string,
  expected: { readonly creates: number; readonly updates: number },
  options: { readonly ackEach: boolean; readonly limit?: number },
): Promise<StreamRun> {
  const { ackEach } = options;
  const changes = open(db);
  try {
    const started = performance.now();
    const stream = await changes.stream({ name, table: 'note' });
    const all = expected.creates + expected.updates;
    const total = Math.min(all, options.limit ?? all);
    const seen = { creates: 0, updates: 0 };
    let firstMs = 0;
    const seenIDs = new Set<string>();
    while (seen.creates + seen.updates < total) {
      const result = await stream.next();
      if (result.done) throw new Error(`stream ${name} ended after ${JSON.stringify(seen)}`);
      const event = result.value;
      if (firstMs === 0) firstMs = performance.now() - started;
      if (seenIDs.has(event.id)) throw new Error(`stream ${name}: event ${event.id} twice`);
      seenIDs.add(event.id);
      if (event.action === 'create') seen.creates++;
      else if (event.action === 'update') seen.updates++;
      else throw new Error(`stream ${name}: unexpected ${event.action}`);
      if (ackEach) await stream.ack();
    }
    await stream.ack();
    const ms = performance.now() - started;
    await stream.stop();
    const complete = seen.creates === expected.creates && seen.updates === expected.updates;
    if (total === all && !complete) {
      throw new Error(
        `stream ${name} read ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`,
      );
    }
    return { events: total, ms, firstMs };
  } finally {
    await changes.close();
  }
}

/** A live subscription's run: its events, the pushes it followed, and its lag behind them. */
export interface LiveRun {
  readonly events: number;
  /** From the first push to the last event. */
  readonly ms: number;
  /** From the last push's reply to the last event; negative when the event came first. */
  readonly lagMs: number;
  readonly push: RunResult;
}

const LIVE_TIMEOUT_MS = 30_000;

/**
 * Subscribes live, then runs the script's pushes while a consumer reads every event they
 * cause; fails when the events do not all arrive within 30 s of the last push.
 */
export async function followPushes(db: Database<any>, script: NoteScript): Promise<LiveRun> {
  const changes = open(db);
  try {
    const subscription = await changes.subscribe({ table: 'note' });
    const total = script.creates + script.renames;
    let events = 0;
    let lastAt = 0;
    const consumer = (async () => {
      for await (const event of subscription) {
        if (event.action === 'create' || event.action === 'update') events++;
        if (events === total) {
          lastAt = performance.now();
          break;
        }
      }
    })();
    const started = performance.now();
    const push = await runNoteScript(db, script, true);
    const pushedAt = started + push.ms;
    const timer = setTimeout(() => void subscription.stop(), LIVE_TIMEOUT_MS);
    await consumer.finally(() => clearTimeout(timer));
    if (events !== total) {
      throw new Error(`subscription saw ${events} of ${total} events within ${LIVE_TIMEOUT_MS} ms`);
    }
    return { events, ms: lastAt - started, lagMs: lastAt - pushedAt, push };
  } finally {
    await changes.close();
  }
}
