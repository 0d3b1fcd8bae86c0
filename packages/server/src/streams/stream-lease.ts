import { type ChangeCursor, currentCursor } from '../changes/changelog';
import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';

// A named stream's row in the engine's `streams` table: its acknowledged position, and a
// lease naming the one consumer allowed to move it. Times are the database's, so the
// clocks of the processes competing for a lease never matter.

/**
 * How far a named stream has been acknowledged. A batch is every change committed after
 * `cursor` and visible at `batch.until`; while one is half done, `afterID` says which of its
 * changes (in commit order) are acknowledged.
 */
export interface StreamPosition {
  readonly cursor: ChangeCursor;
  readonly batch?: { readonly until: ChangeCursor; readonly afterID: number };
}

/** A change stream could not start or had to stop. */
export class ChangeStreamError extends Error {
  override readonly name = 'ChangeStreamError';
  readonly code: 'leaseHeld' | 'leaseLost' | 'expired';

  constructor(code: ChangeStreamError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

const encodeCursor = (cursor: ChangeCursor) =>
  cursor.kind === 'id' ? { id: cursor.id } : { snapshot: cursor.snapshot };

function decodeCursor(value: unknown): ChangeCursor {
  const v = value as { id?: unknown; snapshot?: unknown } | null;
  if (typeof v?.snapshot === 'string') return { kind: 'snapshot', snapshot: v.snapshot };
  if (typeof v?.id === 'number') return { kind: 'id', id: v.id };
  throw new TypeError(`Not a stream position: ${JSON.stringify(value)}`);
}

/** The text stored in `streams.position`. */
export function encodePosition(position: StreamPosition): string {
  return JSON.stringify({
    cursor: encodeCursor(position.cursor),
    ...(position.batch
      ? { until: encodeCursor(position.batch.until), afterID: position.batch.afterID }
      : {}),
  });
}

export function decodePosition(text: string): StreamPosition {
  const value = JSON.parse(text) as { cursor?: unknown; until?: unknown; afterID?: unknown };
  const cursor = decodeCursor(value.cursor);
  if (value.until === undefined) return { cursor };
  return {
    cursor,
    batch: { until: decodeCursor(value.until), afterID: Number(value.afterID) },
  };
}

/** `now() + ms`, in a form pg-mem understands too. */
const leaseEnd = (param: number) => `now() + ($${param}::text || ' milliseconds')::interval`;

/**
 * Takes the lease on stream `name` for `owner`, creating the stream at the changelog's
 * current position if it is new, and returns the acknowledged position. Throws
 * `ChangeStreamError('leaseHeld')` while another owner's lease runs.
 */
export async function acquireLease(
  db: Database,
  tables: EngineTables,
  name: string,
  owner: string,
  leaseMs: number,
): Promise<StreamPosition> {
  return db.transaction(
    async (tx) => {
      const start = await currentCursor(tx, db, tables);
      // Created unleased, then locked: two processes starting the same new stream queue up
      // on the row instead of both inserting it.
      await tx.query(
        `INSERT INTO ${tables.streams} ("name", "position") VALUES ($1, $2)
         ON CONFLICT ("name") DO NOTHING`,
        [name, encodePosition({ cursor: start })],
      );
      const [row] = await tx.query<{
        position: string;
        leaseOwner: string | null;
        held: boolean | null;
      }>(
        `SELECT "position", "leaseOwner", "leaseExpiresAt" IS NOT NULL AND "leaseExpiresAt" > now() AS "held"
         FROM ${tables.streams} WHERE "name" = $1${db.capabilities.partialSQL ? '' : ' FOR UPDATE'}`,
        [name],
      );
      if (!row) throw new Error(`Stream "${name}" vanished while starting`);
      if (row.held && row.leaseOwner !== owner) {
        throw new ChangeStreamError(
          'leaseHeld',
          `Change stream "${name}" is being consumed elsewhere; one consumer per name at a time`,
        );
      }
      await tx.query(
        `UPDATE ${tables.streams} SET "leaseOwner" = $2, "leaseExpiresAt" = ${leaseEnd(3)}
         WHERE "name" = $1`,
        [name, owner, leaseMs],
      );
      return decodePosition(row.position);
    },
    { isolation: 'read committed' },
  );
}

/**
 * Stores the position and extends the lease (by `leaseMs`, or ends it with `null`). Throws
 * `ChangeStreamError('leaseLost')` when another owner has taken the stream over.
 */
export async function saveLease(
  db: Database,
  tables: EngineTables,
  name: string,
  owner: string,
  position: StreamPosition,
  leaseMs: number | null,
): Promise<void> {
  const lease =
    leaseMs === null
      ? `"leaseOwner" = NULL, "leaseExpiresAt" = NULL`
      : `"leaseExpiresAt" = ${leaseEnd(4)}`;
  const rows = await db.query(
    `UPDATE ${tables.streams} SET "position" = $3, ${lease}
     WHERE "name" = $1 AND "leaseOwner" = $2 RETURNING "name"`,
    [name, owner, encodePosition(position), ...(leaseMs === null ? [] : [leaseMs])],
  );
  if (rows.length === 0) {
    throw new ChangeStreamError(
      'leaseLost',
      `Change stream "${name}" was taken over by another consumer after its lease ran out`,
    );
  }
}
