import type { PGlite } from '@electric-sql/pglite';
import type { Sql } from 'postgres';
import { BASELINE_INSERT, BASELINE_LMID_UPSERT } from './app';
import type { BenchPush } from './pushes';

/**
 * Hand-written driver code doing the least work that still applies each mutation exactly
 * once: the LMID upsert (which also locks the client's row) and the row insert. Each
 * statement is awaited before the next, because a server must know whether a mutation
 * failed before it moves on.
 */
export interface Baseline {
  /** (i) One transaction per mutation: LMID upsert, then the insert. */
  perMutation(push: BenchPush): Promise<void>;
  /** (ii) One transaction per push: LMID upsert once, then SAVEPOINT, insert, RELEASE each. */
  perPush(push: BenchPush): Promise<void>;
}

function checkLMID(push: BenchPush, expected: number, got: unknown) {
  if (Number(got) !== expected) {
    // Thrown inside the transaction, so it rolls back: the push was a replay or a gap.
    throw new Error(`${push.clientID}: LMID is ${String(got)}, expected ${expected}`);
  }
}

const title = (id: string) => `Item ${id}`;

/** The baselines over postgres.js, with its default prepared statements. */
export function createPostgresJsBaseline(sql: Sql): Baseline {
  return {
    async perMutation(push) {
      for (const [i, id] of push.itemIDs.entries()) {
        await sql.begin(async (tx) => {
          const rows = await tx.unsafe(
            BASELINE_LMID_UPSERT,
            [push.clientGroupID, push.clientID, 1],
            {
              prepare: true,
            },
          );
          checkLMID(push, push.firstID + i, rows[0]?.lastMutationID);
          await tx.unsafe(BASELINE_INSERT, [id, title(id)], { prepare: true });
        });
      }
    },
    async perPush(push) {
      const count = push.itemIDs.length;
      await sql.begin(async (tx) => {
        const rows = await tx.unsafe(
          BASELINE_LMID_UPSERT,
          [push.clientGroupID, push.clientID, count],
          { prepare: true },
        );
        checkLMID(push, push.firstID + count - 1, rows[0]?.lastMutationID);
        for (const id of push.itemIDs) {
          await tx.unsafe('SAVEPOINT m', [], { prepare: true });
          await tx.unsafe(BASELINE_INSERT, [id, title(id)], { prepare: true });
          await tx.unsafe('RELEASE SAVEPOINT m', [], { prepare: true });
        }
      });
    },
  };
}

/** The same baselines over PGlite's own `transaction` and `query`. */
export function createPGliteBaseline(pglite: PGlite): Baseline {
  return {
    async perMutation(push) {
      for (const [i, id] of push.itemIDs.entries()) {
        await pglite.transaction(async (tx) => {
          const { rows } = await tx.query<{ lastMutationID: unknown }>(BASELINE_LMID_UPSERT, [
            push.clientGroupID,
            push.clientID,
            1,
          ]);
          checkLMID(push, push.firstID + i, rows[0]?.lastMutationID);
          await tx.query(BASELINE_INSERT, [id, title(id)]);
        });
      }
    },
    async perPush(push) {
      const count = push.itemIDs.length;
      await pglite.transaction(async (tx) => {
        const { rows } = await tx.query<{ lastMutationID: unknown }>(BASELINE_LMID_UPSERT, [
          push.clientGroupID,
          push.clientID,
          count,
        ]);
        checkLMID(push, push.firstID + count - 1, rows[0]?.lastMutationID);
        for (const id of push.itemIDs) {
          await tx.query('SAVEPOINT m');
          await tx.query(BASELINE_INSERT, [id, title(id)]);
          await tx.query('RELEASE SAVEPOINT m');
        }
      });
    },
  };
}
