import { pgTable, text } from 'drizzle-orm/pg-core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { filterInput, filterOutput } from './field-policy';
import { createBuilder, type RowOf } from './query/query';
import { parseQueryAST, QueryError } from './query/validate';
import { createSchema, mustGetTable } from './schema';

const user = pgTable('app_user', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').notNull().default('member'),
  apiKey: text('api_key'),
});
const schema = createSchema({
  tables: { user },
  fields: {
    user: {
      passwordHash: { returned: false },
      role: { input: false },
      apiKey: { input: false, returned: false },
    },
  },
});

describe('field policies', () => {
  it('marks each column in the table info', () => {
    const info = mustGetTable(schema, 'user');
    expect(info.hidden).toEqual(['passwordHash', 'apiKey']);
    expect([...info.columns.values()].map((c) => [c.key, c.input, c.returned])).toEqual([
      ['id', true, true],
      ['email', true, true],
      ['passwordHash', true, false],
      ['role', false, true],
      ['apiKey', false, false],
    ]);
  });

  it('filterInput drops input: false columns by property or SQL name, keeping the rest', () => {
    const body = { email: 'a@b.c', password: 'pw', role: 'admin', api_key: 'k' };
    expect(filterInput(body, user)).toEqual({ email: 'a@b.c', password: 'pw' });
    expect(filterInput(body, mustGetTable(schema, 'user'))).toEqual({
      email: 'a@b.c',
      password: 'pw',
    });
  });

  it('filterOutput drops returned: false columns, and does not change the row given', () => {
    const row = { id: 'u1', email: 'a@b.c', passwordHash: 'h', role: 'member', apiKey: 'k' };
    expect(filterOutput(row, user)).toEqual({ id: 'u1', email: 'a@b.c', role: 'member' });
    expect(filterOutput({ id: 'u1', password_hash: 'h' }, user)).toEqual({ id: 'u1' });
    expect(row.passwordHash).toBe('h');
  });

  it('refuses a table no schema was made from, and one two schemas disagree on', () => {
    const other = pgTable('other', { id: text('id').primaryKey() });
    expect(() => filterOutput({}, other)).toThrow('not part of any createSchema');
    const shared = pgTable('shared', { id: text('id').primaryKey(), secret: text('secret') });
    createSchema({ tables: { shared } });
    createSchema({ tables: { shared }, fields: { shared: { secret: { returned: false } } } });
    expect(() => filterOutput({}, shared)).toThrow('different field policies');
  });

  it('refuses policies on unknown tables or columns, and on key columns', () => {
    expect(() =>
      // @ts-expect-error: no such table
      createSchema({ tables: { user }, fields: { nope: { id: { returned: false } } } }),
    ).toThrow('unknown table "nope"');
    expect(() =>
      // @ts-expect-error: no such column
      createSchema({ tables: { user }, fields: { user: { nope: { returned: false } } } }),
    ).toThrow('no column "nope" in user');
    expect(() =>
      createSchema({ tables: { user }, fields: { user: { id: { input: false } } } }),
    ).toThrow('a primary key column cannot be input: false');
  });

  it('leaves returned: false columns out of the row types, and out of query columns', () => {
    type UserRow = RowOf<typeof schema, 'user'>;
    expectTypeOf<UserRow>().toEqualTypeOf<{ id: string; email: string; role: string }>();
    const q = createBuilder(schema);
    q.user.where('email', 'a@b.c').orderBy('role');
    // @ts-expect-error: a returned: false column cannot be filtered on
    q.user.where('passwordHash', 'h');
    // @ts-expect-error: nor ordered by
    q.user.orderBy('apiKey');
  });
});

describe('queries on returned: false columns', () => {
  it('are refused by name, as on the wire', () => {
    const ast = {
      table: 'user',
      where: { type: 'simple', column: 'passwordHash', op: '=', value: 'h' },
    };
    expect(() => parseQueryAST(schema, ast)).toThrow(
      'where(passwordHash =): "passwordHash" of user is returned: false; queries cannot filter or order by it',
    );
    expect(() => parseQueryAST(schema, { table: 'user', orderBy: [['apiKey', 'asc']] })).toThrow(
      QueryError,
    );
  });
});
