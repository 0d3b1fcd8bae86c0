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
 * client claim also reads "clientGroups" further on, in its RETURNING list).
 */
function classify(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  if (/^SELECT "userID" FROM \S*"clientGroups"/.test(flat)) return 'SELECT clientGroups (claim)';
  if (/^INSERT INTO \S*"clientGroups"/.test(flat)) return 'INSERT clientGroups (claim)';
  if (/^INSERT INTO \S*"clients"/.test(flat)) return 'claim clients (lock + owner + LMID)';
  if (/^UPDATE \S*"clients"/.test(flat)) return 'UPDATE clients (LMID)';
  if (/^INSERT INTO \S*"mutationResults"/.test(flat)) return 'INSERT mutationResults';
  if (/^INSERT INTO "item"/.test(flat)) return 'INSERT item (the mutator)';
  return flat.slice(0, 40);
}

const now = () => performance.now();

/** BEGIN and COMMIT, PGlite's SET TRANSACTION, and any wait for a connection or PGlite's lock. */
export const BEGIN_COMMIT = 'BEGIN/COMMIT (+ waits)';

/**
 * Wraps a `Database` to time each kind of statement, the savepoints and BEGIN/COMMIT
 * (the transaction's time minus its body's), and to count transactions retried after a
 * transient failure. Used only for the breakdown pass, never for the timed runs.
 */
export function instrument(db: Database<any>, stats: Breakdown): Database<any> {
  const wrap = (tx: DatabaseTransaction<any>): DatabaseTransaction<any> => ({
    async query(text, params) {
      const started = now();
      try {
        return await tx.query(text, params);
      } finally {
        stats.add(classify(text), now() - started);
      }
    },
    async savepoint(fn) {
      let inner = 0;
      const started = now();
      try {
        return await tx.savepoint(async (scope) => {
          const bodyStarted = now();
          try {
            return await fn(wrap(scope));
          } finally {
            inner += now() - bodyStarted;
          }
        });
      } finally {
        stats.add('SAVEPOINT (+ RELEASE)', now() - started - inner);
      }
    },
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
            return await fn(wrap(tx));
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
