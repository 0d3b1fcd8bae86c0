import { type AnySchema, encodeRich, type PatchOperation } from '@reprise/shared';
import type { Change } from '../changes/changelog';
import { canSee, scopesOf, type Visibility } from '../changes/visibility';

/**
 * The patch that brings a client from the cookie's state to now, for a user holding
 * `granted`. Per row only the last change counts: a row the user may see now is put; a
 * row the user could see at some point in between is deleted; a row the user never could
 * see is left out entirely, so not even its key reaches the client. Tables not in
 * `visibility` are never sent. `changes` must be in id order.
 *
 * @example
 * const patch = patchFromChanges(await readChanges(tx, tables, since, schema), visibility, new Set(['u1']));
 */
export function patchFromChanges(
  changes: readonly Change[],
  visibility: Visibility,
  granted: ReadonlySet<string>,
): PatchOperation[] {
  const rows = new Map<string, { last: Change; seen: boolean }>();
  for (const change of changes) {
    if ((visibility as Record<string, unknown>)[change.table] === undefined) continue;
    const id = `${change.table}\u0000${JSON.stringify(encodeRich(change.key))}`;
    const seen =
      canSee(scopesBefore(change, visibility), granted) ||
      canSee(scopesAfter(change, visibility), granted);
    const entry = rows.get(id);
    // Re-inserting moves the row to the end, so the patch follows the order of last changes.
    rows.delete(id);
    rows.set(id, { last: change, seen: seen || (entry?.seen ?? false) });
  }
  const patch: PatchOperation[] = [];
  for (const { last, seen } of rows.values()) {
    if (last.after && canSee(scopesAfter(last, visibility), granted)) {
      patch.push({ op: 'put', tableName: last.table, value: last.after });
    } else if (seen) {
      patch.push({ op: 'del', tableName: last.table, id: last.key });
    }
  }
  return patch;
}

// Scopes are worked out as the change is read, by the puller's rules: captured rows come
// from any writer, and rules may be functions the database cannot run.
function scopesBefore(change: Change, visibility: Visibility) {
  return scopesOf(visibility, change.table, change.before);
}

function scopesAfter(change: Change, visibility: Visibility) {
  return scopesOf(visibility, change.table, change.after);
}

/**
 * The patch with every `returned: false` column taken out of its puts: the changelog and
 * visibility rules see whole rows, a client never does.
 */
export function withoutHiddenColumns(schema: AnySchema, patch: PatchOperation[]): PatchOperation[] {
  return patch.map((op) => {
    if (op.op !== 'put') return op;
    const hidden = schema.tableInfo.get(op.tableName)?.hidden;
    if (!hidden?.length) return op;
    const value = { ...op.value };
    for (const key of hidden) delete value[key];
    return { ...op, value };
  });
}
