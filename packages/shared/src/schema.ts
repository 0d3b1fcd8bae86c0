import { getTableColumns } from 'drizzle-orm';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import { type ColumnKind, type CompareKind, describeColumn, joinClass } from './column-types';
import {
  type AnyFields,
  checkFieldPolicies,
  type FieldPolicy,
  type FieldsOption,
  type HiddenOf,
  registerTableInfo,
  type Without,
} from './field-policy';

export type { ColumnKind, CompareKind } from './column-types';

/** What Reprise knows about one column of a table. */
export interface ColumnInfo {
  /** The property name rows use (the key in the `pgTable` definition). */
  readonly key: string;
  /** The column's name in SQL. */
  readonly sqlName: string;
  readonly kind: ColumnKind;
  /** How its values compare: `kind`, or the SQL type's own rule (see `CompareKind`). */
  readonly compareAs: CompareKind;
  /** A `pgEnum` column's labels; a literal compared with the column must be one of them. */
  readonly enumValues?: readonly string[];
  /** The SQL type as drizzle declares it, e.g. `timestamp with time zone`. */
  readonly sqlType: string;
  /** Drizzle's column class name, e.g. `PgBigInt53`: it says how values are decoded. */
  readonly columnType: string;
  readonly notNull: boolean;
  /** False when a client may not set it (`input: false`): the CRUD path refuses it. */
  readonly input: boolean;
  /** False when it never leaves the server (`returned: false`): pulls and queries omit it. */
  readonly returned: boolean;
}

/** What Reprise knows about one table. */
export interface TableInfo {
  /** The name used in `tx.mutate.<name>` and `q.<name>`. */
  readonly name: string;
  readonly sqlName: string;
  readonly sqlSchema: string | undefined;
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  /** Property names of the primary key columns, in declaration order. */
  readonly primaryKey: readonly string[];
  readonly table: PgTable;
  /** Property names of its `returned: false` columns (empty for most tables). */
  readonly hidden: readonly string[];
}

/** Any map of names to drizzle tables. */
export type AnyTables = Record<string, PgTable>;

/** A relationship from one table to another, matched on equal columns. */
export interface Relationship<
  TDest extends string = string,
  TCardinality extends 'one' | 'many' = 'one' | 'many',
> {
  readonly cardinality: TCardinality;
  /** The destination table's schema name. */
  readonly table: TDest;
  /** Columns of the source table, matched pairwise with `destField`. */
  readonly sourceField: readonly string[];
  readonly destField: readonly string[];
}

/** Relationships per source table, by relationship name. */
export type AnyRelationships = {
  readonly [table: string]: { readonly [name: string]: Relationship } | undefined;
};

/**
 * The app's schema: drizzle tables under the names mutators and queries use, and the
 * relationships between them. Type information stays in `tables` and `relationships`;
 * `tableInfo` is what runtime code reads.
 */
export interface Schema<
  TTables extends AnyTables = AnyTables,
  TRelationships extends AnyRelationships = AnyRelationships,
  TFields extends AnyFields = AnyFields,
> {
  readonly tables: TTables;
  readonly relationships: TRelationships;
  /** The field policies as declared (`returned: false` columns leave the row types). */
  readonly fields: TFields;
  readonly tableInfo: ReadonlyMap<string, TableInfo>;
  /** Type only: each table's row as queries and clients see it (`RowOf`). */
  readonly '~rows'?: VisibleRows<TTables, TFields>;
}

export type AnySchema = Schema<AnyTables, AnyRelationships, AnyFields>;

export type { AnyFields, FieldPolicy, FieldsOption } from './field-policy';

/** Each table's row without its `returned: false` columns. */
export type VisibleRows<TTables extends AnyTables, TFields extends AnyFields> = {
  [K in keyof TTables]: Without<TTables[K]['$inferSelect'], HiddenOf<TFields, K>>;
};

/** A table's row as read from the database. */
export type Row<T extends PgTable> = T['$inferSelect'];
/** A table's row as accepted by insert and upsert (defaults may be omitted). */
export type InsertRow<T extends PgTable> = T['$inferInsert'];

