import type { AnySchema, ColumnInfo, TableInfo, TableMutator } from '@reprise/shared';
import { type DatabaseTransaction, quoteIdent } from './database';

type RowInput = Record<string, unknown>;

/** A table's SQL name, schema-qualified when the definition names a schema. */
function qualifiedName(table: TableInfo): string {
  return table.sqlSchema
    ? `${quoteIdent(table.sqlSchema)}.${quoteIdent(table.sqlName)}`
    : quoteIdent(table.sqlName);
}

/** Encodes one value for its column; json goes as text and is cast, so every driver agrees. */
function encode(column: ColumnInfo, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.kind === 'json') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  // ISO text, not Date objects: drizzle's postgres.js setup passes date parameters through
  // unserialised, and every driver accepts the text form.
  if (value instanceof Date) return value.toISOString();
  return value;
}

function placeholder(column: ColumnInfo, index: number): string {
  return column.kind === 'json' ? `$${index}::text::${column.sqlType}` : `$${index}`;
}

/** The row's defined fields as columns, refusing any name the table does not have. */
function columnsOf(table: TableInfo, row: RowInput, op: string): ColumnInfo[] {
  if (typeof row !== 'object' || row === null) {
    throw new TypeError(`${table.name}.${op} needs a row object`);
  }
  const columns: ColumnInfo[] = [];
  for (const [key, value] of Object.entries(row)) {
    const column = table.columns.get(key);
    if (!column) {
      throw new TypeError(`${table.name}.${op}: "${key}" is not a column of ${table.name}`);
    }
    if (value !== undefined) columns.push(column);
  }
  return columns;
}

function keyColumns(table: TableInfo, row: RowInput, op: string): ColumnInfo[] {
  return table.primaryKey.map((key) => {
    if (row[key] === undefined || row[key] === null) {
      throw new TypeError(`${table.name}.${op} needs the primary key "${key}"`);
    }
    return table.columns.get(key)!;
  });
}

/** Builds the SQL for one table's four writes. Statements are built per call shape. */
export function createTableMutator(
  table: TableInfo,
  tx: DatabaseTransaction,
): TableMutator<TableInfo['table']> {
  const name = qualifiedName(table);
  const pkList = table.primaryKey.map((key) => quoteIdent(table.columns.get(key)!.sqlName));

  const insertSQL = (row: RowInput, op: string, onConflict: string) => {
    const columns = columnsOf(table, row, op);
    keyColumns(table, row, op);
    const names = columns.map((c) => quoteIdent(c.sqlName)).join(', ');
    const values = columns.map((c, i) => placeholder(c, i + 1)).join(', ');
    const params = columns.map((c) => encode(c, row[c.key]));
    return {
      text: `INSERT INTO ${name} (${names}) VALUES (${values})${onConflict}`,
      params,
      columns,
    };
  };

  const whereKey = (row: RowInput, op: string, offset: number) => {
    const keys = keyColumns(table, row, op);
    return {
      text: keys.map((c, i) => `${quoteIdent(c.sqlName)} = $${offset + i + 1}`).join(' AND '),
      params: keys.map((c) => encode(c, row[c.key])),
    };
  };

  return {
    async insert(row) {
      const { text, params } = insertSQL(row as RowInput, 'insert', '');
      await tx.query(text, params);
    },
    async upsert(row) {
      const columns = columnsOf(table, row as RowInput, 'upsert');
      const rest = columns.filter((c) => !table.primaryKey.includes(c.key));
      const conflict = rest.length
        ? ` ON CONFLICT (${pkList.join(', ')}) DO UPDATE SET ${rest
            .map((c) => `${quoteIdent(c.sqlName)} = EXCLUDED.${quoteIdent(c.sqlName)}`)
            .join(', ')}`
        : ` ON CONFLICT (${pkList.join(', ')}) DO NOTHING`;
      const { text, params } = insertSQL(row as RowInput, 'upsert', conflict);
      await tx.query(text, params);
    },
    async update(row) {
      const input = row as RowInput;
      const rest = columnsOf(table, input, 'update').filter(
        (c) => !table.primaryKey.includes(c.key),
      );
      const where = whereKey(input, 'update', rest.length);
      if (rest.length === 0) return;
      const set = rest.map((c, i) => `${quoteIdent(c.sqlName)} = ${placeholder(c, i + 1)}`);
      await tx.query(`UPDATE ${name} SET ${set.join(', ')} WHERE ${where.text}`, [
        ...rest.map((c) => encode(c, input[c.key])),
        ...where.params,
      ]);
    },
    async delete(key) {
      const input = key as RowInput;
      columnsOf(table, input, 'delete');
      const where = whereKey(input, 'delete', 0);
      await tx.query(`DELETE FROM ${name} WHERE ${where.text}`, where.params);
    },
  };
}

/** `tx.mutate` for a schema: one table mutator per table, built on first use. */
export function createSchemaMutate(
  schema: AnySchema,
  tx: DatabaseTransaction,
): Record<string, TableMutator<TableInfo['table']>> {
  const built = new Map<string, TableMutator<TableInfo['table']>>();
  return new Proxy({} as Record<string, TableMutator<TableInfo['table']>>, {
    get(_target, prop) {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      let mutator = built.get(prop);
      if (!mutator) {
        const table = schema.tableInfo.get(prop);
        if (!table) {
          throw new TypeError(
            `tx.mutate.${prop}: no such table; the schema has ${[...schema.tableInfo.keys()].join(', ')}`,
          );
        }
        mutator = createTableMutator(table, tx);
        built.set(prop, mutator);
      }
      return mutator;
    },
  });
}
