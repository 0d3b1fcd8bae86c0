import type { MutationResult } from '@reprise/shared';
import { checkOwner, claimGroup } from './client-claim';
import { type DatabaseTransaction, isTransientError, quoteIdent } from './database';
import type { EngineTables } from './engine-tables';

// Zero mode keeps each client's LMID and its app-error results where zero-cache reads
// them: the shard's own `clients` and `mutations` tables (`<appID>_<shardNum>`, named by
// zero-cache's `schema` query parameter), in the layout zero-cache creates them with
// (zero-cache/src/services/change-source/pg/schema/shard.ts in rocicorp/mono, Zero 1.9).

/** Zero mode for `/mutate` and `/pull`, and the shard tables `migrate` creates. */
export interface ZeroModeOptions {
  /**
   * The shards this server keeps LMIDs in: zero-cache's `schema` query parameter,
   * `<appID>_<shardNum>`, e.g. `zero_0` for the default app and shard. A push naming any
   * other schema gets a `database` failure, as Zero gives when the shard does not exist.
   */
  readonly shards: readonly string[];
}

/** The name zero-cache sends its results cleanup under (mutation id 0, no LMID). */
export const CLEANUP_RESULTS_MUTATION = '_zero_cleanupResults';

const SHARD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Qualified names of one shard's tables. */
export interface ShardTables {
  readonly shard: string;
  readonly clients: string;
  readonly mutations: string;
}

/**
 * The shard's tables, checked to be a plain identifier.
 *
 * @example
 * shardTables('zero_0').clients; // '"zero_0"."clients"'
 */
export function shardTables(shard: string): ShardTables {
  if (!SHARD_NAME.test(shard)) {
    throw new TypeError(
      `Invalid Zero shard name "${shard}": use zero-cache's schema, <appID>_<shardNum>`,
    );
  }
  return {
    shard,
    clients: `${quoteIdent(shard)}."clients"`,
    mutations: `${quoteIdent(shard)}."mutations"`,
  };
}

/** Checks the option up front, so a typo fails at the first push, not silently. */
export function mustGetShards(options: ZeroModeOptions): ReadonlyMap<string, ShardTables> {
  if (!Array.isArray(options.shards) || options.shards.length === 0) {
    throw new TypeError("zero: {shards} names at least one shard, e.g. {shards: ['zero_0']}");
  }
  return new Map(options.shards.map((shard) => [shard, shardTables(shard)]));
}

/**
 * Creates the shard's `clients` and `mutations` tables unless they exist, exactly as
 * zero-cache's shard setup does. (zero-cache's own first setup creates them without
 * IF NOT EXISTS: see the README's "Coming from Zero".)
 */