type PrimaryKeyColumns<T extends PgTable> = {
  [K in keyof T['_']['columns']]: T['_']['columns'][K]['_']['isPrimaryKey'] extends true
    ? K
    : never;
}[keyof T['_']['columns']];

/**
 * The primary key fields of a row. Tables whose key is declared with a table-level
 * `primaryKey()` have no column-level marker, so there every field is optional in the
 * type and the key is checked at run time.
 */
export type PrimaryKey<T extends PgTable> = [PrimaryKeyColumns<T>] extends [never]
  ? Partial<Row<T>>
  : Pick<Row<T>, PrimaryKeyColumns<T> & keyof Row<T>>;

/** An update: the primary key plus any columns to change. */
export type UpdateRow<T extends PgTable> = PrimaryKey<T> & Partial<Row<T>>;

function describeTable(
  name: string,
  table: PgTable,
  policies: { readonly [column: string]: FieldPolicy | undefined } | undefined,
): TableInfo {
  const config = getTableConfig(table);
  // By SQL name: the columns `primaryKey()` holds are copies, not the table's own objects.
  const byColumn = new Map<string, string>();
  const columns = new Map<string, ColumnInfo>();
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    byColumn.set(column.name, key);
    columns.set(key, {
      key,
      sqlName: column.name,
      ...describeColumn(name, key, column),
      sqlType: column.getSQLType(),
      columnType: column.columnType,
      notNull: column.notNull,
      input: policies?.[key]?.input !== false,
      returned: policies?.[key]?.returned !== false,
    });
  }
  const primaryKey = [...columns.keys()].filter((key) => getTableColumns(table)[key]?.primary);
  for (const pk of config.primaryKeys) {
    for (const column of pk.columns) {
      const key = byColumn.get(column.name);
      if (key !== undefined && !primaryKey.includes(key)) primaryKey.push(key);
    }
  }
  if (primaryKey.length === 0) {
    throw new TypeError(`Table "${name}" has no primary key; Reprise needs one to address rows.`);
  }
  checkFieldPolicies(name, columns, primaryKey, policies);
  return {
    name,
    sqlName: config.name,
    sqlSchema: config.schema,
    columns,
    primaryKey,
    table,
    hidden: [...columns.values()].filter((c) => !c.returned).map((c) => c.key),
  };
}

type Fields = string | readonly string[];
const fields = (value: Fields): readonly string[] => (typeof value === 'string' ? [value] : value);

/** Builders handed to `createSchema`'s `relationships` callback. */
export interface RelationshipBuilders<TNames extends string> {
  one<TDest extends TNames>(
    table: TDest,
    on: { sourceField: Fields; destField: Fields },
  ): Relationship<TDest, 'one'>;
  many<TDest extends TNames>(
    table: TDest,
    on: { sourceField: Fields; destField: Fields },
  ): Relationship<TDest, 'many'>;
}

const relationshipBuilders: RelationshipBuilders<string> = {
  one: (table, on) => ({
    cardinality: 'one',
    table,
    sourceField: fields(on.sourceField),
    destField: fields(on.destField),
  }),
  many: (table, on) => ({
    cardinality: 'many',
    table,
    sourceField: fields(on.sourceField),
    destField: fields(on.destField),
  }),
};

