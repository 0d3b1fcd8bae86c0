import type { AnySchema, PrimaryKey } from '../schema';
import type { ColumnName, RowOf, TableName } from './query';

// The contract of the in-memory stores: `memory-store.ts` implements it over tables of
// rows, `draft-store.ts` as writes laid over another store. Both import it, so neither
// needs the other's module for its types.

/** A row as the store holds it: drizzle property names, in-memory types, frozen. */
export type StoreRow = Readonly<Record<string, unknown>>;

/** An in-memory copy of some rows of a schema's tables. */
export interface MemoryStore<S extends AnySchema = AnySchema> {
  readonly schema: S;
  /** Inserts the row, or replaces the one with its primary key. The store keeps a copy. */
  put<T extends TableName<S>>(table: T, row: RowOf<S, T>): void;
  /** Removes the row with this primary key; false when there was none. */
  delete<T extends TableName<S>>(table: T, key: PrimaryKey<S['tables'][T]>): boolean;
  get<T extends TableName<S>>(
    table: T,
    key: PrimaryKey<S['tables'][T]>,
  ): Readonly<RowOf<S, T>> | undefined;
  /** Every row of the table, in no particular order. */
  scan<T extends TableName<S>>(table: T): IterableIterator<Readonly<RowOf<S, T>>>;
  size(table: TableName<S>): number;
  /**
   * Keeps a hash index from `column`'s values to its rows, maintained on every put and
   * delete, for `lookup` and the evaluator. Json columns cannot be indexed.
   */
  createIndex<T extends TableName<S>>(table: T, column: ColumnName<S, T>): void;
  hasIndex(table: TableName<S>, column: string): boolean;
  /**
   * The rows whose `column` equals `value` (none for null), through the index on it. A live
   * view, like `scan`: copy it before writing to the table while iterating.
   */
  lookup<T extends TableName<S>>(
    table: T,
    column: ColumnName<S, T>,
    value: unknown,
  ): ReadonlySet<Readonly<RowOf<S, T>>>;
  /** A copy that shares rows with this store until either of them writes to a table. */
  clone(): MemoryStore<S>;
  /**
   * A draft over this store: it reads this store with its own writes laid over, and this
   * store sees none of them until `commit()`. Writing costs what is written, not a copy.
   */
  fork(): MemoryDraft<S>;
}

/** A row a draft wrote or deleted: its table and an object holding its primary key. */
export interface DraftWrite {
  readonly table: string;
  readonly key: Readonly<Record<string, unknown>>;
}

/** Writes kept apart from the store they were forked from, until `commit`. */
export interface MemoryDraft<S extends AnySchema = AnySchema> extends MemoryStore<S> {
  /**
   * Writes the draft's changes into the store it came from, then empties the draft.
   * Returns the rows it wrote or deleted, once each, so a caller can tell where the store
   * changed without comparing it.
   */
  commit(): DraftWrite[];
  /** The rows `commit()` would write or delete now, once each. */
  writes(): DraftWrite[];
  /**
   * Holds the row `key` names as the store underneath has it now, or its absence, so later
   * writes to that store do not show through this draft there. A row the draft already
   * holds or wrote is left as it is. A draft that held every row before writing to its
   * store keeps reading that store as it was, and its `commit()` puts those rows back.
   */
  hold(table: string, key: Readonly<Record<string, unknown>>): void;
}
