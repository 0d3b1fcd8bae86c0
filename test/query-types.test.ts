import { runQuery } from '@reprise/server';
import {
  createBuilder,
  createMemoryStore,
  createSchema,
  decodeRich,
  encodeRich,
  type Query,
  QueryError,
  runQuery as runInMemory,
} from '@reprise/shared';
import {
  bigint,
  char,
  inet,
  numeric,
  pgEnum,
  pgTable,
  real,
  text,
  uuid,
} from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';

// The column types whose SQL comparison differs from their in-memory type's (SEMANTICS.md,
// "Column types"): each query gives the stated rows both in Postgres and in the client's
// evaluator, whose store holds the rows as pull delivers them (read back, through the wire).

const mood = pgEnum('q_mood', ['sad', 'ok', 'happy']);
const thing = pgTable('q_thing', {
  id: text('id').primaryKey(),
  big: bigint('big', { mode: 'number' }),
  ratio: real('ratio'),
  amount: numeric('amount'),
  approx: numeric('approx', { mode: 'number' }),
  code: char('code', { length: 3 }),
  uid: uuid('uid'),
  addr: inet('addr'),
  feel: mood('feel'),
});
const schema = createSchema({ tables: { thing }, relationships: () => ({}) });
const q = createBuilder(schema);

const DDL = [
  `CREATE TYPE q_mood AS ENUM ('sad', 'ok', 'happy')`,
  `CREATE TABLE q_thing (id TEXT PRIMARY KEY, big BIGINT, ratio REAL, amount NUMERIC,
     approx NUMERIC, code CHAR(3), uid UUID, addr INET, feel q_mood)`,
  `INSERT INTO q_thing VALUES
     ('t1', 9007199254740993, 0.1, '1.50', '0.1000000000000000001', 'a', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '10.0.0.1', 'ok'),
     ('t2', 9007199254740992, 0.3, '1.5', '0.1', 'a ', NULL, '10.0.0.0/8', 'sad'),
     ('t3', 7, 'NaN', '10', '0.2', 'ab', NULL, NULL, 'happy'),
     ('t4', NULL, NULL, '9', NULL, NULL, NULL, NULL, NULL)`,
];

type AnyQuery = Query<any, any, any, any>;
const CASES: [string, AnyQuery, string[]][] = [
  ['real = 0.1 matches the stored float4 0.1', q.thing.where('ratio', 0.1), ['t1']],
  ['real IN compares as float4', q.thing.where('ratio', 'IN', [0.3, 0.5]), ['t2']],
  ['real orders NaN last', q.thing.where('ratio', '>', 0.2).orderBy('ratio'), ['t2', 't3']],
  ["numeric '1.5' equals '1.50'", q.thing.where('amount', '1.5'), ['t1', 't2']],
  ['numeric IN is by value', q.thing.where('amount', 'IN', ['10.0', '1.500']), ['t1', 't2', 't3']],
  ['numeric orders by value', q.thing.orderBy('amount', 'desc'), ['t3', 't4', 't1', 't2']],
  ['numeric range by value', q.thing.where('amount', '>', '9.5'), ['t3']],
  ['numeric mode number orders as doubles', q.thing.orderBy('approx'), ['t1', 't2', 't3', 't4']],
  ["char = 'a' ignores padding", q.thing.where('code', 'a'), ['t1', 't2']],
  ["char = 'a  ' ignores padding", q.thing.where('code', 'a  '), ['t1', 't2']],
  ['char LIKE sees the padded value', q.thing.where('code', 'LIKE', 'a__'), ['t1', 't2', 't3']],
  [
    'a cursor on a char column excludes its own row',
    q.thing.orderBy('code').start({ id: 't1', code: 'a  ' }),
    ['t2', 't3', 't4'],
  ],
  ['bigint beyond 2^53 is exact', q.thing.where('big', 2 ** 53), ['t2']],
  ['bigint beyond 2^53 orders exactly', q.thing.orderBy('big', 'desc'), ['t4', 't1', 't2', 't3']],
  [
    'uuid literals compare in any case',
    q.thing.where('uid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'),
    ['t1'],
  ],
  ['inet compares its text form', q.thing.where('addr', 'IN', ['10.0.0.1/32', '10.0.0.0']), ['t1']],
  ['an enum orders by its text', q.thing.where('feel', '>', 'ok').orderBy('feel'), ['t2']],
];

const REFUSED: [string, AnyQuery, RegExp][] = [
  ['a uuid literal that is not a uuid', q.thing.where('uid', 'nope'), /not a valid string/],
  [
    'an enum literal that is not a label',
    // @ts-expect-error: the builder's types already refuse a label the enum lacks
    q.thing.where('feel', 'meh'),
    /not a label of enum/,
  ],
  ['a real literal float4 cannot hold', q.thing.where('ratio', 1e39), /outside the range/],
  ['a numeric literal that is not a decimal', q.thing.where('amount', '1,5'), /not a valid/],
  ['LIKE on numeric', q.thing.where('amount', 'LIKE' as any, '1%'), /does not apply/],
];

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('pg-mem'))) {
  describe.skipIf(adapter.unavailable !== undefined)(`column types: ${adapter.name}`, () => {
    let fx: AdapterFixture;
    const store = createMemoryStore(schema);
    const onDatabase = (query: AnyQuery) =>
      fx.db.transaction((tx) => runQuery(tx, schema, query), { isolation: 'read committed' });
    beforeAll(async () => {
      fx = await adapter.create();
      for (const statement of DDL) await fx.query(statement);
      // As pull delivers them: decoded by the server, then through the wire encoding.
      const rows = await onDatabase(q.thing);
      const wire = JSON.parse(JSON.stringify(encodeRich(rows)));
      for (const row of decodeRich(wire) as typeof rows) store.put('thing', row);
    });
    afterAll(async () => {
      await fx?.close();
    });

    it('reads rows in their in-memory types, exact beyond 2^53', () => {
      expect(store.get('thing', { id: 't1' })).toMatchObject({
        big: 9007199254740993n,
        ratio: 0.1,
        amount: '1.50',
        code: 'a  ',
        uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        addr: '10.0.0.1/32',
      });
      expect(store.get('thing', { id: 't3' })).toMatchObject({ big: 7, ratio: Number.NaN });
    });

    for (const [title, query, ids] of CASES) {
      it(title, async () => {
        const inMemory = runInMemory(store, query) as { id: string }[];
        const inPostgres = (await onDatabase(query)) as { id: string }[];
        const sorted = (rows: { id: string }[]) =>
          query.ast.orderBy ? rows.map((r) => r.id) : rows.map((r) => r.id).sort();
        expect(sorted(inPostgres)).toEqual(ids);
        expect(sorted(inMemory)).toEqual(ids);
      });
    }

    for (const [title, query, message] of REFUSED) {
      it(`refuses ${title} on both sides`, async () => {
        expect(() => runInMemory(store, query)).toThrow(message);
        const error = await onDatabase(query).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(QueryError);
        expect((error as Error).message).toMatch(message);
      });
    }
  });
}
