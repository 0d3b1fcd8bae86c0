import type { Database, DatabaseTransaction } from '@reprise/server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { count, lmid, post, pushBody } from './fixtures/push';

// Transient database failures: retried a bounded number of times, never a lost or
// duplicated mutation, never a permanent skip.

interface Faults {
  /** Statements matching this fail, `remaining` more times. */
  match: RegExp;
  remaining: number;
  error: () => Error;
}

const serializationFailure = () =>
  Object.assign(new Error('could not serialize access due to concurrent update'), {
    code: '40001',
  });
const droppedConnection = () =>
  Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), {
    code: 'CONNECTION_CLOSED',
  });

/** Wraps a database so chosen statements fail, as a flaky server would make them. */
function faulty(db: Database<any>, faults: Faults): Database<any> {
  const wrap = (tx: DatabaseTransaction<any>): DatabaseTransaction<any> => ({
    query: async (text, params) => {
      if (faults.remaining > 0 && faults.match.test(text)) {
        faults.remaining--;
        throw faults.error();
      }
      return tx.query(text, params);
    },
    savepoint: (fn) => tx.savepoint((inner) => fn(wrap(inner))),
    wrappedTransaction: tx.wrappedTransaction,
  });
  return { ...db, transaction: (fn, options) => db.transaction((tx) => fn(wrap(tx)), options) };
}

const create = (id: number) => ({
  id,
  name: 'issue.create',
  args: { id: `i${id}`, title: `Issue ${id}` },
});
const fastRetry = { baseDelayMs: 1, maxDelayMs: 2 };

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`transient faults: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
    });
    beforeEach(async () => {
      await fx.reset();
    });
    afterAll(async () => {
      await fx.close();
    });

    it('a serialization failure mid-batch is retried and every mutation applies once', async () => {
      const faults = { match: /INSERT INTO "issue"/, remaining: 2, error: serializationFailure };
      const res = await post(fx, pushBody([create(1), create(2), create(3)]), {
        db: faulty(fx.db, faults),
        retry: fastRetry,
      });
      expect(faults.remaining).toBe(0);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([{}, {}, {}]);
      expect(await count(fx, 'issue')).toBe(3);
      expect(await lmid(fx)).toBe(3);
    });

    it('a dropped connection while bumping the LMID is retried, not skipped', async () => {
      const faults = { match: /UPDATE .*"clients"/s, remaining: 1, error: droppedConnection };
      const res = await post(fx, pushBody([create(1), create(2)]), {
        db: faulty(fx.db, faults),
        retry: fastRetry,
      });
      expect(res.status).toBe(200);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([{}, {}]);
      expect(await count(fx, 'issue')).toBe(2);
      expect(await lmid(fx)).toBe(2);
    });

    it('a transient error inside a mutator is retried rather than recorded as an app error', async () => {
      const faults = { match: /INSERT INTO "issue"/, remaining: 1, error: serializationFailure };
      const res = await post(fx, pushBody([create(1)]), {
        db: faulty(fx.db, faults),
        retry: fastRetry,
      });
      expect(res.body.mutations[0].result).toEqual({});
      expect(await count(fx, 'reprise."mutationResults"')).toBe(0);
    });

    // The changelog's statement goes last, with COMMIT where the adapter pipelines it
    // (queryAtCommit); either way it commits or rolls back with everything before it.
    const last = async (tx: DatabaseTransaction<any>, text: string, params: unknown[]) => {
      if (tx.queryAtCommit) tx.queryAtCommit(text, params);
      else await tx.query(text, params);
    };
    const insertIssue = 'INSERT INTO issue (id, title, owner_id) VALUES ($1, $2, $3)';

    it('a statement sent with COMMIT commits together with the rest', async () => {
      const value = await fx.db.transaction(
        async (tx) => {
          await tx.query(insertIssue, ['a', 'A', 'u']);
          await last(tx, insertIssue, ['b', 'B', 'u']);
          return 'done';
        },
        { isolation: 'serializable' },
      );
      expect(value).toBe('done');
      expect(await count(fx, 'issue')).toBe(2);
    });

    it('a statement sent with COMMIT that fails rolls everything back and rejects', async () => {
      const attempt = fx.db.transaction(
        async (tx) => {
          await tx.query(insertIssue, ['a', 'A', 'u']);
          await last(tx, insertIssue, ['a', 'again', 'u']);
        },
        { isolation: 'serializable' },
      );
      await expect(attempt).rejects.toMatchObject({ name: 'DatabaseError' });
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('persistent failures return PushFailed/database listing the unprocessed ids; a resend completes', async () => {
      await post(fx, pushBody([create(1)]));
      const faults = { match: /INSERT INTO "issue"/, remaining: 1000, error: serializationFailure };
      const res = await post(fx, pushBody([create(1), create(2), create(3)]), {
        db: faulty(fx.db, faults),
        retry: { ...fastRetry, maxAttempts: 3 },
      });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'database' });
      expect(res.body.mutationIDs).toEqual([
        { clientID: 'c1', id: 1 },
        { clientID: 'c1', id: 2 },
        { clientID: 'c1', id: 3 },
      ]);
      expect(await lmid(fx)).toBe(1);
      expect(await count(fx, 'issue')).toBe(1);

      const resend = await post(fx, pushBody([create(1), create(2), create(3)]));
      expect(resend.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'alreadyProcessed' },
        {},
        {},
      ]);
      expect(await count(fx, 'issue')).toBe(3);
    });
  });
}
