import {
  type Database,
  handleMutateRequest,
  handlePullRequest,
  type MutateRequestOptions,
  type PullRequestOptions,
  silentLogger,
} from '@reprise/server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { databaseState, hostileMutators, SQL_TEXT } from './fixtures/hostile';
import { pull, visibility } from './fixtures/pull';
import { count, lmid, pushBody } from './fixtures/push';

// Bad input on PGlite and every real-server adapter: ids Postgres cannot store are a 400
// naming the field, results holding such characters are stored with U+FFFD so the queue
// goes on, forged cookies never reach Postgres, no body carries SQL, and push and pull
// refuse bodies not sent as application/json. The fuzzed version is bad-input-fuzz.test.ts.

const CREATE = (id: number, issueID = `i${id}`) => ({
  id,
  name: 'issue.create',
  args: { id: issueID, title: `Issue ${id}` },
});

/** A Database that fails the test's expectations if the request reaches it at all. */
function untouchable(db: Database<any>): { db: Database<any>; touched: () => boolean } {
  let touched = false;
  const proxy = new Proxy(db, {
    get(target, property, receiver) {
      if (property === 'transaction' || property === 'query') {
        return async () => {
          touched = true;
          throw new Error('the database was used');
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { db: proxy, touched: () => touched };
}

/** A cookie as this server writes them, with its snapshot replaced by `snapshot`. */
function forge(issued: string, snapshot: string): string {
  const value = JSON.parse(Buffer.from(issued, 'base64url').toString('utf8'));
  return Buffer.from(JSON.stringify({ ...value, s: snapshot })).toString('base64url');
}

const SERVER_ADAPTERS = ADAPTERS.filter((a) => a.name === 'pglite' || a.concurrent);

for (const adapter of SERVER_ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`bad input: ${title}`, () => {
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

    /** Sends a push as a Web Request, with any content type and options. */
    async function send(
      body: unknown,
      options: Partial<MutateRequestOptions> & {
        url?: string;
        contentType?: string | null;
        raw?: string;
      } = {},
    ): Promise<{ status: number; body: any; text: string }> {
      const contentType =
        options.contentType === undefined ? 'application/json' : options.contentType;
      const request = new Request(options.url ?? 'http://localhost/mutate', {
        method: 'POST',
        headers: contentType === null ? {} : { 'content-type': contentType },
        body: options.raw ?? JSON.stringify(body),
      });
      const response = await handleMutateRequest({
        db: fx.db,
        schema: (await import('./fixtures/app')).schema,
        mutators: hostileMutators,
        context: { userID: 'alice', raw: fx.raw },
        userID: 'alice',
        logger: silentLogger,
        ...options,
        request,
      });
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text), text };
    }

    /** The group's stored results as a reset pull returns them. */
    async function storedResults(clientGroupID = 'cg1') {
      const res = await pull(fx, null, { clientGroupID });
      expect(res.status).toBe(200);
      return res.body.mutationResults;
    }

    describe('push: ids and names Postgres cannot store as sent', () => {
      it.each([
        ['U+0000', 'a\u0000b'],
        ['an unpaired surrogate', 'a\ud800b'],
      ])('holding %s, each is a 400 parse naming the field, before any query', async (_, bad) => {
        expect((await send(pushBody([CREATE(1)]))).status).toBe(200);
        const before = await databaseState(fx);
        const spoilers: Array<[string, (body: any) => void]> = [
          ['clientGroupID', (b) => (b.clientGroupID = bad)],
          ['mutations.0.clientID', (b) => (b.mutations[0].clientID = bad)],
          ['mutations.0.name', (b) => (b.mutations[0].name = bad)],
        ];
        for (const [field, spoil] of spoilers) {
          const body = pushBody([CREATE(2)]);
          spoil(body);
          const guard = untouchable(fx.db);
          const res = await send(body, { db: guard.db });
          expect(res.status, field).toBe(400);
          expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'parse' });
          expect(res.body.message).toContain(`${field}: must not contain U+0000`);
          expect(guard.touched(), field).toBe(false);
          // And on the real database too: nothing stored, nothing blocked.
          expect((await send(body)).status, field).toBe(400);
        }
        expect(await databaseState(fx)).toBe(before);
        expect((await send(pushBody([CREATE(2)]))).body.mutations[0].result).toEqual({});
      });

      it('an id longer than an index row holds is a 400 naming it', async () => {
        const body = pushBody([CREATE(1)], { clientID: 'c'.repeat(3000) });
        const res = await send(body);
        expect(res.status).toBe(400);
        expect(res.body.message).toMatch(/^Bad push body: mutations\.0\.clientID: Too big/);
        expect(await count(fx, 'reprise.clients')).toBe(0);
      });

      it('an authenticated user id holding U+0000 is a 400 on push and pull', async () => {
        const guard = untouchable(fx.db);
        const pushed = await send(pushBody([CREATE(1)]), { db: guard.db, userID: 'al\u0000ice' });
        expect(pushed.status).toBe(400);
        expect(pushed.body.message).toMatch(/^userID: the authenticated user id must not contain/);
        const pulled = await pull(fx, null, { db: guard.db, userID: 'al\ud800ice' });
        expect(pulled.status).toBe(400);
        expect(pulled.body.message).toMatch(/^userID: the authenticated user id must not contain/);
        expect(guard.touched()).toBe(false);
      });

      it('U+0000 in the schema or appID query parameter is a 400 naming it', async () => {
        for (const [url, name] of [
          ['http://localhost/mutate?schema=zero%000', 'schema'],
          ['http://localhost/mutate?appID=%00', 'appID'],
        ] as const) {
          const res = await send(pushBody([CREATE(1)]), { url });
          expect(res.status).toBe(400);
          expect(res.body.message).toMatch(new RegExp(`^Bad query parameters: ${name}: `));
        }
        expect(await count(fx, 'reprise.clients')).toBe(0);
      });
    });

    describe('push: results Postgres cannot store as they are', () => {
      // U+0000 and an unpaired surrogate become U+FFFD in what is stored and sent.
      const BAD = 'a\u0000b\ud800c\udc00';
      const STORED = 'a\uFFFDb\uFFFDc\uFFFD';

      /**
       * Pushes `poison` first in its transaction, then alone after an applied mutation
       * (a savepoint), each followed by a create: the queue must go on both times.
       */
      async function expectQueueGoesOn(
        poison: (id: number) => { id: number; name: string; args?: unknown },
        check: (result: unknown) => void,
      ) {
        const first = await send(pushBody([poison(1), CREATE(2)]));
        expect(first.status).toBe(200);
        check(first.body.mutations[0].result);
        expect(first.body.mutations[1].result).toEqual({});
        const later = await send(pushBody([CREATE(3), poison(4), CREATE(5)]));
        expect(later.status).toBe(200);
        check(later.body.mutations[1].result);
        expect(later.body.mutations[2].result).toEqual({});
        expect(await lmid(fx)).toBe(5);
        const ids = await fx.query<{ id: string }>('SELECT id FROM issue WHERE id LIKE $1', ['i%']);
        expect(ids.map((r) => r.id).sort()).toEqual(['i2', 'i3', 'i5']);
        // The stored results read back as they were sent.
        const stored = await storedResults();
        const byID = new Map(stored.map((r: any) => [r.id.id, r.result]));
        expect(byID.get(1)).toEqual(first.body.mutations[0].result);
        expect(byID.get(4)).toEqual(later.body.mutations[1].result);
        // A resend is alreadyProcessed, not a 503.
        const again = await send(pushBody([poison(4)]));
        expect(again.status).toBe(200);
        expect(again.body.mutations[0].result).toEqual({ error: 'alreadyProcessed' });
      }

      it('an error message holding them is stored with U+FFFD', async () => {
        await expectQueueGoesOn(
          (id) => ({ id, name: 'hostile.throwMessage', args: { message: BAD } }),
          (result) => expect(result).toEqual({ error: 'app', message: STORED }),
        );
      });

      it('error details holding them, in keys and values, are stored with U+FFFD', async () => {
        const details = { [`k${BAD}`]: [BAD, { nested: BAD }], plain: 'ok' };
        await expectQueueGoesOn(
          (id) => ({ id, name: 'hostile.throwDetails', args: { details } }),
          (result) =>
            expect(result).toEqual({
              error: 'app',
              message: 'refused',
              details: { [`k${STORED}`]: [STORED, { nested: STORED }], plain: 'ok' },
            }),
        );
      });

      it('returned data holding them is stored with U+FFFD, and the writes stay', async () => {
        let n = 0;
        await expectQueueGoesOn(
          (id) => ({ id, name: 'hostile.echo', args: { id: `e${++n}`, value: { [BAD]: BAD } } }),
          (result) => expect(result).toEqual({ data: { [STORED]: STORED } }),
        );
        expect(await count(fx, 'issue')).toBe(5);
      });

      it.each(['key', 'deep'] as const)(
        'a return value that cannot be encoded (%s) fails the mutation and rolls it back',
        async (kind) => {
          let n = 0;
          await expectQueueGoesOn(
            (id) => ({ id, name: 'hostile.unencodable', args: { id: `u${++n}`, kind } }),
            (result) =>
              expect(result).toMatchObject({
                error: 'app',
                message: expect.stringMatching(/returned a value that cannot be stored or sent/),
              }),
          );
          expect(await count(fx, 'issue')).toBe(3);
        },
      );

      it('a thrown value with no string form is an app error', async () => {
        await expectQueueGoesOn(
          (id) => ({ id, name: 'hostile.throwBare' }),
          (result) =>
            expect(result).toEqual({
              error: 'app',
              message: 'The mutator threw a value that is not an Error',
            }),
        );
      });

      it('args holding U+0000 written to a text or jsonb column: an app error, no SQL', async () => {
        for (const args of [
          { id: 'x1', title: 'a\u0000b' },
          { id: 'x2', title: 't', labels: ['a\u0000b'] },
        ]) {
          await fx.reset();
          await expectQueueGoesOn(
            (id) => ({ id, name: 'issue.create', args }),
            (result) => {
              expect(result).toMatchObject({ error: 'app' });
              expect(JSON.stringify(result)).not.toMatch(SQL_TEXT);
            },
          );
        }
      });
    });

    describe('pull: bad input', () => {
      it('U+0000 or an unpaired surrogate in clientGroupID is a 400 naming it (POST and GET)', async () => {
        for (const res of [
          await pull(fx, null, { clientGroupID: 'g\u0000' }),
          await pull(fx, null, { clientGroupID: 'g\udc00' }),
          await pull(fx, null, { method: 'GET', url: 'http://localhost/pull?clientGroupID=g%00' }),
        ]) {
          expect(res.status).toBe(400);
          expect(res.body).toEqual({
            error: 'parse',
            message:
              'Bad pull body: clientGroupID: must not contain U+0000 or an unpaired UTF-16 surrogate',
          });
        }
        expect(await count(fx, 'reprise."clientGroups"')).toBe(0);
      });

      it.each([
        '4294967295:4294967296:',
        '9223372036854775808:9223372036854775808:',
        '1:8589934592:5',
        '1:18446744073709551616:',
        '10:5:',
        '1:10:7,3',
      ])(
        'a forged cookie snapshot %s is a 400 badCookie, decided before any query',
        async (snapshot) => {
          // Its fingerprint is right, so only the snapshot stands between it and the cast.
          const issued = (await pull(fx, null, { clientGroupID: 'g1' })).body.cookie;
          const forged = forge(issued, snapshot);
          const before = await databaseState(fx);
          const guard = untouchable(fx.db);
          const res = await pull(fx, forged, { clientGroupID: 'g1', db: guard.db });
          expect(res.status).toBe(400);
          expect(res.body).toEqual({
            error: 'badCookie',
            message: 'Bad pull body: cookie is not one this server issued: its snapshot is invalid',
          });
          expect(guard.touched()).toBe(false);
          // The same on the real database, which would refuse the cast.
          expect((await pull(fx, forged, { clientGroupID: 'g1' })).status).toBe(400);
          expect(await databaseState(fx)).toBe(before);
        },
      );
    });

    describe('no response carries SQL', () => {
      it('a pull that meets a database error answers without the SQL', async () => {
        await send(pushBody([CREATE(1)]));
        await fx.query('ALTER TABLE reprise."mutationResults" RENAME TO "mutationResultsAway"');
        try {
          const res = await pull(fx, null, { clientGroupID: 'cg1' });
          expect(res.status).toBeGreaterThanOrEqual(500);
          expect(res.body.message).toMatch(/mutationResults" does not exist/);
          expect(JSON.stringify(res.body)).not.toMatch(SQL_TEXT);
        } finally {
          await fx.query('ALTER TABLE reprise."mutationResultsAway" RENAME TO "mutationResults"');
        }
      });

      it('a push that meets a database error answers without the SQL', async () => {
        await fx.query('ALTER TABLE reprise.clients RENAME TO "clientsAway"');
        try {
          const res = await send(pushBody([CREATE(1)]));
          expect(res.status).toBeGreaterThanOrEqual(500);
          expect(res.text).not.toMatch(SQL_TEXT);
        } finally {
          await fx.query('ALTER TABLE reprise."clientsAway" RENAME TO clients');
        }
      });
    });

    describe('CSRF: bodies must be sent as application/json', () => {
      const REFUSED = [
        'text/plain',
        'text/plain; charset=utf-8',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'application/json; charset=latin1',
        null,
      ];

      it('push refuses any other content type with a 415 and changes nothing', async () => {
        for (const contentType of REFUSED) {
          const res = await send(pushBody([CREATE(1)]), { contentType });
          expect(res.status, String(contentType)).toBe(415);
          expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'parse' });
          expect(res.body.message).toMatch(/^Content-Type must be application\/json/);
        }
        expect(await count(fx, 'reprise.clients')).toBe(0);
        expect(await count(fx, 'issue')).toBe(0);
      });

      it('push takes application/json with a UTF-8 charset, in any case', async () => {
        const a = await send(pushBody([CREATE(1)]), {
          contentType: 'application/json; charset=utf-8',
        });
        expect(a.body.mutations[0].result).toEqual({});
        const b = await send(pushBody([CREATE(2)]), {
          contentType: 'Application/JSON;charset="UTF-8"',
        });
        expect(b.body.mutations[0].result).toEqual({});
        expect(await lmid(fx)).toBe(2);
      });

      it('push takes any content type when the app opts out', async () => {
        const res = await send(pushBody([CREATE(1)]), {
          contentType: 'text/plain',
          allowAnyContentType: true,
        });
        expect(res.status).toBe(200);
        expect(await lmid(fx)).toBe(1);
      });

      it('pull refuses any other content type with a 415 unless the app opts out', async () => {
        const pullWith = async (
          contentType: string | null,
          options: Partial<PullRequestOptions> = {},
        ) => {
          const request = new Request('http://localhost/pull', {
            method: 'POST',
            headers: contentType === null ? {} : { 'content-type': contentType },
            body: JSON.stringify({ clientGroupID: 'g1', cookie: null }),
          });
          const response = await handlePullRequest({
            db: fx.db,
            schema: (await import('./fixtures/app')).schema,
            visibility,
            scopes: ['alice'],
            userID: 'alice',
            logger: silentLogger,
            ...options,
            request,
          });
          return { status: response.status, body: (await response.json()) as any };
        };
        for (const contentType of REFUSED) {
          const res = await pullWith(contentType);
          expect(res.status, String(contentType)).toBe(415);
          expect(res.body.error).toBe('parse');
          expect(res.body.message).toMatch(/^Content-Type must be application\/json/);
        }
        expect(await count(fx, 'reprise."clientGroups"')).toBe(0);
        expect((await pullWith('application/json; charset=UTF-8')).status).toBe(200);
        expect((await pullWith('text/plain', { allowAnyContentType: true })).status).toBe(200);
      });
    });
  });
}
