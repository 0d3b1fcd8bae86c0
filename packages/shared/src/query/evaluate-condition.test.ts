import { describe, expect, it } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { evaluateQuery, runQuery } from './evaluate';
import { createBuilder } from './query';
import { seedQueryStore } from './query-rows.fixture';
import { parseQueryAST, QueryError } from './validate';

// Each rule of SEMANTICS.md's "Conditions are two-valued", on the seeded rows. Issue
// priorities: i1 2, i2 null, i3 1, i4 2, i5 null.

const q = createBuilder(querySchema);
const store = seedQueryStore();
const ids = (rows: readonly { id: string }[]) => rows.map((row) => row.id);

describe('comparisons with NULL', () => {
  it('= null and != null are never true', () => {
    expect(ids(runQuery(store, q.issue.where('priority', null)))).toEqual([]);
    expect(ids(runQuery(store, q.issue.where('priority', '!=', null)))).toEqual([]);
  });

  it('a null column fails every comparison', () => {
    expect(ids(runQuery(store, q.issue.where('priority', '!=', 2)))).toEqual(['i3']);
    expect(ids(runQuery(store, q.issue.where('priority', '<', 5)))).toEqual(['i1', 'i3', 'i4']);
    expect(ids(runQuery(store, q.issue.where('priority', '>=', 1)))).toEqual(['i1', 'i3', 'i4']);
  });

  it('not() of a false null comparison is true, as (c) IS NOT TRUE is in SQL', () => {
    const rows = runQuery(
      store,
      q.issue.where(({ not, cmp }) => not(cmp('priority', 2))),
    );
    expect(ids(rows)).toEqual(['i2', 'i3', 'i5']);
  });

  it('not() of != excludes the non-null equal rows only', () => {
    const rows = runQuery(
      store,
      q.issue.where(({ not, cmp }) => not(cmp('priority', '!=', 2))),
    );
    expect(ids(rows)).toEqual(['i1', 'i2', 'i4', 'i5']);
  });
});

describe('IN and NOT IN', () => {
  it('IN matches non-null elements only, and IN () nothing', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'IN', [2, null as never])))).toEqual([
      'i1',
      'i4',
    ]);
    expect(ids(runQuery(store, q.issue.where('priority', 'IN', [])))).toEqual([]);
  });

  it('NOT IN with a null element is never true', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'NOT IN', [1, null as never])))).toEqual(
      [],
    );
  });

  it('NOT IN () is true for non-null columns only', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'NOT IN', [])))).toEqual([
      'i1',
      'i3',
      'i4',
    ]);
  });

  it('NOT IN excludes the listed values and nulls', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'NOT IN', [1])))).toEqual(['i1', 'i4']);
  });
});

describe('IS and IS NOT', () => {
  it('IS null finds nulls and IS NOT null the rest', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'IS', null)))).toEqual(['i2', 'i5']);
    expect(ids(runQuery(store, q.issue.where('meta', 'IS NOT', null)))).toEqual(['i1']);
  });

  it('IS NOT a value includes nulls, as IS DISTINCT FROM does', () => {
    expect(ids(runQuery(store, q.issue.where('priority', 'IS NOT', 2)))).toEqual([
      'i2',
      'i3',
      'i5',
    ]);
    expect(ids(runQuery(store, q.issue.where('priority', 'IS', 2)))).toEqual(['i1', 'i4']);
  });
});

describe('LIKE and ILIKE', () => {
  it('LIKE is case-sensitive and ILIKE folds ASCII', () => {
    expect(ids(runQuery(store, q.issue.where('title', 'LIKE', 'crash%')))).toEqual(['i2']);
    expect(ids(runQuery(store, q.issue.where('title', 'ILIKE', 'CRASH%')))).toEqual(['i1', 'i2']);
  });

  it('\\% matches a literal percent sign and _ one astral character', () => {
    expect(ids(runQuery(store, q.issue.where('title', 'LIKE', '% 100\\%')))).toEqual(['i4']);
    expect(ids(runQuery(store, q.issue.where('title', 'LIKE', '_ emoji')))).toEqual(['i5']);
  });

  it('ILIKE does not fold non-ASCII letters', () => {
    const local = seedQueryStore();
    local.put('user', { id: 'u4', name: 'Émile', karma: null });
    expect(ids(runQuery(local, q.user.where('name', 'ILIKE', 'émile')))).toEqual([]);
    expect(ids(runQuery(local, q.user.where('name', 'ILIKE', 'Émile')))).toEqual(['u4']);
  });
});

describe('other kinds and combinators', () => {
  it('compares bigints, dates by instant and booleans', () => {
    expect(ids(runQuery(store, q.issue.where('votes', 10n)))).toEqual(['i1']);
    expect(ids(runQuery(store, q.issue.where('votes', '<', 5n)))).toEqual(['i3']);
    const jan10 = new Date('2026-01-10T00:00:00.000Z');
    expect(ids(runQuery(store, q.issue.where('createdAt', '>', jan10)))).toEqual(['i3', 'i4']);
    expect(ids(runQuery(store, q.issue.where('open', false)))).toEqual(['i2', 'i5']);
  });

  it('and / or / not combine as boolean logic', () => {
    const rows = runQuery(
      store,
      q.issue.where(({ and, or, not, cmp }) =>
        or(and(cmp('open', true), not(cmp('priority', 'IS', null))), cmp('id', 'i5')),
      ),
    );
    expect(ids(rows)).toEqual(['i1', 'i3', 'i4', 'i5']);
  });

  it('takes a checked wire AST whose dates and bigints arrived as strings', () => {
    const ast = parseQueryAST(querySchema, {
      table: 'issue',
      where: {
        type: 'and',
        conditions: [
          { type: 'simple', column: 'createdAt', op: '<', value: '2026-01-10T00:00:00.000Z' },
          { type: 'simple', column: 'votes', op: 'IN', value: ['10'] },
        ],
      },
    });
    expect(ids(evaluateQuery(store, querySchema, ast) as { id: string }[])).toEqual(['i1']);
  });

  it('refuses an unknown column and an operator the column cannot take', () => {
    const unknown = { table: 'issue', where: { type: 'simple', column: 'x', op: '=', value: 1 } };
    expect(() => evaluateQuery(store, querySchema, unknown as never)).toThrow(QueryError);
    const jsonEq = { table: 'issue', where: { type: 'simple', column: 'meta', op: '=', value: 1 } };
    expect(() => evaluateQuery(store, querySchema, jsonEq as never)).toThrow(/does not apply/);
  });
});
