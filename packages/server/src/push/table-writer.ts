import { type AnySchema, type ColumnInfo, formatTimestamp, type TableInfo } from '@reprise/shared';
import { namingWrite, type PendingOrigin } from '../changes/capture';
import type { RecordedChange } from '../changes/changelog';
import { type DatabaseTransaction, quoteIdent } from '../db/database';
import { outputExpr, tableSQL } from '../query/query-sql';
import { decodeTableRow } from '../query/row-decoder';

type RowInput = Record<string, unknown>;

/** Encodes one value for its column; json goes as text and is cast, so every driver agrees. */
function encode(column: ColumnInfo, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.kind === 'json') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  // ISO text, not Date objects: drizzle's postgres.js setup passes date parameters through
  // unserialised, and every driver accepts the text form (microseconds, BC, infinity too).
  if (value instanceof Date) return formatTimestamp(value);
  return value;
}

/**
 * A row handed to a table writer that the table cannot take: not an object, a name that is
 * not a column, no primary key. A route answers it 400 (its body reached the write); a
 * push makes it the mutation's error, as any other.
 */
export class RowInputError extends TypeError {
  override readonly name = 'RowInputError';
}

function placeholder(column: ColumnInfo, index: number): string {
  return column.kind === 'json' ? `$${index}::text::${column.sqlType}` : `$${index}`;
}

/** The row's defined fields as columns, refusing any name the table does not have. */
function columnsOf(table: TableInfo, row: RowInput, op: string): ColumnInfo[] {
  if (typeof row !== 'object' || row === null) {
    throw new RowInputError(`${table.name}.${op} needs a row object`);
  }
  const columns: ColumnInfo[] = [];
  for (const [key, value] of Object.entries(row)) {
    const column = table.columns.get(key);
    if (!column) {
      throw new RowInputError(`${table.name}.${op}: "${key}" is not a column of ${table.name}`);
    }
    if (value !== undefined) columns.push(column);
  }
  return columns;
}

function keyColumns(table: TableInfo, row: RowInput, op: string): ColumnInfo[] {
  return table.primaryKey.map((key) => {
    if (row[key] === undefined || row[key] === null) {
      throw new RowInputError(`${table.name}.${op} needs the primary key "${key}"`);
    }
    return table.columns.get(key)!;
  });
}

// Built once per table: a push builds its table mutators anew for every mutation.
const returningClauses = new WeakMap<TableInfo, Map<boolean, string>>();

/** ` RETURNING` every column, in the form the row decoder reads. */
function returningClause(table: TableInfo, partialSQL: boolean): string {
  let clauses = returningClauses.get(table);
  if (!clauses) {
    clauses = new Map();
    returningClauses.set(table, clauses);
  }
  let clause = clauses.get(partialSQL);
  if (clause === undefined) {
    clause = ` RETURNING ${[...table.columns.values()]
      .map((c) => `${outputExpr(table.sqlName, c, partialSQL, false)} AS ${quoteIdent(c.key)}`)
      .join(', ')}`;
    clauses.set(partialSQL, clause);
  }
  return clause;
}

const BEFORE_CTE = 'reprise_before';
const BEFORE_PREFIX = 'reprise_before_';
const beforeImages = new WeakMap<TableInfo, BeforeImage | null>();

/** How an UPDATE returns the row's columns as the `"before"` CTE read them. */
interface BeforeImage {
  /** `"reprise_before"."id" AS "reprise_before_0", …`, to follow the RETURNING list. */
  readonly returning: string;
  /** Takes the before image out of a returned row, under the columns' own keys. */
  readonly split: (row: Record<string, unknown>) => Record<string, unknown>;
}

/** The table's before image for a one-statement update; none if a name could clash. */
function beforeImage(table: TableInfo): BeforeImage | undefined {
  let image = beforeImages.get(table);
  if (image === undefined) {
    const keys = [...table.columns.keys()];
    const clash = table.sqlName === BEFORE_CTE || keys.some((key) => key.startsWith(BEFORE_PREFIX));
    image = clash
      ? null
      : {
          returning: keys
            .map((key, i) => `"${BEFORE_CTE}".${quoteIdent(key)} AS "${BEFORE_PREFIX}${i}"`)
            .join(', '),
          split: (row) => Object.fromEntries(keys.map((key, i) => [key, row[BEFORE_PREFIX + i]])),
        };
    beforeImages.set(table, image);
  }
  return image ?? undefined;
}

