// changes/: the changelog and who may see it (visibility), the watcher that hears each
// commit once per process (LISTEN, or polling), and pruning of old history.

import { decodeRich, encodeRich } from '@reprise/shared';
import type { Database, DatabaseTransaction } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { scopesOf, type Visibility } from './visibility';

// The changelog: every write through tx.mutate leaves one row here, in the same
// transaction. Pull, pokes and change streams all read it.
//
// Positions are Postgres snapshots, not ids: ids are handed out before commit, so a
// transaction holding a lower id can commit after a higher one was read. A reader keeps the
// snapshot it read in; next time it takes the changes visible now but not in that snapshot,
// which is exactly what committed since, early ids included. pg-mem has no snapshots and no
// concurrency, so there the position is the last id.

export type ChangeAction = 'create' | 'update' | 'delete';
type Row = Record<string, unknown>;

/** A write as `tx.mutate` saw it, before it is stored. */
export interface RecordedChange {
  readonly table: string;
  readonly action: ChangeAction;
  readonly key: Row;
  readonly before?: Row;
  readonly after?: Row;
}

/** The mutation that made a change. */
export interface ChangeOrigin {
  readonly clientGroupID: string;
  readonly clientID: string;
  readonly mutationID: number;
}

/** A stored change, as readers get it. */
export interface Change extends RecordedChange {
  readonly id: number;
  /** Scopes of the row before and after; `undefined` when the table is not synced. */
  readonly scopesBefore?: string[];
  readonly scopesAfter?: string[];
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
 * Stores a transaction's changes with their scopes, in one statement, and announces them
 * with `NOTIFY` (delivered only if the transaction commits). Call it after the
 * transaction's other writes: where the adapter can, the statement travels with COMMIT.
 */
export async function writeChanges(
  tx: DatabaseTransaction,
  db: Database,
  tables: EngineTables,
  visibility: Visibility | undefined,
  changes: readonly (RecordedChange & { readonly origin: ChangeOrigin })[],
): Promise<void> {
  if (changes.length === 0) return;
  const params: unknown[] = [];
  const scopes = new Set<string>();
  const rows = changes.map((change) => {
    const before = scopesOf(visibility, change.table, change.before);
    const after = scopesOf(visibility, change.table, change.after);
    for (const scope of [...(before ?? []), ...(after ?? [])]) scopes.add(scope);
    const values = [
      change.table,
      change.action,
      JSON.stringify(encodeRich(change.key)),
      change.before ? JSON.stringify(encodeRich(change.before)) : null,
      change.after ? JSON.stringify(encodeRich(change.after)) : null,
      before ? JSON.stringify(before) : null,
      after ? JSON.stringify(after) : null,
      change.origin.clientGroupID,
      change.origin.clientID,
      change.origin.mutationID,
    ];
    const start = params.length;
    params.push(...values);
    const p = (i: number) => `$${start + i + 1}`;
    return `(${p(0)}, ${p(1)}, ${p(2)}::text::jsonb, ${p(3)}::text::jsonb, ${p(4)}::text::jsonb, ${p(5)}::text::jsonb, ${p(6)}::text::jsonb, ${p(7)}, ${p(8)}, ${p(9)})`;
  });
  const insert = `INSERT INTO ${tables.changes} ("table", "action", "key", "before", "after",
       "scopesBefore", "scopesAfter", "clientGroupID", "clientID", "mutationID")
     VALUES ${rows.join(', ')}`;
  if (db.capabilities.partialSQL) {
    await tx.query(insert, params);
    return;
  }
  // Listeners poke the clients whose scopes these are; a huge list just pokes everyone.
  // The NOTIFY rides in the same statement, saving a round trip per push. Its payload limit
  // (8000) is in bytes, and a non-ASCII scope takes up to 4 per character.
  const list = [...scopes];
  const payload = JSON.stringify(
    Buffer.byteLength(JSON.stringify(list)) > 7000 ? { all: true } : { scopes: list },
  );
  params.push(changeChannel(tables), payload);
  const statement = `WITH "inserted" AS (${insert} RETURNING 1)
     SELECT pg_notify($${params.length - 1}, $${params.length}) FROM (SELECT count(*) FROM "inserted") AS "n"`;
  // Nothing reads its result, so where the driver can, it goes out with the COMMIT.
  if (tx.queryAtCommit) tx.queryAtCommit(statement, params);
  else await tx.query(statement, params);
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
  scopesBefore: unknown;
  scopesAfter: unknown;
  clientGroupID: string | null;
  clientID: string | null;
  mutationID: number | string | null;
}

const parse = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);

