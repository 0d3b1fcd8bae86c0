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
  type ServerTransaction,
  type Transaction,
} from '@reprise/shared';
import type { CrudOperation } from './crud-protocol';
import { findTable, validateOperation } from './row-validation';

// The server's side of `client.crud.*`: the `_crud.put`, `_crud.patch` and `_crud.delete`
// mutations are checked as the CRUD endpoint checks its operations (row-validation.ts) and
// written through `tx.mutate`, so the write policy and capture see them as any write.

type Op = 'PUT' | 'PATCH' | 'DELETE';

async function apply(
  tx: Transaction<AnySchema>,
  schema: AnySchema,
  op: Op,
  tableName: string,
  data: Record<string, unknown>,
  key?: Record<string, unknown>,
): Promise<void> {
  const operation: CrudOperation = {
    op,
    table: tableName,
    data,
    // No PowerSync id: values are JSON values, not SQLite text, and the key is in `data`.
    id: undefined,
    opID: undefined,
    // The key the call addressed: validation refuses a `data` that changes it.
    source: { entityKeyPath: key ? Object.values(key) : undefined } as CrudOperation['source'],
  };
  const checked = validateOperation(schema, operation, undefined);
  if (!checked.ok) {
    throw new ApplicationError(checked.message, {
      details: { reason: checked.reason, table: tableName },
    });
  }
  const { kind, table, row } = checked.write;
  const mutate = (tx.mutate as Record<string, ServerTransaction['mutate'][string]>)[table.name]!;
  await mutate[kind](row as never);
}

function mustTable(schema: AnySchema, name: string) {
  const table = findTable(schema, name, undefined);
  if (!table) {
    throw new ApplicationError(`Unknown table "${name}"`, { details: { reason: 'unknownTable' } });
  }
  return table;
}

/** The `_crud.*` mutators: schema-checked row writes, or a refusal when CRUD is off. */
function crudMutators(schema: AnySchema, enabled: boolean): AnyMutators {
  const off = () => {
    throw new ApplicationError(
      'CRUD writes are off on this server: pass crud: true (and a writePolicy) to handleMutateRequest',
      { details: { reason: 'crudDisabled' } },
    );
  };
  return defineMutators({
    [CRUD_MUTATORS_KEY]: {
      put: defineMutator(crudPutArgsSchema, async ({ tx, args }) => {
        if (!enabled) off();
        await apply(tx, schema, 'PUT', args.table, args.row);
      }),
      patch: defineMutator(crudPatchArgsSchema, async ({ tx, args }) => {
        if (!enabled) off();
        const key = crudKey(mustTable(schema, args.table), args.id);
        await apply(tx, schema, 'PATCH', args.table, { ...key, ...args.changes }, key);
      }),
      delete: defineMutator(crudDeleteArgsSchema, async ({ tx, args }) => {
        if (!enabled) off();
        const key = crudKey(mustTable(schema, args.table), args.id);
        await apply(tx, schema, 'DELETE', args.table, key, key);
      }),
    },
  }) as unknown as AnyMutators;
}

const cache = new WeakMap<AnyMutators, WeakMap<AnySchema, Map<boolean, AnyMutators>>>();

/**
 * The app's mutators with the built-in `_crud.*` ones beside them (cached per mutators
 * and schema). With `enabled` false they answer every CRUD call with an app error; an app
 * that defines its own `_crud` keeps it when CRUD is off, and is refused when it is on.
 *
 * @example
 * processPush(push, {...config, mutators: withCrudMutators(mutators, schema, true)});
 */
export function withCrudMutators(
  mutators: AnyMutators,
  schema: AnySchema,
  enabled: boolean,
): AnyMutators {
  if (Object.hasOwn(mutators, CRUD_MUTATORS_KEY)) {
    if (!enabled) return mutators;
    throw new TypeError(`The mutator name "${CRUD_MUTATORS_KEY}" is reserved for client.crud`);
  }
  // Looked up on every push: written only when missing (a WeakMap write costs a lookup's
  // several times over).
  let bySchema = cache.get(mutators);
  if (!bySchema) {
    bySchema = new WeakMap();
    cache.set(mutators, bySchema);
  }
  let byFlag = bySchema.get(schema);
  if (!byFlag) {
    byFlag = new Map();
    bySchema.set(schema, byFlag);
  }
  let merged = byFlag.get(enabled);
  if (!merged) {
    merged = { ...mutators, ...crudMutators(schema, enabled) };
    byFlag.set(enabled, merged);
  }
  return merged;
}
