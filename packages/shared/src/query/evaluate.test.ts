import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { REFUSED_QUERIES } from '../../../../test/fixtures/refused-queries';
import { evaluateQuery, runQuery } from './evaluate';
import { createMemoryStore } from './memory-store';
import { createBuilder } from './query';
import { seedQueryStore } from './query-rows.fixture';
import { QueryError } from './validate';

// Ordering, paging, relationships and index use, on the seeded rows. Issue priorities:
// i1 2, i2 null, i3 1, i4 2, i5 null.

const q = createBuilder(querySchema);
const store = seedQueryStore();
const ids = (rows: readonly { id: string }[]) => rows.map((row) => row.id);

describe('ordering', () => {
  it('puts NULLs last ascending and breaks ties by primary key', () => {
    expect(ids(runQuery(store, q.issue.orderBy('priority')))).toEqual([
      'i3',
      'i1',
      'i4',
      'i2',
      'i5',
    ]);
  });

  it('puts NULLs first descending, still breaking ties by ascending primary key', () => {
    expect(ids(runQuery(store, q.issue.orderBy('priority', 'desc')))).toEqual([
      'i2',
      'i5',
      'i1',
      'i4',
      'i3',
    ]);
  });

  it('orders strings by code point, astral characters after U+FFFD', () => {
    const local = createMemoryStore(querySchema);
    const names = ['\u{1F600}', '\uFFFD', 'a', 'B', '\uE000'];
    for (const [i, name] of names.entries()) local.put('user', { id: `u${i}`, name, karma: null });
    const rows = runQuery(local, q.user.orderBy('name'));
    expect(rows.map((row) => row.name)).toEqual(['B', 'a', '\uE000', '\uFFFD', '\u{1F600}']);
  });

  it('refuses to order by a json column', () => {
    expect(() => runQuery(store, q.issue.orderBy('meta'))).toThrow(QueryError);
  });
});

describe('start cursors', () => {
  const byPriority = q.issue.orderBy('priority');
  const byPriorityDesc = q.issue.orderBy('priority', 'desc');
  const at = (id: string) => store.get('issue', { id })!;

  it('starts after the cursor row, or at it when inclusive', () => {
    expect(ids(runQuery(store, byPriority.start(at('i1'))))).toEqual(['i4', 'i2', 'i5']);
    expect(ids(runQuery(store, byPriority.start(at('i1'), { inclusive: true })))).toEqual([
      'i1',
      'i4',
      'i2',
      'i5',
    ]);
  });

  it('ascending, after a non-null value come greater values and then nulls', () => {
    const cursor = { priority: 1, id: 'zz' }; // not a stored row: any position works
    expect(ids(runQuery(store, byPriority.start(cursor)))).toEqual(['i1', 'i4', 'i2', 'i5']);
  });

  it('ascending, after null come only nulls later in primary key order', () => {
    expect(ids(runQuery(store, byPriority.start(at('i2'))))).toEqual(['i5']);
  });

  it('descending, after a non-null value come only smaller values', () => {
    expect(ids(runQuery(store, byPriorityDesc.start(at('i1'))))).toEqual(['i4', 'i3']);
  });

  it('descending, after null come the later nulls and every non-null', () => {
    expect(ids(runQuery(store, byPriorityDesc.start(at('i2'))))).toEqual(['i5', 'i1', 'i4', 'i3']);
    const beforeAll = { priority: null, id: '' };
    expect(ids(runQuery(store, byPriorityDesc.start(beforeAll, { inclusive: true })))).toEqual([
      'i2',
      'i5',
      'i1',
      'i4',
      'i3',
    ]);
  });

  it('refuses a cursor row that lacks an ordering column', () => {
    expect(() => runQuery(store, byPriority.start({ id: 'i1' }))).toThrow(/lacks "priority"/);
    expect(() => runQuery(store, byPriority.start({ priority: 2 }))).toThrow(/lacks "id"/);
  });
});

