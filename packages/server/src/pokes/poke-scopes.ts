import type { AnySchema } from '@reprise/shared';
import { type ChangeCursor, currentCursor, isExpired, readChanges } from '../changes/changelog';
import { scopesOf, type Visibility } from '../changes/visibility';
import type { Database } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';

// Which scopes the commits since the last look touched. A capture trigger cannot run the
// app's visibility rules (they may be JavaScript functions), so its notification names only
// the table; the hub reads what committed and works the scopes out here, once per process.

/** The scopes touched since the last read, or `all` when they cannot be known. */
export type TouchedScopes = { readonly all: true } | { readonly scopes: ReadonlySet<string> };

export interface ScopeReader {
  /** Takes the position to read from; call it once the watcher listens. */
  start(): Promise<void>;
  /** Reads what committed since the last read (one read at a time; calls coalesce). */
  read(): Promise<TouchedScopes>;
}

export interface ScopeReaderOptions {
  readonly db: Database<any>;
  readonly tables: EngineTables;
  readonly schema: AnySchema;
  readonly visibility: Visibility<any>;
  readonly logger: Logger;
}

/**
 * Creates a reader of touched scopes over the changelog.
 *
 * @example
 * const reader = createScopeReader({db, tables, schema, visibility, logger});
 * await reader.start();
 * const touched = await reader.read(); // after a notification
 */
export function createScopeReader(options: ScopeReaderOptions): ScopeReader {
  const { db, tables, schema, logger } = options;
  const visibility = options.visibility as Visibility;
  let cursor: ChangeCursor | undefined;
  let running: Promise<TouchedScopes> | undefined;
  let again = false;

  const look = async (): Promise<TouchedScopes> => {
    if (!cursor) return { all: true };
    const since = cursor;
    const { now, touched } = await db.transaction(
      async (tx) => {
        const now = await currentCursor(tx, db, tables);
        if (await isExpired(tx, tables, since)) return { now, touched: undefined };
        return { now, touched: await readChanges(tx, tables, since, schema) };
      },
      { isolation: 'repeatable read' },
    );
    cursor = now;
    if (!touched) return { all: true };
    const scopes = new Set<string>();
    for (const change of touched) {
      for (const row of [change.before, change.after]) {
        for (const scope of scopesOf(visibility, change.table, row) ?? []) scopes.add(scope);
      }
    }
    return { scopes };
  };

  const read = (): Promise<TouchedScopes> => {
    if (running) {
      // A read is under way and may have missed this commit: one more follows it.
      again = true;
      return running;
    }
    running = look()
      .catch((error: unknown) => {
        logger.warn({ event: 'poke.read', error });
        return { all: true } as const;
      })
      .finally(() => {
        running = undefined;
      });
    const result = running;
    return result.then((touched) => {
      if (!again) return touched;
      again = false;
      return read().then((more) => merge(touched, more));
    });
  };

  return {
    async start() {
      cursor ??= await db.transaction((tx) => currentCursor(tx, db, tables), {
        isolation: 'read committed',
      });
    },
    read,
  };
}

function merge(a: TouchedScopes, b: TouchedScopes): TouchedScopes {
  if ('all' in a || 'all' in b) return { all: true };
  return { scopes: new Set([...a.scopes, ...b.scopes]) };
}
