import { pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { createSchema } from './schema';

describe('createSchema', () => {
  it('reads a composite primary key declared with a table-level primaryKey()', () => {
    const member = pgTable(
      'member',
      { orgID: text('org_id').notNull(), userID: text('user_id').notNull(), role: text('role') },
      (t) => [primaryKey({ columns: [t.orgID, t.userID] })],
    );
    const info = createSchema({ tables: { member } }).tableInfo.get('member');
    expect(info?.primaryKey).toEqual(['orgID', 'userID']);
  });
});
