import {
  type AnySchema,
  type Condition,
  coerceLiteral,
  parseQueryAST,
  QueryError,
  rowFilterCondition,
  type TableInfo,
} from '@reprise/shared';
import { type DatabaseTransaction, quoteIdent } from '../db/database';
import { compileCondition, fullOrdering, orderBySQL } from '../query/query-conditions';
import { outputExpr, Params, tableSQL } from '../query/query-sql';
import { decodeRows } from '../query/row-decoder';

type Row = Record<string, unknown>;

/** How a `where` object is read. */
export interface RowFilterOptions {
  readonly partialSQL: boolean;
  /**
   * Server-only code (the entity API) may filter on `returned: false` columns; `tx.mutate`
   * may not, since the client's run of the same mutator could not.
   */
  readonly allowHidden: boolean;
  /** Lock the rows found (`FOR UPDATE`), for a write that follows. */
  readonly lock: boolean;
  /** Reads may match every row with `{}`; writes must name a column. */
  readonly allowEmpty?: boolean;
}

/**
 * The rows of `table` matching `where`, whole (every column), in primary key order, read
 * in the write's own transaction.
 *
 * @example
 * const rows = await selectMatching(tx, schema, table, {ownerID: 'ana'}, 'issue.update', opts);
 */
export async function selectMatching(
  tx: DatabaseTransaction,
  schema: AnySchema,
  table: TableInfo,
  where: unknown,
  what: string,
  options: RowFilterOptions,
): Promise<Row[]> {
  const alias = table.sqlName;
  const params = new Params(options.partialSQL);
  let aliases = 0;
  const ctx = {
    schema,
    partialSQL: options.partialSQL,
    params,
    nextAlias: () => `w${aliases++}`,
  };
  let test: string;
  try {
    if (
      options.allowEmpty &&
      typeof where === 'object' &&
      where !== null &&
      Object.keys(where).length === 0
    ) {
      test = 'TRUE';
    } else {
      test = compileWhere();
    }
  } catch (error) {
    if (error instanceof QueryError) throw new TypeError(`${what}: ${error.message}`);
    throw error;
  }
  function compileWhere(): string {
    const condition = rowFilterCondition(table, where, what);
    return compileCondition(
      ctx,
      table,
      alias,
      options.allowHidden
        ? coerceAll(table, condition, what)
        : // The query checker: a returned: false column is refused, literals take their types.
          parseQueryAST(schema, { table: table.name, where: condition }).where!,
    );
  }
  const columns = [...table.columns.values()]
    .map((c) => `${outputExpr(alias, c, options.partialSQL, false)} AS ${quoteIdent(c.key)}`)
    .join(', ');
  const order = orderBySQL(alias, fullOrdering(table, { table: table.name }), options.partialSQL);
  const lock = options.lock && !options.partialSQL ? ' FOR UPDATE' : '';
  const { text, params: values } = params.finish(
    `SELECT ${columns} FROM ${tableSQL(table)} WHERE ${test} ORDER BY ${order}${lock}`,
  );
  return decodeRows(schema, { table: table.name }, await tx.query(text, values));
}

function coerceAll(table: TableInfo, condition: Condition, what: string): Condition {
  if (condition.type !== 'and') return condition;
  return {
    type: 'and',
    conditions: condition.conditions.map((c) => {
      if (c.type !== 'simple') return c;
      const column = table.columns.get(c.column)!;
      return { ...c, value: coerceLiteral(column, c.value, `${what}: where.${c.column}`) };
    }),
  };
}
