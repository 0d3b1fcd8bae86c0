import { type DatabaseTransaction, quoteIdent } from './database';

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
 * Locks the client's row in the shard and returns its LMID (0 for a client the shard does
 * not know yet: the row is then inserted at 0, and `saveShardLMID` removes it again if the
 * transaction applies nothing, as Zero leaves no row behind a refused first mutation).
 */
export async function claimShardClient(
  tx: DatabaseTransaction,
  t: ShardTables,
  clientGroupID: string,
  clientID: string,
): Promise<number> {
  const [row] = await tx.query<{ lastMutationID: number | string }>(
    `INSERT INTO ${t.clients} AS c ("clientGroupID", "clientID", "lastMutationID")
     VALUES ($1, $2, 0)
     ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET "lastMutationID" = c."lastMutationID"
     RETURNING "lastMutationID"`,
    [clientGroupID, clientID],
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

/** Stores an app-error result where zero-cache reads it, as plain JSON. */
export async function storeShardResult(
  tx: DatabaseTransaction,
  t: ShardTables,
  clientGroupID: string,
  clientID: string,
  mutationID: number,
  result: unknown,
): Promise<void> {
  await tx.query(
    `INSERT INTO ${t.mutations} ("clientGroupID", "clientID", "mutationID", "result")
     VALUES ($1, $2, $3, $4::text::json)`,
    [clientGroupID, clientID, mutationID, JSON.stringify(result)],
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
export function readCleanupArg(arg: unknown): CleanupResultsArg | undefined {
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

/** Deletes the stored results the cleanup names. The LMID is left alone. */
export async function cleanupShardResults(
  tx: DatabaseTransaction,
  t: ShardTables,
  arg: CleanupResultsArg,
): Promise<void> {
  if (arg.type === 'bulk') {
    const params = arg.clientIDs.map((_, i) => `$${i + 2}`).join(', ');
    await tx.query(
      `DELETE FROM ${t.mutations} WHERE "clientGroupID" = $1 AND "clientID" IN (${params})`,
      [arg.clientGroupID, ...arg.clientIDs],
    );
    return;
  }
  await tx.query(
    `DELETE FROM ${t.mutations}
     WHERE "clientGroupID" = $1 AND "clientID" = $2 AND "mutationID" <= $3`,
    [arg.clientGroupID, arg.clientID, arg.upToMutationID],
  );
}
