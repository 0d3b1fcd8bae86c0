// src/jobs.ts: server only. The jobs, and the server's mutators that enqueue them.
import { defineJob } from '@reprise/server';
import { overrideMutators } from '@reprise/shared';
import { z } from 'zod';
import { mutators } from './schema.js';

/** Stands in for a mail provider that takes an idempotency key. */
export const outbox = new Map<string, string>();

export const notifyTeam = defineJob(
  'issue.notify',
  z.object({ issueID: z.string(), title: z.string() }),
  async ({ issueID, title }, job) => {
    // At least once: a job can run again (a worker died mid-run, or it threw after
    // sending), so the side effect is keyed by the job's id, the same on every attempt.
    outbox.set(job.id, `New issue ${issueID}: ${title}`);
  },
  { maxAttempts: 10 }, // then it is dead-lettered (default 25)
);
export const jobs = [notifyTeam];

declare module '@reprise/shared' {
  interface Register {
    jobs: typeof jobs; // types tx.enqueue's names and payloads
  }
}

export const serverMutators = overrideMutators(mutators, {
  issue: {
    create: async ({ tx, args, ctx }) => {
      await tx.mutate.issue.insert({ ...args, ownerID: ctx.userID });
      // In the mutation's transaction: the job exists if and only if the issue does.
      if (tx.location === 'server')
        await tx.enqueue('issue.notify', { issueID: args.id, title: args.title });
    },
  },
});
