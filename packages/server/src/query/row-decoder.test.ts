import { JSON_NULL, microsecondOf, Timestamp } from '@reprise/shared';
import { describe, expect, it } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { decodeRows, decodeValue } from './row-decoder';

const issue = querySchema.tableInfo.get('issue')!;
const column = (key: string) => issue.columns.get(key)!;

describe('decodeValue', () => {
  it('takes each driver form of int8, timestamptz and booleans to one in-memory value', () => {
    expect(decodeValue(column('votes'), '9007199254740993', false)).toBe(9007199254740993n);
    expect(decodeValue(column('votes'), 12, false)).toBe(12n);
    const at = new Date('2026-01-02T03:04:05.123Z');
    expect(decodeValue(column('createdAt'), at, false)).toEqual(at);
    expect(decodeValue(column('createdAt'), '2026-01-02 03:04:05.123+00', false)).toEqual(at);
    expect(decodeValue(column('open'), 't', false)).toBe(true);
    expect(decodeValue(column('priority'), '7', false)).toBe(7);
  });

  it('parses json text from a column but keeps json already inside a JSON document', () => {
    expect(decodeValue(column('meta'), '"text"', false)).toBe('text');
    expect(decodeValue(column('meta'), { a: 1 }, false)).toEqual({ a: 1 });
    expect(decodeValue(column('meta'), '"text"', true)).toBe('"text"');
  });

  it('reads a json column holding JSON null as JSON_NULL, and SQL NULL as null', () => {
    expect(decodeValue(column('meta'), 'null', false)).toBe(JSON_NULL);
    expect(decodeValue(column('meta'), null, false)).toBeNull();
    // Nested in a JSON document the two are both null: it reads as SQL NULL.
    expect(decodeValue(column('meta'), null, true)).toBeNull();
  });

  it('reads every kind as it is nested in a JSON document (timestamps as their text)', () => {
    const at = decodeValue(column('createdAt'), '2026-01-02T03:04:05.123456+00:00', true);
    expect(at).toBeInstanceOf(Timestamp);
    expect(microsecondOf(at as Date)).toBe(456);
    expect(decodeValue(column('createdAt'), 'infinity', true)).toBe(Timestamp.POSITIVE_INFINITY);
    expect(decodeValue(column('votes'), '9007199254740993', true)).toBe(9007199254740993n);
    expect(decodeValue(column('votes'), 5, true)).toBe(5n);
    expect(decodeValue(column('priority'), 3, true)).toBe(3);
    expect(decodeValue(column('open'), false, true)).toBe(false);
    expect(decodeValue(column('title'), 'x', true)).toBe('x');
  });
});

describe('decodeRows', () => {
  it('decodes related JSON by each relationship, many to arrays and a missing one to undefined', () => {
    const ast = {
      table: 'comment',
      related: [
        { relationship: 'author', subquery: { table: 'user' } },
        {
          relationship: 'issue',
          subquery: {
            table: 'issue',
            related: [{ relationship: 'comments', subquery: { table: 'comment' } }],
          },
        },
      ],
    };
    const [row] = decodeRows(querySchema, ast, [
      {
        id: 'c1',
        issueID: 'i1',
        authorID: null,
        body: 'b',
        score: 1,
        author: null,
        issue: JSON.stringify({
          id: 'i1',
          title: 't',
          ownerID: 'u1',
          open: true,
          priority: null,
          votes: '-5',
          createdAt: '2026-01-02 03:04:05+00',
          meta: { k: [1] },
          comments: [],
        }),
      },
    ]);
    expect(row).toEqual({
      id: 'c1',
      issueID: 'i1',
      authorID: null,
      body: 'b',
      score: 1,
      author: undefined,
      issue: {
        id: 'i1',
        title: 't',
        ownerID: 'u1',
        open: true,
        priority: null,
        votes: -5n,
        createdAt: new Date('2026-01-02T03:04:05.000Z'),
        meta: { k: [1] },
        comments: [],
      },
    });
    expect(row).toHaveProperty('author', undefined);
  });
});
