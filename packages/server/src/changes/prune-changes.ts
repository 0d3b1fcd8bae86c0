import type { Database } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { pruneChanges as prune } from './changelog';

/** What `pruneChanges` needs. */
export interface PruneOptions {
  readonly db: Database<any>;
  /** Where the engine's own tables live (default `reprise`). */
  readonly engineSchema?: string;
  /** Keep changes and mutation results younger than this (default 7 days). */
  readonly olderThanMs?: number;
}

/**
 * Deletes changelog rows and stored mutation results older than `olderThanMs`, and the
 * capture triggers' spent `txPending` rows (docs/capture.md). A pull whose cookie is older
 * than what was deleted gets a reset (every row the user may see), never a patch with a
 * gap in it; a client that never heard a pruned result sees its mutation confirmed
 * without it. Returns how many changes and results went.
 *
 * @example
 * setInterval(() => pruneChanges({db, olderThanMs: 3 * 24 * 60 * 60 * 1000}), 60 * 60 * 1000);
 */
export function pruneChanges(
  options: PruneOptions,
): Promise<{ deleted: number; deletedResults: number }> {
  return prune(options.db, engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA), {
    ...(options.olderThanMs === undefined ? {} : { olderThanMs: options.olderThanMs }),
  });
}
