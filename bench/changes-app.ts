import { defineVisibility } from '@reprise/server';
import { createMutatorDefiner, createSchema, defineMutators } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';

// The changes section's app: one synced table whose rows belong to their owner, so every
// change carries a scope and a pull filters by it. One mutator inserts, one updates.

export const note = pgTable('note', {
  id: text('id').primaryKey(),
  ownerID: text('ownerID').notNull(),
  title: text('title').notNull(),
});

export const notesSchema = createSchema({ tables: { note } });

/** A note is seen by its owner. */
export const notesVisibility = defineVisibility(notesSchema, { note: 'ownerID' });

const defineMutator = createMutatorDefiner<typeof notesSchema>();

export const noteMutators = defineMutators({
  note: {
    create: defineMutator(
      z.object({ id: z.string(), ownerID: z.string(), title: z.string().min(1) }),
      async ({ tx, args }) => {
        await tx.mutate.note.insert(args);
      },
    ),
    rename: defineMutator(
      z.object({ id: z.string(), title: z.string().min(1) }),
      async ({ tx, args }) => {
        await tx.mutate.note.update(args);
      },
    ),
  },
});

export const NOTES_DDL = [
  'CREATE TABLE note (id TEXT PRIMARY KEY, "ownerID" TEXT NOT NULL, title TEXT NOT NULL)',
];

/** The user whose pulls are timed; every change the bench writes is visible to this user. */
export const PULLER = 'alice';
/** The user that pushes; it owns the writing client groups, not the rows. */
export const WRITER = 'writer';

/**
 * `perOwner` notes each for the puller and for another user, written in SQL before any
 * cookie is taken: the reset pull reads them, the update workloads rename them.
 */
export function seedNotes(perOwner: number) {
  return {
    text: `INSERT INTO note (id, "ownerID", title)
           SELECT o || '-seed-' || i, o, 'Seeded ' || i
           FROM generate_series(1, $1::int) AS i, unnest(ARRAY[$2, 'bob']) AS o`,
    params: [perOwner, PULLER],
  };
}

/** The id of the puller's `i`-th seeded note (1-based). */
export const seededNoteID = (i: number) => `${PULLER}-seed-${i}`;
