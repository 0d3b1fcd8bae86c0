import {
  type AnySchema,
  decodeRich,
  type MutationResponse,
  type MutationResult,
  type PatchOperation,
  type PullResponse,
} from '@reprise/shared';
import { type ChangeCursor, currentCursor, isExpired, readChanges } from '../changes/changelog';
import type { Visibility } from '../changes/visibility';
import { claimGroup } from '../db/client-claim';
import type { Database, DatabaseTransaction } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { encodeCookie, type ParsedCookie } from './pull-cookie';
import { patchFromChanges, withoutHiddenColumns } from './pull-patch';
import { readVisibleRows } from './pull-reset';

/** Everything a pull needs, with defaults filled in. */
export interface PullConfig {
  readonly db: Database;
  readonly schema: AnySchema;
  readonly visibility: Visibility;
  readonly tables: EngineTables;
  readonly userID: string | undefined;
  readonly granted: ReadonlySet<string>;
  /** The fingerprint of `visibility` and the granted scopes (see pull-cookie.ts). */
  readonly fingerprint: string;
}

/** How a pull ended, before it is put on the wire. */
export type PullOutcome =
  | {
      readonly kind: 'ok';
      readonly response: PullResponse;
      /** Why the patch is a reset, or undefined for an incremental patch. */
      readonly reset: string | undefined;
    }
  | { readonly kind: 'forbidden'; readonly message: string };

/**
 * Answers one pull in one repeatable-read transaction, so the cookie's snapshot, the
 * changes and rows read, the LMIDs and the mutation results all agree. Run it through
 * `withRetries`: claiming a new group can meet a serialization failure.
 */
export async function processPull(
  tx: DatabaseTransaction,
  clientGroupID: string,
  cookie: Exclude<ParsedCookie, { kind: 'malformed' }> | null,
  config: PullConfig,
): Promise<PullOutcome> {
  const { db, tables } = config;
  const owner = await groupOwner(tx, tables, clientGroupID, config.userID ?? null);
  if (owner !== (config.userID ?? null)) {
    return {
      kind: 'forbidden',
      message: `Client group ${clientGroupID} belongs to another user; this pull was refused`,
    };
  }
  const cursor = await currentCursor(tx, db, tables);
  const reset =
    cookie === null
      ? 'no cookie'
      : cookie.kind === 'unusable'
        ? cookie.reason
        : await unusableReason(tx, config, cookie.cookie.cursor, cookie.cookie.fingerprint, cursor);
  const since = reset === undefined && cookie?.kind === 'cookie' ? cookie.cookie.cursor : undefined;

  let patch: PatchOperation[];
  if (since) {
    const changes = await readChanges(tx, tables, since, config.schema);
    patch = patchFromChanges(changes, config.visibility, config.granted);
  } else {
    const rows = await readVisibleRows(
      tx,
      config.schema,
      config.visibility,
      config.granted,
      db.capabilities.partialSQL,
    );
    patch = [{ op: 'clear' }, ...rows];
  }
  const response: PullResponse = {
    cookie: encodeCookie({ cursor, fingerprint: config.fingerprint }),
    lastMutationIDChanges: await lastMutationIDs(tx, tables, clientGroupID),
    patch: withoutHiddenColumns(config.schema, patch),
    mutationResults: await mutationResults(tx, db, tables, clientGroupID, since),
  };
  return { kind: 'ok', response, reset };
}

/** The group's owner; a group seen for the first time becomes the puller's, as in push. */
async function groupOwner(
  tx: DatabaseTransaction,
  tables: EngineTables,
  clientGroupID: string,
  userID: string | null,
): Promise<string | null> {
  const rows = await tx.query<{ userID: string | null }>(
    `SELECT "userID" FROM ${tables.clientGroups} WHERE "clientGroupID" = $1`,
    [clientGroupID],
  );
  return rows.length ? rows[0]!.userID : claimGroup(tx, tables, clientGroupID, userID);
}

/** Why a well-formed cookie cannot be continued from, or undefined when it can. */
async function unusableReason(
  tx: DatabaseTransaction,
  config: PullConfig,
  since: ChangeCursor,
  fingerprint: string,
  now: ChangeCursor,
): Promise<string | undefined> {
  if (fingerprint !== config.fingerprint) return 'granted scopes or visibility rules changed';
  if (since.kind !== now.kind) return `a ${since.kind} cookie on a database that uses ${now.kind}s`;
  // A position this database has not reached yet (a cookie from another database, or from
  // before a restore) would skip everything up to it.
  if (since.kind === 'id' && now.kind === 'id' && since.id > now.id)
    return 'cookie from the future';
  if (since.kind === 'snapshot') {
    const [row] = await tx.query<{ future: boolean }>(
      `SELECT pg_snapshot_xmax($1::text::pg_snapshot) > pg_snapshot_xmax(pg_current_snapshot()) AS "future"`,
      [since.snapshot],
    );
    if (row!.future) return 'cookie from the future';
  }
  if (await isExpired(tx, config.tables, since)) return 'changes since the cookie were pruned';
  return undefined;
}

async function lastMutationIDs(
  tx: DatabaseTransaction,
  tables: EngineTables,
  clientGroupID: string,
): Promise<Record<string, number>> {
  const rows = await tx.query<{ clientID: string; lastMutationID: number | string }>(
    `SELECT "clientID", "lastMutationID" FROM ${tables.clients} WHERE "clientGroupID" = $1`,
    [clientGroupID],
  );
  return Object.fromEntries(rows.map((row) => [row.clientID, Number(row.lastMutationID)]));
}

/**
 * The group's stored results (app errors and return values) that committed after `since`,
 * or all of them for a reset and on pg-mem, whose results carry no transaction id.
 */
async function mutationResults(
  tx: DatabaseTransaction,
  db: Database,
  tables: EngineTables,
  clientGroupID: string,
  since: ChangeCursor | undefined,
): Promise<MutationResponse[]> {
  const bySnapshot = since?.kind === 'snapshot' && !db.capabilities.partialSQL;
  const rows = await tx.query<{ clientID: string; mutationID: number | string; result: unknown }>(
    `SELECT "clientID", "mutationID", "result" FROM ${tables.mutationResults}
     WHERE "clientGroupID" = $1${
       bySnapshot
         ? ` AND "txid" >= pg_snapshot_xmin($2::text::pg_snapshot)
             AND NOT pg_visible_in_snapshot("txid", $2::text::pg_snapshot)`
         : ''
     }
     ORDER BY "clientID", "mutationID"`,
    bySnapshot ? [clientGroupID, since.snapshot] : [clientGroupID],
  );
  return rows.map((row) => {
    const stored = typeof row.result === 'string' ? JSON.parse(row.result) : row.result;
    return {
      id: { clientID: row.clientID, id: Number(row.mutationID) },
      result: decodeRich(stored) as MutationResult,
    };
  });
}
