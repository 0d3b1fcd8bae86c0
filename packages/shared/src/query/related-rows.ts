import type { AnySchema, CompareKind, Relationship } from '../schema';
import type { MemoryStore, StoreRow } from './store';
import { keyOf, tupleKeyOf } from './values';

// Finding a parent's related rows: a related row matches when each `destField` equals the
// parent's `sourceField`, and null never matches. A single destination column with a
// store index is looked up there; otherwise the destination table is grouped by its
// destination fields once per evaluation, so each parent costs one hash lookup.

/** The rows of `relationship`'s table that belong to `parent` (before any subquery). */
export type RelatedLookup = (relationship: Relationship, parent: StoreRow) => Iterable<StoreRow>;

const NONE: readonly StoreRow[] = [];

/** The rows related to `parent`. */
type Finder = (parent: StoreRow) => Iterable<StoreRow>;

function groupRows(store: MemoryStore, relationship: Relationship, kinds: readonly CompareKind[]) {
  const { table, destField } = relationship;
  const groups = new Map<unknown, StoreRow[]>();
  for (const row of store.scan(table) as Iterable<StoreRow>) {
    const values = destField.map((field) => row[field]);
    if (values.some((value) => value == null)) continue;
    const key = tupleKeyOf(kinds, values);
    const rows = groups.get(key);
    if (rows) rows.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

function finderFor(store: MemoryStore, schema: AnySchema, relationship: Relationship): Finder {
  const { table, sourceField, destField } = relationship;
  const columns = schema.tableInfo.get(table)!.columns;
  const kinds = destField.map((field) => columns.get(field)!.compareAs);
  if (sourceField.length === 1) {
    const source = sourceField[0]!;
    const dest = destField[0]!;
    if (store.hasIndex(table, dest)) {
      return (parent) => {
        const value = parent[source];
        return value == null ? NONE : store.lookup(table, dest, value);
      };
    }
    const kind = kinds[0]!;
    let groups: Map<unknown, StoreRow[]> | undefined;
    return (parent) => {
      const value = parent[source];
      if (value == null) return NONE;
      groups ??= groupRows(store, relationship, kinds);
      return groups.get(keyOf(kind, value)) ?? NONE;
    };
  }
  let groups: Map<unknown, StoreRow[]> | undefined;
  return (parent) => {
    const values = sourceField.map((field) => parent[field]);
    if (values.some((value) => value == null)) return NONE;
    groups ??= groupRows(store, relationship, kinds);
    return groups.get(tupleKeyOf(kinds, values)) ?? NONE;
  };
}

/**
 * Makes a lookup for one evaluation. It resolves each relationship once and groups an
 * unindexed destination table on first use, so make a new one per query run.
 */
export function createRelatedLookup(store: MemoryStore, schema: AnySchema): RelatedLookup {
  const finders = new Map<Relationship, Finder>();
  return (relationship, parent) => {
    let find = finders.get(relationship);
    if (!find) {
      find = finderFor(store, schema, relationship);
      finders.set(relationship, find);
    }
    return find(parent);
  };
}
