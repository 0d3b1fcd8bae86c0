import { getTableColumns } from 'drizzle-orm';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';

/** The kind of value a column holds, as both sides of Reprise need to treat it. */
export type ColumnKind = 'string' | 'number' | 'bigint' | 'boolean' | 'date' | 'json' | 'other';

/** What Reprise knows about one column of a table. */
export interface ColumnInfo {
  /** The property name rows use (the key in the `pgTable` definition). */
  readonly key: string;
  /** The column's name in SQL. */
  readonly sqlName: string;
  readonly kind: ColumnKind;
  /** The SQL type as drizzle declares it, e.g. `timestamp with time zone`. */
  readonly sqlType: string;
  readonly notNull: boolean;
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
}

/** Any map of names to drizzle tables. */
export type AnyTables = Record<string, PgTable>;

/**
 * The app's schema: drizzle tables under the names mutators and queries use.
 * Type information stays in the `tables` member; `tableInfo` is what runtime code reads.
 */
export interface Schema<TTables extends AnyTables = AnyTables> {
  readonly tables: TTables;
  readonly tableInfo: ReadonlyMap<string, TableInfo>;
}

export type AnySchema = Schema<AnyTables>;

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

function kindOf(dataType: string, columnType: string): ColumnKind {
  switch (dataType) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'bigint':
      return 'bigint';
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'json':
      return 'json';
    default:
      return columnType === 'PgJson' || columnType === 'PgJsonb' ? 'json' : 'other';
  }
}

function describeTable(name: string, table: PgTable): TableInfo {
  const config = getTableConfig(table);
  const byColumn = new Map<unknown, string>();
  const columns = new Map<string, ColumnInfo>();
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    byColumn.set(column, key);
    columns.set(key, {
      key,
      sqlName: column.name,
      kind: kindOf(column.dataType, column.columnType),
      sqlType: column.getSQLType(),
      notNull: column.notNull,
    });
  }
  const primaryKey = [...columns.keys()].filter((key) => getTableColumns(table)[key]?.primary);
  for (const pk of config.primaryKeys) {
    for (const column of pk.columns) {
      const key = byColumn.get(column);
      if (key !== undefined && !primaryKey.includes(key)) primaryKey.push(key);
    }
  }
  if (primaryKey.length === 0) {
    throw new TypeError(`Table "${name}" has no primary key; Reprise needs one to address rows.`);
  }
  return {
    name,
    sqlName: config.name,
    sqlSchema: config.schema,
    columns,
    primaryKey,
    table,
  };
}

/**
 * Declares the app's schema from drizzle `pgTable` definitions. The keys are the names
 * mutators use (`tx.mutate.issue`); the SQL table names come from the definitions.
 *
 * @example
 * const issue = pgTable('issue', {id: text('id').primaryKey(), title: text('title').notNull()});
 * export const schema = createSchema({tables: {issue}});
 */
export function createSchema<TTables extends AnyTables>(definition: {
  tables: TTables;
}): Schema<TTables> {
  const tableInfo = new Map<string, TableInfo>();
  for (const [name, table] of Object.entries(definition.tables)) {
    tableInfo.set(name, describeTable(name, table));
  }
  return { tables: definition.tables, tableInfo };
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
