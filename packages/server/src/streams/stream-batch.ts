import {
  type Change,
  type ChangeCursor,
  currentCursor,
  isExpired,
  readChanges,
} from '../changes/changelog';
import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';

// Reading the changelog in batches for a change stream. A batch is what committed after one
// position and is visible at the snapshot it is read in; that snapshot is the next position.

export interface Batch {
  readonly from: ChangeCursor;
  readonly until: ChangeCursor;
  /** In id order. */
  readonly changes: readonly Change[];
  /** The changes `from` needs were pruned: the batch is empty and cannot be trusted. */
  readonly expired: boolean;
}

/** The changes committed after `from`, read at one snapshot, which becomes `until`. */
export function readBatch(db: Database, tables: EngineTables, from: ChangeCursor): Promise<Batch> {
  return db.transaction(
    async (tx) => {
      // First statement: it fixes the snapshot that the reads below see.
      const until = await currentCursor(tx, db, tables);
      if (await isExpired(tx, tables, from)) return { from, until, changes: [], expired: true };
      return { from, until, changes: await readChanges(tx, tables, from), expired: false };
    },
    { isolation: 'repeatable read' },
  );
}

/**
 * The part of an earlier batch (`from` to `until`) after change `afterID`: where a stream
 * resumes when it stopped halfway through one. Those changes are fixed for good, as
 * visibility in a snapshot never changes, so exactly the unacknowledged rest comes back.
 */
export function readBatchRest(
  db: Database,
  tables: EngineTables,
  from: ChangeCursor & { kind: 'snapshot' },
  until: ChangeCursor & { kind: 'snapshot' },
  afterID: number,
): Promise<Batch> {
  return db.transaction(
    async (tx) => {
      if (await isExpired(tx, tables, from)) return { from, until, changes: [], expired: true };
      const since = await readChanges(tx, tables, from);
      const inBatch = await tx.query<{ id: number | string }>(
        `SELECT "id" FROM ${tables.changes}
         WHERE "id" > $3
           AND "txid" >= pg_snapshot_xmin($1::text::pg_snapshot)
           AND NOT pg_visible_in_snapshot("txid", $1::text::pg_snapshot)
           AND pg_visible_in_snapshot("txid", $2::text::pg_snapshot)`,
        [from.snapshot, until.snapshot, afterID],
      );
      const ids = new Set(inBatch.map((row) => Number(row.id)));
      return { from, until, changes: since.filter((c) => ids.has(c.id)), expired: false };
    },
    { isolation: 'repeatable read' },
  );
}
