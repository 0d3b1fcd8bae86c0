#!/usr/bin/env node
// Stands where Prisma's CLI looks for its schema engine (PRISMA_SCHEMA_ENGINE_BINARY), so that
// `prisma generate` runs offline; see generate.mjs. It is not an engine: anything that tries to
// run it is told so and fails.
console.error(
  'No Prisma schema engine is installed here (it is downloaded from outside the npm registry). ' +
    '`prisma generate` does not need one; migrate and db commands do.',
);
process.exit(1);
