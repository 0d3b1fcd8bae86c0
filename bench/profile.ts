import { type Database, type DatabaseTransaction, isTransientError } from '@reprise/server';

/** Time and count per kind of work, summed over every push of a run. */
export class Breakdown {
  readonly entries = new Map<string, { count: number; ms: number }>();
  retries = 0;

  add(kind: string, ms: number) {
    const entry = this.entries.get(kind) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += ms;
    this.entries.set(kind, entry);
  }
}

/**
 * Names an engine statement by what it is for, from the table right after its verb (the
 * client claim also reads "clientGroups" further on, in its RETURNING list). The first
 * pattern that matches wins.
 */
const KINDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^SELECT "userID" FROM \S*"clientGroups"/, 'SELECT clientGroups (claim)'],
  [/^INSERT INTO \S*"clientGroups"/, 'INSERT clientGroups (claim)'],
  [/^INSERT INTO \S*"clients"/, 'claim clients (lock + owner + LMID)'],
  [/^UPDATE \S*"clients"/, 'UPDATE clients (LMID)'],
  [/^INSERT INTO \S*"mutationResults"/, 'INSERT mutationResults'],
  [/^INSERT INTO "item"/, 'INSERT item (the mutator)'],
  [/^WITH "reprise_written" AS \(INSERT INTO "item"/, 'INSERT item + origin (the mutator)'],
  [/^SELECT \S*"store_changes"\(\)$/, 'store captured changes'],
  // The changes section's app and the changelog (changes-app.ts).
  [/^INSERT INTO "note"/, 'INSERT note (the mutator)'],
  [/^UPDATE "note"/, 'UPDATE note (the mutator)'],
  [
    /^WITH "reprise_before" AS \(SELECT .* FOR UPDATE\) UPDATE "note"/,
    'UPDATE note + before image',
  ],
  [/^SELECT .* FROM "note" WHERE .* FOR UPDATE$/, 'SELECT note FOR UPDATE (before image)'],
  [/^WITH "inserted" AS \(INSERT INTO \S*"changes"/, 'INSERT changes + pg_notify'],
  [/^INSERT INTO \S*"changes"/, 'INSERT changes (no NOTIFY)'],
  // Pulls.
  [/^SELECT "id", "table", .* FROM \S*"changes"/, 'SELECT changes since the cookie'],
  [/^SELECT .* FROM "note"/, 'SELECT note (visible rows)'],
  [/^SELECT pg_current_snapshot\(\)/, 'SELECT pg_current_snapshot (next cookie)'],
  [/^SELECT pg_snapshot_xmax/, 'SELECT cookie from the future?'],
  [/^SELECT "prunedThroughID"/, 'SELECT changelogState (pruned?)'],
  [/^SELECT pg_snapshot_xmin/, 'SELECT cookie pruned?'],
  [/^SELECT "clientID", "lastMutationID"/, 'SELECT clients (LMIDs)'],
  [/^SELECT "clientID", "mutationID", "result"/, 'SELECT mutationResults'],
];

function classify(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return KINDS.find(([pattern]) => pattern.test(flat))?.[1] ?? flat.slice(0, 40);
}

const now = () => performance.now();

/** When the statements a transaction has in flight will all have been answered. */
interface Clock {
  busyUntil: number;
}

/** BEGIN and COMMIT, PGlite's SET TRANSACTION, and any wait for a connection or PGlite's lock. */
export const BEGIN_COMMIT = 'BEGIN/COMMIT (+ waits)';

/**
 * Wraps a `Database` to time each kind of statement, the savepoints and BEGIN/COMMIT
 * (the transaction's time minus its body's), and to count transactions retried after a
 * transient failure. Used only for the breakdown pass, never for the timed runs.
 */
export function instrument(db: Database<any>, stats: Breakdown): Database<any> {
  // A statement sent while another of its transaction is in flight (the engine starts a
  // mutation behind its claim) waits for it on the connection: it counts only from the
  // earlier one's answer on, so overlapping statements add up to the time they took together.
  const timed = async <R>(clock: Clock, text: string, run: () => Promise<R>) => {
    const started = now();
    try {
      return await run();
    } finally {
      const ended = now();
      stats.add(classify(text), Math.max(0, ended - Math.max(started, clock.busyUntil)));
      clock.busyUntil = Math.max(clock.busyUntil, ended);
    }
  };
  const savepoint = async <T>(
    clock: Clock,
    open: (body: (scope: DatabaseTransaction<any>) => Promise<T>) => Promise<T>,
    fn: (tx: DatabaseTransaction<any>) => Promise<T>,
  ) => {
    let inner = 0;
    const started = now();
    try {
      return await open(async (scope) => {
        const bodyStarted = now();
        try {
          return await fn(wrap(scope, clock));
        } finally {
          inner += now() - bodyStarted;
        }
      });
    } finally {
      stats.add('SAVEPOINT (+ RELEASE)', now() - started - inner);
    }
  };
  const wrap = (tx: DatabaseTransaction<any>, clock: Clock): DatabaseTransaction<any> => ({
    query: (text, params) => timed(clock, text, () => tx.query(text, params)),
    // The engine picks its path by which of these the adapter has, so each is passed on.
    ...(tx.queued
      ? {
          queued: (text: string, params?: readonly unknown[]) =>
            timed(clock, text, () => tx.queued!(text, params)),
        }
      : {}),
    savepoint: (fn) => savepoint(clock, (body) => tx.savepoint(body), fn),
    ...(tx.savepointWith
      ? {
          savepointWith: <T>(statement: string, fn: (tx: DatabaseTransaction<any>) => Promise<T>) =>
            savepoint<T>(clock, (body) => tx.savepointWith!(statement, body), fn),
        }
      : {}),
    // Not timed on its own: the adapter sends it with COMMIT, so BEGIN/COMMIT includes it.
    ...(tx.queryAtCommit
      ? {
          queryAtCommit: (text: string, params?: readonly unknown[]) => {
            stats.add(`${classify(text)} (with COMMIT)`, 0);
            tx.queryAtCommit!(text, params);
          },
        }
      : {}),
    wrappedTransaction: tx.wrappedTransaction,
  });
  return {
    name: db.name,
    capabilities: db.capabilities,
    async transaction(fn, options) {
      let inner = 0;
      const started = now();
      try {
        return await db.transaction(async (tx) => {
          const bodyStarted = now();
          try {
            return await fn(wrap(tx, { busyUntil: 0 }));
          } finally {
            inner += now() - bodyStarted;
          }
        }, options);
      } catch (error) {
        if (isTransientError(error)) stats.retries++;
        throw error;
      } finally {
        stats.add(BEGIN_COMMIT, now() - started - inner);
        stats.add('transaction body', inner);
      }
    },
    query: (text, params) => db.query(text, params),
  };
}
