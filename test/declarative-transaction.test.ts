import { decodeRich, encodeRich } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { declarativeMutators, hookCalls } from './fixtures/declarative';
import { count, lmid, post, pushBody } from './fixtures/push';

// defineTransaction's operations, pushed through handleMutateRequest on every adapter:
// results chain, conditions skip, transforms replace, and a failure rolls back all of it.

for (const kind of ADAPTERS) {
  const title = kind.unavailable ? `${kind.name} [skipped: ${kind.unavailable}]` : kind.name;
  describe.skipIf(kind.unavailable !== undefined)(`defineTransaction: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await kind.create();
    });
    afterAll(() => fx?.close());
    beforeEach(async () => {
      await fx.reset();
      hookCalls.length = 0;
    });

    const push = async (name: string, args: unknown, userID = 'alice') => {
      const group = { clientGroupID: `${userID}-cg`, clientID: `${userID}-c1` };
      const id = ((await lmid(fx, group.clientID, group.clientGroupID)) ?? 0) + 1;
      const res = await post(fx, encodeRich(pushBody([{ id, name, args }], group)), {
        userID,
        mutators: declarativeMutators,
      });
      expect(res.status).toBe(200);
      return (decodeRich(res.body) as any).mutations[0].result;
    };

    it('chains ctx.results, skips a false condition and returns transformed results', async () => {
      const result = await push('decl.openIssue', { id: 'i1', title: 'Printer', comment: 'Hot' });
      expect(result.data).toMatchObject({
        issue: { id: 'i1', title: 'Printer', ownerID: 'alice', open: true },
        comment: { id: 'i1/1', issueID: 'i1', body: 'Hot' },
        summary: { id: 'i1', title: 'PRINTER', open: true },
        counter: null,
      });
      expect(await fx.query('SELECT id, issue_id FROM comment')).toEqual([
        { id: 'i1/1', issue_id: 'i1' },
      ]);

      const skipped = await push('decl.openIssue', { id: 'i2', title: 'Quiet' });
      expect(Object.keys(skipped.data).sort()).toEqual(['counter', 'issue', 'summary']);
      expect(await count(fx, 'comment')).toBe(1);
      expect(hookCalls).toEqual([
        { hook: 'success', value: 'PRINTER' },
        { hook: 'success', value: 'QUIET' },
      ]);
    });

    it('rolls back all operations when the third of four fails: onError once, onSuccess never', async () => {
      const result = await push('decl.fourSteps', { id: 'i1', counter: 'missing' });
      expect(result).toMatchObject({
        error: 'app',
        message: 'update counter: no row matches {"id":"missing"}',
        details: { reason: 'notFound', table: 'counter', where: { id: 'missing' } },
      });
      expect(await count(fx, 'issue')).toBe(0);
      expect(await count(fx, 'comment')).toBe(0);
      expect(await lmid(fx, 'alice-c1', 'alice-cg')).toBe(1); // consumed, as any failed mutation is
      expect(hookCalls).toEqual([
        {
          hook: 'error',
          value: { reason: 'notFound', table: 'counter', where: { id: 'missing' } },
        },
      ]);

      await fx.query(`INSERT INTO counter (id, value) VALUES ('c', 0)`);
      const ok = await push('decl.fourSteps', { id: 'i1', counter: 'c' });
      expect(ok.data).toMatchObject({ counter: { id: 'c', value: 42 }, last: { id: 'i1/2' } });
      expect(await count(fx, 'comment')).toBe(2);
      expect(hookCalls.map((c) => c.hook)).toEqual(['error', 'success']);
    });

    it('reads, lists, deletes and updates by where; a missing read is notFound', async () => {
      await push('decl.openIssue', { id: 'i1', title: 'Printer', comment: 'Hot' });
      const closed = await push('decl.closeIssue', { id: 'i1' });
      expect(closed.data).toMatchObject({
        issue: { open: false, count: 0 },
        comments: [{ id: 'i1/1', issueID: 'i1', body: 'Hot' }],
        removed: { id: 'i1/1' },
      });
      expect(await count(fx, 'comment')).toBe(0);
      expect(await fx.query('SELECT open FROM issue')).toEqual([{ open: false }]);

      // The comment is gone now: an optional delete gives null rather than failing.
      const again = await push('decl.closeIssue', { id: 'i1' });
      expect(again.data.removed).toBeNull();

      const missing = await push('decl.closeIssue', { id: 'nope' });
      expect(missing).toMatchObject({
        error: 'app',
        message: 'read issue: no row matches {"id":"nope"}',
        details: { reason: 'notFound' },
      });
      const refused = await push('decl.closeIssue', { id: 'i1' }, 'bob');
      expect(refused).toMatchObject({ error: 'app', message: 'Only the owner may close it' });
    });

    it('refuses args its validator refuses, and calls onError with the args as sent', async () => {
      const result = await push('decl.openIssue', { id: 'i1', title: '' });
      expect(result).toMatchObject({ error: 'app', details: { issues: [{ path: ['title'] }] } });
      expect(await count(fx, 'issue')).toBe(0);
      expect(hookCalls).toHaveLength(1);
      expect(hookCalls[0]!.value).toMatch(/^i1: Invalid arguments for decl\.openIssue/);
    });
  });
}
