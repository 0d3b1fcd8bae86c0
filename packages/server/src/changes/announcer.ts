import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { changeChannel } from './changelog';

// Announcing the engine's own commits. A `NOTIFY` inside a writing transaction makes its
// commit take a lock shared by the whole server and hold it until the commit is flushed,
// so notifying commits wait for each other one flush at a time: concurrent pushes lose
// group commit (docs/capture.md). So on a server the capture triggers leave writes that
// came through the engine (their origin is set) unannounced, and the engine announces them
// once they have committed: at once to the change watchers of this process on the same
// `Database`, and to other processes by one `NOTIFY` sent outside any push, coalesced with
// the commits of the next few milliseconds. Other writers are announced by the trigger.

/** Where the engine announces its own commits, instead of its capture triggers. */
export function announcesItself(db: Database<any>): boolean {
  return !db.capabilities.partialSQL && db.capabilities.embedded !== true;
}

/** The payload of an announcement: `@` and the announcing process's token. */
const MARK = '@';

/** True when `payload` is an announcement made through `announcer`'s own `Database`. */
export function isOwnAnnouncement(payload: string, token: string): boolean {
  return payload === `${MARK}${token}`;
}

/** True when `payload` is an announcement (by any process), which names no table. */
export function isAnnouncement(payload: string): boolean {
  return payload.startsWith(MARK);
}

interface Announcer {
  readonly token: string;
  readonly local: Set<() => void>;
  /** A `NOTIFY` is on its way, or was sent less than `NOTIFY_GAP_MS` ago. */
  busy: boolean;
  /** A commit was announced while busy: it needs a `NOTIFY` of its own. */
  again: boolean;
}

/**
 * The least time between two `NOTIFY`s of one process: other processes are woken at most
 * this much later, and a process sends at most 100 a second however fast it commits (poke
 * hubs coalesce pokes over 50 ms anyway).
 */
const NOTIFY_GAP_MS = 10;

// Per Database, then per engine schema.
const announcers = new WeakMap<Database<any>, Map<string, Announcer>>();

function announcerOf(db: Database<any>, tables: EngineTables): Announcer {
  let bySchema = announcers.get(db);
  if (!bySchema) {
    bySchema = new Map();
    announcers.set(db, bySchema);
  }
  let announcer = bySchema.get(tables.schema);
  if (!announcer) {
    announcer = {
      token: randomBytes(8).toString('hex'),
      local: new Set(),
      busy: false,
      again: false,
    };
    bySchema.set(tables.schema, announcer);
  }
  return announcer;
}

/**
 * Registers a change watcher of this process: `wake` runs after each commit the engine
 * announces through `db`. Returns the token its `NOTIFY`s carry (so the watcher can skip
 * them) and a function that unregisters.
 */
export function hearAnnouncements(
  db: Database<any>,
  tables: EngineTables,
  wake: () => void,
): { token: string; stop: () => void } {
  const announcer = announcerOf(db, tables);
  announcer.local.add(wake);
  return { token: announcer.token, stop: () => announcer.local.delete(wake) };
}

/**
 * Announces that a transaction of the engine that may have written synced tables has
 * committed. Call it after the commit. Never throws and never waits: a `NOTIFY` that
 * fails is logged, and other processes' watchers find the commit on their next look.
 */
export function announceCommit(db: Database<any>, tables: EngineTables, logger: Logger): void {
  if (!announcesItself(db)) return;
  const announcer = announcerOf(db, tables);
  for (const wake of announcer.local) wake();
  if (announcer.busy) {
    announcer.again = true;
    return;
  }
  announcer.busy = true;
  send(db, tables, announcer, logger);
}

function send(db: Database<any>, tables: EngineTables, announcer: Announcer, logger: Logger) {
  announcer.again = false;
  const sentAt = performance.now();
  db.query('SELECT pg_notify($1, $2)', [changeChannel(tables), `${MARK}${announcer.token}`])
    .catch((error: unknown) => logger.warn({ event: 'changes.announce', error }))
    .finally(() => {
      const wait = Math.max(0, sentAt + NOTIFY_GAP_MS - performance.now());
      setTimeout(() => {
        if (announcer.again) send(db, tables, announcer, logger);
        else announcer.busy = false;
      }, wait).unref?.();
    });
}
