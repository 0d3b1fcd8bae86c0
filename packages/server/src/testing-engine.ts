import type { PGlite } from '@electric-sql/pglite';
import { createPgMemDatabase, type PgMemLike } from './adapters/pg';
import { createPGliteDatabase } from './adapters/pglite';
import type { Database } from './database';

/**
 * The in-process databases `createTestDatabase` can run on: PGlite (real Postgres compiled
 * to WASM) or pg-mem (a faster, partial emulation).
 *
 * @example
 * const engines: TestEngine[] = ['pglite', 'pg-mem'];
 */
export type TestEngine = 'pglite' | 'pg-mem';

/** A fresh, empty database and how to dispose of it. */
export interface OpenedEngine {
  readonly db: Database;
  close(): Promise<void>;
}

const PACKAGES: Record<TestEngine, string> = {
  pglite: '@electric-sql/pglite',
  'pg-mem': 'pg-mem',
};

/**
 * Imports an engine's package only when a test asks for it. The specifier is a variable
 * on purpose: the package ships its TypeScript sources, and a literal `import('pg-mem')`
 * would fail the type check of every app that has not installed pg-mem.
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

/**
 * Opens an empty in-memory database on `engine` through the adapter production uses.
 *
 * @example
 * const {db, close} = await openTestEngine('pg-mem');
 */
export async function openTestEngine(engine: TestEngine): Promise<OpenedEngine> {
  if (engine === 'pglite') {
    const { PGlite: PGliteClass } = await importEngine<{ PGlite: new () => PGlite }>(engine);
    const pglite = new PGliteClass();
    return { db: createPGliteDatabase(pglite), close: () => pglite.close() };
  }
  if (engine === 'pg-mem') {
    const { newDb } = await importEngine<{ newDb(): PgMemLike }>(engine);
    // pg-mem lives in this process's heap; dropping the reference frees it.
    return { db: createPgMemDatabase(newDb()), close: async () => {} };
  }
  throw new TypeError(
    `createTestDatabase: unknown engine "${String(engine)}"; use 'pglite' or 'pg-mem'`,
  );
}
