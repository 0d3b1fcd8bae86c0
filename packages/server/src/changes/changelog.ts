// changes/: the changelog and who may see it (visibility), the watcher that hears each
// commit once per process (LISTEN, or polling), and pruning of old history.

import type { AnySchema, ColumnInfo } from '@reprise/shared';
import type { Database, DatabaseTransaction } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { decodeStoredRow, encodeStoredRow, keyColumns } from './row-json';

// The changelog: every committed write to a captured table is recorded in the same
// transaction. Where there are triggers, the capture triggers keep a transaction's changes
// until it commits and store them as one row of `txChanges` (a JSON array; a large
// transaction stores a few), numbered from a sequence as it commits (capture.ts). pg-mem has
// no triggers: there the engine stores each `tx.mutate` write as a row of `changes`. Pull,
// pokes and change streams all read it in commit order: a transaction that started early and
// committed late comes after everything that committed before it.
//
// Positions are Postgres snapshots, not ids: ids are handed out before commit, so a
// transaction holding a lower id can commit after a higher one was read. A reader keeps the
// snapshot it read in; next time it takes the changes visible now but not in that snapshot,
// which is exactly what committed since, early ids included. pg-mem has no snapshots and no
// concurrency, so there the position is the last id.

export type ChangeAction = 'create' | 'update' | 'delete';
type Row = Record<string, unknown>;

/** A write as `tx.mutate` saw it, before it is stored (pg-mem). */
export interface RecordedChange {
  readonly table: string;
  readonly action: ChangeAction;
  readonly key: Row;
  readonly before?: Row;
  readonly after?: Row;
}

/** The mutation (or CRUD operation) that made a change. */
export interface ChangeOrigin {
  readonly clientGroupID: string;
  readonly clientID: string;
  readonly mutationID: number | null;
}

/** A stored change, as readers get it. */
export interface Change extends RecordedChange {
  readonly id: number;
  readonly clientGroupID: string | null;
  readonly clientID: string | null;
  readonly mutationID: number | null;
}

/** Where a reader stands in the changelog. */
export type ChangeCursor =
  | { readonly kind: 'snapshot'; readonly snapshot: string }
  | { readonly kind: 'id'; readonly id: number };

/** The channel `NOTIFY` announces committed changes on, per engine schema. */
export function changeChannel(tables: EngineTables): string {
  return `reprise_changes_${tables.schema}`;
}

/**
 * Stores a transaction's changes where the database has no triggers (pg-mem), in the form
 * the capture triggers store them elsewhere (row-json.ts). Call it after the transaction's
 * other writes.
 */
export async function writeChanges(
  tx: DatabaseTransaction,
  schema: AnySchema,
  tables: EngineTables,
  /** `origin: null` for a writer outside any mutation (the entity API). */
  changes: readonly (RecordedChange & { readonly origin: ChangeOrigin | null })[],
): Promise<void> {
  if (changes.length === 0) return;
  const params: unknown[] = [];
  const rows = changes.map((change) => {
    const info = schema.tableInfo.get(change.table)!;
    const stored = (row: Row | undefined, columns: Iterable<ColumnInfo>) =>
      row ? JSON.stringify(encodeStoredRow(columns, row)) : null;
    const values = [
      change.table,
      change.action,
      stored(change.key, keyColumns(info)),
      stored(change.before, info.columns.values()),
      stored(change.after, info.columns.values()),
      change.origin?.clientGroupID ?? null,
      change.origin?.clientID ?? null,
      change.origin?.mutationID ?? null,
    ];
    const start = params.length;
    params.push(...values);
    const p = (i: number) => `$${start + i + 1}`;
    return `(${p(0)}, ${p(1)}, ${p(2)}::text::jsonb, ${p(3)}::text::jsonb, ${p(4)}::text::jsonb, ${p(5)}, ${p(6)}, ${p(7)})`;
  });
  await tx.query(
    `INSERT INTO ${tables.changes} ("table", "action", "key", "before", "after",
       "clientGroupID", "clientID", "mutationID")
     VALUES ${rows.join(', ')}`,
    params,
  );
}

