// Generates the Prisma client of test/prisma/schema.prisma into test/prisma/generated/ (git
// ignores it), unless it is already there and newer than the schema and this script. Run by
// `npm ci` (the root postinstall) and by the test setup (test/global-setup.ts), so a clean
// clone needs nothing else; a fresh generation takes a few seconds, a current one none.
//
// Why PRISMA_SCHEMA_ENGINE_BINARY: before `generate` (as before `migrate` and `db`), Prisma's
// CLI makes sure its native schema engine is installed, and downloads it from Prisma's own
// server, outside the npm registry; offline that fails with
//   Error: request to https://binaries.prisma.sh/…/schema-engine.gz.sha256 failed,
//   reason: getaddrinfo ENOTFOUND binaries.prisma.sh
// `generate` itself never runs that engine (it reads the schema with Prisma's WASM build, and
// Prisma 7's client needs no engine binary with a driver adapter), so the variable points at
// no-schema-engine.mjs, which only says it is not an engine. A real engine given in the
// variable is left alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const here = import.meta.dirname;
const schema = join(here, 'schema.prisma');
const output = join(here, 'generated');
const stamp = join(output, '.generated-by');

function prismaVersion() {
  const require = createRequire(import.meta.url);
  return require('prisma/package.json').version;
}

function isCurrent(version) {
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  const inputs = [schema, import.meta.filename].map((file) => statSync(file).mtimeMs);
  return readFileSync(stamp, 'utf8') === version && inputs.every((mtime) => mtime <= built);
}

/** Generates the client if it is missing or stale; returns whether it ran `prisma generate`. */
export function generatePrismaClient() {
  const version = prismaVersion();
  if (isCurrent(version)) return false;
  const require = createRequire(import.meta.url);
  const cli = join(require.resolve('prisma/package.json'), '..', 'build', 'index.js');
  const result = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: join(here, '..', '..'),
    encoding: 'utf8',
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY:
        process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? join(here, 'no-schema-engine.mjs'),
      // No update check and no telemetry: neither can reach its server here.
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
    },
  });
  if (result.status !== 0) {
    throw new Error(`prisma generate failed (${result.status}):\n${result.stdout}${result.stderr}`);
  }
  writeFileSync(stamp, version);
  return true;
}

if (process.argv[1] === import.meta.filename) {
  const ran = generatePrismaClient();
  console.log(ran ? 'Prisma client generated' : 'Prisma client is current');
}
