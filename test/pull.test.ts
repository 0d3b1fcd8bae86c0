import { pruneChanges } from '@reprise/server';
import {
  JSON_NULL,
  microsecondOf,
  type PullResponse,
  parseTimestamp,
  Timestamp,
} from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { ops, pull, pullOK, push } from './fixtures/pull';
import { count } from './fixtures/push';

// The pull endpoint on every adapter: what reaches whom, cookies, resets, LMIDs and
// mutation results. Real-server adapters are skipped (and say why in the suite name) when
// DATABASE_URL is not set; the late-commit interleaving is in pull-late-commit.test.ts.

const createdAt = new Date('2026-01-02T03:04:05.678Z');

/** Re-encodes a cookie's JSON with some fields changed (white-box: pull-cookie.ts). */
function editCookie(cookie: string, edit: Record<string, unknown>): string {
  const value = JSON.parse(Buffer.from(cookie, 'base64url').toString('utf8'));
  return Buffer.from(JSON.stringify({ ...value, ...edit })).toString('base64url');
}

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`pull: ${title}`, () => {
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

    // Past 2^53 where the database keeps int8 exactly; pg-mem holds it as a JS number.
    const views = () => (fx.db.capabilities.partialSQL ? 2n ** 40n + 1n : 2n ** 60n + 1n);

    /** The cookie of a first pull, before anything else happens. */
    const start = async (userID = 'alice', scopes?: string[]) =>
      (await pullOK(fx, null, { userID, ...(scopes ? { scopes } : {}) })).cookie;

    it("a mutation's change reaches the next pull as one put with typed values", async () => {
      const cookie = await start();
      await push(fx, 'issue.create', { id: 'i1', title: 'T', labels: ['a', 'b'], createdAt });
      await push(fx, 'admin.setViews', { id: 'i1', views: views() });
      const res = await pullOK(fx, cookie);
      expect(res.patch).toEqual([
        {
          op: 'put',
          tableName: 'issue',
          value: {
            id: 'i1',
            title: 'T',
            ownerID: 'alice',
            open: true,
            labels: ['a', 'b'],
            createdAt,
            views: views(),
          },
        },
      ]);
      const value = (res.patch[0] as { value: Record<string, unknown> }).value;
      expect(value.createdAt).toBeInstanceOf(Date);
      expect(typeof value.views).toBe('bigint');
      expect(res.lastMutationIDChanges).toEqual({ 'alice-c1': 2 });
    });

    it('a timestamp keeps its microseconds, infinity and years past any Date through push, the database and pull', async () => {
      // pg-mem stores timestamps as JavaScript Dates: milliseconds only, no infinity.
      if (fx.db.capabilities.partialSQL) return;
      const cookie = await start();
      const precise = parseTimestamp('2026-01-02 03:04:05.678901+00');
      await push(fx, 'issue.create', { id: 'i1', title: 'T', createdAt: precise });
      await push(fx, 'issue.create', {
        id: 'i2',
        title: 'U',
        createdAt: Timestamp.POSITIVE_INFINITY,
      });
      const last = parseTimestamp('294276-12-31 23:59:59.999999+00');
      await push(fx, 'issue.create', { id: 'i3', title: 'V', createdAt: last });
      const [row] = await fx.query<{ at: string }>(
        `SELECT created_at::text AS at FROM issue WHERE id = 'i1'`,
      );
      expect(row!.at).toBe('2026-01-02 03:04:05.678901+00');
      const values = (await pullOK(fx, cookie)).patch.map(
        (op) => (op as unknown as { value: { createdAt: Date } }).value.createdAt,
      );
      expect(values[0]).toBeInstanceOf(Timestamp);
      expect(values[0]?.toISOString()).toBe('2026-01-02T03:04:05.678901Z');
      expect(microsecondOf(values[0]!)).toBe(901);
      expect(values[1]).toBe(Timestamp.POSITIVE_INFINITY);
      expect(values[2]?.toISOString()).toBe('294276-12-31T23:59:59.999999Z');
      // A reset reads the table itself, and must give the same values.
      const reset = await pullOK(fx, null);
      expect(reset.patch.slice(1).map((op) => (op as { value: unknown }).value)).toEqual(
        (await pullOK(fx, cookie)).patch.map((op) => (op as { value: unknown }).value),
      );
    });

    it('a pull tells a JSON null from SQL NULL in a jsonb column', async () => {
      await fx.query(
        `INSERT INTO issue (id, title, owner_id, labels) VALUES ('j1', 'J', 'alice', 'null'::jsonb), ('j2', 'K', 'alice', NULL)`,
      );
      const labels = (await pullOK(fx, null)).patch
        .slice(1)
        .map((op) => (op as unknown as { value: { labels: unknown } }).value.labels);
      expect(labels[0]).toBe(JSON_NULL);
      expect(labels[1]).toBeNull();
    });

    it('a plain JSON pull gets Dates as ISO text and BigInts as decimal text', async () => {
      const cookie = await start();
      await push(fx, 'issue.create', { id: 'i1', title: 'T', createdAt });
      await push(fx, 'admin.setViews', { id: 'i1', views: views() });
      const res = await pull(fx, cookie, { rich: false });
      expect(res.status).toBe(200);
      expect(res.body.patch[0].value).toMatchObject({
        createdAt: '2026-01-02T03:04:05.678Z',
        views: String(views()),
        labels: null,
      });
    });

    it('a reset puts the rows with the same values as the changelog gave', async () => {
      const cookie = await start();
      await push(fx, 'issue.create', { id: 'i1', title: 'T', labels: ['x'], createdAt });
      await push(fx, 'admin.setViews', { id: 'i1', views: views() });
      const incremental = await pullOK(fx, cookie);
      const reset = await pullOK(fx, null);
      expect(reset.patch[0]).toEqual({ op: 'clear' });
      expect(reset.patch.slice(1)).toEqual(incremental.patch);
    });

    it('a null cookie resets: clear, then every row of every synced table the user may see', async () => {
      await push(fx, 'issue.create', { id: 'a1', title: 'A' });
      await push(fx, 'issue.create', { id: 'b1', title: 'B' }, { userID: 'bob' });
      await push(fx, 'comment.add', { id: 'k1', issueID: 'a1', body: 'on a1' });
      await push(fx, 'comment.add', { id: 'k2', issueID: 'b1', body: 'on b1' });
      await push(fx, 'counter.increment', { id: 'n' }, { userID: 'bob' });
      const res = await pullOK(fx, null, { scopes: ['alice', 'issue:a1'] });
      expect(ops(res)).toEqual(['clear', 'put issue a1', 'put comment k1', 'put counter n']);
      expect(res.lastMutationIDChanges).toEqual({ 'alice-c1': 3 });
    });

    it('a pull with the returned cookie returns only what changed since', async () => {
      const first = await start();
      await push(fx, 'issue.create', { id: 'i1', title: 'one' });
      const second = await pullOK(fx, first);
      expect(ops(second)).toEqual(['put issue i1']);
      await push(fx, 'issue.create', { id: 'i2', title: 'two' });
      const third = await pullOK(fx, second.cookie);
      expect(ops(third)).toEqual(['put issue i2']);
      const fourth = await pullOK(fx, third.cookie);
      expect(fourth.patch).toEqual([]);
    });

    it("scopes hide rows: bob never gets alice's rows, not even a del with their key", async () => {
      const bob = await start('bob');
      await push(fx, 'issue.create', { id: 'a1', title: 'A' });
      await push(fx, 'issue.rename', { id: 'a1', title: 'A2' });
      await push(fx, 'issue.create', { id: 'a2', title: 'gone' });
      await push(fx, 'issue.remove', { id: 'a2' });
      await push(fx, 'comment.add', { id: 'k1', issueID: 'a1', body: 'secret' });
      await push(fx, 'issue.create', { id: 'b1', title: 'B' }, { userID: 'bob' });
      const res = await pullOK(fx, bob, { userID: 'bob' });
      expect(ops(res)).toEqual(['put issue b1']);
      const reset = await pullOK(fx, null, { userID: 'bob' });
      expect(ops(reset)).toEqual(['clear', 'put issue b1']);
    });

    it('a scope change A→B gives a del to users who see only A and a put to users who see B', async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      const alice = await start('alice');
      const bob = await start('bob');
      const both = await start('carol', ['alice', 'bob']);
      const other = await start('dave');
      await push(fx, 'admin.reassign', { id: 'i1', ownerID: 'bob' });

      const toAlice = await pullOK(fx, alice);
      expect(toAlice.patch).toEqual([{ op: 'del', tableName: 'issue', id: { id: 'i1' } }]);
      const toBob = await pullOK(fx, bob, { userID: 'bob' });
      expect(toBob.patch).toMatchObject([
        { op: 'put', tableName: 'issue', value: { id: 'i1', ownerID: 'bob' } },
      ]);
      const toBoth = await pullOK(fx, both, { userID: 'carol', scopes: ['alice', 'bob'] });
      expect(ops(toBoth)).toEqual(['put issue i1']);
      const toOther = await pullOK(fx, other, { userID: 'dave' });
      expect(toOther.patch).toEqual([]);
    });

    it('a delete gives a del with the primary key', async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      const cookie = await start();
      await push(fx, 'issue.remove', { id: 'i1' });
      const res = await pullOK(fx, cookie);
      expect(res.patch).toEqual([{ op: 'del', tableName: 'issue', id: { id: 'i1' } }]);
    });

    it('a row created and deleted between two pulls is a del to its viewers and nothing to others', async () => {
      const alice = await start('alice');
      const bob = await start('bob');
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      await push(fx, 'issue.remove', { id: 'i1' });
      expect(ops(await pullOK(fx, alice))).toEqual(['del issue i1']);
      expect((await pullOK(fx, bob, { userID: 'bob' })).patch).toEqual([]);
    });

    it('a function rule and PUBLIC_SCOPE decide who gets comments and counters', async () => {
      const alice = await start('alice', ['alice', 'issue:i1']);
      const bob = await start('bob');
      await push(fx, 'comment.add', { id: 'k1', issueID: 'i1', body: 'hi' });
      await push(fx, 'comment.add', { id: 'k2', issueID: 'i2', body: 'elsewhere' });
      await push(fx, 'counter.increment', { id: 'n' });
      const toAlice = await pullOK(fx, alice, { scopes: ['alice', 'issue:i1'] });
      expect(ops(toAlice)).toEqual(['put comment k1', 'put counter n']);
      const toBob = await pullOK(fx, bob, { userID: 'bob' });
      expect(toBob.patch).toEqual([
        { op: 'put', tableName: 'counter', value: { id: 'n', value: 1 } },
      ]);
    });

    it('a cookie taken with other granted scopes gives a reset, so newly visible rows arrive', async () => {
      await push(fx, 'comment.add', { id: 'k1', issueID: 'i1', body: 'old' });
      const cookie = await start('alice', ['alice']);
      const res = await pullOK(fx, cookie, { scopes: ['alice', 'issue:i1'] });
      expect(ops(res)).toEqual(['clear', 'put comment k1']);
    });

    it('after pruneChanges an older cookie gets a reset, never a gap, and the next pull is incremental', async () => {
      const cookie = await start();
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      await new Promise((resolve) => setTimeout(resolve, 20));
      // On a shared server, another database's open transaction can hold the cluster's
      // xmin back for a moment; pruning waits for it, so try again briefly.
      let deleted = 0;
      for (let attempt = 0; attempt < 100 && deleted === 0; attempt++) {
        if (attempt) await new Promise((resolve) => setTimeout(resolve, 50));
        deleted += (await pruneChanges({ db: fx.db, olderThanMs: 0 })).deleted;
      }
      expect(deleted).toBe(1);
      expect(await count(fx, 'reprise.changes')).toBe(0);
      const reset = await pullOK(fx, cookie);
      expect(ops(reset)).toEqual(['clear', 'put issue i1']);
      const after = await pullOK(fx, reset.cookie);
      expect(after.patch).toEqual([]);
      await push(fx, 'issue.create', { id: 'i2', title: 'T' });
      expect(ops(await pullOK(fx, after.cookie))).toEqual(['put issue i2']);
    });

    it('pruneChanges deletes old mutation results too, and keeps newer ones', async () => {
      await start();
      await push(fx, 'issue.createThenRefuse', { id: 'x1' });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await count(fx, 'reprise."mutationResults"')).toBe(1);
      expect(await pruneChanges({ db: fx.db, olderThanMs: 60_000 })).toEqual({
        deleted: 0,
        deletedResults: 0,
      });
      const { deletedResults } = await pruneChanges({ db: fx.db, olderThanMs: 0 });
      expect(deletedResults).toBe(1);
      expect(await count(fx, 'reprise."mutationResults"')).toBe(0);
      expect((await pullOK(fx, null)).mutationResults).toEqual([]);
    });

    it('lastMutationIDChanges lists every client of the group, and only of that group', async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' }, { clientID: 'c1' });
      await push(fx, 'issue.create', { id: 'i2', title: 'T' }, { clientID: 'c2' });
      await push(fx, 'issue.create', { id: 'i3', title: 'T' }, { clientID: 'c2' });
      await push(fx, 'issue.create', { id: 'b1', title: 'T' }, { userID: 'bob' });
      const res = await pullOK(fx, null);
      expect(res.lastMutationIDChanges).toEqual({ c1: 1, c2: 2 });
    });

    it("mutationResults carry the group's app errors and return data since the cookie", async () => {
      const cookie = await start();
      await push(fx, 'issue.createThenRefuse', { id: 'x1' });
      await push(fx, 'comment.add', { id: 'k1', issueID: 'i1', body: 'hi' });
      await push(fx, 'comment.add', { id: 'b1', issueID: 'i1', body: 'hi' }, { userID: 'bob' });
      const first = await pullOK(fx, cookie);
      expect(first.mutationResults).toEqual([
        {
          id: { clientID: 'alice-c1', id: 1 },
          result: { error: 'app', message: 'Refused on purpose', details: { id: 'x1' } },
        },
        {
          id: { clientID: 'alice-c1', id: 2 },
          result: { data: { commentID: 'k1', at: new Date('2026-01-02T03:04:05.000Z') } },
        },
      ]);
      await push(fx, 'comment.add', { id: 'k2', issueID: 'i1', body: 'again' });
      const second = await pullOK(fx, first.cookie);
      const ids = second.mutationResults.map((r) => r.id.id);
      // pg-mem's results carry no transaction id, so every pull sends them all.
      expect(ids).toEqual(fx.db.capabilities.partialSQL ? [1, 2, 3] : [3]);
      expect(second.lastMutationIDChanges).toEqual({ 'alice-c1': 3 });
    });

    it("a pull for another user's client group is refused with 403", async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      const res = await pull(fx, null, { userID: 'mallory', clientGroupID: 'alice-cg' });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        error: 'unauthorized',
        message: expect.stringMatching(/another user/),
      });
    });

    it('a pull for an unknown client group claims it for the puller, as a push would', async () => {
      const res = await pull(fx, null, { userID: 'bob', clientGroupID: 'fresh' });
      expect(res.status).toBe(200);
      const owners = await fx.query<{ userID: string }>(
        `SELECT "userID" FROM reprise."clientGroups" WHERE "clientGroupID" = 'fresh'`,
      );
      expect(owners).toEqual([{ userID: 'bob' }]);
      const stolen = await pull(fx, null, { userID: 'alice', clientGroupID: 'fresh' });
      expect(stolen.status).toBe(403);
    });

    it('bad requests are 4xx naming the problem and change nothing', async () => {
      const cookie = Buffer.from('{"v":1,"s":"garbage","f":"x"}').toString('base64url');
      const bad: Array<[string, Parameters<typeof pull>[2], number, string, RegExp]> = [
        ['malformed JSON', { rawBody: '{"clientGroupID":' }, 400, 'parse', /not valid JSON/],
        ['no client group', { body: { cookie: null } }, 400, 'parse', /clientGroupID/],
        [
          'cookie not a string',
          { body: { clientGroupID: 'g', cookie: 7 } },
          400,
          'parse',
          /cookie/,
        ],
        [
          'an unsupported pull version',
          { body: { clientGroupID: 'g', cookie: null, pullVersion: 2 } },
          400,
          'unsupportedPullVersion',
          /Pull version 2/,
        ],
        [
          'a cookie that is not base64url',
          { body: { clientGroupID: 'g', cookie: 'not a cookie!' } },
          400,
          'badCookie',
          /cookie is not one this server issued: it is not base64url/,
        ],
        [
          'a cookie that is not JSON',
          { body: { clientGroupID: 'g', cookie: 'aGVsbG8' } },
          400,
          'badCookie',
          /cookie .* does not decode to JSON/,
        ],
        [
          'a cookie with a bad snapshot',
          { body: { clientGroupID: 'g', cookie } },
          400,
          'badCookie',
          /snapshot is invalid/,
        ],
        ['a PUT', { method: 'PUT' }, 405, 'parse', /Use POST or GET/],
      ];
      for (const [what, options, status, error, message] of bad) {
        const res = await pull(fx, null, options);
        expect(res.status, what).toBe(status);
        expect(res.body.error, what).toBe(error);
        expect(res.body.message, what).toMatch(message);
      }
      expect(await count(fx, 'reprise."clientGroups"')).toBe(0);
    });

    it('a cookie of another version, or for a position not reached yet, gets a reset', async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      const cookie = await start();
      const future = fx.db.capabilities.partialSQL
        ? editCookie(cookie, { i: 1_000_000_000 })
        : editCookie(cookie, { s: '9000000000:9000000000:' });
      for (const stale of [editCookie(cookie, { v: 99 }), future]) {
        expect(ops(await pullOK(fx, stale))).toEqual(['clear', 'put issue i1']);
      }
      expect((await pullOK(fx, cookie)).patch).toEqual([]);
    });

    it('GET takes the same fields as query parameters', async () => {
      await push(fx, 'issue.create', { id: 'i1', title: 'T' });
      const res = await pull(fx, null, {
        method: 'GET',
        url: 'http://localhost/pull?clientGroupID=alice-cg&pullVersion=1',
      });
      expect(res.status).toBe(200);
      const body = res.body as PullResponse;
      expect(body.patch.map((op) => op.op)).toEqual(['clear', 'put']);
      const next = await pull(fx, null, {
        method: 'GET',
        url: `http://localhost/pull?clientGroupID=alice-cg&cookie=${body.cookie}`,
      });
      expect(next.body.patch).toEqual([]);
    });
  });
}
