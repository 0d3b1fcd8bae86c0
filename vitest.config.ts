import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Inside the repo the packages run from their TypeScript sources: `@reprise/source` is the
// condition each package's `exports` map names its source under (dist/ is only for the
// published tarballs, see `npm run build`).
const SOURCE_CONDITION = '@reprise/source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  // Without `module`: vitest hands these conditions to Node too (--conditions), and a
  // bundler-only `module` build such as @opentelemetry/api's (imports without file
  // extensions) does not load in Node.
  ssr: {
    resolve: {
      conditions: [SOURCE_CONDITION, ...defaultServerConditions.filter((c) => c !== 'module')],
    },
  },
  test: {
    include: [
      'packages/*/src/**/*.test.{ts,tsx}',
      'test/**/*.test.{ts,tsx}',
      'examples/*/test/**/*.test.ts',
    ],
    // The apps in test/outside run on the packed tarballs (npm run test:outside), not here.
    exclude: ['**/node_modules/**', 'test/outside/**'],
    globalSetup: ['test/global-setup.ts'],
    // Most of the suite waits on Postgres, sockets and timers rather than the CPU: on a
    // 2-core machine vitest's default (cores - 1 workers) leaves one core mostly idle.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    typecheck: { enabled: false },
  },
});
