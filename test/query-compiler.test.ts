import { compileQuery, type DatabaseTransaction, runQuery } from '@reprise/server';
import {
  createBuilder,
  createMutatorDefiner,
  createSchema,
  defineMutators,
  Query,
  QueryError,
} from '@reprise/shared';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { post, pushBody } from './fixtures/push';
import {
  CURSOR_CASES,
  EXISTS_CASES,
  FILTER_CASES,
  ORDER_CASES,
  type QueryCase,
  q,
} from './fixtures/query-cases';
import { insertRows, seedQueryTables } from './fixtures/query-data';
import { querySchema, user } from './fixtures/query-schema';
import { REFUSED_QUERIES } from './fixtures/refused-queries';

// The SQL query compiler: its statements (unit), the rows it gives on every adapter, and
// `tx.run` inside a push. pg-mem runs only part of Postgres's SQL: the cases it cannot run
// are skipped there (the title says why) and it must refuse them with a QueryError.

const EVIL = "'); DROP TABLE q_issue; --";

/** A transaction that records statements instead of running them. */
function recorder() {
  const calls: { text: string; params: readonly unknown[] }[] = [];
  const tx: Pick<DatabaseTransaction, 'query'> = {
    query: async (text, params = []) => {
      calls.push({ text, params });
      return [] as never[];
    },
  };
  return { calls, tx };
}

// A row wider than json_build_object's 100 arguments, to nest as merged jsonb objects.
const WIDTH = 60;
const numbered = Array.from({ length: WIDTH }, (_, i) => `n${i}`);
const wide = pgTable('q_wide', {
  id: text('id').primaryKey(),
  ownerID: text('owner_id').notNull(),
  ...Object.fromEntries(numbered.map((name) => [name, integer(name)])),
});
const wideSchema = createSchema({
  tables: { user, wide },
  relationships: ({ many }) => ({
    user: { wides: many('wide', { sourceField: 'id', destField: 'ownerID' }) },
  }),
});

const unknownColumn = new Query(
  querySchema,
  { table: 'issue', where: { type: 'simple', column: 'nope', op: '=', value: 1 } },
  false,
);

describe('compileQuery', () => {
  it('sends every value as a parameter and writes none into the SQL', () => {
    const query = q.issue
      .where(({ or, cmp, exists }) =>
        or(
          cmp('title', EVIL),
          cmp('title', 'LIKE', EVIL),
          cmp('ownerID', 'IN', [EVIL, 'u1']),
          exists('comments', (c) => c.where('body', '>=', EVIL)),
        ),
      )
      .where('votes', '>', 123456789012345678n)
      .where('createdAt', '<', new Date('2031-02-03T04:05:06.789Z'))
      .related('comments', (c) => c.where('body', '!=', EVIL).limit(3131))
      .orderBy('title')
      .start({ title: EVIL, id: EVIL })
      .limit(4242);
    const { text, params } = compileQuery(querySchema, query.ast);
    for (const value of ['DROP', "');", '123456789012345678', '2031', '4242', '3131', 'u1']) {
      expect(text).not.toContain(value);
    }
    expect(params.filter((p) => p === EVIL)).toHaveLength(7);
    expect(params).toEqual(
      expect.arrayContaining(['u1', '123456789012345678', '2031-02-03T04:05:06.789Z', 4242, 3131]),
    );
  });

  it('compiles related rows two deep and whereExists into one statement, run in one round trip', async () => {
    const query = q.user
      .whereExists('issues', (i) => i.whereExists('comments'))
      .related('issues', (i) =>
        i.whereExists('comments').related('comments', (c) => c.related('author').limit(2)),
      );
    const { text } = compileQuery(querySchema, query.ast);
    expect(text.startsWith('SELECT ')).toBe(true);
    expect(text).not.toContain(';');
    // SQL keeps no order through a subquery into an aggregate unless the aggregate asks.
    expect(text.match(/json_agg\("t\d+"\."j" ORDER BY "t\d+"\."n"\)/g)).toHaveLength(2);
    const { calls, tx } = recorder();
    expect(await runQuery(tx, querySchema, query)).toEqual([]);
    expect(calls.map((c) => c.text)).toEqual([text]);
  });

  it('orders and range-compares text under collation "C" with explicit NULLS, but not equality', () => {
    const ast = q.issue.where('id', 'i1').where('title', '>', 'a').orderBy('priority', 'desc').ast;
    const { text } = compileQuery(querySchema, ast);
    expect(text).toContain(`"t0"."id" = $1::text`); // no COLLATE: the key's index still applies
    expect(text).toContain(`"t0"."title" COLLATE "C" > $2::text`);
    expect(text).toContain(
      `ORDER BY "t0"."priority" DESC NULLS FIRST, "t0"."id" COLLATE "C" ASC NULLS LAST`,
    );
  });

  it('checks the AST before anything runs: an unknown column is a QueryError', async () => {
    const { calls, tx } = recorder();
    await expect(runQuery(tx, querySchema, unknownColumn)).rejects.toThrow(
      /"nope" is not a column of issue/,
    );
    await expect(runQuery(tx, querySchema, unknownColumn)).rejects.toBeInstanceOf(QueryError);
    expect(calls).toEqual([]);
  });

  // The same table runs through the client's evaluator in evaluate.test.ts.
  it.each(REFUSED_QUERIES)('refuses %s with a QueryError', (_, ast, message) => {
    expect(() => compileQuery(querySchema, ast)).toThrow(message);
    expect(() => compileQuery(querySchema, ast)).toThrow(QueryError);
  });

  it('for pg-mem (partialSQL) leaves COLLATE out and refuses related() by name', () => {
    const { text } = compileQuery(querySchema, q.issue.orderBy('title').ast, { partialSQL: true });
    expect(text).not.toContain('COLLATE');
    expect(() =>
      compileQuery(querySchema, q.issue.related('comments').ast, { partialSQL: true }),
    ).toThrow(/pg-mem\) cannot run related\("comments"\): it has no correlated subqueries/);
  });
});

