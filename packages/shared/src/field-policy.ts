import type { PgTable } from 'drizzle-orm/pg-core';
import type { AnySchema, AnyTables, ColumnInfo, TableInfo } from './schema';

/**
 * What clients may do with one column. `input: false`: a client may not set it (the CRUD
 * path refuses it, `filterInput` drops it); server code still may. `returned: false`: it
 * never leaves the server (pulls, queries, `tx.mutate` results and `filterOutput` omit it,
 * and the client's row types and store never have it).
 */
export interface FieldPolicy {
  readonly input?: boolean;
  readonly returned?: boolean;
}

/** Field policies of any schema: per table, per column. */
export type AnyFields = {
  readonly [table: string]: { readonly [column: string]: FieldPolicy } | undefined;
};

/** `createSchema`'s `fields` option: a wrong table or column name is a type error. */
export type FieldsOption<TTables extends AnyTables, F = AnyFields> = {
  readonly [K in keyof F]: K extends keyof TTables
    ? {
        readonly [C in keyof F[K]]: C extends keyof TTables[K]['$inferSelect']
          ? FieldPolicy
          : never;
      }
    : never;
};

type TablePolicies<F, T> = T extends keyof F ? NonNullable<F[T]> : Record<never, never>;

/** The columns of table `T` in field policies `F` whose policy has `P` (e.g. `{returned: false}`). */
type ColumnsWith<F, T, P> = {
  [C in keyof TablePolicies<F, T>]: TablePolicies<F, T>[C] extends P ? C : never;
}[keyof TablePolicies<F, T>] &
  string;

/** The `returned: false` columns of table `T` in field policies `F`. */
export type HiddenOf<F, T> = ColumnsWith<F, T, { readonly returned: false }>;

/** The property names of a table's `returned: false` columns. */
export type HiddenColumn<S extends AnySchema, T extends string> = HiddenOf<S['fields'], T>;

/** The property names of a table's `input: false` columns. */
export type ProtectedColumn<S extends AnySchema, T extends string> = ColumnsWith<
  S['fields'],
  T,
  { readonly input: false }
>;

/** A row without the named columns; the row itself when there are none. */
export type Without<R, K extends PropertyKey> = [K] extends [never] ? R : Omit<R, K>;

/** Refuses policies naming a column the table lacks, or hiding or protecting a key column. */
export function checkFieldPolicies(
  table: string,
  columns: ReadonlyMap<string, ColumnInfo>,
  primaryKey: readonly string[],
  policies: { readonly [column: string]: FieldPolicy | undefined } | undefined,
): void {
  for (const [key, policy] of Object.entries(policies ?? {})) {
    const where = `Field policy ${table}.${key}`;
    if (!columns.has(key)) throw new TypeError(`${where}: no column "${key}" in ${table}`);
    if (typeof policy !== 'object' || policy === null) {
      throw new TypeError(`${where}: a policy is {input?: boolean, returned?: boolean}`);
    }
    for (const [name, value] of Object.entries(policy)) {
      if ((name !== 'input' && name !== 'returned') || typeof value !== 'boolean') {
        throw new TypeError(`${where}: a policy is {input?: boolean, returned?: boolean}`);
      }
    }
    // Clients address rows by their key: a key they could not set or see could not sync.
    if (primaryKey.includes(key) && (policy.input === false || policy.returned === false)) {
      throw new TypeError(
        `${where}: a primary key column cannot be input: false or returned: false`,
      );
    }
  }
}

// createSchema registers each table's policies, so app code can pass the drizzle table.
const byTable = new WeakMap<PgTable, TableInfo[]>();

/** Remembers a table's policies for `filterInput`/`filterOutput` given the drizzle table. */
export function registerTableInfo(info: TableInfo): void {
  const known = byTable.get(info.table);
  if (known) known.push(info);
  else byTable.set(info.table, [info]);
}

const policyKey = (info: TableInfo) =>
  [...info.columns.values()].map((c) => `${c.key}:${c.input}:${c.returned}`).join(',');

function isTableInfo(table: PgTable | TableInfo): table is TableInfo {
  return (table as TableInfo).columns instanceof Map && 'primaryKey' in table;
}

/** The table's description, from a `TableInfo` or a drizzle table given to `createSchema`. */
function mustDescribe(table: PgTable | TableInfo, fn: string): TableInfo {
  if (isTableInfo(table)) return table;
  const known = byTable.get(table);
  if (!known?.length) {
    throw new TypeError(`${fn}: this table is not part of any createSchema`);
  }
  const first = known[0]!;
  if (known.some((info) => policyKey(info) !== policyKey(first))) {
    throw new TypeError(
      `${fn}: schemas declare different field policies for ${first.sqlName}; pass mustGetTable(schema, name)`,
    );
  }
  return first;
}

function without(
  row: object,
  info: TableInfo,
  drop: (column: ColumnInfo) => boolean,
): Record<string, unknown> {
  const names = new Set<string>();
  for (const column of info.columns.values()) {
    if (drop(column)) names.add(column.key).add(column.sqlName);
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) if (!names.has(name)) out[name] = value;
  return out;
}

/**
 * Drops from a client-supplied body every `input: false` column (by property or SQL name),
 * keeping everything else, fields that are not columns included. `table` is a drizzle table
 * given to `createSchema`, or `mustGetTable(schema, name)`.
 *
 * @example
 * const data = filterInput(await request.json(), user); // {email, password}: role dropped
 */
export function filterInput<R extends object>(body: R, table: PgTable | TableInfo): Partial<R> {
  const info = mustDescribe(table, 'filterInput');
  return without(body, info, (c) => !c.input) as Partial<R>;
}

/**
 * Drops every `returned: false` column (by property or SQL name) from a row, for code that
 * sends server-side rows (the entity API's, a change stream's) to a client.
 *
 * @example
 * return Response.json(filterOutput(await users.findOne({id}), user)); // no passwordHash
 */
export function filterOutput<R extends object>(row: R, table: PgTable | TableInfo): Partial<R> {
  const info = mustDescribe(table, 'filterOutput');
  if (info.hidden.length === 0) return { ...row };
  return without(row, info, (c) => !c.returned) as Partial<R>;
}
