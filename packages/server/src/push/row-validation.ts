import type { AnySchema, ColumnInfo, TableInfo } from '@reprise/shared';
import { getTableColumns } from 'drizzle-orm';
import type { CrudOperation } from './crud-protocol';

type Row = Record<string, unknown>;

/** What an operation asks the table writer to do. */
export interface CrudWrite {
  readonly kind: 'insert' | 'upsert' | 'update' | 'delete';
  readonly table: TableInfo;
  /** Under the schema's property names, values in their in-memory types, key included. */
  readonly row: Row;
}

/** Why an operation was refused before it reached the database. */
export type RefusalReason = 'unknownTable' | 'invalid';

export type ValidatedOperation =
  | { readonly ok: true; readonly write: CrudWrite }
  | { readonly ok: false; readonly reason: RefusalReason; readonly message: string };

/** Columns that must be given when a row is created: non-null, no default, not generated. */
const requiredColumns = new WeakMap<TableInfo, readonly string[]>();

function mustGive(table: TableInfo): readonly string[] {
  let required = requiredColumns.get(table);
  if (!required) {
    const columns = getTableColumns(table.table) as Record<
      string,
      { notNull: boolean; hasDefault: boolean; generated?: unknown; generatedIdentity?: unknown }
    >;
    required = Object.entries(columns)
      .filter(([, c]) => c.notNull && !c.hasDefault && !c.generated && !c.generatedIdentity)
      .map(([key]) => key);
    requiredColumns.set(table, required);
  }
  return required;
}

/** The schema's table for a name the client used: its schema name, alias, or SQL name. */
export function findTable(
  schema: AnySchema,
  name: string,
  aliases: Readonly<Record<string, string>> | undefined,
): TableInfo | undefined {
  const aliased = aliases && Object.hasOwn(aliases, name) ? aliases[name] : undefined;
  const direct = schema.tableInfo.get(aliased ?? name);
  if (direct) return direct;
  for (const table of schema.tableInfo.values()) if (table.sqlName === name) return table;
  return undefined;
}

const INTEGER_TYPE = /^(smallint|integer|int|int2|int4|smallserial|serial)\b/i;

/** A value for a refusal message: short, and never a throw (JSON has no bigint). */
function shown(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value)?.slice(0, 40) ?? typeof value;
}

/** One value in its column's in-memory type, or the reason it cannot be. */
function coerce(
  column: ColumnInfo,
  value: unknown,
  jsonAsText: boolean,
): { ok: true; value: unknown } | { ok: false; why: string } {
  if (value === null) return { ok: true, value: null };
  const wrong = (expected: string) => ({
    ok: false as const,
    why: `"${column.key}" must be ${expected}, not ${shown(value)}`,
  });
  switch (column.kind) {
    case 'string':
      return typeof value === 'string' ? { ok: true, value } : wrong('a string');
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return wrong('a number');
      if (INTEGER_TYPE.test(column.sqlType) && !Number.isInteger(value)) return wrong('an integer');
      return { ok: true, value };
    case 'bigint':
      // A client's push keeps bigint values as they are.
      if (typeof value === 'bigint') return { ok: true, value };
      if (typeof value === 'number' && Number.isSafeInteger(value)) {
        return { ok: true, value: BigInt(value) };
      }
      if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) {
        return { ok: true, value: BigInt(value) };
      }
      return wrong('an integer');
    case 'boolean':
      // PowerSync's SQLite keeps booleans as 0 and 1.
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 0 || value === 1) return { ok: true, value: value === 1 };
      return wrong('a boolean');
    case 'date': {
      if (value instanceof Date) {
        return Number.isNaN(value.getTime()) ? wrong('a timestamp') : { ok: true, value };
      }
      if (typeof value !== 'string' && typeof value !== 'number') return wrong('a timestamp');
      const date = new Date(value);
      return Number.isNaN(date.getTime()) ? wrong('a timestamp') : { ok: true, value: date };
    }
    case 'json':
      // PowerSync's SQLite keeps json as text; an outbox payload carries the value itself.
      if (jsonAsText && typeof value === 'string') {
        try {
          return { ok: true, value: JSON.parse(value) };
        } catch {
          return wrong('JSON text');
        }
      }
      return { ok: true, value };
    default:
      return { ok: true, value };
  }
}

