import {
  type AnyMutators,
  type AnySchema,
  ApplicationError,
  CRUD_MUTATORS_KEY,
  crudDeleteArgsSchema,
  crudKey,
  crudPatchArgsSchema,
  crudPutArgsSchema,
  defineMutator,
  defineMutators,
  type InsertRow,
  type PrimaryKey,
  type ProtectedColumn,
  type Row,
  type TableInfo,
  type Transaction,
  type Without,
} from '@reprise/shared';
import type { MutationCall } from './types';

/** Any drizzle table, named without importing drizzle into the client. */
type PgTable = AnySchema['tables'][string];

type KeyColumns<T extends PgTable> = {
  [K in keyof T['_']['columns']]: T['_']['columns'][K]['_']['isPrimaryKey'] extends true
    ? K
    : never;
}[keyof T['_']['columns']];

type IsUnion<U, All = U> = U extends unknown ? ([All] extends [U] ? false : true) : never;

/**
 * How a CRUD call names a row: the key's value for a table with a one-column primary key,
 * else an object of its key columns.
 */
export type CrudID<T extends PgTable> = [KeyColumns<T>] extends [never]
  ? PrimaryKey<T>
  : true extends IsUnion<KeyColumns<T>>
    ? PrimaryKey<T>
    : Row<T>[KeyColumns<T> & keyof Row<T>];

/**
 * `client.crud.<table>`: row operations, queued and pushed like named mutations. `P` names
 * the table's `input: false` columns, which a client may not set.
 */
export interface TableCrud<T extends PgTable, P extends PropertyKey = never> {
  /** Creates the row, or overwrites the columns given when it exists (PowerSync's PUT). */
  put(row: Without<InsertRow<T>, P>): MutationCall<void>;
  /** Sets the given columns of the row; a missing row stays missing (PATCH). */
  patch(id: CrudID<T>, changes: Partial<Without<Row<T>, P>>): MutationCall<void>;
  /** Deletes the row; deleting a missing row is fine (DELETE). */
  delete(id: CrudID<T>): MutationCall<void>;
}

/** `client.crud`: one `TableCrud` per table of the schema. */
export type CrudAPI<S extends AnySchema> = {
  readonly [K in keyof S['tables'] & string]: TableCrud<S['tables'][K], ProtectedColumn<S, K>>;
};

function mustTable(schema: AnySchema, name: string): TableInfo {
  const table = schema.tableInfo.get(name);
  // A queue stored under an older schema can name a table this one lacks.
  if (!table) {
    throw new ApplicationError(`Unknown table "${name}"`, { details: { reason: 'unknownTable' } });
  }
  return table;
}

/** As the server refuses it (row-validation.ts): a client may not set an input: false column. */
function refuseProtected(table: TableInfo, row: Record<string, unknown>) {
  for (const [name, value] of Object.entries(row)) {
    if (value !== undefined && table.columns.get(name)?.input === false) {
      throw new ApplicationError(
        `${table.name}: "${name}" cannot be set by a client (input: false)`,
        { details: { reason: 'invalid', table: table.name } },
      );
    }
  }
}

function tableMutate(tx: Transaction<AnySchema>, table: TableInfo) {
  return (tx.mutate as Record<string, Transaction<AnySchema>['mutate'][string]>)[table.name]!;
}

/**
 * The built-in `_crud.*` mutators as the client runs them: `put` upserts, `patch` updates
 * (refusing a changed primary key, as the server does), `delete` deletes.
 *
 * @example
 * const crud = createClientCrudMutators(schema); // merged into the client's mutators
 */
export function createClientCrudMutators(schema: AnySchema) {
  return defineMutators({
    [CRUD_MUTATORS_KEY]: {
      put: defineMutator(crudPutArgsSchema, async ({ tx, args }) => {
        const table = mustTable(schema, args.table);
        refuseProtected(table, args.row);
        await tableMutate(tx, table).upsert(args.row as never);
      }),
      patch: defineMutator(crudPatchArgsSchema, async ({ tx, args }) => {
        const table = mustTable(schema, args.table);
        const key = crudKey(table, args.id);
        refuseProtected(table, args.changes);
        for (const [name, value] of Object.entries(key)) {
          const given = args.changes[name];
          if (given !== undefined && String(given) !== String(value)) {
            throw new ApplicationError(`${table.name}: the primary key "${name}" cannot change`, {
              details: { reason: 'invalid', table: table.name },
            });
          }
        }
        await tableMutate(tx, table).update({ ...args.changes, ...key } as never);
      }),
      delete: defineMutator(crudDeleteArgsSchema, async ({ tx, args }) => {
        const table = mustTable(schema, args.table);
        await tableMutate(tx, table).delete(crudKey(table, args.id) as never);
      }),
    },
  }) as unknown as AnyMutators;
}

/** `client.crud`, turning each call into a `_crud.*` mutation through `call`. */
export function createCrudAPI<S extends AnySchema>(
  schema: S,
  call: (name: string, args: unknown) => MutationCall,
): CrudAPI<S> {
  const api: Record<string, TableCrud<PgTable, string>> = {};
  for (const table of schema.tableInfo.keys()) {
    api[table] = {
      put: (row) => call(`${CRUD_MUTATORS_KEY}.put`, { table, row }) as MutationCall<void>,
      patch: (id, changes) =>
        call(`${CRUD_MUTATORS_KEY}.patch`, { table, id, changes }) as MutationCall<void>,
      delete: (id) => call(`${CRUD_MUTATORS_KEY}.delete`, { table, id }) as MutationCall<void>,
    };
  }
  return api as CrudAPI<S>;
}