function checkRelationships(tableInfo: ReadonlyMap<string, TableInfo>, all: AnyRelationships) {
  for (const [source, byName] of Object.entries(all)) {
    const from = tableInfo.get(source);
    if (!from) throw new TypeError(`Relationships are declared for unknown table "${source}"`);
    for (const [name, rel] of Object.entries(byName ?? {})) {
      const to = tableInfo.get(rel.table);
      const where = `Relationship ${source}.${name}`;
      if (!to) throw new TypeError(`${where} points at unknown table "${rel.table}"`);
      if (rel.sourceField.length === 0 || rel.sourceField.length !== rel.destField.length) {
        throw new TypeError(`${where} needs as many source fields as destination fields`);
      }
      for (const field of rel.sourceField) {
        if (!from.columns.has(field))
          throw new TypeError(`${where}: no column "${field}" in ${source}`);
        if (!from.columns.get(field)!.returned)
          throw new TypeError(`${where}: ${source}.${field} is returned: false`);
      }
      for (const field of rel.destField) {
        if (!to.columns.has(field))
          throw new TypeError(`${where}: no column "${field}" in ${rel.table}`);
        if (!to.columns.get(field)!.returned)
          throw new TypeError(`${where}: ${rel.table}.${field} is returned: false`);
      }
      rel.sourceField.forEach((field, i) => {
        const dest = rel.destField[i]!;
        const a = from.columns.get(field)!;
        const b = to.columns.get(dest)!;
        const aClass = joinClass(`${where}: ${source}.${field}`, a);
        const bClass = joinClass(`${where}: ${rel.table}.${dest}`, b);
        // Postgres would cast one side (char drops its padding, real widens, a timestamp
        // takes the session's time zone) or find no = at all (uuid = text).
        if (aClass !== bClass) {
          throw new TypeError(
            `${where} joins ${source}.${field} (${a.sqlType}) with ${rel.table}.${dest} (${b.sqlType}), ` +
              'which Postgres and the client compare differently; declare both with the same type.',
          );
        }
      });
    }
  }
}

/**
 * Declares the app's schema from drizzle `pgTable` definitions. The keys are the names
 * mutators and queries use (`tx.mutate.issue`, `q.issue`); the SQL table names come from
 * the definitions. Relationships are declared once here, for queries to follow.
 *
 * @example
 * const issue = pgTable('issue', {id: text('id').primaryKey(), title: text('title').notNull()});
 * export const schema = createSchema({
 *   tables: {issue, comment},
 *   relationships: ({one, many}) => ({
 *     issue: {comments: many('comment', {sourceField: 'id', destField: 'issueID'})},
 *     comment: {issue: one('issue', {sourceField: 'issueID', destField: 'id'})},
 *   }),
 *   // Field policies: passwordHash never leaves the server, clients may not set role.
 *   fields: {user: {passwordHash: {returned: false}, role: {input: false}}},
 * });
 */
export function createSchema<
  TTables extends AnyTables,
  const TRelationships extends {
    readonly [K in keyof TTables]?: {
      readonly [name: string]: Relationship<keyof TTables & string>;
    };
  } = Record<never, never>,
  const TFields extends AnyFields = Record<never, never>,
>(definition: {
  tables: TTables;
  relationships?: (builders: RelationshipBuilders<keyof TTables & string>) => TRelationships;
  /** Field policies: `{user: {passwordHash: {returned: false}, role: {input: false}}}`. */
  fields?: TFields & FieldsOption<TTables, TFields>;
}): Schema<TTables, TRelationships & AnyRelationships, TFields> {
  const fields = (definition.fields ?? {}) as TFields;
  for (const name of Object.keys(fields as object)) {
    if (!Object.hasOwn(definition.tables, name)) {
      throw new TypeError(`Field policies are declared for unknown table "${name}"`);
    }
  }
  const tableInfo = new Map<string, TableInfo>();
  for (const [name, table] of Object.entries(definition.tables)) {
    const info = describeTable(name, table, fields[name]);
    tableInfo.set(name, info);
    registerTableInfo(info);
  }
  const relationships = (definition.relationships?.(relationshipBuilders) ?? {}) as TRelationships &
    AnyRelationships;
  checkRelationships(tableInfo, relationships);
  return { tables: definition.tables, relationships, fields, tableInfo };
}

/** Looks a table up by its schema name, throwing a clear error when it is not there. */
export function mustGetTable(schema: AnySchema, name: string): TableInfo {
  const info = schema.tableInfo.get(name);
  if (!info) {
    const known = [...schema.tableInfo.keys()].join(', ');
    throw new TypeError(`Unknown table "${name}". The schema has: ${known}.`);
  }
  return info;
}
