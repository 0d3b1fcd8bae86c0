import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { decodePosition } from './stream-lease';

/**
 * How many changes committed after each named stream's acknowledged position, by name:
 * what its consumer has still to read, before the stream's filters (a stream of one table
 * is behind by the changes of every table). A batch acknowledged halfway counts whole.
 *
 * @example
 * const behind = await pendingChanges(db, engineTables('reprise')); // Map {'search-index' => 12}
 */
export function pendingChanges(db: Database, tables: EngineTables): Promise<Map<string, number>> {
  return db.transaction(
    async (tx) => {
      const streams = await tx.query<{ name: string; position: string }>(
        `SELECT "name", "position" FROM ${tables.streams}`,
      );
      const pending = new Map<string, number>();
      for (const { name, position } of streams) {
        const { cursor } = decodePosition(position);
        // The same bounds as readChanges: past the id, or not visible in the snapshot.
        const [row] =
          cursor.kind === 'id'
            ? await tx.query<{ n: number | string }>(
                `SELECT count(*) AS "n" FROM ${tables.changes} WHERE "id" > $1`,
                [cursor.id],
              )
            : await tx.query<{ n: number | string }>(
                `SELECT coalesce(sum(json_array_length(t."changes"::json)), 0) AS "n"
                 FROM ${tables.txChanges} AS t
                 WHERE t."txid" >= pg_snapshot_xmin($1::text::pg_snapshot)
                   AND NOT pg_visible_in_snapshot(t."txid", $1::text::pg_snapshot)`,
                [cursor.snapshot],
              );
        pending.set(name, Number(row?.n ?? 0));
      }
      return pending;
    },
    { isolation: 'read committed' },
  );
}
