import type { PGlite } from '@electric-sql/pglite';
import type { MutationResult, PushRequest, PushResponse } from '@reprise/shared';
import type { Pool } from 'pg';
import type { Sql } from 'postgres';
import {
  BASELINE_INSERT,
  BASELINE_LMID_UPSERT,
  BASELINE_RESULT_INSERT,
  BENCH_REFUSAL,
} from './app';

/**
 * Hand-written driver code doing the least work that still applies each mutation exactly
 * once: the LMID upsert (which also locks the client's row) and the row insert. Each
 * statement is awaited before the next, because a server must know whether a mutation
 * failed before it moves on. It takes the push body as parsed JSON, unchecked: the bench's
 * pushes come from one client, all in order.
 *
 * A mutation whose args say `refuse` is refused by the app before it writes: no insert, but
 * its LMID still counts and its `{error: 'app'}` result is recorded in `bench_results`, in
 * the same transaction as the rest of the push.
 */
export interface Baseline {
  /** (i) One transaction per mutation: LMID upsert, then the insert (or the result). */
  perMutation(push: PushRequest): Promise<void>;
  /**
   * (ii) One transaction per push: LMID upsert once, then SAVEPOINT, insert, RELEASE each;
   * a refused mutation rolls back to its savepoint and records its result.
   */
  perPush(push: PushRequest): Promise<void>;
}

/** The bench mutator's arguments. */
interface ItemArgs {
  readonly id: string;
  readonly title: string;
  readonly refuse?: boolean;
}

const REFUSED: MutationResult = { error: 'app', message: BENCH_REFUSAL };

/**
 * The baseline as an HTTP endpoint, so that it pays what the engine's handler pays around
 * the database: read and parse the `Request`'s JSON body, and answer with a JSON `Response`
 * (the protocol's reply, one empty result per mutation). Nothing is validated.
 *
 * @example
 * const response = await handleBaselineRequest(request, baseline.perMutation);
 */
export async function handleBaselineRequest(
  request: Request,
  apply: (push: PushRequest) => Promise<void>,
): Promise<Response> {
  const push = (await request.json()) as PushRequest;
  await apply(push);
  const reply: PushResponse = {
    kind: 'MutateResponse',
    mutations: push.mutations.map((m) => ({
      id: { clientID: m.clientID, id: m.id },
      result: (m.args[0] as ItemArgs).refuse ? REFUSED : {},
    })),
  };
  return Response.json(reply);
}

/** The push's client, first mutation ID and rows; every mutation is `item.create`. */
function contentsOf(push: PushRequest) {
  const first = push.mutations[0]!;
  const rows = push.mutations.map((m) => m.args[0] as ItemArgs);
  return { clientID: first.clientID, firstID: first.id, rows };
}

/** The parameters of a refused mutation's result row, encoded as the engine stores it. */
const resultParams = (push: PushRequest, clientID: string, mutationID: number) => [
  push.clientGroupID,
  clientID,
  mutationID,
  JSON.stringify({ json: REFUSED }),
];

function checkLMID(clientID: string, expected: number, got: unknown) {
  if (Number(got) !== expected) {
    // Thrown inside the transaction, so it rolls back: the push was a replay or a gap.
    throw new Error(`${clientID}: LMID is ${String(got)}, expected ${expected}`);
  }
}

