import {
  type AnySchema,
  type DestOf,
  type MemoryStore,
  Query,
  type QueryResult,
  type RelatedField,
  type RelationshipName,
  type RowOf,
  runQuery,
  type TableName,
} from '@reprise/shared';
import { deepEqual } from './deep-equal';

// Live queries: each materialized query keeps its last result and is re-run whenever the
// client's view changes; subscribers hear only about results that changed.

/** A query kept up to date: `data` is its current result. */
export interface MaterializedView<TResult> {
  readonly data: TResult;
  /** Calls `listener` with each new result; returns the unsubscribe function. */
  subscribe(listener: (data: TResult) => void): () => void;
  destroy(): void;
}

type Result<R, TOne extends boolean> = TOne extends true ? R | undefined : R[];

/** A query bound to a client: the shared builder plus `run`, `materialize`, `subscribe`. */
export interface ClientQuery<
  S extends AnySchema,
  T extends TableName<S>,
  R = RowOf<S, T>,
  TOne extends boolean = false,
> extends Query<S, T, R, TOne> {
  one(): ClientQuery<S, T, R, true>;
  related<
    N extends RelationshipName<S, T>,
    Sub extends Query<S, DestOf<S, T, N>, any, any> = Query<S, DestOf<S, T, N>>,
  >(
    relationship: N,
    sub?: (q: Query<S, DestOf<S, T, N>>) => Sub,
  ): ClientQuery<S, T, R & RelatedField<S, T, N, Sub>, TOne>;
  /** The current result against the client's view (optimistic writes included). */
  run(): Promise<Result<R, TOne>>;
  materialize(): MaterializedView<Result<R, TOne>>;
  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: (data: Result<R, TOne>) => void): () => void;
}

/** `client.query`: a client-bound query per table. */
export type ClientQueryBuilder<S extends AnySchema> = {
  readonly [T in TableName<S>]: ClientQuery<S, T>;
};

interface Entry {
  readonly query: Query<any, any, any, any>;
  data: unknown;
  readonly listeners: Set<(data: unknown) => void>;
}

/** The set of live queries over a view that changes as a whole. */
export class LiveQueries {
  private readonly entries = new Set<Entry>();

  constructor(readonly view: () => MemoryStore) {}

  materialize<TResult>(query: Query<any, any, any, any>): MaterializedView<TResult> {
    const entry: Entry = {
      query,
      data: runQuery(this.view(), query),
      listeners: new Set(),
    };
    this.entries.add(entry);
    return {
      get data() {
        return entry.data as TResult;
      },
      subscribe: (listener) => {
        entry.listeners.add(listener as (data: unknown) => void);
        return () => entry.listeners.delete(listener as (data: unknown) => void);
      },
      destroy: () => {
        this.entries.delete(entry);
        entry.listeners.clear();
      },
    };
  }

  /** Re-runs every live query; notifies those whose result differs from the last one. */
  refresh(): void {
    for (const entry of this.entries) {
      const data = runQuery(this.view(), entry.query);
      if (deepEqual(data, entry.data)) continue;
      entry.data = data;
      for (const listener of entry.listeners) listener(data);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Wraps a shared `Query` so that every builder call returns a client-bound query. */
export function bindQuery(query: Query<any, any, any, any>, live: LiveQueries): unknown {
  return new Proxy(query, {
    get(target, prop, receiver) {
      if (prop === 'run') return async () => runQuery(live.view(), target);
      if (prop === 'materialize') return () => live.materialize(target);
      if (prop === 'subscribe') {
        return (listener: (data: unknown) => void) => {
          const view = live.materialize(target);
          view.subscribe(listener);
          listener(view.data);
          return () => view.destroy();
        };
      }
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof Query ? bindQuery(result, live) : result;
      };
    },
  });
}

/**
 * `client.query` for a schema: `client.query.issue.where('open', true).materialize()`.
 *
 * @example
 * const open = createClientQueryBuilder(schema, live).issue.where('open', true);
 * const rows = await open.run();
 */
export function createClientQueryBuilder<S extends AnySchema>(
  schema: S,
  live: LiveQueries,
): ClientQueryBuilder<S> {
  const builder: Record<string, unknown> = {};
  for (const name of schema.tableInfo.keys()) {
    builder[name] = bindQuery(new Query(schema, { table: name }, false), live);
  }
  return builder as ClientQueryBuilder<S>;
}

export type { QueryResult };
