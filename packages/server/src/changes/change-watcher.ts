import type { Database, DatabaseTransaction } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { hearAnnouncements, isAnnouncement, isOwnAnnouncement } from './announcer';
import { type ChangeCursor, changeChannel, currentCursor } from './changelog';

// An ear on the changelog: each poke hub and each set of change streams has one, and all
// their connections or streams wait on it instead of asking the database each on their
// own. It hears the engine's commits in this process at once (announcer.ts), LISTENs where
// the database has notifications, and otherwise polls for anything committed since its
// last look. A listening watcher still looks now and then, for an announcement that a
// process could not send (it stopped between its commit and its NOTIFY).

/** What committed: changes to these tables (schema names), or anything at all. */
export type ChangeNotice = { readonly all: true } | { readonly tables: readonly string[] };

export interface ChangeWatcher {
  /** Counts notices; a reader notes it before reading, then waits for it to move. */
  readonly generation: number;
  /** Resolves once every commit from now on will be announced. Safe to call repeatedly. */
  start(): Promise<void>;
  /** Calls `listener` for every notice until the returned function is called. */
  subscribe(listener: (notice: ChangeNotice) => void): () => void;
  close(): Promise<void>;
}

export interface ChangeWatcherOptions {
  readonly db: Database<any>;
  readonly tables: EngineTables;
  /** How often to look for commits where there is no `LISTEN` (default 1000 ms). */
  readonly pollIntervalMs?: number;
  /** How often a listening watcher looks all the same (default 10,000 ms). */
  readonly listeningPollIntervalMs?: number;
  readonly logger: Logger;
}

export const DEFAULT_POLL_INTERVAL_MS = 1000;
export const DEFAULT_LISTENING_POLL_INTERVAL_MS = 10_000;

/**
 * Reads a `NOTIFY` payload: a table's name means that table changed (capture triggers sent
 * that before engine schema 9); the engine's announcement of its own commits
 * (announcer.ts), or an empty one (the commit trigger's), means "anything".
 */
export function parseNotice(payload: string): ChangeNotice {
  return payload === '' || isAnnouncement(payload) ? { all: true } : { tables: [payload] };
}

/** True when changes committed after `since` are visible to `tx`. */
async function changedSince(
  tx: DatabaseTransaction,
  tables: EngineTables,
  since: ChangeCursor,
  now: ChangeCursor,
): Promise<boolean> {
  // pg-mem: ids only grow, and a prune that removes the newest row moves the max back.
  if (since.kind === 'id' || now.kind === 'id') {
    return JSON.stringify(since) !== JSON.stringify(now);
  }
  const [row] = await tx.query<{ changed: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM ${tables.txChanges}
       WHERE "txid" >= pg_snapshot_xmin($1::text::pg_snapshot)
         AND NOT pg_visible_in_snapshot("txid", $1::text::pg_snapshot)
     ) AS "changed"`,
    [since.snapshot],
  );
  return row?.changed === true;
}

/**
 * Creates a watcher over the engine's changelog. Nothing happens until `start`.
 *
 * @example
 * const watcher = createChangeWatcher({db, tables: engineTables(), logger: silentLogger});
 * await watcher.start();
 * const unsubscribe = watcher.subscribe((notice) => console.log(notice));
 */
export function createChangeWatcher(options: ChangeWatcherOptions): ChangeWatcher {
  const { db, tables, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const listeningPollIntervalMs =
    options.listeningPollIntervalMs ?? DEFAULT_LISTENING_POLL_INTERVAL_MS;
  const listeners = new Set<(notice: ChangeNotice) => void>();
  let generation = 0;
  let started: Promise<void> | undefined;
  let closed = false;
  let unlisten: (() => Promise<void>) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cursor: ChangeCursor | undefined;
  let interval = pollIntervalMs;
  let stopHearing: (() => void) | undefined;

  const emit = (notice: ChangeNotice) => {
    if (closed) return;
    generation++;
    for (const listener of listeners) listener(notice);
  };

  const look = () =>
    db.transaction(
      async (tx) => {
        const now = await currentCursor(tx, db, tables);
        const changed = cursor !== undefined && (await changedSince(tx, tables, cursor, now));
        return { now, changed };
      },
      { isolation: 'repeatable read' },
    );

  let polling: Promise<void> | undefined;
  const poll = async () => {
    try {
      const { now, changed } = await look();
      cursor = now;
      if (changed) emit({ all: true });
    } catch (error) {
      if (!closed) logger.warn({ event: 'changes.poll', error });
    }
  };
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      polling = poll().finally(() => {
        polling = undefined;
        schedule();
      });
    }, interval);
    timer.unref?.();
  };

  const begin = async () => {
    const heard = hearAnnouncements(db, tables, () => emit({ all: true }));
    stopHearing?.();
    stopHearing = heard.stop;
    if (db.listen) {
      try {
        unlisten = await db.listen(
          changeChannel(tables),
          (payload) => {
            // Heard already, from this process, as it committed.
            if (!isOwnAnnouncement(payload, heard.token)) emit(parseNotice(payload));
          },
          { onReconnect: () => emit({ all: true }) },
        );
        interval = listeningPollIntervalMs;
        // A position now, for the slower look; commits are heard meanwhile, so a failure
        // here only leaves the first look to take it.
        cursor = await look().then(
          ({ now }) => now,
          (error: unknown) => {
            logger.warn({ event: 'changes.poll', error });
            return undefined;
          },
        );
        schedule();
        return;
      } catch (error) {
        logger.warn({ event: 'changes.listen', message: 'LISTEN failed; polling', error });
      }
    }
    // Poll from a position taken now, so that a commit right after `start` resolves is seen.
    cursor = (await look()).now;
    schedule();
  };

  return {
    get generation() {
      return generation;
    },
    start() {
      if (closed) return Promise.reject(new Error('The change watcher is closed'));
      started ??= begin().then(
        async () => {
          // Closed while starting: let go of what was just taken.
          if (closed) await stop();
        },
        (error: unknown) => {
          started = undefined;
          throw error;
        },
      );
      return started;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      await started?.catch(() => undefined);
      await stop();
    },
  };

  async function stop() {
    stopHearing?.();
    stopHearing = undefined;
    if (timer) clearTimeout(timer);
    timer = undefined;
    await polling;
    const release = unlisten;
    unlisten = undefined;
    await release?.();
  }
}
