import type { AnySchema } from '../schema';
import type {
  Condition,
  Direction,
  LiteralValue,
  QueryAST,
  RelatedQuery,
  SimpleCondition,
  SimpleOperator,
} from './ast';

// The typed, immutable query builder. Every method returns a new `Query`; `ast` is the plain
// tree the SQL compiler and the in-memory evaluator run.

export type TableName<S extends AnySchema> = keyof S['tables'] & string;
type TableOf<S extends AnySchema, T extends TableName<S>> = S['tables'][T];
/** A row as queries and clients see it: `returned: false` columns are not in it. */
export type RowOf<S extends AnySchema, T extends TableName<S>> = NonNullable<S['~rows']>[T];
/**
 * A row as server code reads it whole (write policies, visibility rules, change streams,
 * the entity API): `returned: false` columns included.
 */
export type ServerRowOf<S extends AnySchema, T extends TableName<S>> = TableOf<
  S,
  T
>['$inferSelect'];
export type ColumnName<S extends AnySchema, T extends TableName<S>> = keyof RowOf<S, T> & string;
type DataType<S extends AnySchema, T extends TableName<S>, C extends string> = TableOf<
  S,
  T
>['_']['columns'][C]['_']['dataType'];
type ValueOf<S extends AnySchema, T extends TableName<S>, C extends ColumnName<S, T>> = NonNullable<
  RowOf<S, T>[C]
>;

type EqualityOp = '=' | '!=' | 'IN' | 'NOT IN' | 'IS' | 'IS NOT';
type OrderedOp = EqualityOp | '<' | '<=' | '>' | '>=';
/** The operators a column takes, by its drizzle data type (json only tests for null). */
export type OperatorFor<D> = D extends 'string'
  ? OrderedOp | 'LIKE' | 'ILIKE'
  : D extends 'number' | 'bigint' | 'date'
    ? OrderedOp
    : D extends 'boolean'
      ? EqualityOp
      : 'IS' | 'IS NOT';

/** What a condition on `column` with `op` compares against. */
type OperandFor<V, Op> = Op extends 'IN' | 'NOT IN'
  ? readonly V[]
  : Op extends 'IS' | 'IS NOT'
    ? V | null
    : Op extends 'LIKE' | 'ILIKE'
      ? string
      : V | null;

type Relationships<S extends AnySchema, T extends TableName<S>> = NonNullable<
  S['relationships'][T]
>;
export type RelationshipName<S extends AnySchema, T extends TableName<S>> = keyof Relationships<
  S,
  T
> &
  string;
export type DestOf<
  S extends AnySchema,
  T extends TableName<S>,
  N extends RelationshipName<S, T>,
> = Relationships<S, T>[N]['table'] & TableName<S>;

/** Builds conditions for `where(eb => …)`. */
export interface ExpressionBuilder<S extends AnySchema, T extends TableName<S>> {
  cmp<C extends ColumnName<S, T>>(column: C, value: ValueOf<S, T, C> | null): Condition;
  cmp<C extends ColumnName<S, T>, Op extends OperatorFor<DataType<S, T, C>>>(
    column: C,
    op: Op,
    value: OperandFor<ValueOf<S, T, C>, Op>,
  ): Condition;
  and(...conditions: Condition[]): Condition;
  or(...conditions: Condition[]): Condition;
  not(condition: Condition): Condition;
  exists<N extends RelationshipName<S, T>>(
    relationship: N,
    sub?: (q: Query<S, DestOf<S, T, N>>) => Query<S, DestOf<S, T, N>, any, any>,
  ): Condition;
}

function simple(column: string, opOrValue: unknown, value: unknown, argc: number): SimpleCondition {
  return argc <= 2
    ? { type: 'simple', column, op: '=', value: opOrValue as LiteralValue }
    : { type: 'simple', column, op: opOrValue as SimpleOperator, value: value as LiteralValue };
}

/**
 * An immutable query over one table. `R` is the typed result row, `TOne` whether `one()`
 * made it return a single row (or `undefined`) instead of an array.
 */
export class Query<
  S extends AnySchema,
  T extends TableName<S>,
  R = RowOf<S, T>,
  TOne extends boolean = false,
