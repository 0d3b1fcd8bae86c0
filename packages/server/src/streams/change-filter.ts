import {
  type AnySchema,
  type ColumnKind,
  type CompareKind,
  compareValues,
  type TableInfo,
} from '@reprise/shared';
import type { Change, ChangeAction } from '../changes/changelog';

// Filters on the rows of change events, Prisma Pulse's way: per action, per scalar column,
// `{column: value}` or `{column: {operator: value}}`. They run in memory on each change.

type Scalar = string | number | bigint | boolean | Date;

/** Conditions on one column; every one given must hold. */
export interface FieldOperators<V> {
  readonly equals?: V | null;
  /** Not equal; a null value counts as different from any non-null one. */
  readonly not?: V | null;
  readonly in?: readonly (V | null)[];
  readonly notIn?: readonly (V | null)[];
  readonly gt?: V;
  readonly gte?: V;
  readonly lt?: V;
  readonly lte?: V;
  readonly contains?: V extends string ? string : never;
  readonly startsWith?: V extends string ? string : never;
  readonly endsWith?: V extends string ? string : never;
}

/** A value (equals; `null` for "is null") or operators, for one column. */
export type FieldFilter<V> = V | null | FieldOperators<V>;

type ScalarKeys<Row> = {
  [K in keyof Row]-?: NonNullable<Row[K]> extends Scalar ? K : never;
}[keyof Row] &
  string;

/** Conditions on a row's scalar columns; a row matches when all hold. */
export type RowFilter<Row = Record<string, unknown>> = string extends keyof Row
  ? { readonly [column: string]: FieldFilter<Scalar> }
  : { readonly [K in ScalarKeys<Row>]?: FieldFilter<NonNullable<Row[K]>> };

/** Per action, the rows wanted; with none given, every action passes. */
export interface ActionFilters<Row = Record<string, unknown>> {
  /** Creates whose new row matches. `{}` takes every create. */
  readonly create?: RowFilter<Row>;
  /**
   * Updates whose row *after* the update matches: Pulse's `{after: {...}}`, or the row
   * filter itself. `{before: {...}}` tests the row as it was. `{}` takes every update.
   */
  readonly update?:
    | RowFilter<Row>
    | { readonly after?: RowFilter<Row>; readonly before?: RowFilter<Row> };
  /** Deletes whose removed row matches. `{}` takes every delete. */
  readonly delete?: RowFilter<Row>;
}

const OPERATORS = new Set([
  'equals',
  'not',
  'in',
  'notIn',
  'gt',
  'gte',
  'lt',
  'lte',
  'contains',
  'startsWith',
  'endsWith',
]);
const ACTIONS: readonly ChangeAction[] = ['create', 'update', 'delete'];

type Test = (row: Record<string, unknown>) => boolean;

/** The kind to compare a value as, when the schema does not say. */
function kindOfValue(value: unknown): ColumnKind | undefined {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number' || typeof value === 'bigint') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Date) return 'date';
  return undefined;
}

function isOperators(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !(value instanceof Date) && !Array.isArray(value)
  );
}

/**
 * Orders a row value against a filter value as Postgres would; `undefined` when either is
 * null or they are of different kinds (a date column also takes ISO strings).
 */
function compare(kind: CompareKind | undefined, a: unknown, b: unknown): number | undefined {
  if (a == null || b == null) return undefined;
  const known = kind && kind !== 'json' && kind !== 'other' ? kind : undefined;
  const k = known ?? kindOfValue(a);
  if (!k || (k !== 'date' && kindOfValue(a) !== kindOfValue(b))) return undefined;
  try {
    return compareValues(k, a, b);
  } catch {
    return undefined;
  }
}

/** Equality where null equals only null. */
function equal(kind: CompareKind | undefined, a: unknown, b: unknown): boolean {
  if (a == null || b == null) return a == null && b == null;
  return compare(kind, a, b) === 0;
}

function fieldTest(
  where: string,
  column: string,
  kind: CompareKind | undefined,
  filter: unknown,
): Test {
  if (!isOperators(filter)) return (row) => equal(kind, row[column], filter);
  const tests: Test[] = [];
  for (const [op, operand] of Object.entries(filter)) {
    if (operand === undefined) continue;
    if (!OPERATORS.has(op)) {
      throw new TypeError(
        `${where}: "${op}" is not a filter operator for "${column}"; use one of ${[...OPERATORS].join(', ')}`,
      );
    }
    const value = (row: Record<string, unknown>) => row[column];
    switch (op) {
      case 'equals':
        tests.push((row) => equal(kind, value(row), operand));
        break;
      case 'not':
        tests.push((row) => !equal(kind, value(row), operand));
        break;
      case 'in':
      case 'notIn': {
        if (!Array.isArray(operand))
          throw new TypeError(`${where}: "${column}.${op}" needs an array`);
        const inList = (row: Record<string, unknown>) =>
          operand.some((item) => equal(kind, value(row), item));
        tests.push(op === 'in' ? inList : (row) => !inList(row));
        break;
      }
      case 'contains':
      case 'startsWith':
      case 'endsWith': {
        if (typeof operand !== 'string') {
          throw new TypeError(`${where}: "${column}.${op}" needs a string`);
        }
        tests.push((row) => {
          const v = value(row);
          if (typeof v !== 'string') return false;
          return op === 'contains'
            ? v.includes(operand)
            : op === 'startsWith'
              ? v.startsWith(operand)
              : v.endsWith(operand);
        });
        break;
      }
      default: {
        const accept =
          op === 'gt'
            ? (o: number) => o > 0
            : op === 'gte'
              ? (o: number) => o >= 0
              : op === 'lt'
                ? (o: number) => o < 0
                : (o: number) => o <= 0;
        tests.push((row) => {
          const order = compare(kind, value(row), operand);
          return order !== undefined && accept(order);
        });
      }
    }
  }
  return (row) => tests.every((test) => test(row));
}