/** The baselines over postgres.js, with its default prepared statements. */
export function createPostgresJsBaseline(sql: Sql): Baseline {
  return {
    async perMutation(push) {
      const { clientID, firstID, rows } = contentsOf(push);
      for (const [i, row] of rows.entries()) {
        await sql.begin(async (tx) => {
          const lmid = await tx.unsafe(BASELINE_LMID_UPSERT, [push.clientGroupID, clientID, 1], {
            prepare: true,
          });
          checkLMID(clientID, firstID + i, lmid[0]?.lastMutationID);
          if (row.refuse) {
            await tx.unsafe(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i), {
              prepare: true,
            });
          } else await tx.unsafe(BASELINE_INSERT, [row.id, row.title], { prepare: true });
        });
      }
    },
    async perPush(push) {
      const { clientID, firstID, rows } = contentsOf(push);
      await sql.begin(async (tx) => {
        const lmid = await tx.unsafe(
          BASELINE_LMID_UPSERT,
          [push.clientGroupID, clientID, rows.length],
          { prepare: true },
        );
        checkLMID(clientID, firstID + rows.length - 1, lmid[0]?.lastMutationID);
        for (const [i, row] of rows.entries()) {
          await tx.unsafe('SAVEPOINT m', [], { prepare: true });
          if (row.refuse) {
            await tx.unsafe('ROLLBACK TO SAVEPOINT m', [], { prepare: true });
            await tx.unsafe(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i), {
              prepare: true,
            });
            continue;
          }
          await tx.unsafe(BASELINE_INSERT, [row.id, row.title], { prepare: true });
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
      const { clientID, firstID, rows } = contentsOf(push);
      for (const [i, row] of rows.entries()) {
        await pglite.transaction(async (tx) => {
          const lmid = await tx.query<{ lastMutationID: unknown }>(BASELINE_LMID_UPSERT, [
            push.clientGroupID,
            clientID,
            1,
          ]);
          checkLMID(clientID, firstID + i, lmid.rows[0]?.lastMutationID);
          if (row.refuse) {
            await tx.query(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i));
          } else await tx.query(BASELINE_INSERT, [row.id, row.title]);
        });
      }
    },
    async perPush(push) {
      const { clientID, firstID, rows } = contentsOf(push);
      await pglite.transaction(async (tx) => {
        const lmid = await tx.query<{ lastMutationID: unknown }>(BASELINE_LMID_UPSERT, [
          push.clientGroupID,
          clientID,
          rows.length,
        ]);
        checkLMID(clientID, firstID + rows.length - 1, lmid.rows[0]?.lastMutationID);
        for (const [i, row] of rows.entries()) {
          await tx.query('SAVEPOINT m');
          if (row.refuse) {
            await tx.query('ROLLBACK TO SAVEPOINT m');
            await tx.query(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i));
            continue;
          }
          await tx.query(BASELINE_INSERT, [row.id, row.title]);
          await tx.query('RELEASE SAVEPOINT m');
        }
      });
    },
  };
}

/** The same baselines over a node-postgres pool: BEGIN and COMMIT on one checked-out client. */
export function createPgBaseline(pool: Pool): Baseline {
  const inTransaction = async (work: (client: import('pg').PoolClient) => Promise<void>) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
  return {
    async perMutation(push) {
      const { clientID, firstID, rows } = contentsOf(push);
      for (const [i, row] of rows.entries()) {
        await inTransaction(async (client) => {
          const lmid = await client.query(BASELINE_LMID_UPSERT, [push.clientGroupID, clientID, 1]);
          checkLMID(clientID, firstID + i, lmid.rows[0]?.lastMutationID);
          if (row.refuse) {
            await client.query(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i));
          } else await client.query(BASELINE_INSERT, [row.id, row.title]);
        });
      }
    },
    async perPush(push) {
      const { clientID, firstID, rows } = contentsOf(push);
      await inTransaction(async (client) => {
        const lmid = await client.query(BASELINE_LMID_UPSERT, [
          push.clientGroupID,
          clientID,
          rows.length,
        ]);
        checkLMID(clientID, firstID + rows.length - 1, lmid.rows[0]?.lastMutationID);
        for (const [i, row] of rows.entries()) {
          await client.query('SAVEPOINT m');
          if (row.refuse) {
            await client.query('ROLLBACK TO SAVEPOINT m');
            await client.query(BASELINE_RESULT_INSERT, resultParams(push, clientID, firstID + i));
            continue;
          }
          await client.query(BASELINE_INSERT, [row.id, row.title]);
          await client.query('RELEASE SAVEPOINT m');
        }
      });
    },
  };
}
