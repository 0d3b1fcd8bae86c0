import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Inside the repo the packages run from their TypeScript sources: `@reprise/source` is the
// condition each package's `exports` map names its source under (dist/ is only for the
// published tarballs, see `npm run build`).
const SOURCE_CONDITION = '@reprise/source';

// Which test files start first. Vitest orders by the durations of the last run on this
// machine, and with none recorded (a fresh clone, as in CI) by file size; then a small,
// long file may start last and the whole run wait for it. These files, the longest of a
// run with DATABASE_URL set (2026-12-04), start first, longest first, whatever the cache
// says; the rest follow in vitest's order, and the chaos suites close the run (LAST).
const LONG_FIRST = [
  'test/concurrency.test.ts',
  'test/testing.test.ts',
  'test/jobs-crash.test.ts',
  'test/client-crud.test.ts',
  'test/change-stream.test.ts',
  'test/poke.test.ts',
  'test/jobs.test.ts',
  'test/query-differential.test.ts',
  'test/client-settle.test.ts',
  'test/read-path-faults.test.ts',
  'test/client.test.ts',
  'test/react.test.tsx',
  'examples/issue-tracker/test/mutators.test.ts',
  'examples/issue-tracker/test/browser.test.ts',
  'test/crud-endpoint.test.ts',
  'test/pull.test.ts',
  'test/query-compiler.test.ts',
  'test/client-property.test.ts',
  'test/client-live.test.ts',
];

// The chaos suites, 35-80 s each and CPU-bound, run after everything else rather than
// beside the hot-row test (test/concurrency.test.ts) at the start: the postgres.js hot row,
// 8 s alone, took 63-84 s beside them, and in one full run of six on 2026-12-04 answered
// more than 1% of its pushes 503 (24 of 2,024), failing the test.
const LAST = ['test/chaos/'];

function rank(file: string): number {
  const has = (prefix: string) => file.includes(`/${prefix}`);
  const first = LONG_FIRST.findIndex(has);
  if (first !== -1) return first;
  const last = LAST.findIndex(has);
  return last === -1 ? LONG_FIRST.length : LONG_FIRST.length + 1 + last;
}

class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return sorted.sort((a, b) => rank(a.moduleId) - rank(b.moduleId));
  }
}

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
    setupFiles: ['test/fast-check-replay.ts'],
    // Most of the suite waits on Postgres, sockets and timers rather than the CPU: on a
    // 2-core machine vitest's default (cores - 1 workers) leaves one core mostly idle.
    maxWorkers: 3,
    // A worker keeps the modules it has loaded from one test file to the next, instead of
    // loading the packages, drivers and PGlite anew for each (a third of the run's time).
    // Test files must therefore leave no global state behind: they restore what they stub.
    isolate: false,
    sequence: { sequencer: LongFirstSequencer },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    typecheck: { enabled: false },
  },
});
