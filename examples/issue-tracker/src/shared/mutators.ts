import { ApplicationError, defineMutator, defineMutators, type Transaction } from '@reprise/shared';
import { z } from 'zod';
import type { schema } from './schema';

/** What every mutator receives as `ctx`: who is asking. */
export interface AppContext {
  readonly userID: string;
}

declare module '@reprise/shared' {
  interface Register {
    schema: typeof schema;
    context: AppContext;
  }
}

const issueID = z.object({ id: z.string().min(1) });

/**
 * Checks on the server that the caller owns the issue. It reads through the driver's own
 * transaction (PGlite's `query` or postgres.js's `unsafe`), so it sees the mutation's
 * snapshot; the client has no owner to check against and trusts the server's answer.
 */
async function mustOwnIssue(tx: Transaction<typeof schema>, id: string, userID: string) {
  if (tx.location !== 'server') return;
  const wrapped = tx.dbTransaction.wrappedTransaction as {
    query?: (sql: string, params: unknown[]) => Promise<{ rows: Array<{ owner_id: string }> }>;
    unsafe?: (sql: string, params: unknown[]) => Promise<Array<{ owner_id: string }>>;
  };
  const text = 'SELECT owner_id FROM issue WHERE id = $1';
  const rows = wrapped.unsafe
    ? await wrapped.unsafe(text, [id])
    : (await wrapped.query!(text, [id])).rows;
  const row = rows[0];
  if (!row) throw new ApplicationError('No such issue', { details: { id } });
  if (row.owner_id !== userID) {
    throw new ApplicationError('Only the owner can change this issue', { details: { id } });
  }
}

export const mutators = defineMutators({
  issue: {
    create: defineMutator(
      z.object({ id: z.string().min(1), title: z.string().trim().min(1).max(200) }),
      async ({ tx, args, ctx }) => {
        await tx.mutate.issue.insert({
          id: args.id,
          title: args.title,
          ownerID: ctx.userID,
          createdAt: new Date(),
        });
      },
    ),
    rename: defineMutator(
      issueID.extend({ title: z.string().trim().min(1).max(200) }),
      async ({ tx, args, ctx }) => {
        await mustOwnIssue(tx, args.id, ctx.userID);
        await tx.mutate.issue.update({ id: args.id, title: args.title });
      },
    ),
    close: defineMutator(issueID, async ({ tx, args, ctx }) => {
      await mustOwnIssue(tx, args.id, ctx.userID);
      await tx.mutate.issue.update({ id: args.id, open: false });
    }),
    reopen: defineMutator(issueID, async ({ tx, args, ctx }) => {
      await mustOwnIssue(tx, args.id, ctx.userID);
      await tx.mutate.issue.update({ id: args.id, open: true });
    }),
  },
  comment: {
    add: defineMutator(
      z.object({ id: z.string().min(1), issueID: z.string().min(1), body: z.string().min(1) }),
      async ({ tx, args, ctx }) => {
        await tx.mutate.comment.insert({ ...args, authorID: ctx.userID });
        return { id: args.id };
      },
    ),
  },
});
