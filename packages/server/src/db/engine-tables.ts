import { quoteIdent } from './database';

/** The schema the engine's own tables live in unless configured otherwise. */
export const DEFAULT_ENGINE_SCHEMA = 'reprise';

/**
 * Qualified names of the engine's tables in one schema. Column names follow Zero's
 * `clients` table (`"clientGroupID"`, `"clientID"`, `"lastMutationID"`, `"userID"`).
 */
export interface EngineTables {
  readonly schema: string;
  readonly clientGroups: string;
  readonly clients: string;
  readonly mutationResults: string;
  readonly migrations: string;
  /**
   * The changelog on pg-mem, one row per change; elsewhere, since engine schema 8, a view
   * of `txChanges` with a row per change.
   */
  readonly changes: string;
  /** The sequence the changes' ids come from. */
  readonly changeIDs: string;
  /** The changelog: each writing transaction's changes, in one row or a few (capture.ts). */
  readonly txChanges: string;
  /**
   * One row per writing transaction (roughly), inserted by its first captured change so
   * that the commit trigger runs once: unlogged, emptied by pruning (capture-functions.ts).
   */
  readonly txPending: string;
  /** The function of the commit trigger on `txPending`. */
  readonly commitChanges: string;
  /**
   * From engine schema 10, the function that stores a push's captured changes as it
   * commits, for drivers that send its call with `COMMIT` (capture-functions.ts).
   */
  readonly storeChanges: string;
  readonly changelogState: string;
  readonly streams: string;
  /** Before engine schema 8, each transaction that wrote changes, with its commit number. */
  readonly commits: string;
  /** Before engine schema 8, the function a deferred trigger called to number a commit. */
  readonly numberCommit: string;
  /** Its predecessor, before engine schema 5. */
  readonly stampCommit: string;
  /** The commit numbers: readers order transactions by them. */
  readonly commitSeq: string;
  /** The CRUD operations already applied (or refused), so a resent one applies once. */
  readonly crudReceipts: string;
  /** Routes' answers by idempotency key, so a retried call applies once. */
  readonly routeReceipts: string;
  /** The in-process job runner's jobs (PGlite, pg-mem). */
  readonly jobs: string;
  /** The last heartbeat of each running job worker. */
  readonly jobWorkers: string;
}

const cache = new Map<string, EngineTables>();

export function engineTables(schema: string = DEFAULT_ENGINE_SCHEMA): EngineTables {
  let tables = cache.get(schema);
  if (!tables) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
      throw new TypeError(`Invalid engine schema name "${schema}"`);
    }
    const q = (name: string) => `${quoteIdent(schema)}.${quoteIdent(name)}`;
    tables = {
      schema,
      clientGroups: q('clientGroups'),
      clients: q('clients'),
      mutationResults: q('mutationResults'),
      migrations: q('migrations'),
      changes: q('changes'),
      txChanges: q('txChanges'),
      changeIDs: q('changes_id_seq'),
      txPending: q('txPending'),
      commitChanges: q('commit_changes'),
      storeChanges: q('store_changes'),
      changelogState: q('changelogState'),
      streams: q('streams'),
      commits: q('commits'),
      numberCommit: q('number_commit'),
      stampCommit: q('stamp_commit'),
      commitSeq: q('commit_seq'),
      crudReceipts: q('crudReceipts'),
      routeReceipts: q('routeReceipts'),
      jobs: q('jobs'),
      jobWorkers: q('jobWorkers'),
    };
    cache.set(schema, tables);
  }
  return tables;
}