function toChange(record: ChangeRecord): Change {
  const optional = (name: 'before' | 'after' | 'scopesBefore' | 'scopesAfter', decode: boolean) => {
    const value = parse(record[name]);
    if (value === null || value === undefined) return {};
    return { [name]: decode ? decodeRich(value) : value };
  };
  return {
    id: Number(record.id),
    table: record.table,
    action: record.action,
    key: decodeRich(parse(record.key)) as Row,
    ...optional('before', true),
    ...optional('after', true),
    ...optional('scopesBefore', false),
    ...optional('scopesAfter', false),
    clientGroupID: record.clientGroupID,
    clientID: record.clientID,
    mutationID: record.mutationID === null ? null : Number(record.mutationID),
  } as Change;
}

/**
 * The changes that committed after `since` and are visible to `tx`, in id order (which
 * orders each row's changes as they committed). Read them in the transaction whose
 * `currentCursor` becomes the next position, at repeatable read or stricter.
 */
export async function readChanges(
  tx: DatabaseTransaction,
  tables: EngineTables,
  since: ChangeCursor,
): Promise<Change[]> {
  const columns = `"id", "table", "action", "key", "before", "after", "scopesBefore",
    "scopesAfter", "clientGroupID", "clientID", "mutationID"`;
  const records =
    since.kind === 'id'
      ? await tx.query<ChangeRecord>(
          `SELECT ${columns} FROM ${tables.changes} WHERE "id" > $1 ORDER BY "id"`,
          [since.id],
        )
      : await tx.query<ChangeRecord>(
          `SELECT ${columns} FROM ${tables.changes}
           WHERE "txid" >= pg_snapshot_xmin($1::text::pg_snapshot)
             AND NOT pg_visible_in_snapshot("txid", $1::text::pg_snapshot)
           ORDER BY "id"`,
          [since.snapshot],
        );
  return records.map(toChange);
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
 * Deletes changes and mutation results older than `olderThanMs` (default 7 days) and
 * remembers how far it went, so that a reader whose position is older gets a reset instead
 * of a gap. Only changes of transactions that no running transaction can still see as in
 * progress are removed. The public entry is prune-changes.ts's `pruneChanges`.
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
      const deleted = db.capabilities.partialSQL
        ? await tx.query<{ id: number | string; txid?: string }>(
            `DELETE FROM ${tables.changes} WHERE "createdAt" < $1::timestamptz RETURNING "id"`,
            [cutoff],
          )
        : await tx.query<{ id: number | string; txid?: string }>(
            `DELETE FROM ${tables.changes}
             WHERE "createdAt" < $1::timestamptz
               AND "txid" < pg_snapshot_xmin(pg_current_snapshot())
             RETURNING "id", "txid"::text AS "txid"`,
            [cutoff],
          );
      if (deleted.length === 0) return { deleted: 0, deletedResults };
      const maxID = Math.max(...deleted.map((row) => Number(row.id)));
      if (db.capabilities.partialSQL) {
        await tx.query(
          `UPDATE ${tables.changelogState} SET "prunedThroughID" = greatest("prunedThroughID", $1)`,
          [maxID],
        );
      } else {
        const maxXid = deleted.reduce((max, row) => {
          const txid = BigInt(row.txid!);
          return txid > max ? txid : max;
        }, 0n);
        await tx.query(
          `UPDATE ${tables.changelogState} SET "prunedThroughID" = greatest("prunedThroughID", $1),
             "prunedBeforeXid" = greatest(coalesce("prunedBeforeXid", '0'::xid8), ($2::text)::xid8)`,
          [maxID, String(maxXid + 1n)],
        );
      }
      return { deleted: deleted.length, deletedResults };
    },
    { isolation: 'read committed' },
  );
}
