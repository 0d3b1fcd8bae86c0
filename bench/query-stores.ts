import { createMemoryStore, type MemoryStore } from '@reprise/shared';
import { type QuerySchema, querySchema } from './query-app';
import type { QueryRows } from './query-rows';
import { median } from './report';

type Store = MemoryStore<QuerySchema>;

/** The item columns the indexed store has hash indexes on (it also indexes comment.itemID). */
export const ITEM_INDEXES = ['status', 'ownerID'] as const;

/** One loading step, timed over a few fresh stores. */
export interface LoadTiming {
  readonly step: string;
  readonly rows: number;
  readonly ms: number;
}

/** The same rows twice: without any index, and with ITEM_INDEXES and comment.itemID. */
export interface QueryStores {
  readonly plain: Store;
  readonly indexed: Store;
  readonly loads: readonly LoadTiming[];
}

function time(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

function putItems(store: Store, rows: QueryRows) {
  for (const row of rows.items) store.put('item', row);
}

function putAll(store: Store, rows: QueryRows) {
  for (const row of rows.users) store.put('user', row);
  putItems(store, rows);
  for (const row of rows.comments) store.put('comment', row);
}

/**
 * Loads `rows` into fresh stores `reps` times, timing each step (medians), then builds
 * the two stores the queries run on. The indexed one is a clone of the plain one, so both
 * hold the very same frozen row objects.
 */
export function loadStores(rows: QueryRows, reps: number): QueryStores {
  const steps = new Map<string, { rows: number; ms: number[] }>();
  const record = (step: string, count: number, fn: () => void) => {
    const entry = steps.get(step) ?? { rows: count, ms: [] };
    entry.ms.push(time(fn));
    steps.set(step, entry);
  };
  const items = rows.items.length;
  const total = rows.users.length + items + rows.comments.length;
  for (let rep = 0; rep < reps; rep++) {
    const plain = createMemoryStore(querySchema);
    record('put items, no index', items, () => putItems(plain, rows));
    for (const column of ITEM_INDEXES) {
      const step = `createIndex(item.${column}) over the loaded items`;
      record(step, items, () => plain.createIndex('item', column));
    }
    const indexed = createMemoryStore(querySchema);
    for (const column of ITEM_INDEXES) indexed.createIndex('item', column);
    const step = `put items, ${ITEM_INDEXES.length} indexes kept up to date`;
    record(step, items, () => putItems(indexed, rows));
    const all = createMemoryStore(querySchema);
    record('put users + items + comments, no index', total, () => putAll(all, rows));
    record('clone() the loaded store', total, () => all.clone());
  }
  const plain = createMemoryStore(querySchema);
  putAll(plain, rows);
  const indexed = plain.clone();
  for (const column of ITEM_INDEXES) indexed.createIndex('item', column);
  indexed.createIndex('comment', 'itemID');
  const loads = [...steps].map(([step, { rows: count, ms }]) => ({
    step,
    rows: count,
    ms: median(ms),
  }));
  return { plain, indexed, loads };
}
