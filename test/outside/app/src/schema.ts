// src/schema.ts: shared by the server and the browser app
import {
  ApplicationError,
  createBuilder,
  createSchema,
  defineMutator,
  defineMutators,
} from '@reprise/shared';
import { boolean, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { z } from 'zod';

export const issue = pgTable('issue', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  ownerID: text('owner_id').notNull(),
  open: boolean('open').notNull().default(true),
  priority: integer('priority').notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
export const comment = pgTable('comment', {
  id: text('id').primaryKey(),
  issueID: text('issue_id').notNull(),
  authorID: text('author_id').notNull(),
  body: text('body').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
export const schema = createSchema({ tables: { issue, comment } });
export const q = createBuilder(schema);

declare module '@reprise/shared' {
  interface Register {
    schema: typeof schema;
    context: { userID: string };
  }
}

export const mutators = defineMutators({
  issue: {
    create: defineMutator(
      z.object({ id: z.string(), title: z.string().min(1) }),
      async ({ tx, args, ctx }) => {
        await tx.mutate.issue.insert({ ...args, ownerID: ctx.userID });
      },
    ),
    close: defineMutator(z.object({ id: z.string() }), async ({ tx, args, ctx }) => {
      const row = await tx.run(q.issue.where('id', args.id).one());
      if (row === undefined) throw new ApplicationError(`There is no issue ${args.id}`);
      if (row.ownerID !== ctx.userID) {
        throw new ApplicationError(`Only ${row.ownerID}, who opened this issue, can close it`);
      }
      await tx.mutate.issue.update({ id: args.id, open: false });
    }),
  },
});
