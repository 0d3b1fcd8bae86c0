import {
  type AnySchema,
  createMemoryStore,
  encodePrimaryKey,
  JSON_NULL,
  type MemoryStore,
  mustGetTable,
  type PatchOperation,
  parseTimestamp,
  type TableInfo,
  Timestamp,
} from '@reprise/shared';
import { type ClientStorage, type GroupRecord, groupKey, type StorageWrite } from './storage';

// The group's server snapshot on disk: each table's rows spread over BUCKETS keys by a hash
// of their primary key, so a pull rewrites only the buckets its patch touched (a reset
// rewrites them all) and a load reads a few large values, not one per row. The group
// record (cookie, last mutation ids) is written last, in the same batch where the storage
// has batches, so a reload never pairs a cookie with rows older than it.

/** Buckets per table. */
export const BUCKETS = 64;

export const bucketPrefix = (groupID: string) => `rows/${groupID}/`;
const bucketKey = (groupID: string, table: string, bucket: number) =>
  `${bucketPrefix(groupID)}${table}/${bucket}`;

/** FNV-1a of the encoded key, modulo BUCKETS. */
function bucketOf(key: unknown): number {
  const text = String(key);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

type Row = Record<string, unknown>;
type Special = readonly (readonly [key: string, kind: 'date' | 'json'])[];
const specialColumns = new WeakMap<TableInfo, Special>();

/** A table's date and json columns, whose values structured clone would not keep. */
function specialOf(info: TableInfo): Special {
  let columns = specialColumns.get(info);
  if (!columns) {
    columns = [...info.columns.values()].flatMap((c) =>
      c.kind === 'date' || c.kind === 'json' ? [[c.key, c.kind] as const] : [],
    );
    specialColumns.set(info, columns);
  }
  return columns;
}

/**
 * A row as storage keeps it. Structured clone turns a Timestamp into a plain Date, dropping
 * its microseconds and infinity, and JSON_NULL into `{}`. So a Timestamp is stored as its
 * text (a date column holds no other string) and JSON_NULL as `undefined` (a json column
 * of a pulled row is never undefined); `loadedRow` reads both back.
 */
function storableRow(info: TableInfo, row: Row): Row {
  let copy: Row | undefined;
  for (const [key, kind] of specialOf(info)) {
    const value = row[key];
    const stored =
      kind === 'date' && value instanceof Timestamp
        ? value.toISOString()
        : kind === 'json' && value === JSON_NULL
          ? undefined
          : value;
    if (stored !== value) {
      copy ??= { ...row };
      copy[key] = stored;
    }
  }
  return copy ?? row;
}

function loadedRow(info: TableInfo, row: Row): Row {
  let copy: Row | undefined;
  for (const [key, kind] of specialOf(info)) {
    const value = row[key];
    const loaded =
      kind === 'date' && typeof value === 'string'
        ? parseTimestamp(value)
        : kind === 'json' && value === undefined && key in row
          ? JSON_NULL
          : value;
    if (loaded !== value) {
      copy ??= { ...row };
      copy[key] = loaded;
    }
  }
  return copy ?? row;
}

/** Reads the snapshot: its buckets, and the rows a group record of the old shape holds. */
export async function loadSnapshot(
  schema: AnySchema,
  storage: ClientStorage,
  keys: readonly string[],
  groupID: string,
  group: GroupRecord | undefined,
): Promise<MemoryStore> {
  const store = createMemoryStore(schema);
  for (const [table, rows] of Object.entries(group?.rows ?? {})) {
    if (!schema.tableInfo.has(table)) continue;
    for (const row of rows) store.put(table, loadedRow(mustGetTable(schema, table), row));
  }
  const prefix = bucketPrefix(groupID);
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const table = key.slice(prefix.length, key.lastIndexOf('/'));
    if (!schema.tableInfo.has(table)) continue;
    const rows = (await storage.get(key)) as readonly Row[] | undefined;
    const info = mustGetTable(schema, table);
    for (const row of rows ?? []) store.put(table, loadedRow(info, row));
  }
  return store;
}

/**
 * The writes that store `snapshot` after `patch` was applied to it: the buckets the patch
 * touched (every bucket after a `clear`, or when `full`), an emptied one deleted, then the
 * group record. `full` is for a snapshot never stored in buckets (a record of the old shape).
 */
export function snapshotWrites(
  schema: AnySchema,
  snapshot: MemoryStore,
  patch: readonly PatchOperation[],
  group: GroupRecord,
  full: boolean,
): StorageWrite[] {
  const all = full || patch.some((op) => op.op === 'clear');
  const touched = new Map<string, Set<number>>();
  if (!all) {
    for (const op of patch) {
      if (op.op === 'clear' || !schema.tableInfo.has(op.tableName)) continue;
      const info = mustGetTable(schema, op.tableName);
      const key = encodePrimaryKey(info, op.op === 'put' ? op.value : op.id, op.op);
      const buckets = touched.get(op.tableName) ?? new Set<number>();
      touched.set(op.tableName, buckets);
      buckets.add(bucketOf(key));
    }
  }
  const writes: StorageWrite[] = [];
  for (const table of schema.tableInfo.keys()) {
    const wanted = all ? undefined : touched.get(table);
    if (!all && !wanted) continue;
    const info = mustGetTable(schema, table);
    const rows = new Map<number, Row[]>();
    for (const row of snapshot.scan(table)) {
      const bucket = bucketOf(encodePrimaryKey(info, row, 'store'));
      if (wanted && !wanted.has(bucket)) continue;
      const list = rows.get(bucket);
      const stored = storableRow(info, row);
      if (list) list.push(stored);
      else rows.set(bucket, [stored]);
    }
    for (const bucket of wanted ?? Array.from({ length: BUCKETS }, (_, i) => i)) {
      writes.push([bucketKey(group.clientGroupID, table, bucket), rows.get(bucket)]);
    }
  }
  writes.push([groupKey(group.clientGroupID), group]);
  return writes;
}
