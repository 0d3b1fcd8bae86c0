import { Blob as NodeBlob } from 'node:buffer';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PGlite, PGliteOptions } from '@electric-sql/pglite';

// A new PGlite runs Postgres's initdb in WASM: 3–6 s of CPU on a 2-core box, where loading
// a dump of the data directory it leaves takes about 1. So initdb runs once per PGlite
// version and user: its data directory is dumped into a cache directory, and every later
// test database, in this process or another, loads that dump and only then runs its setup.
// `REPRISE_PGLITE_CACHE` names another directory, or `off` keeps the dump in this process
// only. A dump that fails to load is deleted and made anew.

type PGliteClass = new (options?: PGliteOptions) => PGlite;

/** The dumps this process has, by the cache file they are kept in ('' for none). */
const images = new Map<string, Promise<Blob>>();

/**
 * A new PGlite, empty as initdb leaves it, ready; initdb is run only when no dump of it is
 * in this process or the cache directory.
 */
export async function emptyPGlite(PGliteClass: PGliteClass): Promise<PGlite> {
  const file = await cacheFile();
  for (let attempt = 0; ; attempt++) {
    const pglite = new PGliteClass({ loadDataDir: await imageAt(PGliteClass, file) });
    try {
      await pglite.waitReady;
      return pglite;
    } catch (error) {
      // A dump PGlite cannot start from: forget it and make it again, once.
      await pglite.close().catch(() => {});
      images.delete(file ?? '');
      if (file) await rm(file, { force: true });
      if (attempt > 0) throw error;
    }
  }
}

/** The dump of a data directory as initdb leaves it, from wherever it is or made now. */
export async function initdbImage(PGliteClass: PGliteClass): Promise<Blob> {
  return imageAt(PGliteClass, await cacheFile());
}

/** The dump: this process's, the cache `file`'s, or made now (and cached there). */
function imageAt(PGliteClass: PGliteClass, file: string | undefined): Promise<Blob> {
  const key = file ?? '';
  let image = images.get(key);
  if (!image) {
    const made = loadOrBuild(PGliteClass, file);
    images.set(key, made);
    made.catch(() => {
      if (images.get(key) === made) images.delete(key);
    });
    image = made;
  }
  return image;
}

async function loadOrBuild(PGliteClass: PGliteClass, file: string | undefined): Promise<Blob> {
  if (file) {
    const cached = await readFile(file).catch(() => undefined);
    if (cached) return new NodeBlob([cached]) as Blob;
  }
  const built = new PGliteClass();
  let bytes: Uint8Array;
  try {
    await built.waitReady;
    bytes = await bytesOf(await built.dumpDataDir('none'));
  } finally {
    await built.close();
  }
  if (file) {
    // Written aside and renamed, so another process reads either nothing or all of it; a
    // cache that cannot be written only costs the next process its initdb.
    const aside = `${file}.${process.pid}.tmp`;
    await writeFile(aside, bytes)
      .then(() => rename(aside, file))
      .catch(() => rm(aside, { force: true }));
  }
  return new NodeBlob([bytes]) as Blob;
}

/**
 * A dump PGlite made, as a Blob PGlite can load again. In a DOM test environment PGlite
 * makes its dumps with that environment's `File`, and jsdom's cannot give its bytes back
 * but through a `FileReader`; PGlite reads a dump with `arrayBuffer()`.
 */
export async function loadableDump(dump: Blob): Promise<Blob> {
  return typeof dump.arrayBuffer === 'function'
    ? dump
    : (new NodeBlob([await bytesOf(dump)]) as Blob);
}

async function bytesOf(dump: Blob): Promise<Uint8Array> {
  if (typeof dump.arrayBuffer === 'function') return new Uint8Array(await dump.arrayBuffer());
  const { FileReader } = globalThis as unknown as {
    FileReader: new () => {
      result: unknown;
      error: unknown;
      onload: (() => void) | null;
      onerror: (() => void) | null;
      readAsArrayBuffer(blob: Blob): void;
    };
  };
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(new Uint8Array(reader.result as ArrayBuffer));
    reader.onerror = () => reject(reader.error);
    reader.readAsArrayBuffer(dump);
  });
}

/** Where the dump is kept for other processes, or undefined to keep it in this one only. */
async function cacheFile(): Promise<string | undefined> {
  const setting = process.env.REPRISE_PGLITE_CACHE;
  if (setting === 'off') return undefined;
  const version = pgliteVersion();
  if (version === undefined) return undefined;
  // No user ids on Windows, where the temporary directory is the user's own.
  const uid = process.getuid?.();
  const dir = setting || join(tmpdir(), `reprise-pglite-${uid ?? 'user'}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Another user's directory could hold a data directory made to mislead the tests.
    const stat = await lstat(dir);
    if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) return undefined;
  } catch {
    return undefined;
  }
  return join(dir, `initdb-${version.replace(/[^\w.-]/g, '_')}.tar`);
}

/** The installed PGlite's version, which the dump's format depends on. */
function pgliteVersion(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    // The package exports no package.json: find it above its entry point.
    for (let dir = dirname(require.resolve('@electric-sql/pglite')); ; dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      try {
        const { name, version } = require(manifest) as { name?: string; version?: string };
        if (name === '@electric-sql/pglite' && version) return version;
      } catch {}
      if (dirname(dir) === dir) return undefined;
    }
  } catch {
    return undefined;
  }
}
