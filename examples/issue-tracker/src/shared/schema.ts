import { createSchema } from '@reprise/shared';
import { boolean, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const issue = pgTable('issue', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  ownerID: text('owner_id').notNull(),
  open: boolean('open').notNull().default(true),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

export const comment = pgTable('comment', {
  id: text('id').primaryKey(),
  issueID: text('issue_id').notNull(),
  authorID: text('author_id').notNull(),
  body: text('body').notNull(),
});

export const schema = createSchema({ tables: { issue, comment } });

/** The tables' DDL; the server runs it at start (drizzle-kit would generate the same). */
export const APP_DDL = [
  `CREATE TABLE IF NOT EXISTS issue (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    open BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS comment (
    id TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    author_id TEXT NOT NULL,
    body TEXT NOT NULL
  )`,
];
