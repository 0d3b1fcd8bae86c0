import { z } from 'zod';

// A query is a plain, serialisable tree. The builder makes one; `parseQueryAST` checks one
// that came over the wire against the schema. Both the SQL compiler and the in-memory
// evaluator read only this.

/** Operators that compare a column with a value. */
export const SIMPLE_OPERATORS = [
  '=',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'IN',
  'NOT IN',
  'LIKE',
  'ILIKE',
  'IS',
  'IS NOT',
] as const;
export type SimpleOperator = (typeof SIMPLE_OPERATORS)[number];

/** A literal a condition compares with. Dates travel as ISO strings on the wire. */
export type LiteralValue = string | number | boolean | bigint | Date | null;

export interface SimpleCondition {
  readonly type: 'simple';
  readonly column: string;
  readonly op: SimpleOperator;
  /** An array for `IN` / `NOT IN`; `null` is allowed only for `IS` / `IS NOT`. */
  readonly value: LiteralValue | readonly LiteralValue[];
}

export interface ConjunctionCondition {
  readonly type: 'and' | 'or';
  readonly conditions: readonly Condition[];
}

export interface NotCondition {
  readonly type: 'not';
  readonly condition: Condition;
}

/** True when the row has at least one related row matching `subquery`. */
export interface ExistsCondition {
  readonly type: 'exists';
  readonly relationship: string;
  readonly subquery: QueryAST;
}

export type Condition = SimpleCondition | ConjunctionCondition | NotCondition | ExistsCondition;

export type Direction = 'asc' | 'desc';
export type Ordering = readonly (readonly [column: string, direction: Direction])[];

/** Rows after (or from, when inclusive) `row` in the query's ordering. */
export interface Cursor {
  readonly row: Readonly<Record<string, LiteralValue>>;
  readonly inclusive: boolean;
}

export interface RelatedQuery {
  readonly relationship: string;
  readonly subquery: QueryAST;
}

export interface QueryAST {
  /** The table's schema name (`issue`, not its SQL name). */
  readonly table: string;
  readonly where?: Condition;
  readonly related?: readonly RelatedQuery[];
  /** The ordering as written; the primary key is appended when the query runs. */
  readonly orderBy?: Ordering;
  readonly start?: Cursor;
  readonly limit?: number;
}

const literal: z.ZodType<LiteralValue> = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.bigint(),
  z.date(),
  z.null(),
]);

const simpleSchema = z.object({
  type: z.literal('simple'),
  column: z.string().min(1),
  op: z.enum(SIMPLE_OPERATORS),
  value: z.union([literal, z.array(literal)]),
});

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.discriminatedUnion('type', [
    simpleSchema,
    z.object({ type: z.enum(['and', 'or']), conditions: z.array(conditionSchema) }),
    z.object({ type: z.literal('not'), condition: conditionSchema }),
    z.object({
      type: z.literal('exists'),
      relationship: z.string().min(1),
      subquery: queryASTSchema,
    }),
  ]),
);

/** The shape of a query AST, before it is checked against a schema. */
export const queryASTSchema: z.ZodType<QueryAST> = z.lazy(
  () =>
    z.strictObject({
      table: z.string().min(1),
      where: conditionSchema.optional(),
      related: z
        .array(z.strictObject({ relationship: z.string().min(1), subquery: queryASTSchema }))
        .optional(),
      orderBy: z.array(z.tuple([z.string().min(1), z.enum(['asc', 'desc'])])).optional(),
      start: z
        .strictObject({ row: z.record(z.string(), z.unknown()), inclusive: z.boolean() })
        .optional(),
      limit: z.number().int().nonnegative().optional(),
    }) as unknown as z.ZodType<QueryAST>, // zod's optional() admits undefined; the tree never has it
);