/** How a table mutator reports what it wrote, for the changelog. */
export interface WriteCapture {
  /** Called once per row actually written, with its key and its rows before and after. */
  readonly record: (change: RecordedChange) => void;
}

/** What the writer needs besides the transaction. */
export interface WriterOptions {
  readonly schema: AnySchema;
  readonly partialSQL: boolean;
  /** pg-mem, which has no capture triggers: the engine records each write itself. */
  readonly capture?: WriteCapture | undefined;
  /** The running mutation's origin, named by the first write that writes a row. */
  readonly origin?: PendingOrigin | undefined;
}

/**
 * One table's writes by primary key, each resolving to the whole row as stored (every
 * column, defaults applied): `update` and `delete` to `undefined` when there was no row.
 */
export interface RowWriter {
  insert(row: RowInput): Promise<RowInput>;
  upsert(row: RowInput): Promise<RowInput>;
  update(row: RowInput): Promise<RowInput | undefined>;
  delete(key: RowInput): Promise<RowInput | undefined>;
}

/**
 * Builds the SQL for one table's four writes. Each write returns the row; with `capture`,
 * `update`/`upsert` also lock and read it first, so the change can be recorded.
 */
export function createTableMutator(
  table: TableInfo,
  tx: DatabaseTransaction,
  options: WriterOptions,
): RowWriter {
  return new TableWriter(table, tx, options);
}

/**
 * One table's writes over one transaction. A class, not closures: a push makes one per
 * table its mutation writes, and each closure made per push costs a lazy compile on its
 * first call.
 */
class TableWriter implements RowWriter {
  // No alias: pg-mem refuses one on UPDATE and DELETE, and the bare table name serves.
  private readonly name: string;
  private readonly returning: string;

  constructor(
    private readonly table: TableInfo,
    private readonly tx: DatabaseTransaction,
    private readonly options: WriterOptions,
  ) {
    this.name = tableSQL(table);
    this.returning = returningClause(table, options.partialSQL);
  }

  private decode(rows: Record<string, unknown>[]) {
    return rows.length ? decodeTableRow(this.table, rows[0]!) : undefined;
  }

  private keyOf(row: RowInput) {
    return Object.fromEntries(this.table.primaryKey.map((key) => [key, row[key]]));
  }

  private insertSQL(row: RowInput, op: string, onConflict: string) {
    const { table } = this;
    const columns = columnsOf(table, row, op);
    keyColumns(table, row, op);
    const names = columns.map((c) => quoteIdent(c.sqlName)).join(', ');
    const values = columns.map((c, i) => placeholder(c, i + 1)).join(', ');
    const params = columns.map((c) => encode(c, row[c.key]));
    return {
      text: `INSERT INTO ${this.name} (${names}) VALUES (${values})${onConflict}${this.returning}`,
      params,
      columns,
    };
  }

  private whereKey(row: RowInput, op: string, offset: number) {
    const keys = keyColumns(this.table, row, op);
    const alias = quoteIdent(this.table.sqlName);
    return {
      text: keys
        .map((c, i) => `${alias}.${quoteIdent(c.sqlName)} = $${offset + i + 1}`)
        .join(' AND '),
      params: keys.map((c) => encode(c, row[c.key])),
    };
  }

  /** Runs a write that returns every row it writes, naming the origin if still pending. */
  private async write(text: string, params: unknown[]) {
    const { origin } = this.options;
    const value = origin?.value;
    if (value === undefined) return this.tx.query(text, params);
    const naming = namingWrite(text, params, value);
    const rows = await this.tx.query(naming.text, naming.params);
    // No row written, no setting made: the next write names the origin.
    if (rows.length) origin!.named();
    return rows;
  }

  /** The row as it is now; with `lock`, locked until the transaction ends. */
  private async readRow(row: RowInput, op: string, lock: boolean) {
    const where = this.whereKey(row, op, 0);
    const forUpdate = lock && !this.options.partialSQL ? ' FOR UPDATE' : '';
    const rows = await this.tx.query(
      `SELECT ${this.returning.slice(' RETURNING '.length)} FROM ${this.name} WHERE ${where.text}${forUpdate}`,
      where.params,
    );
    return rows.length ? this.decode(rows) : undefined;
  }

