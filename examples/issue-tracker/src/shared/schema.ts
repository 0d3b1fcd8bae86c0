import { createBuilder, createSchema } from '@reprise/shared';
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
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

export const schema = createSchema({
  tables: { issue, comment },
  relationships: ({ many, one }) => ({
    issue: { comments: many('comment', { sourceField: 'id', destField: 'issueID' }) },
    comment: { issue: one('issue', { sourceField: 'issueID', destField: 'id' }) },
  }),
});

/** The query builder for this schema, shared by mutators, server and page. */
export const q = createBuilder(schema);

/**
 * The tables' DDL, written by hand to match the definitions above; the server runs it at
 * start. `comment.issue_id` also references the issue with a cascade, as a backstop: the
 * `issue.delete` mutator deletes the comments itself, so that clients see those deletions
 * and the optimistic run matches.
 */
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
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS comment_issue_id ON comment (issue_id)`,
];
