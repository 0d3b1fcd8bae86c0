import { handleMutateRequest, handlePullRequest, silentLogger } from '@reprise/server';
import { decodeRich, encodeRich, isEnvelope } from '@reprise/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { databaseState, hostileMutators, SQL_TEXT } from './fixtures/hostile';
import { visibility } from './fixtures/pull';

// Throws malformed and hostile pushes and pulls at the handlers, as a plain Web Request
// each: every answer must be a 4xx, or a 200 with per-mutation results (a pull's patch),
// never a 5xx; no body may carry SQL; and a refused request must leave every table as it
// was. FUZZ_RUNS sets the requests per handler and adapter (default 200).

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
// Fixed by default so that a CI run is repeatable; set FUZZ_SEED to explore other inputs.
const SEED = Number(process.env.FUZZ_SEED ?? 20261203);

// Characters that break things: U+0000, unpaired surrogates, quotes, escapes, separators.
const nasty = fc.constantFrom(
  'a',
  'b',
  '\u0000',
  '\ud800',
  '\udc00',
  '\uFFFF',
  '\u{1F600}',
  '"',
  '\\',
  '%',
  ':',
  ',',
  '.',
  ' ',
  "'",
);
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: nasty, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(300), 'é'.repeat(2000), '__proto__') },
);
const number = fc.oneof(
  fc.integer({ min: -2, max: 5 }),
  fc.constantFrom(0.5, -0, 2 ** 31, 2 ** 53, 2 ** 63, 1e308, Number.MAX_SAFE_INTEGER),
  fc.double(),
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  text,
  number,
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(text, text, { maxKeys: 3 }),
  fc.array(text, { maxLength: 3 }),
);
/** Sometimes the expected thing, sometimes anything. */
const mostly = <T>(usual: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 12, arbitrary: usual }, { weight: 1, arbitrary: value });

const call = fc.oneof(
  fc.record({
    name: fc.constant('issue.create'),
    args: fc.record({
      id: text,
      title: text,
      labels: fc.option(fc.array(text), { nil: undefined }),
    }),
  }),
  fc.record({ name: fc.constant('hostile.echo'), args: fc.record({ id: text, value }) }),
  fc.record({ name: fc.constant('hostile.throwMessage'), args: fc.record({ message: text }) }),
  fc.record({
    name: fc.constant('hostile.throwDetails'),
    args: fc.record({ details: fc.oneof(value, fc.dictionary(text, value)) }),
  }),
  fc.record({ name: fc.constantFrom('hostile.throwBare', 'counter.increment'), args: value }),
  fc.record({ name: text, args: value }),
);

const mutation = fc
  .record({
    type: mostly(fc.constant('custom')),
    id: mostly(fc.integer({ min: 1, max: 4 })),
    clientID: mostly(fc.constantFrom('c1', 'c2')),
    call,
    argsShape: fc.oneof(
      { weight: 12, arbitrary: fc.constant('one') },
      { weight: 1, arbitrary: fc.constantFrom('none', 'two', 'bare') },
    ),
    timestamp: mostly(fc.constant(1)),
  })
  .map(({ call, argsShape, ...rest }) => ({
    ...rest,
    name: call.name,
    args:
      argsShape === 'one'
        ? [call.args]
        : argsShape === 'none'
          ? []
          : argsShape === 'two'
            ? [call.args, call.args]
            : call.args,
  }));

/** Drops some keys of an object, so required fields go missing now and then. */
const dropSome = <T extends Record<string, unknown>>(record: fc.Arbitrary<T>) =>
  fc
    .tuple(
      record,
      fc.oneof(
        { weight: 6, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.nat(), { maxLength: 2 }) },
      ),
    )
    .map(([object, drops]) => {
      const keys = Object.keys(object);
      const copy: Record<string, unknown> = { ...object };
      for (const drop of drops) if (keys.length) delete copy[keys[drop % keys.length]!];
      return copy;
    });

const pushBody = dropSome(
  fc.record({
    clientGroupID: mostly(fc.constantFrom('g1', 'g2')),
    mutations: mostly(fc.array(mutation, { maxLength: 4 })),
    pushVersion: mostly(fc.constant(1)),
    schemaVersion: fc.option(number, { nil: undefined }),
    timestamp: mostly(fc.constant(1)),
    requestID: mostly(fc.constant('r')),
  }),
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      null,
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'APPLICATION/JSON; charset=UTF-8',
    ),
  },
);

/** superjson's envelope, or a bare one where superjson refuses the value (`__proto__`). */
function envelope(body: unknown): unknown {
  try {
    return encodeRich(body);
  } catch {
    return { json: body };
  }
}

/** The body as sent: JSON, JSON in a superjson envelope (with hostile meta), or raw text. */
const encoded = (body: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: body.map((b) => JSON.stringify(b) ?? 'null') },
    {
      weight: 2,
      arbitrary: fc
        .tuple(body, fc.option(fc.oneof(value, fc.dictionary(text, value)), { nil: undefined }))
        .map(([b, meta]) => JSON.stringify(meta === undefined ? envelope(b) : { json: b, meta })),
    },
    { weight: 1, arbitrary: fc.string({ unit: nasty, maxLength: 30 }) },
    { weight: 1, arbitrary: body.map((b) => (JSON.stringify(b) ?? 'null').slice(0, 20)) },
  );