for (const adapter of ADAPTERS) {
  const partial = adapter.name.startsWith('pg-mem');
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  /** The title of a case pg-mem cannot run, saying why when this is pg-mem. */
  const fullSQL = (name: string, reason: string) =>
    partial ? `${name} [skipped on pg-mem: ${reason}]` : name;

  describe.skipIf(adapter.unavailable !== undefined)(`queries: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      // pg-mem has no collations; elsewhere a linguistic one makes code point order a test.
      await seedQueryTables(fx, partial ? {} : { titleCollation: 'und-x-icu' });
    });
    afterAll(async () => {
      await fx.close();
    });

    const run = <Q extends Query<any, any, any, any>>(query: Q) =>
      fx.db.transaction(
        (tx) => runQuery(tx, querySchema, query, { partialSQL: fx.db.capabilities.partialSQL }),
        { isolation: 'read committed' },
      );
    const ids = async (query: Query<any, any, any, any>) =>
      ((await run(query)) as { id: string }[]).map((row) => row.id);

    const cases: [string, readonly QueryCase[]][] = [
      ['filter', FILTER_CASES],
      ['order', ORDER_CASES],
      ['start', CURSOR_CASES],
      ['whereExists', EXISTS_CASES],
    ];
    for (const [group, list] of cases) {
      for (const c of list) {
        const name = `${group}: ${c.title}`;
        if (!c.fullSQL) {
          it(name, async () => expect(await ids(c.query)).toEqual(c.ids));
          continue;
        }
        it.skipIf(partial)(fullSQL(name, c.fullSQL), async () => {
          expect(await ids(c.query)).toEqual(c.ids);
        });
        if (partial) {
          it(`${name}: refused with a QueryError naming pg-mem`, async () => {
            await expect(run(c.query)).rejects.toThrow(/pg-mem\) cannot run/);
          });
        }
      }
    }

    it('one() returns the first row in the ordering', async () => {
      expect(await run(q.issue.where('ownerID', 'u3').one())).toMatchObject({ id: 'i4' });
    });

    it('one() returns undefined when nothing matches', async () => {
      expect(await run(q.issue.where('id', 'nope').one())).toBeUndefined();
    });

    it('decodes Date, bigint and json into the in-memory types', async () => {
      const rows = await run(q.issue.where('id', 'IN', ['i3', 'i4', 'i5']));
      expect(rows).toEqual([
        {
          id: 'i3',
          title: 'Dark mode',
          ownerID: 'u2',
          open: true,
          priority: 1,
          votes: 3n,
          createdAt: new Date('2026-02-01T10:20:30.456Z'),
          meta: { n: 1.5, nested: { a: [1, 'x', null] } },
        },
        expect.objectContaining({ id: 'i4', votes: null, meta: 'text' }),
        expect.objectContaining({ id: 'i5', votes: -7n, createdAt: null, meta: null }),
      ]);
      expect(typeof rows[0]!.votes).toBe('bigint');
      expect(rows[0]!.createdAt).toBeInstanceOf(Date);
    });

    it('a value that looks like SQL is only compared, as data', async () => {
      expect(await ids(q.issue.where('title', EVIL))).toEqual([]);
      expect(await ids(q.issue.where('title', '>=', EVIL).limit(1))).toEqual(['i1']);
    });

    it('an unknown column in a hand-built AST is a QueryError, not a database error', async () => {
      await expect(run(unknownColumn)).rejects.toBeInstanceOf(QueryError);
    });

    it.skipIf(partial)(
      fullSQL('bigint beyond 2^53 round-trips exactly', 'pg-mem stores int8 as JS numbers'),
      async () => {
        const votes = 9223372036854775807n;
        await insertRows(fx, 'issue', [
          { id: 'big', title: 'big', ownerID: 'u1', open: true, votes },
        ]);
        try {
          const row = await run(q.issue.where('votes', '>', 9007199254740993n).one());
          expect(row).toMatchObject({ id: 'big', votes });
        } finally {
          await fx.query(`DELETE FROM q_issue WHERE id = 'big'`);
        }
      },
    );

    it.skipIf(partial)(
      fullSQL(
        'reads the same instants under a session time zone other than UTC',
        'pg-mem has no SET TIME ZONE',
      ),
      async () => {
        const at = new Date('2026-02-01T10:20:30.456Z');
        const rows = await fx.db.transaction(
          async (tx) => {
            await tx.query(`SET LOCAL TIME ZONE 'America/New_York'`);
            return runQuery(
              tx,
              querySchema,
              q.user.where('id', 'u2').related('issues', (i) => i.where('createdAt', at)),
            );
          },
          { isolation: 'read committed' },
        );
        expect(rows).toMatchObject([{ id: 'u2', issues: [{ id: 'i3', createdAt: at }] }]);
      },
    );

    const related = (name: string) => fullSQL(name, 'pg-mem has no correlated subqueries');

    it.skipIf(partial)(related(`related rows of ${WIDTH + 2} columns nest whole`), async () => {
      await fx.query(
        `CREATE TABLE q_wide (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, ${numbered.map((n) => `${n} INTEGER`).join(', ')})`,
      );
      const values = numbered.map((_, i) => `$${i + 3}`).join(', ');
      await fx.query(
        `INSERT INTO q_wide (id, owner_id, ${numbered.join(', ')}) VALUES ($1, $2, ${values})`,
        ['w1', 'u1', ...numbered.map((_, i) => i)],
      );
      const query = createBuilder(wideSchema).user.where('id', 'u1').related('wides').one();
      const found = await fx.db.transaction((tx) => runQuery(tx, wideSchema, query), {
        isolation: 'read committed',
      });
      expect(found?.wides).toEqual([
        { id: 'w1', ownerID: 'u1', ...Object.fromEntries(numbered.map((n, i) => [n, i])) },
      ]);
    });

    it.skipIf(partial)(related('related many: ordered, ties by primary key, limited'), async () => {
      const issue = await run(
        q.issue
          .where('id', 'i1')
          .related('comments', (c) => c.orderBy('score', 'desc').limit(2))
          .one(),
      );
      expect(issue?.comments.map((c) => c.id)).toEqual(['c2', 'c6']);
    });

    it.skipIf(partial)(related('related many: the limit applies per parent'), async () => {
      const issues = await run(q.issue.related('comments', (c) => c.orderBy('score').limit(1)));
      expect(issues.map((i) => [i.id, i.comments.map((c) => c.id)])).toEqual([
        ['i1', ['c3']],
        ['i2', []],
        ['i3', ['c4']],
        ['i4', []],
        ['i5', []],
        ['i6', []],
      ]);
    });

    it.skipIf(partial)(related('related many: where and cursor in the subquery'), async () => {
      const issue = await run(
        q.issue
          .where('id', 'i1')
          .related('comments', (c) =>
            c
              .where('score', '>', 1)
              .orderBy('score')
              .start({ score: 3, id: 'c1' }, { inclusive: true }),
          )
          .one(),
      );
      expect(issue?.comments.map((c) => c.id)).toEqual(['c1', 'c2', 'c6']);
    });

    it.skipIf(partial)(
      related('related one: the row, or undefined for a null or missing match'),
      async () => {
        const comments = await run(q.comment.related('author').related('issue'));
        expect(comments.map((c) => [c.id, c.author?.name, c.issue?.id])).toEqual([
          ['c1', 'bob', 'i1'],
          ['c2', undefined, 'i1'],
          ['c3', 'Cy', 'i1'],
          ['c4', 'Ada', 'i3'],
          ['c5', 'Ada', undefined],
          ['c6', 'Ada', 'i1'],
        ]);
      },
    );

    it.skipIf(partial)(
      related('related rows nest, typed values decoded inside the JSON'),
      async () => {
        const user = await run(
          q.user
            .where('id', 'u2')
            .related('issues', (i) =>
              i.whereExists('comments').related('comments', (c) => c.related('author')),
            )
            .one(),
        );
        expect(user).toEqual({
          id: 'u2',
          name: 'bob',
          karma: null,
          issues: [
            {
              id: 'i3',
              title: 'Dark mode',
              ownerID: 'u2',
              open: true,
              priority: 1,
              votes: 3n,
              createdAt: new Date('2026-02-01T10:20:30.456Z'),
              meta: { n: 1.5, nested: { a: [1, 'x', null] } },
              comments: [
                {
                  id: 'c4',
                  issueID: 'i3',
                  authorID: 'u1',
                  body: 'yes',
                  score: 2,
                  author: { id: 'u1', name: 'Ada', karma: 10 },
                },
              ],
            },
          ],
        });
      },
    );

    if (partial) {
      it('related() is refused with a QueryError naming pg-mem', async () => {
        await expect(run(q.issue.related('comments'))).rejects.toThrow(
          /pg-mem\) cannot run related\("comments"\)/,
        );
      });
    }
  });

  describe.skipIf(adapter.unavailable !== undefined)(`tx.run in a push: ${title}`, () => {
    const defineMutator = createMutatorDefiner<typeof querySchema, unknown>();
    const mutators = defineMutators({
      issue: {
        createAndRead: defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
          const before = await tx.run(q.issue.where('id', args.id).one());
          await tx.mutate.issue.insert({
            id: args.id,
            title: `T ${args.id}`,
            ownerID: 'u9',
            open: true,
          });
          const after = await tx.run(q.issue.where('id', args.id).one());
          const mine = await tx.run(q.issue.where('ownerID', 'u9'));
          return {
            before: before ?? null,
            title: after?.title ?? null,
            mine: mine.map((i) => i.id),
          };
        }),
        badQuery: defineMutator(async ({ tx }) => {
          await tx.run(unknownColumn);
        }),
        countComments: defineMutator(async ({ tx }) => {
          const issue = await tx.run(q.issue.where('id', 'i1').related('comments').one());
          return issue?.comments.length;
        }),
      },
    });
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await seedQueryTables(fx);
    });
    beforeEach(async () => {
      await fx.reset();
    });
    afterEach(async () => {
      await fx.query(`DELETE FROM q_issue WHERE "owner_id" = 'u9'`);
    });
    afterAll(async () => {
      await fx.close();
    });
    const push = (mutations: Parameters<typeof pushBody>[0]) =>
      post(fx, pushBody(mutations), { schema: querySchema, mutators });

    it("sees the mutation's own earlier writes, and those of earlier mutations in the push", async () => {
      const res = await push([
        { id: 1, name: 'issue.createAndRead', args: { id: 'p1' } },
        { id: 2, name: 'issue.createAndRead', args: { id: 'p2' } },
      ]);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { data: { before: null, title: 'T p1', mine: ['p1'] } },
        { data: { before: null, title: 'T p2', mine: ['p1', 'p2'] } },
      ]);
    });

    it(
      partial
        ? 'related() is an app error naming pg-mem, which cannot run it'
        : 'related() runs and nests the rows',
      async () => {
        const res = await push([{ id: 1, name: 'issue.countComments' }]);
        expect(res.body.mutations[0].result).toEqual(
          partial
            ? { error: 'app', message: expect.stringMatching(/pg-mem\) cannot run related/) }
            : { data: 4 },
        );
      },
    );

    it('a query the schema refuses is an app error naming the column', async () => {
      const res = await push([{ id: 1, name: 'issue.badQuery' }]);
      expect(res.body.mutations[0].result).toMatchObject({
        error: 'app',
        message: expect.stringMatching(/"nope" is not a column of issue/),
      });
    });
  });
}
