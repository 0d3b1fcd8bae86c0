import { createMutatorDefiner, createSchema, defineMutators } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';

// The bench's own app: one table and one insert mutator, so the numbers measure the
// engine's per-push and per-mutation cost rather than the app's.

export const item = pgTable('item', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
});

export const schema = createSchema({ tables: { item } });

const defineMutator = createMutatorDefiner<typeof schema>();

export const mutators = defineMutators({
  item: {
    create: defineMutator(
      z.object({ id: z.string(), title: z.string().min(1) }),
      async ({ tx, args }) => {
        await tx.mutate.item.insert({ id: args.id, title: args.title });
      },
    ),
  },
});

/**
 * The app table, and the baselines' own LMID table, shaped like the engine's
 * `reprise.clients` so both sides upsert the same kind of row.
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
];

/** Bumps a client's LMID by `$3` and returns the new value: the baselines' exactly-once check. */
export const BASELINE_LMID_UPSERT = `INSERT INTO bench_clients AS c ("clientGroupID", "clientID", "lastMutationID")
  VALUES ($1, $2, $3)
  ON CONFLICT ("clientGroupID", "clientID") DO UPDATE SET "lastMutationID" = c."lastMutationID" + $3
  RETURNING "lastMutationID"`;

export const BASELINE_INSERT = 'INSERT INTO item (id, title) VALUES ($1, $2)';
