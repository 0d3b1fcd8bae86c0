import { describe, expect, expectTypeOf, it } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { createBuilder, type QueryResult } from './query';
import { parseQueryAST, QueryError } from './validate';

const q = createBuilder(querySchema);

describe('query builder', () => {
  it('builds a plain AST and never mutates the builder it came from', () => {
    const base = q.issue.where('open', true);
    const more = base.where('priority', '>', 2).orderBy('createdAt', 'desc').limit(10);
    expect(base.ast).toEqual({
      table: 'issue',
      where: { type: 'simple', column: 'open', op: '=', value: true },
    });
    expect(more.ast).toEqual({
      table: 'issue',
      where: {
        type: 'and',
        conditions: [
          { type: 'simple', column: 'open', op: '=', value: true },
          { type: 'simple', column: 'priority', op: '>', value: 2 },
        ],
      },
      orderBy: [['createdAt', 'desc']],
      limit: 10,
    });
    expect(JSON.parse(JSON.stringify(more.ast))).toEqual(more.ast);
  });

  it('builds combinators, related subqueries, whereExists, a cursor and one()', () => {
    const query = q.issue
      .where(({ or, and, not, cmp, exists }) =>
        or(
          cmp('title', 'ILIKE', '%bug%'),
          and(
            not(cmp('priority', 'IS', null)),
            exists('comments', (c) => c.where('score', '>', 3)),
          ),
        ),
      )
      .related('comments', (c) => c.orderBy('score', 'desc').limit(2))
      .related('owner')
      .start({ id: 'i5' }, { inclusive: true })
      .one();
    expect(query.single).toBe(true);
    expect(query.ast.limit).toBe(1);
    expect(query.ast.related?.map((r) => r.relationship)).toEqual(['comments', 'owner']);
    expect(query.ast.start).toEqual({ row: { id: 'i5' }, inclusive: true });
    expect(parseQueryAST(querySchema, JSON.parse(JSON.stringify(query.ast)))).toEqual(query.ast);
  });

  it('types rows, related fields and one()', () => {
    const many = q.issue.related('comments', (c) => c.related('author')).related('owner');
    type Row = QueryResult<typeof many>[number];
    expectTypeOf<Row['title']>().toEqualTypeOf<string>();
    expectTypeOf<Row['comments'][number]['score']>().toEqualTypeOf<number>();
    expectTypeOf<Row['comments'][number]['author']>().toEqualTypeOf<
      { id: string; name: string; karma: number | null } | undefined
    >();
    expectTypeOf<Row['owner']>().toEqualTypeOf<
      { id: string; name: string; karma: number | null } | undefined
    >();
    expectTypeOf<QueryResult<ReturnType<typeof q.user.one>>>().toEqualTypeOf<
      { id: string; name: string; karma: number | null } | undefined
    >();
  });

  it('makes unknown columns and ill-fitting operators type errors', () => {
    // @ts-expect-error no such column
    q.issue.where('nope', 1);
    // @ts-expect-error LIKE needs a text column
    q.issue.where('priority', 'LIKE', '%1');
    // @ts-expect-error json columns only test for null
    q.issue.where('meta', '=', {});
    // @ts-expect-error the value must fit the column
    q.issue.where('open', '=', 'yes');
    // @ts-expect-error no such relationship
    expect(() => q.issue.related('watchers')).toThrow(/no relationship "watchers"/);
    // @ts-expect-error orderBy takes a column
    q.issue.orderBy('nope');
    // These assertions are checked by `npm run typecheck`: an unused @ts-expect-error fails it.
  });
});

describe('parseQueryAST', () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown table', { table: 'nope' }, /Unknown table "nope"/],
    [
      'an unknown column',
      { table: 'issue', where: { type: 'simple', column: 'nope', op: '=', value: 1 } },
      /"nope" is not a column of issue/,
    ],
    [
      'an operator that does not fit',
      { table: 'issue', where: { type: 'simple', column: 'priority', op: 'LIKE', value: '1' } },
      /operator LIKE does not apply to number column "priority"/,
    ],
    [
      'a value of the wrong type',
      { table: 'issue', where: { type: 'simple', column: 'open', op: '=', value: 'yes' } },
      /not a valid boolean/,
    ],
    [
      'an unknown relationship',
      { table: 'issue', related: [{ relationship: 'x', subquery: { table: 'comment' } }] },
      /issue has no relationship "x"/,
    ],
    ['a malformed tree', { table: 'issue', limit: -1 }, /Malformed query: limit/],
    [
      'ordering by a json column',
      { table: 'issue', orderBy: [['meta', 'asc']] },
      /json column "meta" cannot be ordered/,
    ],
    [
      'a cursor without every ordering column',
      {
        table: 'issue',
        orderBy: [['priority', 'asc']],
        start: { row: { id: 'i1' }, inclusive: false },
      },
      /cursor row lacks "priority"/,
    ],
    [
      'a LIKE pattern ending in the escape character',
      { table: 'issue', where: { type: 'simple', column: 'title', op: 'LIKE', value: 'a\\\\\\' } },
      /ends with the escape character/,
    ],
  ];
  for (const [what, input, message] of bad) {
    it(`refuses ${what} with a clear error`, () => {
      expect(() => parseQueryAST(querySchema, input)).toThrow(QueryError);
      expect(() => parseQueryAST(querySchema, input)).toThrow(message);
    });
  }

  it('accepts a whole result row as the cursor and keeps only the ordering columns', () => {
    const row = { id: 'i1', title: 't', priority: 2, meta: { a: 1 }, comments: [{ id: 'c1' }] };
    const ast = parseQueryAST(querySchema, {
      table: 'issue',
      orderBy: [['priority', 'desc']],
      start: { row, inclusive: false },
    });
    expect(ast.start).toEqual({ row: { priority: 2, id: 'i1' }, inclusive: false });
  });

  it('accepts a LIKE pattern ending in an escaped backslash', () => {
    const ast = {
      table: 'issue',
      where: { type: 'simple', column: 'title', op: 'LIKE', value: 'a\\\\' },
    };
    expect(() => parseQueryAST(querySchema, ast)).not.toThrow();
  });

  it('turns wire strings back into dates and bigints', () => {
    const ast = parseQueryAST(querySchema, {
      table: 'issue',
      where: {
        type: 'and',
        conditions: [
          { type: 'simple', column: 'createdAt', op: '>', value: '2026-01-01T00:00:00.000Z' },
          { type: 'simple', column: 'votes', op: 'IN', value: ['1', '2'] },
        ],
      },
    });
    // The checked AST is a Condition union; this test knows it is an AND of two leaves.
    const [date, votes] = (ast.where as any).conditions;
    expect(date.value).toEqual(new Date('2026-01-01T00:00:00.000Z'));
    expect(votes.value).toEqual([1n, 2n]);
  });
});
