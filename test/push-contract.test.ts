import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { count, lmid, post, pushBody } from './fixtures/push';

// The processing rules of the push endpoint, run on every adapter. Real-server adapters
// are skipped (and say why in the suite name) when DATABASE_URL is not set.

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`push contract: ${title}`, () => {
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

    const create = (id: number, issueID = `i${id}`) => ({
      id,
      name: 'issue.create',
      args: { id: issueID, title: `Issue ${issueID}` },
    });

    it("a new client's first mutation leaves LMID 1 and returns {}", async () => {
      const res = await post(fx, pushBody([create(1)]));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        kind: 'MutateResponse',
        userID: 'alice',
        mutations: [{ id: { clientID: 'c1', id: 1 }, result: {} }],
      });
      expect(await lmid(fx)).toBe(1);
      const rows = await fx.query('SELECT id, title, owner_id FROM issue');
      expect(rows).toEqual([{ id: 'i1', title: 'Issue i1', owner_id: 'alice' }]);
    });

    it('a resent, processed id returns alreadyProcessed, changes nothing, and the batch goes on', async () => {
      await post(fx, pushBody([create(1), create(2)]));
      await fx.query(`UPDATE issue SET title = 'edited' WHERE id = 'i1'`);
      const res = await post(fx, pushBody([create(1), create(2), create(3)]));
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'alreadyProcessed' },
        { error: 'alreadyProcessed' },
        {},
      ]);
      expect(await lmid(fx)).toBe(3);
      const rows = await fx.query<{ title: string }>(`SELECT title FROM issue WHERE id = 'i1'`);
      expect(rows[0]!.title).toBe('edited');
      expect(await count(fx, 'issue')).toBe(3);
    });

    it('an id too high in the middle returns oooMutation listing exactly the unprocessed ids', async () => {
      const res = await post(fx, pushBody([create(1), create(10), create(11)]));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        origin: 'server',
        reason: 'oooMutation',
        mutationIDs: [
          { clientID: 'c1', id: 10 },
          { clientID: 'c1', id: 11 },
        ],
      });
      expect(await lmid(fx)).toBe(1);
      expect(await count(fx, 'issue')).toBe(1);
    });

    it('an id too high as the first mutation applies nothing', async () => {
      const res = await post(fx, pushBody([create(2), create(3)]));
      expect(res.body.reason).toBe('oooMutation');
      expect(res.body.mutationIDs).toEqual([
        { clientID: 'c1', id: 2 },
        { clientID: 'c1', id: 3 },
      ]);
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('ApplicationError rolls back tx.mutate and wrapped-transaction writes, advances the LMID and stores the error', async () => {
      const refuse = (id: number) => ({
        id,
        name: 'issue.createThenRefuse',
        args: { id: `x${id}` },
      });
      const res = await post(fx, pushBody([refuse(1), create(2), refuse(3), create(4)]));
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'app', message: 'Refused on purpose', details: { id: 'x1' } },
        {},
        { error: 'app', message: 'Refused on purpose', details: { id: 'x3' } },
        {},
      ]);
      expect(await lmid(fx)).toBe(4);
      const issues = await fx.query<{ id: string }>('SELECT id FROM issue ORDER BY id');
      expect(issues.map((r) => r.id)).toEqual(['i2', 'i4']);
      expect(await count(fx, 'comment')).toBe(0);
      const stored = await fx.query<{ mutationID: string | number; result: any }>(
        `SELECT "mutationID", "result" FROM reprise."mutationResults" ORDER BY "mutationID"`,
      );
      expect(stored.map((r) => Number(r.mutationID))).toEqual([1, 3]);
      expect(stored[0]!.result.json).toEqual({
        error: 'app',
        message: 'Refused on purpose',
        details: { id: 'x1' },
      });
    });

    it('a push of 100 commits after 64 mutations and goes on in a second transaction', async () => {
      await post(fx, pushBody([create(1)]));
      const add = (id: number) => ({
        id,
        name: 'comment.add',
        args: { id: `k${id}`, issueID: 'i1', body: 'hi' },
      });
      const res = await post(fx, pushBody(Array.from({ length: 100 }, (_, i) => add(i + 2))));
      expect(res.status).toBe(200);
      expect(res.body.mutations).toHaveLength(100);
      expect(await lmid(fx)).toBe(101);
      expect(await count(fx, 'comment')).toBe(100);
      if (fx.db.capabilities.partialSQL) return; // pg-mem keeps no transaction ids
      const txids = await fx.query<{ txid: string; n: string | number }>(
        `SELECT "txid"::text AS "txid", count(*) AS "n" FROM reprise."mutationResults"
         WHERE "mutationID" > 1 GROUP BY "txid" ORDER BY min("mutationID")`,
      );
      expect(txids.map((r) => Number(r.n))).toEqual([64, 36]);
    });

    it('a validation failure is an app error; the body never runs and the LMID advances', async () => {
      const res = await post(
        fx,
        pushBody([{ id: 1, name: 'issue.create', args: { id: 'i1', title: '' } }, create(2)]),
      );
      const [first, second] = res.body.mutations;
      expect(first.result.error).toBe('app');
      expect(first.result.message).toMatch(/Invalid arguments for issue\.create: title/);
      expect(first.result.details.issues[0].path).toEqual(['title']);
      expect(second.result).toEqual({});
      expect(await lmid(fx)).toBe(2);
      expect(await count(fx, 'issue')).toBe(1);
    });

    it('an unknown mutator name is an app error and the LMID advances', async () => {
      const res = await post(fx, pushBody([{ id: 1, name: 'issue.nope', args: {} }]));
      expect(res.body.mutations[0].result).toEqual({
        error: 'app',
        message: 'Unknown mutator "issue.nope"',
      });
      expect(await lmid(fx)).toBe(1);
    });

    it('any other throw from app code is an app error', async () => {
      const res = await post(fx, pushBody([create(1), { id: 2, name: 'issue.crash' }]));
      expect(res.body.mutations[1].result).toEqual({ error: 'app', message: 'boom' });
      expect(await lmid(fx)).toBe(2);
      expect(await count(fx, 'issue')).toBe(1);
    });

    it('a duplicate primary key from tx.mutate.insert is an app error without the SQL text', async () => {
      const res = await post(fx, pushBody([create(1, 'same'), create(2, 'same'), create(3)]));
      const results = res.body.mutations.map((m: any) => m.result);
      expect(results[0]).toEqual({});
      expect(results[1].error).toBe('app');
      expect(results[1].message).toMatch(/duplicate key/);
      expect(results[1].message).not.toMatch(/INSERT INTO/);
      expect(results[2]).toEqual({});
      expect(await count(fx, 'issue')).toBe(2);
    });

    it("a mutator's return value reaches the caller as data", async () => {
      await post(fx, pushBody([create(1)]));
      const res = await post(
        fx,
        pushBody([{ id: 2, name: 'comment.add', args: { id: 'k1', issueID: 'i1', body: 'hi' } }]),
      );
      expect(res.body.mutations[0].result).toEqual({
        data: { commentID: 'k1', at: '2026-01-02T03:04:05.000Z' },
      });
    });

    it('pushVersion other than 1 returns unsupportedPushVersion listing every id', async () => {
      const res = await post(fx, { ...pushBody([create(1), create(2)]), pushVersion: 2 });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'unsupportedPushVersion',
        mutationIDs: [
          { clientID: 'c1', id: 1 },
          { clientID: 'c1', id: 2 },
        ],
      });
      expect(await lmid(fx)).toBeUndefined();
    });

    it('bad requests change nothing', async () => {
      const valid = pushBody([create(1)]);
      const bad: Array<[string, Parameters<typeof post>[2], unknown, number]> = [
        ['malformed JSON', { rawBody: '{"clientGroupID":' }, null, 400],
        ['a body failing the schema', {}, { ...valid, mutations: [{ id: 1 }] }, 400],
        ['a bad query parameter', { url: 'http://localhost/mutate?appID=a%20b' }, valid, 400],
        ['an unsupported push version', {}, { ...valid, pushVersion: 2 }, 400],
        ['too many mutations', { maxMutations: 0 }, valid, 413],
        ['too large a body', { maxBodyBytes: 10 }, valid, 413],
      ];
      for (const [what, options, body, status] of bad) {
        const res = await post(fx, body, options);
        expect(res.status, what).toBe(status);
        expect(res.body.kind, what).toBe('PushFailed');
      }
      expect(await count(fx, 'issue')).toBe(0);
      expect(await count(fx, 'reprise.clients')).toBe(0);
      expect(await count(fx, 'reprise."clientGroups"')).toBe(0);
    });

    it('a client group first used by one user is refused to another with 403', async () => {
      await post(fx, pushBody([create(1)]), { userID: 'alice' });
      const res = await post(fx, pushBody([create(2, 'j2')], { clientID: 'c2' }), {
        userID: 'mallory',
      });
      expect(res.status).toBe(403);
      expect(res.body.reason).toBe('unauthorized');
      expect(await count(fx, 'issue')).toBe(1);
      expect(await lmid(fx, 'c2')).toBeUndefined();
    });

    it('after-commit hooks run after commit and never for a rolled-back mutation', async () => {
      const events: string[] = [];
      const { defineMutator, defineMutators, overrideMutators } = await import('@reprise/shared');
      const { mutators } = await import('./fixtures/app');
      const withHooks = overrideMutators(mutators, {
        issue: {
          create: async ({ tx, args }) => {
            if (tx.location !== 'server') return;
            await tx.mutate.issue!.insert({ id: args.id, title: args.title, ownerID: 'alice' });
            tx.afterCommit(async () => {
              const rows = await fx.query('SELECT id FROM issue WHERE id = $1', [args.id]);
              events.push(`${args.id}:${rows.length}`);
            });
          },
        },
      });
      const extra = defineMutators({
        failing: defineMutator(async ({ tx }) => {
          if (tx.location === 'server') tx.afterCommit(() => void events.push('never'));
          throw new Error('nope');
        }),
      });
      const all = { ...withHooks, ...extra };
      const res = await post(fx, pushBody([create(1), { id: 2, name: 'failing' }, create(3)]), {
        mutators: all,
      });
      expect(res.body.mutations.map((m: any) => m.result.error ?? 'ok')).toEqual([
        'ok',
        'app',
        'ok',
      ]);
      expect(events).toEqual(['i1:1', 'i3:1']);
    });
  });
}
