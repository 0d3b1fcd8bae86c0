import { z } from 'zod';
import { ApplicationError } from './errors';
import type { TableInfo } from './schema';

// The client's CRUD path (`client.crud.issue.put(row)`) rides the named-mutation queue:
// each call is a mutation under one of these built-in names, so it is stored, pushed,
// confirmed and rebased exactly as `client.mutate.*` calls are. The client applies it to
// its store; a server that opts in (`handleMutateRequest({crud: true, writePolicy})`)
// validates it against the schema and writes through `tx.mutate`.

/** The mutator-tree key the built-in CRUD mutators live under; apps may not use it. */
export const CRUD_MUTATORS_KEY = '_crud';

/** `_crud.put`: upsert `row` (every non-null column without a default must be given). */
export const crudPutArgsSchema = z.object({
  table: z.string(),
  row: z.record(z.string(), z.unknown()),
});

/** `_crud.patch`: set the given columns of the row with key `id`; a missing row stays missing. */
export const crudPatchArgsSchema = z.object({
  table: z.string(),
  id: z.unknown(),
  changes: z.record(z.string(), z.unknown()),
});

/** `_crud.delete`: delete the row with key `id`; a missing row is fine. */
export const crudDeleteArgsSchema = z.object({ table: z.string(), id: z.unknown() });

export type CrudPutArgs = z.infer<typeof crudPutArgsSchema>;
export type CrudPatchArgs = z.infer<typeof crudPatchArgsSchema>;
export type CrudDeleteArgs = z.infer<typeof crudDeleteArgsSchema>;

function isKeyObject(id: unknown): id is Record<string, unknown> {
  return typeof id === 'object' && id !== null && !(id instanceof Date) && !Array.isArray(id);
}

/**
 * The primary key a CRUD call addresses: `id` is the key's value for a one-column key, or
 * an object of the key's columns. Anything else is refused, naming the table.
 *
 * @example
 * crudKey(mustGetTable(schema, 'issue'), 'i1'); // {id: 'i1'}
 */
export function crudKey(table: TableInfo, id: unknown): Record<string, unknown> {
  const [only, ...rest] = table.primaryKey;
  if (isKeyObject(id)) {
    const missing = table.primaryKey.find((name) => id[name] === undefined || id[name] === null);
    if (missing !== undefined) {
      throw new ApplicationError(`${table.name}: the id has no primary key "${missing}"`, {
        details: { reason: 'invalid', table: table.name },
      });
    }
    return Object.fromEntries(table.primaryKey.map((name) => [name, id[name]]));
  }
  if (only === undefined || rest.length > 0 || id === undefined || id === null) {
    const expected =
      only === undefined || rest.length > 0
        ? `an object of its key columns (${table.primaryKey.join(', ')})`
        : `the value of "${only}"`;
    throw new ApplicationError(`${table.name}: the id must be ${expected}`, {
      details: { reason: 'invalid', table: table.name },
    });
  }
  return { [only]: id };
}