/** The reader's position now: call it in the transaction that reads. */
export async function currentCursor(
  tx: DatabaseTransaction,
  db: Database,
  tables: EngineTables,
): Promise<ChangeCursor> {
  if (db.capabilities.partialSQL) {
    // Not below what was pruned: an emptied changelog must not hand out a position that
    // isExpired then calls stale, or every pull would be a reset until the next change.
    const [row] = await tx.query<{ id: number | string | null }>(
      `SELECT max("id") AS "id" FROM ${tables.changes}`,
    );
    const [state] = await tx.query<{ prunedThroughID: number | string }>(
      `SELECT "prunedThroughID" FROM ${tables.changelogState}`,
    );
    return {
      kind: 'id',
      id: Math.max(Number(row?.id ?? 0), Number(state?.prunedThroughID ?? 0)),
    };
  }
  const [row] = await tx.query<{ snapshot: string }>(
    'SELECT pg_current_snapshot()::text AS "snapshot"',
  );
  return { kind: 'snapshot', snapshot: row!.snapshot };
}

interface ChangeRecord {
  id: number | string;
  table: string;
  action: ChangeAction;
  key: unknown;
  before: unknown;
  after: unknown;
  clientGroupID: string | null;
  clientID: string | null;
  mutationID: number | string | null;
}

function toChange(schema: AnySchema | undefined, record: ChangeRecord): Change {
  const table = schema?.tableInfo.get(record.table);
  const row = (name: 'before' | 'after') =>
    record[name] === null || record[name] === undefined
      ? {}
      : { [name]: decodeStoredRow(table, record[name]) };
  return {
    id: Number(record.id),
    table: record.table,
    action: record.action,
    key: decodeStoredRow(table, record.key),
    ...row('before'),
    ...row('after'),
    clientGroupID: record.clientGroupID,
    clientID: record.clientID,
    mutationID: record.mutationID === null ? null : Number(record.mutationID),
  };
}

const COLUMNS = `c."id", c."table", c."action", c."key", c."before", c."after",
  c."clientGroupID", c."clientID", c."mutationID"`;

/**
 * The changes that committed after `since` and, with `until`, no later than that snapshot,
 * as `tx` sees them: in commit order, and in write order within a transaction. Read them
 * in the transaction whose `currentCursor` becomes the next position, at repeatable read
 * or stricter. `schema` decodes rows of the tables it knows; others come as stored.
 */
export async function readChanges(
  tx: DatabaseTransaction,
  tables: EngineTables,
  since: ChangeCursor,
  schema: AnySchema | undefined,
  until?: ChangeCursor,
): Promise<Change[]> {
  if (since.kind === 'id') {
    const upTo = until?.kind === 'id' ? until.id : undefined;
    const records = await tx.query<ChangeRecord>(
      `SELECT ${COLUMNS} FROM ${tables.changes} AS c WHERE c."id" > $1${
        upTo === undefined ? '' : ' AND c."id" <= $2'
      } ORDER BY c."id"`,
      upTo === undefined ? [since.id] : [since.id, upTo],
    );
    return records.map((record) => toChange(schema, record));
  }
  const bounded = until?.kind === 'snapshot';
  // A transaction's parts share its number, which its last part carries.
  const parts = await tx.query<{ changes: unknown }>(
    `SELECT t."changes" FROM ${tables.txChanges} AS t
     WHERE t."txid" >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND NOT pg_visible_in_snapshot(t."txid", $1::text::pg_snapshot)${
         bounded ? ' AND pg_visible_in_snapshot(t."txid", $2::text::pg_snapshot)' : ''
       }
     ORDER BY max(t."seq") OVER (PARTITION BY t."txid") NULLS LAST, t."txid", t."part"`,
    bounded ? [since.snapshot, until.snapshot] : [since.snapshot],
  );
  const changes: Change[] = [];
  for (const part of parts) {
    const stored = (
      typeof part.changes === 'string' ? JSON.parse(part.changes) : part.changes
    ) as StoredChange[];
    for (const change of stored) changes.push(fromStored(schema, change));
  }
  return changes;
}

/** One change as the capture triggers store it (capture.ts). */
interface StoredChange {
  /** Id, table, action, the table's key columns and the origin ([group, client, mutation]). */
  i: number | string;
  t: string;
  a: ChangeAction;
  k: string[];
  o: [string, string, number | string | null] | null;
  /** The row before and after, keyed by column keys. */
  b?: Record<string, unknown>;
  f?: Record<string, unknown>;
}

function fromStored(schema: AnySchema | undefined, stored: StoredChange): Change {
  const row = stored.a === 'delete' ? stored.b : stored.f;
  const key: Record<string, unknown> = {};
  for (const column of stored.k) key[column] = row?.[column] ?? null;
  return toChange(schema, {
    id: stored.i,
    table: stored.t,
    action: stored.a,
    key,
    before: stored.b ?? null,
    after: stored.f ?? null,
    clientGroupID: stored.o?.[0] ?? null,
    clientID: stored.o?.[1] ?? null,
    mutationID: stored.o?.[2] ?? null,
  });
}

