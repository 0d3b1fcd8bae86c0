import type { AnySchema, ColumnInfo, TableInfo } from '@reprise/shared';
import {
  DatabaseError,
  type DatabaseTransaction,
  type IsolationLevel,
  quoteIdent,
} from '../db/database';
import { outputExpr, tableSQL } from '../query/query-sql';
import { decodeRows } from '../query/row-decoder';
import type { RowWriter } from './table-writer';
import { WriteForbiddenError } from './write-forbidden';
import { mustRule, type WritePolicy, type WriteRule, type WriteRuleContext } from './write-policy';

type Row = Record<string, unknown>;
type Rule = Exclude<WriteRule<AnySchema, string>, undefined>;

/** Wraps one table's `tx.mutate` so that each write is checked against the write policy. */
export type WriteGuard = (
  table: TableInfo,
  mutator: RowWriter,
  tx: DatabaseTransaction,
  /** The same table's mutator over another transaction (a savepoint's). */
  build: (tx: DatabaseTransaction) => RowWriter,
) => RowWriter;

/** What the guard checks writes against. */
export interface WriteGuardOptions {
  readonly policy: WritePolicy;
  readonly schema: AnySchema;
  readonly scopeKeys: ReadonlySet<string>;
  /** pg-mem: no row locks (it has no concurrency to guard against). */
  readonly partialSQL: boolean;
  /**
   * The transaction's isolation. Under read committed each statement sees rows committed
   * since the check, so a write that found no row must not reach one committed later.
   */
  readonly isolation: IsolationLevel;
}

// A chain deeper than this is a data loop (a parent row pointing back down): refuse it.
const MAX_DEPTH = 32;

function param(column: ColumnInfo, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.kind === 'json') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  return value;
}

/** The row's primary key, or undefined when a key column is missing (the writer says so). */
function keyOf(table: TableInfo, row: Row): Row | undefined {
  const key: Row = {};
  for (const name of table.primaryKey) {
    if (row?.[name] === undefined || row[name] === null) return undefined;
    key[name] = row[name];
  }
  return key;
}

function sqlStateOf(error: unknown): unknown {
  return error instanceof DatabaseError ? error.sqlState : (error as { code?: unknown })?.code;
}

/** True when the row names a column the table lacks: the writer refuses it with its own message. */
function hasUnknownColumn(table: TableInfo, row: Row): boolean {
  return (
    typeof row !== 'object' || row === null || Object.keys(row).some((k) => !table.columns.has(k))
  );
}

// Built once per table and lock: a guard is made for every mutation.
const selects = new WeakMap<TableInfo, Map<string, string>>();

/** `SELECT` every column of the row with the given primary key, in the decoder's form. */
function selectSQL(table: TableInfo, lock: string, partialSQL: boolean): string {
  let byLock = selects.get(table);
  if (!byLock) {
    byLock = new Map();
    selects.set(table, byLock);
  }
  const cacheKey = `${partialSQL}${lock}`;
  let text = byLock.get(cacheKey);
  if (text === undefined) {
    const columns = [...table.columns.values()]
      .map((c) => `${outputExpr(table.sqlName, c, partialSQL, false)} AS ${quoteIdent(c.key)}`)
      .join(', ');
    const where = table.primaryKey
      .map((name, i) => {
        const column = table.columns.get(name)!;
        return `${quoteIdent(table.sqlName)}.${quoteIdent(column.sqlName)} = $${i + 1}`;
      })
      .join(' AND ');
    text = `SELECT ${columns} FROM ${tableSQL(table)} WHERE ${where}${lock}`;
    byLock.set(cacheKey, text);
  }
  return text;
}

/** The row as the write would leave it: the stored row with the given columns over it. */
function merged(existing: Row, row: Row): Row {
  const next = { ...existing };
  for (const [name, value] of Object.entries(row)) if (value !== undefined) next[name] = value;
  return next;
}

/** True when a rule's verdict on the new image can differ from its verdict on the stored one. */
function chainMayMove(rule: Rule, existing: Row, next: Row): boolean {
  if (rule === 'unrestricted') return false;
  if ('owner' in rule) return String(existing[rule.owner]) !== String(next[rule.owner]);
  if ('parent' in rule) return String(existing[rule.via]) !== String(next[rule.via]);
  return true;
}

/**
 * The write guard of one request: `tx.mutate` asks it before every insert, upsert, update
 * and delete. Stored rows are read in the write's own transaction, the row itself `FOR
 * UPDATE`, so the chain checked is the chain the write commits against. Parents are read
 * `FOR KEY SHARE` under read committed only: at repeatable read and serializable the
 * snapshot already holds them still (a concurrent change fails one side with 40001), and
 * a lock taken from each mutation's savepoint would cost a multixact on every shared parent.
 *
 * @example
 * const scopeKeys = new Set(['ana']);
 * const guard = createWriteGuard({policy, schema, scopeKeys, partialSQL: false, isolation: 'serializable'});
 * const mutate = createSchemaMutate(tx, {schema, partialSQL: false, guard});
 */
