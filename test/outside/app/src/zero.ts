// src/zero.ts: zero-cache's mutate URL (ZERO_MUTATE_URL=http://your-api/mutate) points here
import { type Database, handleMutateRequest, migrate } from '@reprise/server';
import { mutators, schema } from './schema.js';

// zero-cache's shard: `${ZERO_APP_ID}_${ZERO_SHARD_NUM}`, "zero_0" unless you changed them.
const zero = { shards: ['zero_0'] };

/** The engine's tables, capture, and the shard's tables unless zero-cache made them. */
export async function migrateForZero(db: Database): Promise<void> {
  await migrate(db, { capture: schema, zero });
}

export function zeroMutate(db: Database, request: Request, userID: string): Promise<Response> {
  return handleMutateRequest({
    db,
    schema,
    mutators,
    request, // zero-cache appends ?schema=zero_0&appID=zero
    userID,
    context: { userID },
    zero,
    maxMutations: Number.POSITIVE_INFINITY, // zero-cache sends queued pushes together, uncapped
  });
}
