import { engineStoresSQL } from '../changes/capture-functions';
import type { Database, DatabaseTransaction } from './database';
import type { EngineTables } from './engine-tables';

/** The client group belongs to another user. */
export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
  readonly code = 'forbidden' as const;
}

/** A client's LMID as a push transaction found it and as it now stands in the table. */
export interface ClientClaim {
  /** The LMID before this transaction: mutations above it are still to apply. */
  readonly previous: number;
  /** The LMID the claim already wrote; the processor writes again only if it goes further. */
  readonly persisted: number;
  /**
   * The group's owner is still to check (a new client, or another user), and `groupCheck:
   * 'later'` left that to the caller: `claimGroup` then `checkOwner`.
   */
  readonly groupUnchecked?: true;
}

/** The ids a push brings for one client, first and last of its leading contiguous run. */
export interface IdRun {
  readonly first: number;
  readonly last: number;
}

interface ClaimRow {
  previousMutationID: number | string;
  lastMutationID: number | string;
  known: boolean;
}

/**
 * Locks the client's row, bumps the LMID past the push's contiguous run in the common case,
 * and checks the group's owner. It is the first statement of the push transaction; the row
 * lock serialises pushes of one client across processes.
 *
 * The bump is only made when the stored LMID lies inside the run (first − 1 ≤ LMID < last),
 * so every id it skips over is one this transaction applies; `previousMutationID` keeps the
 * value the row had under the lock, which tells the processor where to start.
 *
 * A client's row records the user who pushed it first, and that push checked that the user
 * owns the group (in the same transaction: had the check failed, the row would not be
 * there). Owners never change. So a client whose row was already there (`xmax` is set on
 * the conflict path, never on a fresh insert) and that the same user pushes needs no look
 * at the group: the usual push reads one row, not three. A new client, or another user,
 * reads the group's owner in a second statement.
 */
export async function claimClient(
  tx: Pick<DatabaseTransaction, 'query'>,
  db: Database,
  tables: EngineTables,
  ids: {
    clientGroupID: string;
    clientID: string;
    userID: string | undefined;
    run: IdRun;
    /**
     * A transaction-local setting to set in the same statement to the origin of the
     * client's next mutation, as the capture triggers read it (capture.ts).
     */
    originSetting?: string | undefined;
    /**
     * With `originSetting`: the engine stores the transaction's captured changes itself as
     * it commits (`storeCallSQL`), which the same statement tells the capture triggers.
     */
    storesChanges?: boolean;
    /**
     * When the group's owner needs a look: check it `now` (claiming a new group; the
     * default), or leave it to the caller (`later`), whose other statements may be queued
     * behind the claim and may have failed by the time it is answered.
     */
    groupCheck?: 'now' | 'later';
  },
): Promise<ClientClaim> {
  const userID = ids.userID ?? null;
  if (db.capabilities.partialSQL)
    return claimSimply(tx, tables, ids.clientGroupID, ids.clientID, userID);
  const { clientGroupID, clientID, run, originSetting } = ids;
  const [row] = await tx.query<ClaimRow>(
    claimSQL(tables, originSetting === undefined ? 0 : ids.storesChanges ? 2 : 1),
    originSetting === undefined
      ? [clientGroupID, clientID, run.first, run.last, userID]
      : [clientGroupID, clientID, run.first, run.last, userID, originSetting],
  );
  const claim = {
    previous: Number(row!.previousMutationID),
    persisted: Number(row!.lastMutationID),
  };
  if (row!.known) return claim;
  if (ids.groupCheck === 'later') return { ...claim, groupUnchecked: true };
  checkOwner(ids.clientGroupID, await claimGroup(tx, tables, ids.clientGroupID, userID), userID);
  return claim;
}

// The claim's text, by engine tables and which settings it makes (none, the origin, the
// origin and that the engine stores the changes): made once, so that a push neither builds
// it nor makes the driver hash a new string to find its statement.
const claimTexts = new WeakMap<EngineTables, [string, string, string]>();

