import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { initdbImage } from '../packages/server/src/testing/pglite-image';
import { dropServerTemplates, templateSlug } from './fixtures/templates';
// @ts-expect-error: a plain script, with no types; it generates the Prisma adapter's client.
import { generatePrismaClient } from './prisma/generate.mjs';

// Says once, at the top of the run, whether the real-Postgres suites and the browser
// end-to-end tests run or are skipped. Names this run's fixture templates
// (test/fixtures/templates.ts), makes sure of the dump of PGlite's initdb they all start
// from, and removes the templates at the end.
export default async function setup(project: TestProject) {
  // `npm ci` generated it already; this catches a schema edited since (a few seconds, once).
  generatePrismaClient();
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    process.stdout.write(
      `NOTICE: no chromium at ${chromium}; the browser end-to-end tests are SKIPPED. ` +
        'Install it with `apt-get install chromium chromium-driver` (or set CHROMIUM_PATH).\n',
    );
  }
  if (process.env.DATABASE_URL) {
    process.stdout.write('Real-Postgres suites run against DATABASE_URL.\n');
  } else {
    process.stdout.write(
      'NOTICE: DATABASE_URL is not set; the real-Postgres suites are SKIPPED ' +
        '(PGlite and pg-mem suites still run). Set DATABASE_URL to run them.\n',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'reprise-templates-'));
  const prefix = `rtpl_${process.pid}_${templateSlug(dir.slice(-6))}_`;
  // initdb, when no earlier run left its dump, here, before the workers load the machine
  // (packages/server/src/testing/pglite-image.ts). The timer also keeps the process alive:
  // should PGlite leave a promise unsettled, vitest would otherwise exit 0 having run no
  // test at all.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    initdbImage(PGlite),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('PGlite initdb took over 2 minutes')), 120_000);
    }),
  ]).finally(() => clearTimeout(timer));
  project.provide('templateRun', { dir, prefix });
  return async () => {
    rmSync(dir, { recursive: true, force: true });
    if (process.env.DATABASE_URL) await dropServerTemplates(process.env.DATABASE_URL, prefix);
  };
}