> {
  /** Phantom: the type `run` resolves to. Never set at run time. */
  declare readonly '~result': TOne extends true ? R | undefined : R[];

  constructor(
    readonly schema: S,
    readonly ast: QueryAST & { readonly table: T },
    /** True after `one()`: the result is a single row or `undefined`. */
    readonly single: TOne,
  ) {}

  private with(patch: Partial<QueryAST>): this {
    return new Query(this.schema, { ...this.ast, ...patch }, this.single) as this;
  }

  private andWhere(condition: Condition): this {
    const current = this.ast.where;
    return this.with({
      where: current ? { type: 'and', conditions: [current, condition] } : condition,
    });
  }

  private expressions(): ExpressionBuilder<S, T> {
    return {
      cmp: (...args: [string, unknown, unknown?]) => simple(args[0], args[1], args[2], args.length),
      and: (...conditions) => ({ type: 'and', conditions }),
      or: (...conditions) => ({ type: 'or', conditions }),
      not: (condition) => ({ type: 'not', condition }),
      exists: (relationship, sub) => ({
        type: 'exists',
        relationship,
        subquery: this.subquery(relationship, sub).ast,
      }),
    } as ExpressionBuilder<S, T>;
  }

  private subquery(relationship: string, sub?: (q: any) => Query<S, any, any, any>) {
    const rel = this.schema.relationships[this.ast.table]?.[relationship];
    if (!rel) throw new TypeError(`${this.ast.table} has no relationship "${relationship}"`);
    const base = new Query(this.schema, { table: rel.table }, false);
    return sub ? sub(base) : base;
  }

  /**
   * Filters rows: `where(column, value)` for equality, `where(column, op, value)`, or
   * `where(eb => eb.or(…))` for combinations. Several `where`s are joined with AND. A
   * comparison with `null` is never true; use `IS` / `IS NOT` to test for null.
   */
  where<C extends ColumnName<S, T>>(column: C, value: ValueOf<S, T, C> | null): this;
  where<C extends ColumnName<S, T>, Op extends OperatorFor<DataType<S, T, C>>>(
    column: C,
    op: Op,
    value: OperandFor<ValueOf<S, T, C>, Op>,
  ): this;
  where(build: (eb: ExpressionBuilder<S, T>) => Condition): this;
  where(...args: [unknown, unknown?, unknown?]): this {
    const [first, opOrValue, value] = args;
    if (typeof first === 'function') return this.andWhere(first(this.expressions()));
    return this.andWhere(simple(first as string, opOrValue, value, args.length));
  }

  /** Keeps rows with at least one related row (matching `sub`, when given). */
  whereExists<N extends RelationshipName<S, T>>(
    relationship: N,
    sub?: (q: Query<S, DestOf<S, T, N>>) => Query<S, DestOf<S, T, N>, any, any>,
  ): this {
    return this.andWhere(this.expressions().exists(relationship, sub));
  }

  /** Orders by `column`; call again for further columns. The primary key breaks ties. */
  orderBy(column: ColumnName<S, T>, direction: Direction = 'asc'): this {
    return this.with({ orderBy: [...(this.ast.orderBy ?? []), [column, direction]] });
  }

  limit(count: number): this {
    if (!Number.isInteger(count) || count < 0) {
      throw new TypeError(`limit() takes a whole number ≥ 0, not ${count}`);
    }
    return this.with({ limit: count });
  }

  /** Starts after `row` in this query's ordering (at it, when `inclusive`): a cursor. */
  start(row: Partial<RowOf<S, T>>, options: { inclusive?: boolean } = {}): this {
    return this.with({
      start: { row: row as Record<string, LiteralValue>, inclusive: options.inclusive ?? false },
    });
  }

  /** Returns the first row, or `undefined` when none matches. */
  one(): Query<S, T, R, true> {
    return new Query(this.schema, { ...this.ast, limit: 1 }, true);
  }

  /** Nests the rows of `relationship` under its name, shaped by `sub`. */
  related<
    N extends RelationshipName<S, T>,
    Sub extends Query<S, DestOf<S, T, N>, any, any> = Query<S, DestOf<S, T, N>>,
  >(
    relationship: N,
    sub?: (q: Query<S, DestOf<S, T, N>>) => Sub,
  ): Query<S, T, R & RelatedField<S, T, N, Sub>, TOne> {
    const related: RelatedQuery = {
      relationship,
      subquery: this.subquery(relationship, sub).ast,
    };
    return new Query(
      this.schema,
      { ...this.ast, related: [...(this.ast.related ?? []), related] },
      this.single,
    );
  }
}

/** The field `related(name, sub)` adds to each row: a list for `many`, a row or undefined for `one`. */
export type RelatedField<
  S extends AnySchema,
  T extends TableName<S>,
  N extends RelationshipName<S, T>,
  Sub,
> = {
  readonly [K in N]: Relationships<S, T>[N]['cardinality'] extends 'many'
    ? Sub extends Query<any, any, infer SubR, any>
      ? SubR[]
      : never
    : Sub extends Query<any, any, infer SubR, any>
      ? SubR | undefined
      : never;
};

/** The rows a query resolves to. */
export type QueryResult<Q> = Q extends Query<any, any, any, any> ? Q['~result'] : never;

/** `q.<table>`: a query builder per table of the schema. */
export type QueryBuilder<S extends AnySchema> = { readonly [T in TableName<S>]: Query<S, T> };

/**
 * Makes `q`, the entry point of queries, typed from the schema.
 *
 * @example
 * const q = createBuilder(schema);
 * const open = q.issue.where('open', true).orderBy('createdAt', 'desc').limit(20);
 */
export function createBuilder<S extends AnySchema>(schema: S): QueryBuilder<S> {
  const builder: Record<string, Query<S, any>> = {};
  for (const name of schema.tableInfo.keys()) {
    builder[name] = new Query(schema, { table: name }, false);
  }
  return builder as QueryBuilder<S>;
}
