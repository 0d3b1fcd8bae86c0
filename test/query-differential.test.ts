import { runQuery } from '@reprise/server';
import {
  createMemoryStore,
  decodeRich,
  encodeRich,
  evaluateQuery,
  JSON_NULL,
  type MemoryStore,
  Query,
  type QueryAST,
  QueryError,
} from '@reprise/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { caseArb, type Dataset, datasetArb } from './fixtures/query-arbitraries';
import { insertRows } from './fixtures/query-data';
import { QUERY_DDL, querySchema } from './fixtures/query-schema';

// The differential property test: random rows in four related tables, random queries
// over them, run on the in-memory evaluator and on Postgres. The rows must be identical.
// The store holds the rows as a client would: read back from the database by the server's
// decoder and sent through the wire encoding (superjson), as pull does.
// 150 data sets × 10 queries = 1,500 cases per database per run; a failure is shrunk and
// printed with its query and data.

const DATASETS = 150;
const QUERIES_PER_DATASET = 10;
const TABLES = ['measure', 'comment', 'issue', 'user'] as const;

/** Makes values comparable across the two sides: Dates as instants, bigints tagged. */
function normalise(value: unknown): unknown {
  if (value instanceof Date) return `date:${value.toISOString()}`;
  if (typeof value === 'bigint') return `bigint:${value}`;
  if (value === JSON_NULL) return 'json:null';
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

/** Rows, or the refusal: a query one side refuses the other must refuse too. */
async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return normalise(await run());
  } catch (error) {
    if (error instanceof QueryError) return { refused: error.message };
    throw error;
  }
}

/** The database's rows as pull would deliver them: decoded, then through the wire. */
async function loadStore(fx: AdapterFixture): Promise<MemoryStore<typeof querySchema>> {
  const store = createMemoryStore(querySchema);
  for (const table of TABLES) {
    const rows = await runOnDatabase(fx, { table });
    const wire = JSON.parse(JSON.stringify(encodeRich(rows)));
    for (const row of decodeRich(wire) as typeof rows) store.put(table, row as never);
  }
  return store;
}

async function loadDatabase(fx: AdapterFixture, data: Dataset) {
  for (const table of TABLES) {
    await fx.query(`DELETE FROM ${querySchema.tableInfo.get(table)!.sqlName}`);
  }
  for (const table of ['user', 'issue', 'comment', 'measure'] as const) {
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
          await loadDatabase(fx, data);
          const store = await loadStore(fx);
          for (const ast of asts) {
            cases++;
            const expected = await outcome(() => evaluateQuery(store, querySchema, ast));
            const actual = await outcome(() => runOnDatabase(fx, ast));
            expect(actual, `query ${JSON.stringify(normalise(ast))}`).toEqual(expected);
          }
        },
      );
      await fc.assert(property, { numRuns: DATASETS, endOnFailure: false });
      expect(cases).toBeGreaterThanOrEqual(DATASETS * QUERIES_PER_DATASET);
    }, 300_000);
  });
}