const query = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .dictionary(fc.constantFrom('schema', 'appID', 'x', 'schema[a]'), text, { maxKeys: 3 })
      .map((params) => `?${new URLSearchParams(params)}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('?schema=%00', '?appID=%ZZ', '?schema=a&schema=b') },
);

/** Whether a pull's or push's answer is allowed, and the status and text, for messages. */
async function check(response: Response) {
  const text = await response.text();
  const what = `${response.status} ${text.slice(0, 300)}`;
  expect(response.status === 200 || (response.status >= 400 && response.status < 500), what).toBe(
    true,
  );
  expect(text, what).not.toMatch(SQL_TEXT);
  const json: unknown = JSON.parse(text);
  // A rich request gets its answer in a superjson envelope.
  const body = isEnvelope(json) ? decodeRich(json) : json;
  return { status: response.status, body: body as any, what };
}

const FUZZ_ADAPTERS = ADAPTERS.filter((a) =>
  ['pglite', 'postgres.js (real server)', 'node-postgres pool (real server)'].includes(a.name),
);

for (const adapter of FUZZ_ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`fuzzed bad input: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
    });
    afterAll(async () => {
      await fx.close();
    });

    it('pushes: every answer is a 4xx or a 200 with results; refusals change nothing', async () => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(
          encoded(pushBody),
          contentType,
          query,
          fc.constantFrom('alice', 'bob'),
          async (body, type, search, userID) => {
            const before = await databaseState(fx);
            const response = await handleMutateRequest({
              db: fx.db,
              schema,
              mutators: hostileMutators,
              context: { userID, raw: fx.raw },
              userID,
              logger: silentLogger,
              request: new Request(`http://localhost/mutate${search}`, {
                method: 'POST',
                headers: type === null ? {} : { 'content-type': type },
                body,
              }),
            });
            const { status, body: reply, what } = await check(response);
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status === 200) {
              expect(['MutateResponse', 'PushFailed'], what).toContain(reply.kind);
              if (reply.kind === 'PushFailed') expect(reply.reason, what).toBe('oooMutation');
            } else {
              expect(await databaseState(fx), what).toBe(before);
            }
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
      if (process.env.FUZZ_REPORT) console.log(adapter.name, 'push', [...statuses]);
      // The run reached the database, not only the parser.
      expect(statuses.get(200) ?? 0).toBeGreaterThan(RUNS / 20);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(RUNS / 20);
    });

    it('pulls: every answer is a 4xx or a 200; refusals change nothing', async () => {
      // A cookie this server issued, for the fingerprint forged cookies must carry to get
      // as far as their snapshot.
      const first = await handlePullRequest({
        db: fx.db,
        schema,
        visibility,
        scopes: ['alice'],
        userID: 'alice',
        logger: silentLogger,
        request: new Request('http://localhost/pull?clientGroupID=cookie-source'),
      });
      const issued = ((await first.json()) as { cookie: string }).cookie;
      const { f } = JSON.parse(Buffer.from(issued, 'base64url').toString('utf8'));

      const xid = fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 64n + 2n }),
        fc.bigInt({ min: 0n, max: 10_000n }),
        fc.constantFrom(
          0n,
          1n,
          2n ** 32n - 1n,
          2n ** 32n,
          2n ** 32n + 1n,
          2n ** 63n,
          2n ** 64n - 1n,
        ),
      );
      const snapshot = fc
        .tuple(xid, xid, fc.oneof(fc.array(xid, { maxLength: 4 }), fc.constant(null)))
        .map(([xmin, xmax, xip]) => {
          const [low, high] = xmin <= xmax ? [xmin, xmax] : [xmax, xmin];
          const list =
            xip === null
              ? Array.from({ length: 3000 }, (_, i) => low + BigInt(i)).filter((x) => x < high)
              : xip.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          return `${low}:${high}:${list.join(',')}`;
        });
      const b64 = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url');
      const cookie = fc.oneof(
        fc.constant(null),
        fc.constant(issued),
        snapshot.map((s) => b64({ v: 1, s, f })),
        fc.string({ unit: nasty, maxLength: 40 }).map((s) => b64({ v: 1, s, f })),
        fc.record({ v: mostly(fc.constant(1)), i: value, f: mostly(fc.constant(f)) }).map(b64),
        value,
      );
      const pullBody = dropSome(
        fc.record({
          clientGroupID: mostly(fc.constantFrom('g1', 'g2')),
          cookie,
          pullVersion: fc.option(mostly(fc.constant(1)), { nil: undefined }),
        }),
      );

      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof({ weight: 3, arbitrary: encoded(pullBody) }, { weight: 1, arbitrary: pullBody }),
          contentType,
          fc.constantFrom('alice', 'bob'),
          async (sent, type, userID) => {
            const before = await databaseState(fx);
            const request =
              typeof sent === 'string'
                ? new Request('http://localhost/pull', {
                    method: 'POST',
                    headers: type === null ? {} : { 'content-type': type },
                    body: sent,
                  })
                : new Request(
                    `http://localhost/pull?${new URLSearchParams(
                      Object.entries(sent).flatMap(([k, v]) =>
                        v === undefined || v === null
                          ? []
                          : [[k, typeof v === 'string' ? v : JSON.stringify(v)]],
                      ),
                    )}`,
                  );
            const response = await handlePullRequest({
              db: fx.db,
              schema,
              visibility,
              scopes: [userID],
              userID,
              logger: silentLogger,
              request,
            });
            const { status, body: reply, what } = await check(response);
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status === 200) {
              expect(typeof reply.cookie, what).toBe('string');
            } else {
              expect(await databaseState(fx), what).toBe(before);
            }
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
      if (process.env.FUZZ_REPORT) console.log(adapter.name, 'pull', [...statuses]);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(RUNS / 20);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(RUNS / 20);
    });
  });
}
