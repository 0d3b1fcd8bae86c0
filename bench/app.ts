import {
  ApplicationError,
  createMutatorDefiner,
  createSchema,
  defineMutators,
} from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';

// The bench's own app: one table and one insert mutator, so the numbers measure the
// engine's per-push and per-mutation cost rather than the app's. A mutation whose args say
// `refuse` is refused with an ApplicationError after its args are checked and before it
// writes: the error shapes refuse every tenth mutation.

export const item = pgTable('item', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
});

export const schema = createSchema({ tables: { item } });

const defineMutator = createMutatorDefiner<typeof schema>();

export const mutators = defineMutators({
  item: {
    create: defineMutator(
      z.object({ id: z.string(), title: z.string().min(1), refuse: z.boolean().optional() }),
      async ({ tx, args }) => {
        if (args.refuse) throw new ApplicationError(BENCH_REFUSAL);
        await tx.mutate.item.insert({ id: args.id, title: args.title });
      },
    ),
  },
});

/** The message of the bench's ApplicationError, in the engine's results and the floors'. */
export const BENCH_REFUSAL = 'Refused by the bench';

/**
 * The app table, and the baselines' own LMID and results tables, shaped like the engine's
 * `reprise.clients` and `reprise."mutationResults"` so both sides write the same kind of row.
 */
export const BENCH_DDL = [
  'CREATE TABLE item (id TEXT PRIMARY KEY, title TEXT NOT NULL)',
  `CREATE TABLE bench_clients (
     "clientGroupID" TEXT NOT NULL,
     "clientID" TEXT NOT NULL,
     "lastMutationID" BIGINT NOT NULL,
     "userID" TEXT,
     PRIMARY KEY ("clientGroupID", "clientID")
   )`,
  `CREATE TABLE bench_results (
     "clientGroupID" TEXT NOT NULL,
     "clientID" TEXT NOT NULL,
     "mutationID" BIGINT NOT NULL,
     "result" JSONB NOT NULL,
     "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
     "txid" XID8 NOT NULL DEFAULT pg_current_xact_id(),
     PRIMARY KEY ("clientGroupID", "clientID", "mutationID")
   )`,
];

/** Bumps a client's LMID by `$3` and returns the new value: the baselines' exactly-once check. */
export const BASELINE_LMID_UPSERT = `INSERT INTO bench_clients AS c ("clientGroupID", "clientID", "lastMutationID")
  VALUES ($1, $2, $3)
  ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET "lastMutationID" = c."lastMutationID" + $3
  RETURNING "lastMutationID"`;

export const BASELINE_INSERT = 'INSERT INTO item (id, title) VALUES ($1, $2)';

/** Records a refused mutation's `{error: 'app'}` result, as the engine records it. */
export const BASELINE_RESULT_INSERT = `INSERT INTO bench_results ("clientGroupID", "clientID", "mutationID", "result")
  VALUES ($1, $2, $3, $4::text::jsonb)`;
