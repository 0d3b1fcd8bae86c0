import { processMutateRequest, silentLogger } from '@reprise/server';
import { decodeRich, encodeRich } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { mutators, schema } from './fixtures/app';
import { count, lmid, post, pushBody } from './fixtures/push';

// Request handling that does not depend on the driver: parsing, limits, encodings.
// It runs on PGlite; the contract suite covers the processing rules on every adapter.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;
let fx: AdapterFixture;
beforeAll(async () => {
  fx = await pglite.create();
});
beforeEach(async () => {
  await fx.reset();
});
afterAll(async () => {
  await fx.close();
});

const create = (id: number) => ({
  id,
  name: 'issue.create',
  args: { id: `i${id}`, title: `Issue ${id}` },
});

async function nothingChanged() {
  expect(await count(fx, 'issue')).toBe(0);
  expect(await count(fx, 'reprise.clients')).toBe(0);
  expect(await count(fx, 'reprise."clientGroups"')).toBe(0);
}

describe('bad requests change nothing', () => {
  it('malformed JSON is a 400 parse failure naming the problem', async () => {
    const res = await post(fx, null, { rawBody: '{"clientGroupID": "cg1", ' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ kind: 'PushFailed', origin: 'server', reason: 'parse' });
    expect(res.body.message).toMatch(/not valid JSON/);
    await nothingChanged();
  });

  it('a body that fails the schema is a 400 naming the field', async () => {
    // Deliberately malformed below, which the PushRequest type would not allow.
    const body = pushBody([create(1)]) as any;
    body.mutations[0].id = 'one';
    const res = await post(fx, body);
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('parse');
    expect(res.body.message).toMatch(/mutations\.0\.id/);
    await nothingChanged();
  });

  it('a mutation whose args are not a one-element array is a 400', async () => {
    // Deliberately malformed below, which the PushRequest type would not allow.
    const body = pushBody([create(1)]) as any;
    body.mutations[0].args = [1, 2];
    const res = await post(fx, body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/mutations\.0\.args/);
    await nothingChanged();
  });

  it('bad query parameters are a 400 naming the parameter', async () => {
    const bad = await post(fx, pushBody([create(1)]), {
      url: 'http://localhost/mutate?schema=bad-name&appID=zero',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/schema/);
    const repeated = await post(fx, pushBody([create(1)]), {
      url: 'http://localhost/mutate?appID=a&appID=b',
    });
    expect(repeated.status).toBe(400);
    expect(repeated.body.message).toMatch(/"appID" is repeated/);
    await nothingChanged();
  });

  it('a parsed query such as Express gives is read; a nested value is a 400 naming it', async () => {
    const call = (query: Record<string, unknown>) =>
      processMutateRequest({
        db: fx.db,
        schema,
        mutators,
        userID: 'alice',
        context: { userID: 'alice', raw: fx.raw },
        body: pushBody([create(1)]),
        query,
      });
    const nested = await call({ appID: { a: 'b' } });
    expect(nested.status).toBe(400);
    expect((nested.body as { message: string }).message).toMatch(/"appID" must be a plain string/);
    await nothingChanged();
    const ok = await call({ schema: 'zero_0', appID: 'zero' });
    expect(ok.status).toBe(200);
  });

  it('more mutations than the limit is a 413 and applies none', async () => {
    const many = Array.from({ length: 101 }, (_, i) => create(i + 1));
    const res = await post(fx, pushBody(many));
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/101 mutations; at most 100/);
    expect(res.body.mutationIDs).toHaveLength(101);
    await nothingChanged();
  });

  it('the mutation limit is configurable', async () => {
    const res = await post(fx, pushBody([create(1), create(2), create(3)]), { maxMutations: 2 });
    expect(res.status).toBe(413);
    await nothingChanged();
  });

  it('a body over the byte limit is a 413, whatever its content-length says', async () => {
    const body = pushBody([
      { id: 1, name: 'issue.create', args: { id: 'i1', title: 'x'.repeat(5000) } },
    ]);
    const res = await post(fx, body, { maxBodyBytes: 1000 });
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/1000-byte limit/);
    await nothingChanged();
  });

  it('a method other than POST is a 405', async () => {
    const { handleMutateRequest } = await import('@reprise/server');
    const response = await handleMutateRequest({
      db: fx.db,
      schema,
      mutators,
      logger: silentLogger,
      request: new Request('http://localhost/mutate'),
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });
});

describe('wire compatibility', () => {
  it("accepts Zero's body unchanged, with the schema and appID parameters zero-cache appends", async () => {
    // Shaped as Zero's client sends it through zero-cache, including a field we do not use.
    const zeroBody = {
      clientGroupID: 'cg1',
      mutations: [
        {
          type: 'custom',
          id: 1,
          clientID: 'c1',
          name: 'issue.create',
          args: [{ id: 'i1', title: 'From Zero' }],
          timestamp: 1737000000000,
        },
      ],
      pushVersion: 1,
      schemaVersion: 1,
      timestamp: 1737000000001,
      requestID: 'abc123',
      traceparent: '00-abc-def-01',
    };
    const res = await post(fx, zeroBody, {
      url: 'http://localhost/mutate?schema=zero_0&appID=zero',
    });
    expect(res.status).toBe(200);
    expect(res.body.mutations).toEqual([{ id: { clientID: 'c1', id: 1 }, result: {} }]);
    expect(await lmid(fx)).toBe(1);
  });

  it('keeps Dates, BigInts, Maps and Sets across the wire with superjson', async () => {
    const at = new Date('2026-03-04T05:06:07.000Z');
    const body = encodeRich(
      pushBody([
        {
          id: 1,
          name: 'issue.create',
          args: { id: 'i1', title: 'Rich', createdAt: at, labels: ['a'] },
        },
        { id: 2, name: 'comment.add', args: { id: 'k1', issueID: 'i1', body: 'b' } },
      ]),
    );
    const res = await post(fx, body);
    expect(res.status).toBe(200);
    // A decoded wire body is untyped; the expectations below check its shape.
    const decoded = decodeRich(res.body) as any;
    expect(decoded.mutations[1].result.data.at).toBeInstanceOf(Date);
    expect(decoded.mutations[1].result.data.at.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    const rows = await fx.query<{ created_at: Date }>('SELECT created_at FROM issue');
    expect(new Date(rows[0]!.created_at).toISOString()).toBe(at.toISOString());
  });

  it('round-trips BigInts, Maps and Sets in args and return values', async () => {
    const { createMutatorDefiner, defineMutators } = await import('@reprise/shared');
    const defineMutator = createMutatorDefiner<typeof schema>();
    const echo = defineMutators({
      echo: defineMutator(async ({ args }: { args: unknown }) => args),
    });
    const value = { n: 12345678901234567890n, m: new Map([['k', 1]]), s: new Set(['x']) };
    const res = await post(fx, encodeRich(pushBody([{ id: 1, name: 'echo', args: value }])), {
      mutators: echo,
    });
    // A decoded wire body is untyped; the expectations below check its shape.
    const decoded = decodeRich(res.body) as any;
    expect(decoded.mutations[0].result.data).toEqual(value);
  });

  it('the lower-level entry takes a parsed body and query and returns status and body', async () => {
    const result = await processMutateRequest({
      db: fx.db,
      schema,
      mutators,
      userID: 'alice',
      context: { userID: 'alice', raw: fx.raw },
      logger: silentLogger,
      body: pushBody([create(1)]),
      query: { schema: 'zero_0', appID: 'zero' },
    });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({
      kind: 'MutateResponse',
      userID: 'alice',
      mutations: [{ id: { clientID: 'c1', id: 1 }, result: {} }],
    });
  });

  it('logs one structured debug line per push', async () => {
    const lines: Record<string, unknown>[] = [];
    await post(fx, pushBody([create(1), create(2)]), {
      logger: { debug: (entry) => lines.push(entry), warn() {}, error() {} },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: 'push',
      clientGroupID: 'cg1',
      outcome: 'ok',
      received: 2,
      applied: 2,
      alreadyProcessed: 0,
      appErrors: 0,
    });
    expect(typeof lines[0]!.ms).toBe('number');
  });
});