describe('limit and one()', () => {
  it('applies limit after start', () => {
    const query = q.issue.orderBy('priority').start({ priority: 1, id: 'i3' }).limit(2);
    expect(ids(runQuery(store, query))).toEqual(['i1', 'i4']);
    expect(runQuery(store, q.issue.limit(0))).toEqual([]);
  });

  it('one() gives the first row or undefined', () => {
    expect(runQuery(store, q.issue.orderBy('priority', 'desc').one())?.id).toBe('i2');
    expect(runQuery(store, q.issue.where('id', 'nope').one())).toBeUndefined();
  });

  it('takes the same first rows from a large table as a full sort does', () => {
    const local = createMemoryStore(querySchema);
    for (let i = 0; i < 2000; i++) {
      const score = (i * 7919) % 101;
      local.put('comment', { id: `c${i}`, issueID: 'i1', authorID: null, body: '', score });
    }
    const ordered = q.comment.orderBy('score', 'desc');
    const all = ids(runQuery(local, ordered));
    expect(ids(runQuery(local, ordered.limit(15)))).toEqual(all.slice(0, 15));
    const cursor = local.get('comment', { id: 'c5' })!;
    expect(ids(runQuery(local, ordered.start(cursor).limit(3)))).toEqual(
      all.slice(all.indexOf('c5') + 1, all.indexOf('c5') + 4),
    );
  });
});

describe('related', () => {
  it('nests many rows per parent with the subquery ordering and limit', () => {
    const rows = runQuery(
      store,
      q.issue.related('comments', (c) => c.orderBy('score', 'desc').limit(2)),
    );
    expect(rows.map((row) => [row.id, ids(row.comments)])).toEqual([
      ['i1', ['c2', 'c1']],
      ['i2', []],
      ['i3', ['c4']],
      ['i4', []],
      ['i5', []],
    ]);
  });

  it('applies the subquery where and start per parent', () => {
    const rows = runQuery(
      store,
      q.issue
        .where('id', 'i1')
        .related('comments', (c) =>
          c.where('score', '>', 1).orderBy('score').start({ score: 3, id: 'c1' }),
        ),
    );
    expect(rows.map((row) => ids(row.comments))).toEqual([['c2']]);
  });

  it('gives one related row, or undefined when the source field is null', () => {
    const rows = runQuery(store, q.comment.related('author').related('issue'));
    expect(rows.map((row) => [row.id, row.author?.name, row.issue?.id])).toEqual([
      ['c1', 'bob', 'i1'],
      ['c2', undefined, 'i1'],
      ['c3', 'Cy', 'i1'],
      ['c4', 'Ada', 'i3'],
      ['c5', 'Ada', undefined],
    ]);
  });

  it('nests related queries inside related queries', () => {
    const ada = runQuery(
      store,
      q.user
        .where('id', 'u1')
        .related('issues', (i) => i.related('comments', (c) => c.related('author')))
        .one(),
    );
    expect(ada?.issues.map((issue) => issue.comments.map((c) => c.author?.id))).toEqual([
      ['u2', undefined, 'u3'],
      [],
    ]);
  });
});

describe('whereExists', () => {
  it('keeps rows with a related row matching the subquery', () => {
    expect(ids(runQuery(store, q.issue.whereExists('comments')))).toEqual(['i1', 'i3']);
    const highScore = q.issue.whereExists('comments', (c) => c.where('score', '>', 4));
    expect(ids(runQuery(store, highScore))).toEqual(['i1']);
  });

  it('never relates through a null source field, and not() inverts it', () => {
    expect(ids(runQuery(store, q.comment.whereExists('author')))).toEqual(['c1', 'c3', 'c4', 'c5']);
    const orphans = q.comment.where(({ not, exists }) => not(exists('issue')));
    expect(ids(runQuery(store, orphans))).toEqual(['c5']);
  });

  it('finds nothing through a subquery with limit 0', () => {
    expect(
      runQuery(
        store,
        q.issue.whereExists('comments', (c) => c.limit(0)),
      ),
    ).toEqual([]);
  });
});

