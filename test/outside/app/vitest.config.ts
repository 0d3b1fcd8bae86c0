// vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The first PGlite of each test file runs Postgres's initdb in WASM: 3–7 s on a busy
  // machine, past vitest's default of 5 s. Later ones in the file copy it (well under 1 s).
  test: { testTimeout: 30_000 },
});
