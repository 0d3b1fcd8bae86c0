import { runQuery } from '@reprise/server';
import {
  createBuilder,
  createMemoryStore,
  createSchema,
  decodeRich,
  encodeRich,
  type Query,
  runQuery as runInMemory,
} from '@reprise/shared';
import { bigint, char, integer, pgTable, text, timestamp, varchar } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';

// Relationships join columns of different declared types only where Postgres's `=`
// between them and the client's comparison agree (createSchema refuses the others, see
// column-types.test.ts): integers of any width, varchar with text, char of any length,
// timestamps of any precision. Each join gives the same rows on both sides, here under a
// session time zone that is not UTC.

const parent = pgTable('q_parent', {
  id: text('id').primaryKey(),
  n: integer('n'),
  name: varchar('name', { length: 10 }),
  code: char('code', { length: 3 }),
  at: timestamp('at', { withTimezone: true, precision: 3 }),
});
const child = pgTable('q_child', {
  id: text('id').primaryKey(),
  n: bigint('n', { mode: 'bigint' }),
  name: text('name'),
  code: char('code', { length: 5 }),
  at: timestamp('at', { withTimezone: true }),
});
const FIELDS = ['n', 'name', 'code', 'at'] as const;
const schema = createSchema({
  tables: { parent, child },
  relationships: ({ many }) => ({
    parent: Object.fromEntries(
      FIELDS.map((field) => [field, many('child', { sourceField: field, destField: field })]),
    ) as Record<(typeof FIELDS)[number], ReturnType<typeof many<'child'>>>,
  }),
});
const q = createBuilder(schema);

const DDL = [
  `CREATE TABLE q_parent (id TEXT PRIMARY KEY, n INTEGER, name VARCHAR(10), code CHAR(3),
     at TIMESTAMPTZ(3))`,
  `CREATE TABLE q_child (id TEXT PRIMARY KEY, n BIGINT, name TEXT, code CHAR(5), at TIMESTAMPTZ)`,
  `INSERT INTO q_parent VALUES
     ('p1', 5, 'a', 'a', '2026-01-01 00:00:00.001+00'),
     ('p2', 6, 'b ', 'b  ', '2026-01-01 00:00:00+00')`,
  `INSERT INTO q_child VALUES
     ('c1', 5, 'a', 'a    ', '2026-01-01 00:00:00.001+00'),
     ('c2', 6, 'b', 'b', '2026-01-01 00:00:00.000001+00')`,
];

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('pg-mem'))) {
  describe.skipIf(adapter.unavailable !== undefined)(`joins across types: ${adapter.name}`, () => {
    let fx: AdapterFixture;
    const store = createMemoryStore(schema);
    const onDatabase = (query: Query<any, any, any, any>) =>
      fx.db.transaction(
        async (tx) => {
          await tx.query(`SET LOCAL TimeZone = 'Asia/Kolkata'`);
          return (await runQuery(tx, schema, query)) as { id: string }[];
        },
        { isolation: 'read committed' },
      );
    beforeAll(async () => {
      fx = await adapter.create();
      for (const statement of DDL) await fx.query(statement);
      for (const table of ['parent', 'child'] as const) {
        const rows = await onDatabase(q[table]);
        for (const row of decodeRich(JSON.parse(JSON.stringify(encodeRich(rows)))) as never[]) {
          store.put(table, row);
        }
      }
    });
    afterAll(async () => {
      await fx?.close();
    });

    it.for([
      ['n', ['p1', 'p2']],
      ['name', ['p1']],
      ['code', ['p1', 'p2']],
      ['at', ['p1']],
    ] as const)('whereExists on %s gives the same rows', async ([field, ids]) => {
      const query = q.parent.whereExists(field);
      const inMemory = (runInMemory(store, query) as { id: string }[]).map((row) => row.id);
      expect(inMemory).toEqual(ids);
      expect((await onDatabase(query)).map((row) => row.id)).toEqual(ids);
    });
  });
}
