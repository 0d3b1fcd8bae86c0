import {
  type AnySchema,
  parseQueryAST,
  type QueryAST,
  QueryError,
  type RelatedQuery,
  type TableInfo,
} from '@reprise/shared';
import { quoteIdent } from '../db/database';
import {
  and,
  type ConditionContext,
  compileCondition,
  compileCursor,
  fullOrdering,
  mustTable,
  orderBySQL,
} from './query-conditions';
import {
  columnRef,
  joinEqualSQL,
  nameLiteral,
  nestedOutputExpr,
  outputExpr,
  Params,
  requireFullSQL,
  tableSQL,
} from './query-sql';

// Query ASTs to one parameterised SQL statement, by the rules in
// packages/shared/src/query/SEMANTICS.md. Related rows nest as JSON built by correlated
// subqueries, so a whole tree is one round trip.

const visibleColumns = (table: TableInfo) => [...table.columns.values()].filter((c) => c.returned);

/** One SQL statement and its parameters, for `DatabaseTransaction.query`. */
export interface CompiledQuery {
  readonly text: string;
  readonly params: readonly unknown[];
}

export interface CompileOptions {
  /**
   * Compile for a database that runs only part of Postgres's SQL (pg-mem; the adapter says
   * so in `capabilities.partialSQL`): no `COLLATE`, and a clear `QueryError` for what it
   * cannot run at all, `related()` first among them.
   */
  readonly partialSQL?: boolean | undefined;
}

// json_build_object takes at most 100 arguments: 50 key/value pairs.
const PAIRS_PER_OBJECT = 50;

class Compiler implements ConditionContext {
  readonly params: Params;
  private aliases = 0;

  constructor(
    readonly schema: AnySchema,
    readonly partialSQL: boolean,
  ) {
    this.params = new Params(partialSQL);
  }

  nextAlias(): string {
    return `t${this.aliases++}`;
  }

  /** The top-level statement: columns under their property names, related as JSON. */
  select(ast: QueryAST): string {
    const table = mustTable(this.schema, ast.table);
    const alias = this.nextAlias();
    // returned: false columns are not read: clients never have them, and queries agree.
    const columns = visibleColumns(table).map(
      (column) =>
        `${outputExpr(alias, column, this.partialSQL, false)} AS ${quoteIdent(column.key)}`,
    );
    const related = (ast.related ?? []).map(
      (r) => `${this.related(table, alias, r)} AS ${quoteIdent(r.relationship)}`,
    );
    return this.rows(table, alias, ast, [...columns, ...related].join(', '), []);
  }

  /** `SELECT list FROM table WHERE … ORDER BY … LIMIT …`, with `extra` ANDed in. */
  private rows(
    table: TableInfo,
    alias: string,
    ast: QueryAST,
    list: string,
    extra: readonly string[],
    limit = ast.limit,
    windowOrdinal = false,
  ): string {
    const ordering = fullOrdering(table, ast);
    const orderBy = orderBySQL(alias, ordering, this.partialSQL);
    const where = and([
      ...extra,
      ast.where ? compileCondition(this, table, alias, ast.where) : 'TRUE',
      ast.start ? compileCursor(this, alias, ordering, ast.start) : 'TRUE',
    ]);
    // The ordinal lets the aggregate above keep this ordering, which SQL does not promise.
    const ordinal = windowOrdinal ? `, row_number() OVER (ORDER BY ${orderBy}) AS "n"` : '';
    return [
      `SELECT ${list}${ordinal} FROM ${tableSQL(table)} AS ${quoteIdent(alias)}`,
      where === 'TRUE' ? '' : ` WHERE ${where}`,
      ` ORDER BY ${orderBy}`,
      limit === undefined ? '' : ` LIMIT ${this.params.add(limit)}`,
    ].join('');
  }

  /**
   * A related subquery, correlated with the parent row: a JSON array of objects for
   * `many` (in the subquery's ordering, after its where, cursor and limit), the first
   * object or NULL for `one`.
   */
  private related(
    parent: TableInfo,
    parentAlias: string,
    { relationship, subquery }: RelatedQuery,
  ) {
    requireFullSQL(
      this.partialSQL,
      `related("${relationship}")`,
      'it has no correlated subqueries and no json_build_object',
    );
    const rel = this.schema.relationships[parent.name]?.[relationship];
    if (!rel) throw new QueryError(`${parent.name} has no relationship "${relationship}"`);
    const table = mustTable(this.schema, subquery.table);
    const alias = this.nextAlias();
    const join = rel.destField.map((key, i) => {
      const dest = table.columns.get(key)!;
      const source = columnRef(parentAlias, parent.columns.get(rel.sourceField[i]!)!);
      return joinEqualSQL(columnRef(alias, dest), source, dest, this.partialSQL);
    });
    // Decided before building the object: building it would register its parameters.
    if (rel.cardinality === 'one' && subquery.limit === 0) return 'NULL';
    const object = this.jsonObject(table, alias, subquery);
    if (rel.cardinality === 'one') {
      return `(${this.rows(table, alias, subquery, object, join, 1)})`;
    }
    const inner = this.rows(table, alias, subquery, `${object} AS "j"`, join, subquery.limit, true);
    const rowsAlias = quoteIdent(this.nextAlias());
    return `(SELECT coalesce(json_agg(${rowsAlias}."j" ORDER BY ${rowsAlias}."n"), '[]'::json) FROM (${inner}) AS ${rowsAlias})`;
  }

  /** One row as a JSON object keyed by property names, its own related rows nested. */
  private jsonObject(table: TableInfo, alias: string, ast: QueryAST): string {
    const pairs = [
      ...visibleColumns(table).map(
        (column) =>
          `${nameLiteral(column.key)}, ${nestedOutputExpr(alias, column, this.partialSQL)}`,
      ),
      ...(ast.related ?? []).map(
        (r) => `${nameLiteral(r.relationship)}, ${this.related(table, alias, r)}`,
      ),
    ];
    if (pairs.length <= PAIRS_PER_OBJECT) return `json_build_object(${pairs.join(', ')})`;
    // Wider rows merge jsonb objects: jsonb keeps numbers exact (as numeric) and only
    // reorders keys, which the decoder does not read.
    const chunks: string[] = [];
    for (let i = 0; i < pairs.length; i += PAIRS_PER_OBJECT) {
      chunks.push(`jsonb_build_object(${pairs.slice(i, i + PAIRS_PER_OBJECT).join(', ')})`);
    }
    return `(${chunks.join(' || ')})`;
  }
}

/**
 * Compiles a query AST to one parameterised statement that returns its rows: columns under
 * their property names, related rows as JSON. The AST is checked against the schema first
 * (`QueryError` for unknown names or values that do not fit); values only ever travel as
 * parameters. Decode the rows with the query's AST to get SEMANTICS.md's in-memory types;
 * `runQuery` does both.
 *
 * @example
 * const {text, params} = compileQuery(schema, q.issue.where('open', true).limit(10).ast);
 * const rows = await dbTransaction.query(text, params);
 */
export function compileQuery(
  schema: AnySchema,
  ast: QueryAST,
  options: CompileOptions = {},
): CompiledQuery {
  const checked = parseQueryAST(schema, ast);
  const compiler = new Compiler(schema, options.partialSQL ?? false);
  const text = compiler.select(checked);
  return compiler.params.finish(text);
}
