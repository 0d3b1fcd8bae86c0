import { createSchema } from '@reprise/shared';
import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

// The query bench's own schema: items with a skewed status, their owners and comments,
// so filters hit from 0.1% to 65% of the rows and relationships have something to follow.

const user = pgTable('bq_user', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
});

const item = pgTable('bq_item', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  status: text('status').notNull(),
  priority: integer('priority').notNull(),
  ownerID: text('owner_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

const comment = pgTable('bq_comment', {
  id: text('id').primaryKey(),
  itemID: text('item_id').notNull(),
  authorID: text('author_id').notNull(),
  kind: text('kind').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

export const querySchema = createSchema({
  tables: { user, item, comment },
  relationships: ({ one, many }) => ({
    item: {
      owner: one('user', { sourceField: 'ownerID', destField: 'id' }),
      comments: many('comment', { sourceField: 'id', destField: 'itemID' }),
    },
    comment: {
      item: one('item', { sourceField: 'itemID', destField: 'id' }),
      author: one('user', { sourceField: 'authorID', destField: 'id' }),
    },
  }),
});

export type QuerySchema = typeof querySchema;
export type ItemRow = QuerySchema['tables']['item']['$inferSelect'];
export type CommentRow = QuerySchema['tables']['comment']['$inferSelect'];
export type UserRow = QuerySchema['tables']['user']['$inferSelect'];
