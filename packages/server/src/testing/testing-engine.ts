import type { PGlite, PGliteOptions } from '@electric-sql/pglite';
import type { PgMemLike } from '../adapters/pg';
import type { Database } from '../db/database';
import { emptyPGlite, loadableDump } from './pglite-image';
import { giveBack, takePGlite } from './pglite-pool';

/**
 * The in-process databases `createTestDatabase` can run on: PGlite (real Postgres compiled
 * to WASM) or pg-mem (a faster, partial emulation).
 *
 * @example
 * const engines: TestEngine[] = ['pglite', 'pg-mem'];
 */
export type TestEngine = 'pglite' | 'pg-mem';

/** A fresh database with the tables a test asked for, and how to dispose of it. */
export interface OpenedEngine {
  readonly db: Database;
  close(): Promise<void>;
}

/**
 * What every database of one kind starts with. `key` names the result: databases opened with
 * the same key in one process start from the same state, so PGlite does this work once.
 */
export interface EngineSetup {
  readonly key: string;
  /** Creates the tables; `exec` runs SQL text that may hold several statements. */
  run(db: Database, exec: (sql: string) => Promise<void>): Promise<void>;
}

type PGliteModule = { PGlite: new (options?: PGliteOptions) => PGlite };
type PgMemDb = PgMemLike & { public: { none(sql: string): void } };

const PACKAGES: Record<TestEngine, string> = {
  pglite: '@electric-sql/pglite',
  'pg-mem': 'pg-mem',
};

/**
 * Imports an engine's package only when a test asks for it, so an app installs just the one
 * it tests on. The specifier is a variable so that bundlers (Vite, vitest) do not try to
 * resolve the engine that is not installed.
 */
async function importEngine<T>(engine: TestEngine): Promise<T> {
  const specifier = PACKAGES[engine];
  try {
    return (await import(/* @vite-ignore */ specifier)) as T;
  } catch (error) {
    throw new Error(
      `createTestDatabase({engine: '${engine}'}) needs the "${specifier}" package; ` +
        `install it with: npm install --save-dev ${specifier}`,
      { cause: error },
    );
  }
}

// The first database of each setup in a process starts from initdb's data directory
// (pglite-image.ts: initdb itself runs once per machine), runs the setup, and is dumped;
// later ones load that dump, which skips the engine's migration and the app's DDL too. A
// closed database is not closed but reset to what its setup left and kept for the next one
// (pglite-pool.ts), which skips loading the dump too.
const pgliteTemplates = new Map<string, Promise<Blob>>();

/** A new PGlite in the state `setup` leaves, built by it the first time in this process. */
async function newPGlite(
  PGliteClass: PGliteModule['PGlite'],
  setup: EngineSetup,
  adapt: (pglite: PGlite) => Database,
): Promise<PGlite> {
  const template = pgliteTemplates.get(setup.key);
  if (template) return new PGliteClass({ loadDataDir: await template });
  const opened = emptyPGlite(PGliteClass);
  const built = (async () => {
    const pglite = await opened;
    await setup.run(adapt(pglite), async (sql) => {
      await pglite.exec(sql);
    });
    return loadableDump(await pglite.dumpDataDir('none'));
  })();
  // Set before the first await, so that a second database of this setup waits for it.
  pgliteTemplates.set(setup.key, built);
  try {
    await built;
  } catch (error) {
    pgliteTemplates.delete(setup.key);
    await (await opened.catch(() => undefined))?.close();
    throw error;
  }
  return opened;
}

async function openPGlite(setup: EngineSetup): Promise<OpenedEngine> {
  const { PGlite: PGliteClass } = await importEngine<PGliteModule>('pglite');
  // The adapter too is loaded only here: it imports @electric-sql/pglite at runtime, and an
  // app testing on pg-mem need not have PGlite installed.
  const { createPGliteDatabase } = await import('../adapters/pglite');
  const pglite = await takePGlite(setup.key, () =>
    newPGlite(PGliteClass, setup, createPGliteDatabase),
  );
  return { db: createPGliteDatabase(pglite), close: () => giveBack(pglite) };
}

/** `db`, whose calls reject once `isClosed()` is true. */
function refusedAfterClose<W>(db: Database<W>, isClosed: () => boolean): Database<W> {
  const check = () => {
    if (isClosed()) throw new Error('createTestDatabase: this test database is closed');
  };
  const { listen } = db;
  return {
    ...db,
    async transaction(fn, options) {
      check();
      return db.transaction(fn, options);
    },
    async query(sql, params) {
      check();
      return db.query(sql, params);
    },
    ...(listen === undefined
      ? {}
      : {
          async listen(channel, onPayload, options) {
            check();
            return listen.call(db, channel, onPayload, options);
          },
        }),
  };
}

async function openPgMem(setup: EngineSetup): Promise<OpenedEngine> {
  const { newDb } = await importEngine<{ newDb(): PgMemDb }>('pg-mem');
  const { createPgMemDatabase } = await import('../adapters/pg');
  const mem = newDb();
  const db = createPgMemDatabase(mem);
  await setup.run(db, async (sql) => mem.public.none(sql));
  // pg-mem lives in this process's heap; dropping the reference frees it.
  return { db, close: async () => {} };
}

/**
 * Opens an in-memory database on `engine` through the adapter production uses, with
 * `setup` done.
 *
 * @example
 * const {db, close} = await openTestEngine('pg-mem', {key: 'engine', run: (db) => migrate(db)});
 */
export async function openTestEngine(
  engine: TestEngine,
  setup: EngineSetup,
): Promise<OpenedEngine> {
  if (engine !== 'pglite' && engine !== 'pg-mem') {
    throw new TypeError(
      `createTestDatabase: unknown engine "${String(engine)}"; use 'pglite' or 'pg-mem'`,
    );
  }
  const opened = await (engine === 'pglite' ? openPGlite(setup) : openPgMem(setup));
  let closed = false;
  return {
    // A PGlite lives on in the pool and pg-mem has nothing to end: a call after `close`
    // must fail on both rather than reach the next test's database or pass unnoticed.
    db: refusedAfterClose(opened.db, () => closed),
    close: () => {
      closed = true;
      return opened.close();
    },
  };
}
