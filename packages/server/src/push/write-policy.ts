import type { AnySchema, ServerRowOf, TableName } from '@reprise/shared';
import { WriteForbiddenError } from './write-forbidden';

/** What an `allow` rule is told about the write it judges. */
export interface WriteRuleContext {
  /** `insert` also covers an upsert that creates; `update` one that changes a row. */
  readonly action: 'insert' | 'update' | 'delete';
  /** Which image of the row is judged: the row as stored, or as the write would leave it. */
  readonly image: 'existing' | 'new';
  /** The scope keys of the request (user id, tenant ids…). */
  readonly scopeKeys: ReadonlySet<string>;
  /** Runs SQL in the write's own transaction, so it sees the mutation's earlier writes. */
  readonly query: <R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ) => Promise<R[]>;
}

/**
 * Who may write one table's rows. Each rule says when a row lies inside the writer's scope;
 * an insert checks the new row, an update both the stored row and the row it would become,
 * a delete the stored row.
 */
export type WriteRule<S extends AnySchema, T extends TableName<S>> =
  /** A column that must equal one of the scope keys (a user id, a tenant id). */
  | { readonly owner: keyof ServerRowOf<S, T> & string }
  /** Owned through a parent row: `via` holds the parent's primary key; the parent's rule decides. */
  | { readonly parent: TableName<S>; readonly via: keyof ServerRowOf<S, T> & string }
  /** The app decides; it may query in the write's transaction. */
  | {
      readonly allow: (row: ServerRowOf<S, T>, ctx: WriteRuleContext) => boolean | Promise<boolean>;
    }
  /** Anyone who may push may write it (an audit log, a public board). */
  | 'unrestricted';

/** Per table, who may write its rows. A table left out of a policy refuses every write. */
export type WritePolicy<S extends AnySchema = AnySchema> = {
  readonly [T in TableName<S>]?: WriteRule<S, T>;
};

/** The scope keys of a request, or how to find them from what is being applied. */
export type ScopeKey<TSource> =
  | string
  | readonly string[]
  | ((source: TSource) => string | readonly string[] | null | undefined);

/**
 * Declares, per table, who may write its rows, checked on every write the engine makes
 * (`tx.mutate` in named mutators and the CRUD endpoint). Ownership is direct (a column equal
 * to a scope key), through a parent row to any depth, or an app function. Tables left out
 * refuse every write once a policy is in force.
 *
 * @example
 * const writePolicy = defineWritePolicy(schema, {
 *   issue: {owner: 'ownerID'},                  // ownerID must be a scope key
 *   comment: {parent: 'issue', via: 'issueID'}, // owned through its issue
 *   label: 'unrestricted',
 * });
 * handleMutateRequest({db, schema, mutators, request, userID, writePolicy}); // scope key: userID
 */
export function defineWritePolicy<S extends AnySchema>(
  schema: S,
  policy: WritePolicy<S>,
): WritePolicy<S> {
  const rules = policy as Record<string, unknown>;
  for (const [table, rule] of Object.entries(rules)) {
    const info = schema.tableInfo.get(table);
    const where = `defineWritePolicy: ${table}`;
    if (!info) throw new TypeError(`defineWritePolicy: unknown table "${table}"`);
    if (rule === 'unrestricted') continue;
    if (typeof rule !== 'object' || rule === null) {
      throw new TypeError(`${where}: a rule is {owner}, {parent, via}, {allow} or 'unrestricted'`);
    }
    const r = rule as { owner?: unknown; parent?: unknown; via?: unknown; allow?: unknown };
    if ('owner' in r) {
      if (typeof r.owner !== 'string' || !info.columns.has(r.owner)) {
        throw new TypeError(`${where}: "${String(r.owner)}" is not a column of ${table}`);
      }
    } else if ('parent' in r) {
      const parent = schema.tableInfo.get(String(r.parent));
      if (!parent) throw new TypeError(`${where}: unknown parent table "${String(r.parent)}"`);
      if (typeof r.via !== 'string' || !info.columns.has(r.via)) {
        throw new TypeError(`${where}: "${String(r.via)}" is not a column of ${table}`);
      }
      if (parent.primaryKey.length !== 1) {
        throw new TypeError(`${where}: parent ${parent.name} must have a one-column primary key`);
      }
      if (rules[parent.name] === undefined) {
        throw new TypeError(`${where}: parent ${parent.name} has no rule of its own`);
      }
    } else if (typeof r.allow !== 'function') {
      throw new TypeError(`${where}: a rule is {owner}, {parent, via}, {allow} or 'unrestricted'`);
    }
  }
  // A chain that comes back to a table it passed would never end; refuse it here.
  for (const start of Object.keys(rules)) {
    const seen = new Set<string>();
    let table: string | undefined = start;
    while (table !== undefined) {
      if (seen.has(table)) {
        throw new TypeError(`defineWritePolicy: the parent chain from ${start} loops at ${table}`);
      }
      seen.add(table);
      const rule = rules[table] as { parent?: string } | undefined;
      table = typeof rule === 'object' && rule !== null ? rule.parent : undefined;
    }
  }
  return policy;
}

/** The scope keys as a set; none when the source gives none. */
export function resolveScopeKeys<TSource>(
  scopeKey: ScopeKey<TSource> | undefined,
  source: TSource,
): ReadonlySet<string> {
  const value = typeof scopeKey === 'function' ? scopeKey(source) : scopeKey;
  if (value === null || value === undefined) return new Set();
  return new Set((typeof value === 'string' ? [value] : value).map(String));
}

/** The rule for a table, or a refusal when the policy does not name it. */
export function mustRule(
  policy: WritePolicy,
  table: string,
  key: Record<string, unknown>,
  action: WriteRuleContext['action'],
): Exclude<WriteRule<AnySchema, string>, undefined> {
  const rule = (policy as Record<string, WriteRule<AnySchema, string> | undefined>)[table];
  if (rule === undefined) {
    throw new WriteForbiddenError(table, key, action, `the write policy has no rule for ${table}`);
  }
  return rule;
}