function claimSQL(tables: EngineTables, settings: 0 | 1 | 2): string {
  let texts = claimTexts.get(tables);
  if (!texts) {
    const text = (setting: string) => `INSERT INTO ${tables.clients} AS c
       ("clientGroupID", "clientID", "lastMutationID", "previousMutationID", "userID")
     VALUES ($1, $2, CASE WHEN $3::bigint = 1 THEN $4::bigint ELSE 0 END, 0, $5)
     ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET
       "lastMutationID" = CASE
         WHEN c."lastMutationID" >= $3::bigint - 1 AND c."lastMutationID" < $4::bigint
         THEN $4::bigint ELSE c."lastMutationID" END,
       "previousMutationID" = c."lastMutationID"
     RETURNING "previousMutationID", "lastMutationID",
       (c.xmax <> 0 AND c."userID" IS NOT DISTINCT FROM $5) AS "known"${setting}`;
    const origin =
      ', set_config($6, json_build_array($1::text, $2::text, "previousMutationID" + 1)::text, true)';
    texts = [text(''), text(origin), text(`${origin} || ${engineStoresSQL(tables)}`)];
    claimTexts.set(tables, texts);
  }
  return texts[settings];
}

/**
 * The group's owner, recorded first if the group is new; a concurrent first use is decided
 * by the key.
 */
export async function claimGroup(
  tx: Pick<DatabaseTransaction, 'query'>,
  tables: EngineTables,
  clientGroupID: string,
  userID: string | null,
): Promise<string | null> {
  await tx.query(
    `INSERT INTO ${tables.clientGroups} ("clientGroupID", "userID") VALUES ($1, $2)
     ON CONFLICT ("clientGroupID") DO NOTHING`,
    [clientGroupID, userID],
  );
  const rows = await tx.query<{ userID: string | null }>(
    `SELECT "userID" FROM ${tables.clientGroups} WHERE "clientGroupID" = $1`,
    [clientGroupID],
  );
  return rows[0]?.userID ?? null;
}

export function checkOwner(clientGroupID: string, owner: string | null, userID: string | null) {
  if (owner !== userID) {
    throw new ForbiddenError(
      `Client group ${clientGroupID} belongs to another user; this push was refused`,
    );
  }
}

/**
 * The same claim in plain statements, for databases with partial SQL (pg-mem evaluates
 * SET clauses in order and cannot return a scalar subquery): lock, read, bump later.
 */
async function claimSimply(
  tx: Pick<DatabaseTransaction, 'query'>,
  tables: EngineTables,
  clientGroupID: string,
  clientID: string,
  userID: string | null,
): Promise<ClientClaim> {
  const groups = await tx.query<{ userID: string | null }>(
    `SELECT "userID" FROM ${tables.clientGroups} WHERE "clientGroupID" = $1`,
    [clientGroupID],
  );
  const owner = groups.length
    ? groups[0]!.userID
    : await claimGroup(tx, tables, clientGroupID, userID);
  checkOwner(clientGroupID, owner, userID);
  const [row] = await tx.query<{ lastMutationID: number | string }>(
    `INSERT INTO ${tables.clients} AS c ("clientGroupID", "clientID", "lastMutationID", "previousMutationID", "userID")
     VALUES ($1, $2, 0, 0, $3)
     ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET "lastMutationID" = c."lastMutationID"
     RETURNING "lastMutationID"`,
    [clientGroupID, clientID, userID],
  );
  const lmid = Number(row!.lastMutationID);
  return { previous: lmid, persisted: lmid };
}

/**
 * The first contiguous run of ids `clientID` has in `mutations`, from `start` on and before
 * `end` (where the transaction will stop).
 */
export function leadingRun(
  mutations: readonly { clientID: string; id: number }[],
  start: number,
  clientID: string,
  end = mutations.length,
): IdRun {
  let first = 0;
  let last = 0;
  for (let i = start; i < Math.min(end, mutations.length); i++) {
    const m = mutations[i]!;
    if (m.clientID !== clientID) continue;
    if (first === 0) first = last = m.id;
    else if (m.id === last + 1) last = m.id;
    else break;
  }
  return { first, last };
}
