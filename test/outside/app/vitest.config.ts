// vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The first PGlite of each test file runs Postgres's initdb in WASM: 3–7 s on a laptop and
  // up to 20 s on a loaded 2-core CI box, past vitest's default of 5 s. Later ones in the
  // file reuse a closed one, reset (tens of milliseconds), or copy it (about a second).
  test: { testTimeout: 60_000 },
});
