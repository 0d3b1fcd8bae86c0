import { runQuery } from '@reprise/server';
import {
  createMemoryStore,
  evaluateQuery,
  type MemoryStore,
  Query,
  type QueryAST,
} from '@reprise/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { caseArb, type Dataset, datasetArb } from './fixtures/query-arbitraries';
import { insertRows } from './fixtures/query-data';
import { QUERY_DDL, querySchema } from './fixtures/query-schema';

// The differential property test: random rows in three related tables, random queries
// over them, run on the in-memory evaluator and on Postgres. The rows must be identical.
// 150 data sets × 10 queries = 1,500 cases per database per run; a failure is shrunk and
// printed with its query and data.

const DATASETS = 150;
const QUERIES_PER_DATASET = 10;
const TABLES = ['comment', 'issue', 'user'] as const;

/** Makes values comparable across the two sides: Dates as instants, bigints tagged. */
function normalise(value: unknown): unknown {
  if (value instanceof Date) return `date:${value.toISOString()}`;
  if (typeof value === 'bigint') return `bigint:${value}`;
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

function loadStore(data: Dataset): MemoryStore<typeof querySchema> {
  const store = createMemoryStore(querySchema);
  for (const table of TABLES) {
    for (const row of data[table]) store.put(table, row as never);
  }
  return store;
}

async function loadDatabase(fx: AdapterFixture, data: Dataset) {
  for (const table of TABLES) {
    await fx.query(`DELETE FROM ${querySchema.tableInfo.get(table)!.sqlName}`);
  }
  for (const table of ['user', 'issue', 'comment'] as const) {
    await insertRows(fx, table, data[table]);
  }
}

async function runOnDatabase(fx: AdapterFixture, ast: QueryAST) {
  const query = new Query(querySchema, ast as QueryAST & { table: 'issue' }, false);
  return fx.db.transaction((tx) => runQuery(tx, querySchema, query), {
    isolation: 'read committed',
  });
}

const databases = ADAPTERS.filter(
  (a) => a.name === 'pglite' || a.name === 'postgres.js (real server)',
);

for (const adapter of databases) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`differential: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      for (const statement of QUERY_DDL) await fx.query(statement);
      if (adapter.concurrent) {
        // A linguistic collation on a text column: the compiler must still order as "C".
        await fx.query(`ALTER TABLE q_issue ALTER COLUMN title TYPE text COLLATE "und-x-icu"`);
      }
    });
    afterAll(async () => {
      await fx.close();
    });

    it('the evaluator and Postgres return the same rows for 1,500 random queries', async () => {
      let cases = 0;
      const property = fc.asyncProperty(
        datasetArb.chain((data) =>
          fc.tuple(
            fc.constant(data),
            fc.array(caseArb(data), {
              minLength: QUERIES_PER_DATASET,
              maxLength: QUERIES_PER_DATASET,
            }),
          ),
        ),
        async ([data, asts]) => {
          const store = loadStore(data);
          await loadDatabase(fx, data);
          for (const ast of asts) {
            cases++;
            const expected = normalise(evaluateQuery(store, querySchema, ast));
            const actual = normalise(await runOnDatabase(fx, ast));
            expect(actual, `query ${JSON.stringify(normalise(ast))}`).toEqual(expected);
          }
        },
      );
      await fc.assert(property, { numRuns: DATASETS, endOnFailure: false });
      expect(cases).toBeGreaterThanOrEqual(DATASETS * QUERIES_PER_DATASET);
    }, 300_000);
  });
}
