import type { AnySchema } from '@reprise/shared';
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
  /** In commit order. */
  readonly changes: readonly Change[];
  /** The changes `from` needs were pruned: the batch is empty and cannot be trusted. */
  readonly expired: boolean;
}

/** The changes committed after `from`, read at one snapshot, which becomes `until`. */
export function readBatch(
  db: Database,
  tables: EngineTables,
  from: ChangeCursor,
  schema: AnySchema | undefined,
): Promise<Batch> {
  return db.transaction(
    async (tx) => {
      // First statement: it fixes the snapshot that the reads below see.
      const until = await currentCursor(tx, db, tables);
      if (await isExpired(tx, tables, from)) return { from, until, changes: [], expired: true };
      const changes = await readChanges(tx, tables, from, schema);
      return { from, until, changes, expired: false };
    },
    { isolation: 'repeatable read' },
  );
}

/**
 * The part of an earlier batch (`from` to `until`) after change `afterID`: where a stream
 * resumes when it stopped halfway through one. Those changes and their order are fixed for
 * good (visibility in a snapshot never changes, nor does a commit's number), so exactly
 * the unacknowledged rest comes back.
 */
export function readBatchRest(
  db: Database,
  tables: EngineTables,
  from: ChangeCursor & { kind: 'snapshot' },
  until: ChangeCursor & { kind: 'snapshot' },
  afterID: number,
  schema: AnySchema | undefined,
): Promise<Batch> {
  return db.transaction(
    async (tx) => {
      if (await isExpired(tx, tables, from)) return { from, until, changes: [], expired: true };
      const batch = await readChanges(tx, tables, from, schema, until);
      const done = batch.findIndex((change) => change.id === afterID);
      return { from, until, changes: batch.slice(done + 1), expired: false };
    },
    { isolation: 'repeatable read' },
  );
}
