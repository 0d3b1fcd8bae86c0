import {
  type AnySchema,
  createMemoryStore,
  encodePrimaryKey,
  JSON_NULL,
  type MemoryStore,
  mustGetTable,
  parseTimestamp,
  type StoreRow,
  type TableInfo,
  Timestamp,
} from '@reprise/shared';
import { type ClientStorage, type GroupRecord, groupKey, type StorageWrite } from './storage';

// The group's server snapshot on disk: each table's rows spread over buckets by a hash of
// their primary key, so a pull rewrites only the buckets its patch touched (a reset
// rewrites them all) and a load reads a few large values, not one per row. A table has 64
// buckets, and twice as many whenever it outgrows 32 rows a bucket, so what a pull
// rewrites stays small as the table grows; the counts are in the group record. The group
// record is written last, in the same batch where the storage has batches, so a reload
// never pairs a cookie with rows older than it. In memory, `SnapshotBuckets` keeps each
// bucket's rows, so a pull finds what to write without going over every row.

/** Buckets per table to start with; the layout before per-table counts had 64 for all. */
export const BUCKETS = 64;
/** A table's bucket count doubles once it holds more rows than this a bucket. */
const ROWS_PER_BUCKET = 32;

export const bucketPrefix = (groupID: string) => `rows/${groupID}/`;
const bucketKey = (groupID: string, table: string, bucket: number) =>
  `${bucketPrefix(groupID)}${table}/${bucket}`;

