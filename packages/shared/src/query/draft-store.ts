import { type AnySchema, mustGetTable, type TableInfo } from '../schema';
import type { DraftWrite, MemoryDraft, MemoryStore, StoreRow } from './store';
import { encodePrimaryKey, keyOf } from './values';

// A draft over a store: writes go to small per-table maps, reads see the store with the
// draft's writes laid over it, and `commit` writes them into the store. A mutation that
// throws leaves nothing behind, and one that succeeds costs what it wrote, not a copy of
// every table it touched.

interface Change {
  /** The row as written, or null for a delete. */
  readonly row: StoreRow | null;
  /** An object holding the primary key, to ask the store underneath about it. */
  readonly key: Readonly<Record<string, unknown>>;
}

export class DraftStore implements MemoryDraft<AnySchema> {
  private readonly changes = new Map<string, Map<unknown, Change>>();
  readonly schema: AnySchema;

  constructor(private readonly base: MemoryStore) {
    this.schema = base.schema;
  }

  private info(table: string): TableInfo {
    return mustGetTable(this.schema, table);
  }

  private changesOf(table: string): Map<unknown, Change> {
    let changes = this.changes.get(table);
    if (!changes) {
      this.info(table);
      changes = new Map();
      this.changes.set(table, changes);
    }
    return changes;
  }

  put(table: string, row: Readonly<Record<string, unknown>>): void {
    const pk = encodePrimaryKey(this.info(table), row, 'put');
    const stored = Object.freeze(Object.assign({}, row));
    this.changesOf(table).set(pk, { row: stored, key: stored });
  }

  delete(table: string, key: Readonly<Record<string, unknown>>): boolean {
    if (!this.get(table, key)) return false;
    const pk = encodePrimaryKey(this.info(table), key, 'delete');
    this.changesOf(table).set(pk, { row: null, key });
    return true;
  }

  get(table: string, key: Readonly<Record<string, unknown>>): StoreRow | undefined {
    const change = this.changes.get(table)?.get(encodePrimaryKey(this.info(table), key, 'get'));
    if (change) return change.row ?? undefined;
    return this.base.get(table as never, key as never) as StoreRow | undefined;
  }

  *scan(table: string): IterableIterator<StoreRow> {
    const changes = this.changes.get(table);
    if (!changes?.size) {
      yield* this.base.scan(table as never) as IterableIterator<StoreRow>;
      return;
    }
    const info = this.info(table);
    for (const row of this.base.scan(table as never) as IterableIterator<StoreRow>) {
      if (!changes.has(encodePrimaryKey(info, row, 'scan'))) yield row;
    }
    for (const { row } of changes.values()) if (row) yield row;
  }

  size(table: string): number {
    let size = this.base.size(table as never);
    for (const { row, key } of this.changes.get(table)?.values() ?? []) {
      const before = this.base.get(table as never, key as never) !== undefined;
      if (row && !before) size++;
      if (!row && before) size--;
    }
    return size;
  }

  createIndex(table: string): void {
    throw new TypeError(`createIndex(${table}): index the store, not a draft of it`);
  }

  hasIndex(table: string, column: string): boolean {
    return this.base.hasIndex(table as never, column);
  }

  lookup(table: string, column: string, value: unknown): ReadonlySet<StoreRow> {
    const found = this.base.lookup(table as never, column as never, value) as ReadonlySet<StoreRow>;
    const changes = this.changes.get(table);
    if (!changes?.size || value == null) return found;
    const info = this.info(table);
    const rows = new Set<StoreRow>();
    for (const row of found) {
      if (!changes.has(encodePrimaryKey(info, row, 'lookup'))) rows.add(row);
    }
    const kind = info.columns.get(column)!.compareAs;
    const wanted = keyOf(kind, value);
    for (const { row } of changes.values()) {
      if (row && row[column] != null && keyOf(kind, row[column]) === wanted) rows.add(row);
    }
    return rows;
  }

  clone(): MemoryStore {
    const copy = this.base.clone();
    applyChanges(this.changes, copy);
    return copy;
  }

  fork(): MemoryDraft<AnySchema> {
    return new DraftStore(this);
  }

  writes(): DraftWrite[] {
    const written: DraftWrite[] = [];
    for (const [table, byKey] of this.changes) {
      for (const { key } of byKey.values()) written.push({ table, key });
    }
    return written;
  }

  hold(table: string, key: Readonly<Record<string, unknown>>): void {
    const changes = this.changesOf(table);
    const pk = encodePrimaryKey(this.info(table), key, 'get');
    if (changes.has(pk)) return;
    const row = this.base.get(table as never, key as never) as StoreRow | undefined;
    changes.set(pk, { row: row ?? null, key: row ?? key });
  }

  commit(): DraftWrite[] {
    const written = this.writes();
    applyChanges(this.changes, this.base);
    this.changes.clear();
    return written;
  }
}

function applyChanges(changes: ReadonlyMap<string, ReadonlyMap<unknown, Change>>, to: MemoryStore) {
  for (const [table, byKey] of changes) {
    for (const { row, key } of byKey.values()) {
      if (row) to.put(table as never, row as never);
      else to.delete(table as never, key as never);
    }
  }
}