/**
 * Checks an operation against the schema and turns it into a table write: the table must
 * exist, every field must be a column (by property or SQL name) of the right type, a
 * created row must have every non-null column without a default, the primary key may
 * not change, and no `input: false` column may be given. Each refusal names the column.
 *
 * @example
 * const checked = validateOperation(schema, op, undefined);
 * if (!checked.ok) refuse(checked.reason, checked.message);
 */
export function validateOperation(
  schema: AnySchema,
  op: CrudOperation,
  aliases: Readonly<Record<string, string>> | undefined,
): ValidatedOperation {
  const table = findTable(schema, op.table, aliases);
  if (!table) {
    return { ok: false, reason: 'unknownTable', message: `Unknown table "${op.table}"` };
  }
  const invalid = (message: string): ValidatedOperation => ({
    ok: false,
    reason: 'invalid',
    message: `${table.name}: ${message}`,
  });
  const powerSync = op.id !== undefined;
  const bySQLName = new Map([...table.columns.values()].map((c) => [c.sqlName, c]));
  const row: Row = {};
  for (const [name, raw] of Object.entries(op.data)) {
    if (raw === undefined) continue;
    const column = table.columns.get(name) ?? bySQLName.get(name);
    if (!column) return invalid(`"${name}" is not a column of ${table.name}`);
    if (Object.hasOwn(row, column.key)) return invalid(`"${column.key}" is given twice`);
    // Refused, not dropped: dropping would leave the client's optimistic row disagreeing
    // with the server's until its next pull, and hide the bug that sent it.
    if (!column.input) return invalid(`"${column.key}" cannot be set by a client (input: false)`);
    const coerced = coerce(column, raw, powerSync);
    if (!coerced.ok) return invalid(coerced.why);
    if (coerced.value === null && column.notNull && op.op !== 'DELETE' && op.op !== 'delete') {
      return invalid(`"${column.key}" cannot be null`);
    }
    row[column.key] = coerced.value;
  }

  if (powerSync) {
    // PowerSync addresses a row by its id: the table's one key column.
    if (table.primaryKey.length !== 1) {
      return invalid(`PowerSync operations need a one-column primary key`);
    }
    const keyColumn = table.columns.get(table.primaryKey[0]!)!;
    const key = coerce(keyColumn, op.id, false);
    if (!key.ok || key.value === null) return invalid(key.ok ? 'the id is null' : key.why);
    if (Object.hasOwn(row, keyColumn.key) && String(row[keyColumn.key]) !== String(key.value)) {
      return invalid(`the primary key "${keyColumn.key}" cannot change`);
    }
    row[keyColumn.key] = key.value;
  } else {
    const path = (op.source as { entityKeyPath?: readonly unknown[] }).entityKeyPath;
    for (const [i, name] of table.primaryKey.entries()) {
      if (row[name] === undefined || row[name] === null) {
        return invalid(`the payload has no primary key "${name}"`);
      }
      if (path && path[i] !== undefined && String(path[i]) !== String(row[name])) {
        return invalid(`the primary key "${name}" cannot change`);
      }
    }
  }

  if (op.op === 'DELETE' || op.op === 'delete') {
    const key = Object.fromEntries(table.primaryKey.map((name) => [name, row[name]]));
    return { ok: true, write: { kind: 'delete', table, row: key } };
  }
  const missing = mustGive(table).find((name) => row[name] === undefined);
  if (op.op === 'PUT' || op.op === 'create') {
    if (missing !== undefined) return invalid(`missing non-null column "${missing}"`);
  }
  // An outbox `update` recreates a row deleted meanwhile when it carries a whole one, as
  // Prisma IDB's own server does; a partial one only changes a row that exists.
  const kind =
    op.op === 'create'
      ? 'insert'
      : op.op === 'PATCH' || (op.op === 'update' && missing !== undefined)
        ? 'update'
        : 'upsert';
  return { ok: true, write: { kind, table, row } };
}