/** FNV-1a of the encoded key, modulo `count`. */
function bucketOf(key: unknown, count: number): number {
  const text = String(key);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/** The bucket count for `rows` rows: at least `from`, doubled until they fit. */
function bucketCount(rows: number, from = BUCKETS): number {
  let count = from;
  while (rows > count * ROWS_PER_BUCKET) count *= 2;
  return count;
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

/** A row a patch put or deleted: its table, encoded primary key and an object holding it. */
export interface PatchedRow {
  readonly table: string;
  readonly pk: unknown;
  readonly key: Readonly<Record<string, unknown>>;
}

interface TableBuckets {
  readonly info: TableInfo;
  count: number;
  /** The rows of each bucket, none where empty: the snapshot's own row objects. */
  rows: Array<StoreRow[] | undefined>;
  /** The buckets storage has a key for, as far as the writes handed out so far go. */
  readonly stored: Set<number>;
  /** The buckets to write next time. */
  readonly touched: Set<number>;
  /** Write every bucket next time (a reset, a new count, a layout to repair). */
  whole: boolean;
}

/**
 * The snapshot's rows by bucket, as the storage keeps them: a pull says which rows it
 * changed (`patched`) and gets the writes that store them (`writes`), at a cost that
 * follows the rows in the buckets it touched, not the size of the snapshot.
 */
export class SnapshotBuckets {
  private readonly tables = new Map<string, TableBuckets>();

  constructor(
    schema: AnySchema,
    private readonly groupID: string,
    counts: Readonly<Record<string, number>> | undefined,
  ) {
    for (const [name, info] of schema.tableInfo) {
      this.tables.set(name, {
        info,
        count: counts?.[name] ?? BUCKETS,
        rows: [],
        stored: new Set(),
        touched: new Set(),
        whole: false,
      });
    }
  }

  private mustTable(table: string): TableBuckets {
    const buckets = this.tables.get(table);
    if (!buckets) throw new TypeError(`Unknown table "${table}"`);
    return buckets;
  }

  /**
   * Sorts every row of `table` in `store` into buckets anew, to be written whole. Each
   * bucket's array is made to size: the arrays hold a reference per row of the snapshot.
   */
  private refill(table: TableBuckets, name: string, store: MemoryStore): void {
    const rows = [...store.scan(name)];
    const of = rows.map((row) => bucketOf(encodePrimaryKey(table.info, row, 'store'), table.count));
    const sizes = new Array<number>(table.count).fill(0);
    for (const bucket of of) sizes[bucket]!++;
    table.rows = sizes.map((size) => (size ? new Array<StoreRow>(size) : undefined));
    sizes.fill(0);
    rows.forEach((row, i) => {
      const bucket = of[i]!;
      table.rows[bucket]![sizes[bucket]!++] = row;
    });
    table.whole = true;
  }

  /** Notes that storage holds `bucket` of `table` (read at load). */
  noteStored(table: string, bucket: number): void {
    this.mustTable(table).stored.add(bucket);
  }

  /**
   * Every table from `store` again: after a clear (`whole`), or at load, where a table is
   * written whole next time only if its layout must change.
   */
  fill(store: MemoryStore, whole: boolean): void {
    for (const [name, table] of this.tables) {
      const count = bucketCount(store.size(name), table.count);
      const grown = count !== table.count;
      table.count = count;
      this.refill(table, name, store);
      table.whole = whole || grown;
    }
  }

  /** Takes in the rows a patch changed; `store` already holds them as patched. */
  patched(store: MemoryStore, rows: readonly PatchedRow[]): void {
    const grown = new Set<string>();
    for (const { table: name, pk, key } of rows) {
      const table = this.mustTable(name);
      const bucket = bucketOf(pk, table.count);
      const row = store.get(name, key);
      const list = table.rows[bucket] ?? [];
      const at = list.findIndex((r) => encodePrimaryKey(table.info, r, 'store') === pk);
      if (at < 0 && row) list.push(row);
      else if (row) list[at] = row;
      else if (at >= 0) list.splice(at, 1);
      table.rows[bucket] = list.length ? list : undefined;
      table.touched.add(bucket);
      if (store.size(name) > table.count * ROWS_PER_BUCKET) grown.add(name);
    }
    for (const name of grown) {
      const table = this.mustTable(name);
      table.count = bucketCount(store.size(name), table.count);
      this.refill(table, name, store);
    }
  }

  /**
   * The writes that store what changed since the last call: the buckets touched (every one
   * of a table to write whole, old keys of an earlier layout deleted), an emptied one
   * deleted, then the group record with each table's bucket count.
   */
  writes(group: GroupRecord): StorageWrite[] {
    const writes: StorageWrite[] = [];
    const counts: Record<string, number> = {};
    for (const [name, table] of this.tables) {
      counts[name] = table.count;
      const buckets = new Set(table.whole ? table.stored : table.touched);
      if (table.whole) {
        table.rows.forEach((rows, bucket) => {
          if (rows) buckets.add(bucket);
        });
      }
      for (const bucket of [...buckets].sort((x, y) => x - y)) {
        const rows = table.rows[bucket];
        writes.push([
          bucketKey(this.groupID, name, bucket),
          rows?.map((row) => storableRow(table.info, row)),
        ]);
        if (rows) table.stored.add(bucket);
        else table.stored.delete(bucket);
      }
      table.touched.clear();
      table.whole = false;
    }
    writes.push([groupKey(this.groupID), { ...group, buckets: counts }]);
    return writes;
  }
}

/**
 * Reads the snapshot: its buckets, and the rows a group record of the old shape holds.
 * A row found in a bucket its key does not hash to (a write cut short, without batches,
 * while a table's count grew) has the next writes redo the whole layout.
 */
export async function loadSnapshot(
  schema: AnySchema,
  storage: ClientStorage,
  keys: readonly string[],
  groupID: string,
  group: GroupRecord | undefined,
): Promise<{ store: MemoryStore; buckets: SnapshotBuckets }> {
  const store = createMemoryStore(schema);
  const buckets = new SnapshotBuckets(schema, groupID, group?.buckets);
  // An old-shape record's rows have never been in buckets: all are written at the next pull.
  let whole = group?.rows !== undefined;
  for (const [table, rows] of Object.entries(group?.rows ?? {})) {
    if (!schema.tableInfo.has(table)) continue;
    for (const row of rows) store.put(table, loadedRow(mustGetTable(schema, table), row));
  }
  const prefix = bucketPrefix(groupID);
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const slash = key.lastIndexOf('/');
    const table = key.slice(prefix.length, slash);
    if (!schema.tableInfo.has(table)) continue;
    const bucket = Number(key.slice(slash + 1));
    buckets.noteStored(table, bucket);
    const rows = (await storage.get(key)) as readonly Row[] | undefined;
    const info = mustGetTable(schema, table);
    const count = group?.buckets?.[table] ?? BUCKETS;
    for (const row of rows ?? []) {
      const loaded = loadedRow(info, row);
      whole ||= bucketOf(encodePrimaryKey(info, loaded, 'load'), count) !== bucket;
      store.put(table, loaded);
    }
  }
  buckets.fill(store, whole);
  return { store, buckets };
}
