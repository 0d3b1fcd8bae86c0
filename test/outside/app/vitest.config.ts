// vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The first PGlite on a machine runs Postgres's initdb in WASM: 3–7 s on a laptop and up
  // to 20 s on a loaded 2-core CI box, past vitest's default of 5 s. Later test files load
  // its result (about a second); later tests in a file reuse a closed database, reset.
  test: { testTimeout: 60_000 },
});
