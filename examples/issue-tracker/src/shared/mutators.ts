import { ApplicationError, defineMutator, defineMutators, type Transaction } from '@reprise/shared';
import { z } from 'zod';
import { q, type schema } from './schema';

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

type Tx = Transaction<typeof schema>;

const id = z.string().trim().min(1, 'An id is required').max(64);
const title = z
  .string()
  .trim()
  .min(1, 'A title is required')
  .max(200, 'A title is at most 200 characters');
/** Set by the caller so the optimistic row and the server's row agree; the server's clock otherwise. */
const createdAt = z.coerce.date().optional();

async function mustFindIssue(tx: Tx, issueID: string) {
  const found = await tx.run(q.issue.where('id', issueID).one());
  if (!found) throw new ApplicationError('This issue no longer exists', { details: { issueID } });
  return found;
}

/**
 * Only an issue's owner may change it. The check is made where it is authoritative, on the
 * server: the optimistic run lets the change through at once, and if the server refuses, the
 * client's rebase takes it back and the page shows the server's message.
 */
async function mustOwnIssue(tx: Tx, issueID: string, userID: string, action: string) {
  const found = await mustFindIssue(tx, issueID);
  if (tx.location === 'server' && found.ownerID !== userID) {
    throw new ApplicationError(`Only ${found.ownerID}, who opened this issue, can ${action} it`, {
      details: { issueID, ownerID: found.ownerID },
    });
  }
  return found;
}

/** Closes (`open` false) or reopens an issue its owner holds, refusing a no-op. */
async function setOpen(tx: Tx, issueID: string, userID: string, open: boolean) {
  const found = await mustOwnIssue(tx, issueID, userID, open ? 'reopen' : 'close');
  if (found.open === open) {
    throw new ApplicationError(`This issue is already ${open ? 'open' : 'closed'}`, {
      details: { issueID },
    });
  }
  await tx.mutate.issue.update({ id: issueID, open });
}

export const mutators = defineMutators({
  issue: {
    create: defineMutator(z.object({ id, title, createdAt }), async ({ tx, args, ctx }) => {
      if (await tx.run(q.issue.where('id', args.id).one())) {
        throw new ApplicationError('An issue with this id already exists', {
          details: { issueID: args.id },
        });
      }
      await tx.mutate.issue.insert({
        id: args.id,
        title: args.title,
        ownerID: ctx.userID,
        open: true,
        createdAt: args.createdAt ?? new Date(),
      });
    }),
    rename: defineMutator(z.object({ id, title }), async ({ tx, args, ctx }) => {
      await mustOwnIssue(tx, args.id, ctx.userID, 'rename');
      await tx.mutate.issue.update({ id: args.id, title: args.title });
    }),
    close: defineMutator(z.object({ id }), ({ tx, args, ctx }) =>
      setOpen(tx, args.id, ctx.userID, false),
    ),
    reopen: defineMutator(z.object({ id }), ({ tx, args, ctx }) =>
      setOpen(tx, args.id, ctx.userID, true),
    ),
    /** Deletes the issue and its comments, row by row, so every client sees each deletion. */
    delete: defineMutator(z.object({ id }), async ({ tx, args, ctx }) => {
      await mustOwnIssue(tx, args.id, ctx.userID, 'delete');
      for (const c of await tx.run(q.comment.where('issueID', args.id))) {
        await tx.mutate.comment.delete({ id: c.id });
      }
      await tx.mutate.issue.delete({ id: args.id });
    }),
  },
  comment: {
    add: defineMutator(
      z.object({
        id,
        issueID: id,
        body: z
          .string()
          .trim()
          .min(1, 'A comment cannot be empty')
          .max(2000, 'A comment is at most 2000 characters'),
        createdAt,
      }),
      async ({ tx, args, ctx }) => {
        const found = await mustFindIssue(tx, args.issueID);
        if (!found.open) {
          throw new ApplicationError('This issue is closed: reopen it to comment', {
            details: { issueID: args.issueID },
          });
        }
        await tx.mutate.comment.insert({
          id: args.id,
          issueID: args.issueID,
          authorID: ctx.userID,
          body: args.body,
          createdAt: args.createdAt ?? new Date(),
        });
        return { id: args.id };
      },
    ),
  },
});
