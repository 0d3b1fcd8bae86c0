import type { AnySchema, ServerRowOf, TableName } from '@reprise/shared';

/** The scope every user sees: rows in it are public. */
export const PUBLIC_SCOPE = '*';

/** Who may see a row of one table: a column holding its scope, or a function of the row. */
export type TableVisibility<S extends AnySchema, T extends TableName<S>> =
  | (keyof ServerRowOf<S, T> & string)
  | ((row: ServerRowOf<S, T>) => string | readonly string[] | null | undefined);

/** Per table, who may see its rows. Tables left out are never synced to clients. */
export type Visibility<S extends AnySchema = AnySchema> = {
  readonly [T in TableName<S>]?: TableVisibility<S, T>;
};

/**
 * Declares, per table, the scope(s) a row belongs to. A user sees a row when one of the
 * row's scopes is among the scopes the app grants that user at pull time, or the row is
 * in `PUBLIC_SCOPE`. A row whose scope is null is seen by nobody.
 *
 * @example
 * const visibility = defineVisibility(schema, {
 *   issue: 'ownerID',
 *   comment: (row) => [`issue:${row.issueID}`, row.authorID],
 *   label: () => PUBLIC_SCOPE,
 * });
 */
export function defineVisibility<S extends AnySchema>(
  schema: S,
  visibility: Visibility<S>,
): Visibility<S> {
  for (const [table, rule] of Object.entries(visibility as Record<string, unknown>)) {
    const info = schema.tableInfo.get(table);
    if (!info) throw new TypeError(`defineVisibility: unknown table "${table}"`);
    if (typeof rule === 'string' && !info.columns.has(rule)) {
      throw new TypeError(`defineVisibility: "${rule}" is not a column of ${table}`);
    }
  }
  return visibility;
}

/** The scopes of `row` in `table`, or `undefined` when the table is not synced at all. */
export function scopesOf(
  visibility: Visibility | undefined,
  table: string,
  row: Record<string, unknown> | undefined,
): string[] | undefined {
  const rule = (visibility as Record<string, unknown> | undefined)?.[table] as
    | string
    | ((row: Record<string, unknown>) => unknown)
    | undefined;
  if (rule === undefined || row === undefined) return undefined;
  const value = typeof rule === 'string' ? row[rule] : rule(row);
  if (value === null || value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** True when a user holding `granted` may see a row in `scopes`. */
export function canSee(scopes: readonly string[] | null | undefined, granted: ReadonlySet<string>) {
  return !!scopes && scopes.some((scope) => scope === PUBLIC_SCOPE || granted.has(scope));
}