/**
 * True when changes `since` needs may have been pruned: the reader must start over.
 */
export async function isExpired(
  tx: DatabaseTransaction,
  tables: EngineTables,
  since: ChangeCursor,
): Promise<boolean> {
  // Id positions exist only on pg-mem, whose state table has no "prunedBeforeXid".
  const [state] = await tx.query<{
    prunedThroughID: number | string;
    prunedBeforeXid?: string | null;
  }>(
    since.kind === 'id'
      ? `SELECT "prunedThroughID" FROM ${tables.changelogState}`
      : `SELECT "prunedThroughID", "prunedBeforeXid"::text AS "prunedBeforeXid" FROM ${tables.changelogState}`,
  );
  if (!state) return false;
  if (since.kind === 'id') return since.id < Number(state.prunedThroughID);
  if (state.prunedBeforeXid === null || state.prunedBeforeXid === undefined) return false;
  const [row] = await tx.query<{ expired: boolean }>(
    `SELECT pg_snapshot_xmin($1::text::pg_snapshot) < $2::text::xid8 AS "expired"`,
    [since.snapshot, state.prunedBeforeXid],
  );
  return row!.expired;
}

/**
 * Deletes changes and mutation results older than `olderThanMs` (default 7 days), and the
 * `txPending` rows of committed transactions, and remembers how far it went, so that a
 * reader whose position is older gets a reset instead of a gap. Only changes of
 * transactions that no running transaction can still see as in progress are removed. The
 * public entry is prune-changes.ts's `pruneChanges`.
 */
export async function pruneChanges(
  db: Database,
  tables: EngineTables,
  options: { olderThanMs?: number } = {},
): Promise<{ deleted: number; deletedResults: number }> {
  const olderThanMs = options.olderThanMs ?? 7 * 24 * 60 * 60 * 1000;
  const cutoff = new Date(Date.now() - olderThanMs).toISOString();
  return db.transaction(
    async (tx) => {
      // Results go with the changes of their time: a cookie that old gets a reset anyway,
      // and a client that never heard its result sees the mutation confirmed.
      const results = await tx.query(
        `DELETE FROM ${tables.mutationResults} WHERE "createdAt" < $1::timestamptz RETURNING 1`,
        [cutoff],
      );
      const deletedResults = results.length;
      if (db.capabilities.partialSQL) {
        const deleted = await tx.query<{ id: number | string }>(
          `DELETE FROM ${tables.changes} WHERE "createdAt" < $1::timestamptz RETURNING "id"`,
          [cutoff],
        );
        if (deleted.length === 0) return { deleted: 0, deletedResults };
        await tx.query(
          `UPDATE ${tables.changelogState} SET "prunedThroughID" = greatest("prunedThroughID", $1)`,
          [Math.max(...deleted.map((row) => Number(row.id)))],
        );
        return { deleted: deleted.length, deletedResults };
      }
      // The rows that queued committed transactions' commit triggers: all that this
      // transaction sees (a running one's row is not visible to it).
      await tx.query(`DELETE FROM ${tables.txPending}`);
      // A transaction's parts go together: by its first part's time.
      const deleted = await tx.query<{ txid: string; n: number | string }>(
        `DELETE FROM ${tables.txChanges} AS t
         WHERE t."txid" < pg_snapshot_xmin(pg_current_snapshot())
           AND t."txid" IN (SELECT "txid" FROM ${tables.txChanges}
                            WHERE "part" = 0 AND "createdAt" < $1::timestamptz)
         RETURNING t."txid"::text AS "txid", json_array_length(t."changes"::json) AS "n"`,
        [cutoff],
      );
      if (deleted.length === 0) return { deleted: 0, deletedResults };
      const maxXid = deleted.reduce((max, row) => {
        const txid = BigInt(row.txid);
        return txid > max ? txid : max;
      }, 0n);
      await tx.query(
        `UPDATE ${tables.changelogState}
         SET "prunedBeforeXid" = greatest(coalesce("prunedBeforeXid", '0'::xid8), ($1::text)::xid8)`,
        [String(maxXid + 1n)],
      );
      return {
        deleted: deleted.reduce((sum, row) => sum + Number(row.n), 0),
        deletedResults,
      };
    },
    { isolation: 'read committed' },
  );
}