/** The columns a filter may name, and their kinds; `undefined` when nothing is known. */
function columnsFor(
  schema: AnySchema | undefined,
  table: string | undefined,
): { readonly info: TableInfo | undefined; readonly kinds: Map<string, CompareKind> } | undefined {
  if (!schema) return undefined;
  const tables = table === undefined ? [...schema.tableInfo.values()] : [];
  let info: TableInfo | undefined;
  if (table !== undefined) {
    info = schema.tableInfo.get(table);
    if (!info) {
      throw new TypeError(
        `Change filter: unknown table "${table}"; the schema has ${[...schema.tableInfo.keys()].join(', ')}`,
      );
    }
    tables.push(info);
  }
  const kinds = new Map<string, CompareKind>();
  for (const each of tables) {
    for (const column of each.columns.values()) {
      // Across tables a name may mean different kinds; then compare by the values.
      const seen = kinds.get(column.key);
      // Compared as the query evaluator compares them (numeric exactly, real as float4).
      const as = column.compareAs;
      kinds.set(column.key, seen === undefined || seen === as ? as : 'other');
    }
  }
  return { info, kinds };
}

/**
 * Turns a table name and per-action filters into one test on changes, refusing unknown
 * tables, columns, non-scalar columns and operators up front (columns are checked when the
 * schema is known).
 */
export function compileChangeFilter(
  schema: AnySchema | undefined,
  options: { readonly table?: string | undefined } & {
    readonly [A in ChangeAction]?: unknown;
  },
): (change: Change) => boolean {
  const known = columnsFor(schema, options.table);
  const given = ACTIONS.filter((action) => options[action] !== undefined);
  const actions = new Map<ChangeAction, (change: Change) => boolean>();
  for (const action of given.length === 0 ? ACTIONS : given) {
    const filter = options[action] ?? {};
    if (!isOperators(filter)) throw new TypeError(`Change filter: "${action}" must be an object`);
    if (action === 'update' && isBeforeAfter(filter, known)) {
      const after = rowTest(`Change filter "update.after"`, filter.after ?? {}, known);
      const before = rowTest(`Change filter "update.before"`, filter.before ?? {}, known);
      actions.set(action, (change) => after(change.after ?? {}) && before(change.before ?? {}));
    } else {
      const test = rowTest(`Change filter "${action}"`, filter, known);
      actions.set(action, (change) =>
        test((action === 'delete' ? change.before : change.after) ?? {}),
      );
    }
  }
  return (change) => {
    if (options.table !== undefined && change.table !== options.table) return false;
    const test = actions.get(change.action);
    return test ? test(change) : false;
  };
}

/**
 * Pulse's update filter, `{after: {...}}` (and `{before: {...}}`), rather than conditions
 * on columns: a key that is not a column of the schema, or whose value names columns,
 * not operators.
 */
function isBeforeAfter(
  filter: Record<string, unknown>,
  known: ReturnType<typeof columnsFor>,
): filter is { after?: Record<string, unknown>; before?: Record<string, unknown> } {
  const keys = Object.keys(filter).filter((key) => filter[key] !== undefined);
  if (keys.length === 0 || keys.some((key) => key !== 'after' && key !== 'before')) return false;
  return keys.every((key) => {
    const value = filter[key];
    if (!isOperators(value)) return false;
    if (known && !known.kinds.has(key)) return true;
    const names = Object.keys(value);
    return names.length > 0 && names.some((name) => !OPERATORS.has(name));
  });
}

/** One test on a row from conditions on its columns, checked against the schema if known. */
function rowTest(where: string, filter: unknown, known: ReturnType<typeof columnsFor>): Test {
  if (!isOperators(filter)) throw new TypeError(`${where} must be an object`);
  const tests: Test[] = [];
  for (const [column, condition] of Object.entries(filter)) {
    if (condition === undefined) continue;
    if (known) {
      const kind = known.kinds.get(column);
      if (kind === undefined) {
        const owner = known.info ? `table "${known.info.name}"` : 'any table of the schema';
        const names = known.info ? `; its columns are ${[...known.kinds.keys()].join(', ')}` : '';
        throw new TypeError(`${where}: "${column}" is not a column of ${owner}${names}`);
      }
      if (kind === 'json') {
        throw new TypeError(`${where}: "${column}" is a json column; filters take scalar columns`);
      }
    }
    const test = fieldTest(where, column, known?.kinds.get(column), condition);
    // A row of a table without the column never matches a condition on it.
    tests.push((row) => column in row && test(row));
  }
  return (row) => tests.every((test) => test(row));
}