export function createWriteGuard(options: WriteGuardOptions): WriteGuard {
  const { policy, schema, scopeKeys, partialSQL } = options;
  const statementSnapshots = options.isolation === 'read committed' && !partialSQL;

  const readRow = async (
    tx: DatabaseTransaction,
    table: TableInfo,
    key: Row,
    lock: 'FOR UPDATE' | 'FOR KEY SHARE' | '',
  ): Promise<Row | undefined> => {
    const keys = table.primaryKey.map((name) => table.columns.get(name)!);
    const rows = await tx.query(
      selectSQL(table, partialSQL || !lock ? '' : ` ${lock}`, partialSQL),
      keys.map((c) => param(c, key[c.key])),
    );
    return rows.length ? decodeRows(schema, { table: table.name }, rows)[0] : undefined;
  };

  /** Why `row` of `table` is outside the scope, or undefined when it is inside. */
  const whyOutside = async (
    tx: DatabaseTransaction,
    table: TableInfo,
    row: Row,
    ctx: WriteRuleContext,
    depth: number,
  ): Promise<string | undefined> => {
    const rule = mustRule(policy, table.name, keyOf(table, row) ?? {}, ctx.action);
    if (rule === 'unrestricted') return undefined;
    if ('owner' in rule) {
      const owner = row[rule.owner];
      if (owner === null || owner === undefined) return `${table.name}.${rule.owner} is empty`;
      return scopeKeys.has(String(owner))
        ? undefined
        : `${table.name}.${rule.owner} is not one of your scope keys`;
    }
    if ('parent' in rule) {
      const parentKey = row[rule.via];
      if (parentKey === null || parentKey === undefined)
        return `${table.name}.${rule.via} is empty`;
      if (depth >= MAX_DEPTH) return `its ownership chain is deeper than ${MAX_DEPTH}`;
      const parent = schema.tableInfo.get(rule.parent)!;
      const parentRow = await readRow(
        tx,
        parent,
        { [parent.primaryKey[0]!]: parentKey },
        statementSnapshots ? 'FOR KEY SHARE' : '',
      );
      if (!parentRow)
        return `its parent ${parent.name} ${JSON.stringify(parentKey)} does not exist`;
      return whyOutside(tx, parent, parentRow, ctx, depth + 1);
    }
    return (await rule.allow(row as never, ctx))
      ? undefined
      : `the policy of ${table.name} does not allow it`;
  };

  const require = async (
    tx: DatabaseTransaction,
    table: TableInfo,
    row: Row,
    key: Row,
    action: WriteRuleContext['action'],
    image: WriteRuleContext['image'],
  ) => {
    const ctx: WriteRuleContext = {
      action,
      image,
      scopeKeys,
      query: (sql, params) => tx.query(sql, params),
    };
    const why = await whyOutside(tx, table, row, ctx, 0);
    if (why === undefined) return;
    const prefix =
      image === 'new' && action === 'update' ? 'the new values are out of scope: ' : '';
    throw new WriteForbiddenError(table.name, key, action, prefix + why);
  };

  /** Checks a change of a stored row: the row as it is, then as it would be. */
  const requireChange = async (
    tx: DatabaseTransaction,
    table: TableInfo,
    existing: Row,
    row: Row,
  ) => {
    const key = keyOf(table, existing)!;
    await require(tx, table, existing, key, 'update', 'existing');
    const next = merged(existing, row);
    const rule = mustRule(policy, table.name, key, 'update');
    if (chainMayMove(rule, existing, next)) await require(tx, table, next, key, 'update', 'new');
  };

  return (table, mutator, tx, build) => ({
    async insert(row) {
      const input = row as Row;
      await require(tx, table, input, keyOf(table, input) ?? {}, 'insert', 'new');
      return mutator.insert(row);
    },
    async upsert(row) {
      const input = row as Row;
      const key = keyOf(table, input);
      if (!key || hasUnknownColumn(table, input)) return mutator.upsert(row); // the writer refuses it
      const existing = await readRow(tx, table, key, 'FOR UPDATE');
      if (existing) {
        await requireChange(tx, table, existing, input);
        return mutator.upsert(row);
      }
      await require(tx, table, input, key, 'insert', 'new');
      // Stricter levels fail an upsert that meets a row its snapshot cannot see (40001,
      // retried). Read committed would overwrite it unchecked: insert, and if the key was
      // taken meanwhile, check the row that took it.
      if (!statementSnapshots) return mutator.upsert(row);
      try {
        return await tx.savepoint((inner) => build(inner).insert(row));
      } catch (error) {
        if (sqlStateOf(error) !== '23505') throw error; // unique_violation
        const taken = await readRow(tx, table, key, 'FOR UPDATE');
        if (!taken) throw error;
        await requireChange(tx, table, taken, input);
        return mutator.upsert(row);
      }
    },
    async update(row) {
      const input = row as Row;
      const key = keyOf(table, input);
      if (!key || hasUnknownColumn(table, input)) return mutator.update(row); // the writer refuses it
      // No row: the update changes nothing, and must not reach one committed since.
      const existing = await readRow(tx, table, key, 'FOR UPDATE');
      if (!existing) return;
      await requireChange(tx, table, existing, input);
      return mutator.update(row);
    },
    async delete(keyRow) {
      const key = keyOf(table, keyRow as Row);
      if (!key || hasUnknownColumn(table, keyRow as Row)) return mutator.delete(keyRow);
      const existing = await readRow(tx, table, key, 'FOR UPDATE');
      if (!existing) return;
      await require(tx, table, existing, key, 'delete', 'existing');
      return mutator.delete(keyRow);
    },
  });
}
