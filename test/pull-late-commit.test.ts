import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { ops, pullOK, push } from './fixtures/pull';

// The interleaving a cursor of changelog ids gets wrong: a transaction takes a lower id,
// stays open while a later one commits and is pulled, and only then commits. The pull
// after it must still bring its change. It needs truly concurrent transactions, so it runs
// on the real server only.
//
// A mutator that blocks cannot stage this: the push writes its changelog rows after the
// last mutator of the transaction returns, so a blocked mutator holds no id yet. Instead a
// test-only trigger on the changelog makes the slow push's transaction wait on an advisory
// lock right after its changelog row has taken its id, until the test lets it commit.

const LOCK = 4242;
const scopes = ['alice', 'issue:i1'];

async function waitUntil(condition: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const adapter of ADAPTERS.filter((a) => a.concurrent)) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`pull, a late commit: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await fx.query(
        `CREATE FUNCTION hold_slow() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_advisory_xact_lock(${LOCK}); RETURN NULL; END $$`,
      );
      // After the capture trigger (triggers fire in name order): the change has its id.
      await fx.query(
        `CREATE TRIGGER zz_hold_slow AFTER INSERT ON comment FOR EACH ROW
         WHEN (NEW.body = 'T1') EXECUTE FUNCTION hold_slow()`,
      );
    });
    afterAll(async () => {
      await fx.close();
    });

    it('a change with a lower id that commits after a pull reaches the next pull with its cookie', async () => {
      const holder = new pg.Client({ connectionString: fx.url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [LOCK]);
        const first = await pullOK(fx, null, { scopes });

        // T1: its changelog row takes its id, then it waits, open, on the lock.
        const slow = push(
          fx,
          'comment.add',
          { id: 'early', issueID: 'i1', body: 'T1' },
          {
            clientID: 'slow',
          },
        );
        await waitUntil(async () => {
          const { rows } = await holder.query(
            `SELECT count(*)::int AS n FROM pg_locks
             WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            [LOCK],
          );
          return rows[0].n > 0;
        }, 'the slow push waits with its change written');

        // T2: takes a higher id and commits; a pull sees it, not T1.
        await push(
          fx,
          'comment.add',
          { id: 'late', issueID: 'i1', body: 'T2' },
          {
            clientID: 'fast',
          },
        );
        const between = await pullOK(fx, first.cookie, { scopes });
        expect(ops(between)).toEqual(['put comment late']);
        expect(between.mutationResults.map((r) => r.id.clientID)).toEqual(['fast']);

        // T1 commits only now.
        await holder.query('SELECT pg_advisory_unlock($1)', [LOCK]);
        expect(await slow).toEqual({
          data: { commentID: 'early', at: new Date('2026-01-02T03:04:05.000Z') },
        });

        const after = await pullOK(fx, between.cookie, { scopes });
        expect(ops(after)).toEqual(['put comment early']);
        expect(after.mutationResults).toEqual([
          {
            id: { clientID: 'slow', id: 1 },
            result: { data: { commentID: 'early', at: new Date('2026-01-02T03:04:05.000Z') } },
          },
        ]);
        expect(after.lastMutationIDChanges).toEqual({ fast: 1, slow: 1 });

        // A cursor of ids would have stopped at T2's id, past T1's: T1 would be lost.
        const ids = await fx.query<{ row: string; id: string | number }>(
          `SELECT "key"->>'id' AS "row", "id" FROM reprise.changes ORDER BY "id"`,
        );
        expect(ids.map((r) => r.row)).toEqual(['early', 'late']);
        const [early, late] = ids.map((r) => Number(r.id));
        expect(early).toBeLessThan(late!);
        expect((await pullOK(fx, after.cookie, { scopes })).patch).toEqual([]);
      } finally {
        await holder.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
        await holder.end();
      }
    });
  });
}