  async insert(row: RowInput) {
    const { text, params } = this.insertSQL(row, 'insert', '');
    const after = this.decode(await this.write(text, params))!;
    this.options.capture?.record({
      table: this.table.name,
      action: 'create',
      key: this.keyOf(after),
      after,
    });
    return after;
  }

  async upsert(row: RowInput) {
    const { table, options } = this;
    const { capture } = options;
    const columns = columnsOf(table, row, 'upsert');
    const rest = columns.filter((c) => !table.primaryKey.includes(c.key));
    const pkList = table.primaryKey.map((key) => quoteIdent(table.columns.get(key)!.sqlName));
    const conflict = rest.length
      ? ` ON CONFLICT (${pkList.join(', ')}) DO UPDATE SET ${rest
          .map((c) => `${quoteIdent(c.sqlName)} = EXCLUDED.${quoteIdent(c.sqlName)}`)
          .join(', ')}`
      : ` ON CONFLICT (${pkList.join(', ')}) DO NOTHING`;
    const before = capture ? await this.readRow(row, 'upsert', true) : undefined;
    const { text, params } = this.insertSQL(row, 'upsert', conflict);
    const rows = await this.write(text, params);
    // DO NOTHING returns no row when the key was there: the row is as it was.
    if (!rows.length) return before ?? (await this.readRow(row, 'upsert', false))!;
    const after = this.decode(rows)!;
    const key = this.keyOf(after);
    capture?.record(
      before
        ? { table: table.name, action: 'update', key, before, after }
        : { table: table.name, action: 'create', key, after },
    );
    return after;
  }

  async update(input: RowInput) {
    const { table, options, name, returning } = this;
    const { capture, partialSQL } = options;
    const rest = columnsOf(table, input, 'update').filter((c) => !table.primaryKey.includes(c.key));
    const where = this.whereKey(input, 'update', rest.length);
    if (rest.length === 0) return this.readRow(input, 'update', false);
    const set = rest.map((c, i) => `${quoteIdent(c.sqlName)} = ${placeholder(c, i + 1)}`);
    const params = [...rest.map((c) => encode(c, input[c.key])), ...where.params];
    const images = capture && !partialSQL ? beforeImage(table) : undefined;
    if (images) {
      // One round trip: the CTE locks the row and reads it as it is, the UPDATE joins it
      // (so the CTE runs first) and returns the row before and after. No row, no change.
      const rows = await this.tx.query(
        `WITH "${BEFORE_CTE}" AS (SELECT ${returning.slice(' RETURNING '.length)} FROM ${name} WHERE ${where.text} FOR UPDATE)
           UPDATE ${name} SET ${set.join(', ')} FROM "${BEFORE_CTE}" WHERE ${where.text}${returning}, ${images.returning}`,
        params,
      );
      if (!rows.length) return undefined;
      const [row] = rows as [Record<string, unknown>];
      const before = this.decode([images.split(row)])!;
      const after = this.decode([row])!;
      capture!.record({
        table: table.name,
        action: 'update',
        key: this.keyOf(after),
        before,
        after,
      });
      return after;
    }
    const before = capture ? await this.readRow(input, 'update', true) : undefined;
    if (capture && !before) return undefined; // missing: update does nothing
    const rows = await this.write(
      `UPDATE ${name} SET ${set.join(', ')} WHERE ${where.text}${returning}`,
      params,
    );
    if (!rows.length) return undefined;
    const after = this.decode(rows)!;
    capture?.record({
      table: table.name,
      action: 'update',
      key: this.keyOf(after),
      before: before!,
      after,
    });
    return after;
  }

  async delete(key: RowInput) {
    const { table } = this;
    columnsOf(table, key, 'delete');
    const where = this.whereKey(key, 'delete', 0);
    const rows = await this.write(
      `DELETE FROM ${this.name} WHERE ${where.text}${this.returning}`,
      where.params,
    );
    if (!rows.length) return undefined;
    const before = this.decode(rows)!;
    this.options.capture?.record({
      table: table.name,
      action: 'delete',
      key: this.keyOf(before),
      before,
    });
    return before;
  }
}
