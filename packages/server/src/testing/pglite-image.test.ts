import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { emptyPGlite } from './pglite-image';

// The initdb dump createTestDatabase starts from, kept in a cache directory for other
// processes. A process keeps the dumps it has by directory, so a directory it has not used
// yet stands for a new process here.

let root: string;
const before = process.env.REPRISE_PGLITE_CACHE;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'reprise-image-test-'));
});
afterEach(() => {
  if (before === undefined) delete process.env.REPRISE_PGLITE_CACHE;
  else process.env.REPRISE_PGLITE_CACHE = before;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** PGlite, counting the instances that run initdb (those given no data directory). */
function countingPGlite() {
  const counted = { initdb: 0 };
  class Counting extends PGlite {
    constructor(options?: PGliteOptions) {
      super(options);
      if (!options?.loadDataDir) counted.initdb++;
    }
  }
  return { PGliteClass: Counting, counted };
}

/** Points the cache at a new directory `name`, made if `make`, and returns its path. */
function cacheIn(name: string, make = false): string {
  const dir = join(root, name);
  if (make) mkdirSync(dir);
  process.env.REPRISE_PGLITE_CACHE = dir;
  return dir;
}

const dumpsIn = (dir: string) => readdirSync(dir).filter((name) => name.endsWith('.tar'));

async function expectEmpty(pglite: PGlite) {
  try {
    const { rows } = await pglite.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`,
    );
    expect(rows).toEqual([{ n: 0 }]);
  } finally {
    await pglite.close();
  }
}

let dump: string;

it('runs initdb once and keeps its dump, which the next process loads', async () => {
  const first = cacheIn('first');
  const a = countingPGlite();
  await expectEmpty(await emptyPGlite(a.PGliteClass));
  await expectEmpty(await emptyPGlite(a.PGliteClass));
  expect(a.counted.initdb).toBe(1);
  expect(dumpsIn(first)).toHaveLength(1);
  dump = join(first, dumpsIn(first)[0]!);

  const next = cacheIn('next', true);
  copyFileSync(dump, join(next, dumpsIn(first)[0]!));
  const b = countingPGlite();
  await expectEmpty(await emptyPGlite(b.PGliteClass));
  expect(b.counted.initdb).toBe(0);
}, 120_000);

it('replaces a dump that PGlite cannot start from', async () => {
  const dir = cacheIn('broken', true);
  const file = join(dir, dumpsIn(join(root, 'first'))[0]!);
  writeFileSync(file, 'not a data directory');
  const c = countingPGlite();
  await expectEmpty(await emptyPGlite(c.PGliteClass));
  expect(c.counted.initdb).toBe(1);
  expect(statSync(file).size).toBe(statSync(dump).size);
}, 120_000);
