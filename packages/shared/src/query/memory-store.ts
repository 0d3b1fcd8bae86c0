import { type AnySchema, mustGetTable, type TableInfo } from '../schema';
import { DraftStore } from './draft-store';
import type { MemoryDraft, MemoryStore, StoreRow } from './store';
import { encodePrimaryKey, keyOf } from './values';

// Rows by table and primary key, with optional hash indexes on single columns. Tables are
// copied on write, so `clone()` is cheap and a clone and its original never see each
// other's writes.

interface TableData {
  readonly rows: Map<unknown, StoreRow>;
  /** Column → value key → rows. Null values are not indexed: `=` never finds them. */
  readonly indexes: Map<string, Map<unknown, Set<StoreRow>>>;
}

interface TableMeta {
  readonly info: TableInfo;
}

function primaryKeyOf(meta: TableMeta, row: Readonly<Record<string, unknown>>, verb: string) {
  return encodePrimaryKey(meta.info, row, verb);
}

const EMPTY: ReadonlySet<StoreRow> = new Set();

function addToIndex(index: Map<unknown, Set<StoreRow>>, value: unknown, row: StoreRow) {
  if (value === null) return;
  const rows = index.get(value);
  if (rows) rows.add(row);
  else index.set(value, new Set([row]));
}

function removeFromIndex(index: Map<unknown, Set<StoreRow>>, value: unknown, row: StoreRow) {
  const rows = index.get(value);
  if (!rows) return;
  rows.delete(row);
  if (rows.size === 0) index.delete(value);
}

function copyTable(data: TableData): TableData {
  const indexes = new Map<string, Map<unknown, Set<StoreRow>>>();
  for (const [column, index] of data.indexes) {
    const copy = new Map<unknown, Set<StoreRow>>();
    for (const [value, rows] of index) copy.set(value, new Set(rows));
    indexes.set(column, copy);
  }
  return { rows: new Map(data.rows), indexes };
}

class InMemoryStore {
  /** Tables this store may write in place; the rest are shared with a clone. */
  private readonly owned = new Set<TableData>();

  constructor(
    readonly schema: AnySchema,
    private readonly meta: ReadonlyMap<string, TableMeta>,
    private readonly tables: Map<string, TableData>,
  ) {}

  private unknownTable(table: string): never {
    mustGetTable(this.schema, table); // throws, naming the tables there are
    throw new TypeError(`Unknown table "${table}"`);
  }

  private mustMeta(table: string): TableMeta {
    return this.meta.get(table) ?? this.unknownTable(table);
  }

  private read(table: string): TableData {
    return this.tables.get(table) ?? this.unknownTable(table);
  }

  private write(table: string): TableData {
    let data = this.read(table);
    if (!this.owned.has(data)) {
      data = copyTable(data);
      this.tables.set(table, data);
      this.owned.add(data);
    }
    return data;
  }

  private columnOf(table: string, column: string) {
    const info = this.mustMeta(table).info.columns.get(column);
    if (!info) throw new TypeError(`${table} has no column "${column}"`);
    return info;
  }

  put(table: string, row: Readonly<Record<string, unknown>>): void {
    const meta = this.mustMeta(table);
    const pk = primaryKeyOf(meta, row, 'put');
    const data = this.write(table);
    // Object.assign, unlike spread, gives the rows of a table one hidden class in V8,
    // which makes reading their fields in queries about twice as fast.
    const stored = Object.freeze(Object.assign({}, row));
    const old = data.rows.get(pk);
    data.rows.set(pk, stored);
    for (const [column, index] of data.indexes) {
      const kind = meta.info.columns.get(column)!.compareAs;
      if (old) removeFromIndex(index, keyOf(kind, old[column]), old);
      addToIndex(index, keyOf(kind, stored[column]), stored);
    }
  }

  delete(table: string, key: Readonly<Record<string, unknown>>): boolean {
    const meta = this.mustMeta(table);
    const pk = primaryKeyOf(meta, key, 'delete');
    const old = this.read(table).rows.get(pk);
    if (!old) return false;
    const data = this.write(table);
    data.rows.delete(pk);
    for (const [column, index] of data.indexes) {
      removeFromIndex(index, keyOf(meta.info.columns.get(column)!.compareAs, old[column]), old);
    }
    return true;
  }

  get(table: string, key: Readonly<Record<string, unknown>>): StoreRow | undefined {
    return this.read(table).rows.get(primaryKeyOf(this.mustMeta(table), key, 'get'));
  }

  scan(table: string): IterableIterator<StoreRow> {
    return this.read(table).rows.values();
  }

  size(table: string): number {
    return this.read(table).rows.size;
  }

  createIndex(table: string, column: string): void {
    const { kind, compareAs } = this.columnOf(table, column);
    if (kind === 'json' || kind === 'other') {
      throw new TypeError(`${table}.${column} is a ${kind} column: it cannot be indexed`);
    }
    if (this.hasIndex(table, column)) return;
    const data = this.write(table);
    const index = new Map<unknown, Set<StoreRow>>();
    for (const row of data.rows.values()) addToIndex(index, keyOf(compareAs, row[column]), row);
    data.indexes.set(column, index);
  }

  /** A single-column primary key is always indexed: the rows are keyed by it. */
  private isKey(table: string, column: string): boolean {
    const { primaryKey } = this.mustMeta(table).info;
    return primaryKey.length === 1 && primaryKey[0] === column;
  }

  hasIndex(table: string, column: string): boolean {
    return this.isKey(table, column) || this.read(table).indexes.has(column);
  }

  lookup(table: string, column: string, value: unknown): ReadonlySet<StoreRow> {
    if (this.isKey(table, column)) {
      if (value == null) return EMPTY;
      const row = this.get(table, { [column]: value });
      return row ? new Set([row]) : EMPTY;
    }
    const index = this.read(table).indexes.get(column);
    if (!index) throw new TypeError(`${table}.${column} has no index; call createIndex first`);
    if (value == null) return EMPTY;
    return (
      index.get(keyOf(this.mustMeta(table).info.columns.get(column)!.compareAs, value)) ?? EMPTY
    );
  }

  fork(): MemoryDraft {
    return new DraftStore(this as unknown as MemoryStore);
  }

  clone(): InMemoryStore {
    // Both stores now share every table; whichever writes to one first copies it.
    this.owned.clear();
    return new InMemoryStore(this.schema, this.meta, new Map(this.tables));
  }
}

/**
 * Makes an empty in-memory store for `schema`'s tables. Rows are keyed by primary key
 * (a composite key is encoded as one stable string); `createIndex` adds a hash index that
 * the query evaluator uses for `=` and `IN`. `clone()` copies tables only when written.
 *
 * @example
 * const store = createMemoryStore(schema);
 * store.createIndex('comment', 'issueID');
 * store.put('comment', {id: 'c1', issueID: 'i1', authorID: null, body: 'Same here', score: 0});
 * [...store.lookup('comment', 'issueID', 'i1')].map((c) => c.id); // ['c1']
 */
export function createMemoryStore<S extends AnySchema>(schema: S): MemoryStore<S> {
  const meta = new Map<string, TableMeta>();
  const tables = new Map<string, TableData>();
  for (const [name, info] of schema.tableInfo) {
    meta.set(name, { info });
    tables.set(name, { rows: new Map(), indexes: new Map() });
  }
  return new InMemoryStore(schema, meta, tables) as unknown as MemoryStore<S>;
}