describe('indexes', () => {
  const queries = [
    q.issue.where('ownerID', 'u1'),
    q.issue.where('ownerID', 'IN', ['u3', 'u1', 'u3']).orderBy('title'),
    q.issue.where('open', true).where('ownerID', 'u3').where('priority', 2),
    q.issue.where('ownerID', 'IN', []),
    q.comment.where('authorID', null as never),
    q.comment.where(({ or, cmp }) => or(cmp('authorID', 'u1'), cmp('score', 5))),
    q.user.related('issues', (i) => i.related('comments')),
  ];

  it('give the same rows as a scan', () => {
    const indexed = seedQueryStore();
    indexed.createIndex('issue', 'ownerID');
    indexed.createIndex('comment', 'authorID');
    indexed.createIndex('comment', 'issueID');
    for (const query of queries) {
      expect(runQuery(indexed, query as never)).toEqual(runQuery(store, query as never));
    }
  });

  it('are used for a top-level = instead of a scan', () => {
    const indexed = seedQueryStore();
    indexed.createIndex('issue', 'ownerID');
    const scan = vi.spyOn(indexed, 'scan');
    const lookup = vi.spyOn(indexed, 'lookup');
    const rows = runQuery(indexed, q.issue.where('open', true).where('ownerID', 'u3'));
    expect(ids(rows)).toEqual(['i4']);
    expect(scan).not.toHaveBeenCalled();
    expect(lookup).toHaveBeenCalledWith('issue', 'ownerID', 'u3');
  });

  it('serve related rows by the destination field', () => {
    const indexed = seedQueryStore();
    indexed.createIndex('comment', 'issueID');
    const scan = vi.spyOn(indexed, 'scan');
    const rows = runQuery(indexed, q.issue.where('id', 'i1').related('comments'));
    expect(rows.map((row) => ids(row.comments))).toEqual([['c1', 'c2', 'c3']]);
    expect(scan).not.toHaveBeenCalledWith('comment');
  });
});

describe('runQuery', () => {
  it('types rows from the query, one() as a row or undefined', () => {
    const many = runQuery(store, q.issue.related('owner'));
    const one = runQuery(store, q.issue.one());
    expectTypeOf(many[0]!.owner).toEqualTypeOf<
      { id: string; name: string; karma: number | null } | undefined
    >();
    expectTypeOf(one).toEqualTypeOf<typeof querySchema.tables.issue.$inferSelect | undefined>();
    expect(one?.id).toBe('i1');
  });

  it('agrees with evaluateQuery on the AST', () => {
    const query = q.issue.orderBy('title', 'desc');
    expect(runQuery(store, query)).toEqual(evaluateQuery(store, querySchema, query.ast));
  });
});

describe('refusing a query', () => {
  // The same table runs through the server's compiler in test/query-compiler.test.ts: the
  // client refuses exactly what the server does, at every depth.
  it.each(REFUSED_QUERIES)(
    'refuses %s with a QueryError, as the server does',
    (_, ast, message) => {
      expect(() => evaluateQuery(store, querySchema, ast)).toThrow(message);
      expect(() => evaluateQuery(store, querySchema, ast)).toThrow(QueryError);
    },
  );

  it('gives the same rows when an AST runs again, and refuses a bad AST every time', () => {
    const query = q.issue.whereExists('comments', (c) => c.where('score', '>', 1));
    const first = ids(runQuery(store, query));
    expect(first.length).toBeGreaterThan(0);
    expect(ids(runQuery(store, query))).toEqual(first);
    const [, bad] = REFUSED_QUERIES.find(([title]) => title.includes('limit 0'))!;
    expect(() => evaluateQuery(store, querySchema, bad)).toThrow(QueryError);
    expect(() => evaluateQuery(store, querySchema, bad)).toThrow(QueryError);
  });
});