export async function createShardTables(tx: DatabaseTransaction, t: ShardTables): Promise<void> {
  // pg-mem refuses IF NOT EXISTS on a table that exists: look first, in a savepoint.
  const exists = (table: string) =>
    tx
      .savepoint((inner) => inner.query(`SELECT 1 FROM ${table} LIMIT 1`))
      .then(
        () => true,
        () => false,
      );
  const hasClients = await exists(t.clients);
  const hasMutations = await exists(t.mutations);
  if (!hasClients || !hasMutations) {
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.shard)}`);
  }
  if (!hasClients) {
    await tx.query(`CREATE TABLE ${t.clients} (
      "clientGroupID"  TEXT NOT NULL,
      "clientID"       TEXT NOT NULL,
      "lastMutationID" BIGINT NOT NULL,
      "userID"         TEXT,
      PRIMARY KEY("clientGroupID", "clientID")
    )`);
  }
  if (!hasMutations) {
    await tx.query(`CREATE TABLE ${t.mutations} (
      "clientGroupID"  TEXT NOT NULL,
      "clientID"       TEXT NOT NULL,
      "mutationID"     BIGINT NOT NULL,
      "result"         JSON NOT NULL,
      PRIMARY KEY("clientGroupID", "clientID", "mutationID")
    )`);
  }
}

/**
 * The Zero-mode claim: checks (on the transaction's first claim, `checkGroup`) that the
 * group belongs to the user, in the engine's `clientGroups` as outside Zero mode, then
 * locks the client's row in the shard and returns its LMID. A client the shard does not
 * know yet gets a row at 0, which `saveShardLMID` removes again if the transaction
 * applies nothing: Zero leaves no row behind a refused first mutation.
 */
export async function claimZeroClient(
  tx: DatabaseTransaction,
  engine: EngineTables,
  t: ShardTables,
  ids: { clientGroupID: string; clientID: string; userID: string | undefined; checkGroup: boolean },
): Promise<number> {
  const userID = ids.userID ?? null;
  if (ids.checkGroup) {
    // Read first: a known group (the usual push) costs one statement, not two.
    const known = await tx.query<{ userID: string | null }>(
      `SELECT "userID" FROM ${engine.clientGroups} WHERE "clientGroupID" = $1`,
      [ids.clientGroupID],
    );
    const owner = known.length
      ? known[0]!.userID
      : await claimGroup(tx, engine, ids.clientGroupID, userID);
    checkOwner(ids.clientGroupID, owner, userID);
  }
  const [row] = await tx.query<{ lastMutationID: number | string }>(
    `INSERT INTO ${t.clients} AS c ("clientGroupID", "clientID", "lastMutationID")
     VALUES ($1, $2, 0)
     ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET "lastMutationID" = c."lastMutationID"
     RETURNING "lastMutationID"`,
    [ids.clientGroupID, ids.clientID],
  );
  return Number(row!.lastMutationID);
}

/** Writes the LMID the transaction reached; a client left at 0 loses its row again. */
export async function saveShardLMID(
  tx: DatabaseTransaction,
  t: ShardTables,
  clientGroupID: string,
  clientID: string,
  lmid: number,
): Promise<void> {
  if (lmid === 0) {
    await tx.query(
      `DELETE FROM ${t.clients}
       WHERE "clientGroupID" = $1 AND "clientID" = $2 AND "lastMutationID" = 0`,
      [clientGroupID, clientID],
    );
    return;
  }
  await tx.query(
    `UPDATE ${t.clients} SET "lastMutationID" = $3 WHERE "clientGroupID" = $1 AND "clientID" = $2`,
    [clientGroupID, clientID, lmid],
  );
}

/** Stores an app-error result where zero-cache reads it, as Zero does: plain JSON,
 * `details` only when there are some. */
export async function storeShardResult(
  tx: DatabaseTransaction,
  t: ShardTables,
  clientGroupID: string,
  clientID: string,
  mutationID: number,
  result: MutationResult,
): Promise<void> {
  let stored = result;
  if ('error' in result && result.error === 'app') {
    const { details, ...rest } = result;
    stored = details ? { ...rest, details } : rest;
  }
  await tx.query(
    `INSERT INTO ${t.mutations} ("clientGroupID", "clientID", "mutationID", "result")
     VALUES ($1, $2, $3, $4::text::json)`,
    [clientGroupID, clientID, mutationID, JSON.stringify(stored)],
  );
}

/**
 * `_zero_cleanupResults`'s argument, in the three forms Zero 1.9 sends: the legacy form
 * and `single` delete one client's results up to an id, `bulk` all of several clients'.
 */
export type CleanupResultsArg =
  | { type?: 'single'; clientGroupID: string; clientID: string; upToMutationID: number }
  | { type: 'bulk'; clientGroupID: string; clientIDs: string[] };

/** The argument as a `CleanupResultsArg`, or undefined (Zero then does nothing). */
function readCleanupArg(arg: unknown): CleanupResultsArg | undefined {
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) return undefined;
  const a = arg as Record<string, unknown>;
  if (typeof a.clientGroupID !== 'string') return undefined;
  if (a.type === 'bulk') {
    const ids = a.clientIDs;
    return Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string')
      ? { type: 'bulk', clientGroupID: a.clientGroupID, clientIDs: ids as string[] }
      : undefined;
  }
  if (a.type !== undefined && a.type !== 'single') return undefined;
  if (typeof a.clientID !== 'string' || typeof a.upToMutationID !== 'number') return undefined;
  return { clientGroupID: a.clientGroupID, clientID: a.clientID, upToMutationID: a.upToMutationID };
}

/**
 * Runs zero-cache's `_zero_cleanupResults`: deletes the stored results its argument
 * names, leaving the LMID alone. An argument Zero would not accept does nothing, and a
 * failure is ignored as Zero ignores it (in a savepoint, so the push goes on); only a
 * transient one is thrown, to retry the transaction.
 */
export async function cleanupShardResults(
  tx: DatabaseTransaction,
  t: ShardTables,
  argument: unknown,
): Promise<void> {
  const arg = readCleanupArg(argument);
  if (!arg) return;
  try {
    await tx.savepoint(async (inner) => {
      if (arg.type === 'bulk') {
        const params = arg.clientIDs.map((_, i) => `$${i + 2}`).join(', ');
        await inner.query(
          `DELETE FROM ${t.mutations} WHERE "clientGroupID" = $1 AND "clientID" IN (${params})`,
          [arg.clientGroupID, ...arg.clientIDs],
        );
        return;
      }
      await inner.query(
        `DELETE FROM ${t.mutations}
         WHERE "clientGroupID" = $1 AND "clientID" = $2 AND "mutationID" <= $3`,
        [arg.clientGroupID, arg.clientID, arg.upToMutationID],
      );
    });
  } catch (error) {
    if (isTransientError(error)) throw error;
  }
}
