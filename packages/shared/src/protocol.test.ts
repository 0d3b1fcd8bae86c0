import fc from 'fast-check';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import {
  describeIssues,
  isStorableText,
  MAX_ID_LENGTH,
  pushQuerySchema,
  pushRequestSchema,
  pushResponseSchema,
  readPushRequest,
  toStorableText,
} from './protocol';
import { pullRequestSchema } from './pull-protocol';
import { decodeRich, encodeRich, isEnvelope, toPlainJSON } from './transformer';

describe('push protocol schemas', () => {
  const body = {
    clientGroupID: 'cg',
    mutations: [
      { type: 'custom', id: 1, clientID: 'c', name: 'a.b', args: [{ x: 1 }], timestamp: 1 },
    ],
    pushVersion: 1,
    timestamp: 1,
    requestID: 'r',
  };

  it('accepts a push with and without schemaVersion', () => {
    expect(pushRequestSchema.safeParse(body).success).toBe(true);
    expect(pushRequestSchema.safeParse({ ...body, schemaVersion: 3 }).success).toBe(true);
  });

  it('refuses a mutation id of zero and an unknown mutation type', () => {
    const zero = structuredClone(body);
    zero.mutations[0]!.id = 0;
    expect(pushRequestSchema.safeParse(zero).success).toBe(false);
    const crud = structuredClone(body);
    crud.mutations[0]!.type = 'crud';
    expect(pushRequestSchema.safeParse(crud).success).toBe(false);
  });

  it.each([
    ['U+0000', 'a\u0000b'],
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['surrogates in the wrong order', '\udc00\ud800'],
  ])('refuses ids and names holding %s, naming the field', (_, bad) => {
    const cases: Array<[string, (b: any) => void]> = [
      ['clientGroupID', (b) => (b.clientGroupID = bad)],
      ['mutations.0.clientID', (b) => (b.mutations[0].clientID = bad)],
      ['mutations.0.name', (b) => (b.mutations[0].name = bad)],
      ['requestID', (b) => (b.requestID = bad)],
    ];
    for (const [path, spoil] of cases) {
      const spoilt = structuredClone(body);
      spoil(spoilt);
      const parsed = pushRequestSchema.safeParse(spoilt);
      expect(parsed.success).toBe(false);
      expect(describeIssues(parsed.error!.issues)).toBe(
        `${path}: must not contain U+0000 or an unpaired UTF-16 surrogate`,
      );
    }
    const pull = pullRequestSchema.safeParse({ clientGroupID: bad, cookie: null });
    expect(describeIssues(pull.error!.issues)).toMatch(/^clientGroupID: must not contain U\+0000/);
  });

  it('accepts a surrogate pair and refuses an id longer than the limit', () => {
    expect(pushRequestSchema.safeParse({ ...body, clientGroupID: 'g\u{1F600}' }).success).toBe(
      true,
    );
    const long = pushRequestSchema.safeParse({
      ...body,
      clientGroupID: 'g'.repeat(MAX_ID_LENGTH + 1),
    });
    expect(long.success).toBe(false);
    expect(describeIssues(long.error!.issues)).toMatch(/^clientGroupID: /);
  });

  it('toStorableText replaces exactly the characters isStorableText objects to', () => {
    const unit = fc.constantFrom(
      'a',
      '\u0000',
      '\ud800',
      '\udbff',
      '\udc00',
      '\udfff',
      '\uFFFD',
      'é',
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 12 }), (text) => {
        const stored = toStorableText(text);
        expect(isStorableText(stored)).toBe(true);
        expect(stored.length).toBe(text.length);
        if (isStorableText(text)) expect(stored).toBe(text);
        // What a driver sends for text (UTF-8 with each unpaired surrogate as U+FFFD), and
        // U+0000 replaced too.
        const sent = Buffer.from(text, 'utf8').toString('utf8');
        expect(stored).toBe(sent.replaceAll('\u0000', '\uFFFD'));
      }),
    );
  });

  it('accepts the query parameters zero-cache appends and refuses odd names', () => {
    expect(pushQuerySchema.safeParse({ schema: 'zero_0', appID: 'zero' }).success).toBe(true);
    expect(pushQuerySchema.safeParse({ schema: 'drop table' }).success).toBe(false);
  });

  it('describes both response kinds', () => {
    expect(
      pushResponseSchema.safeParse({
        kind: 'MutateResponse',
        mutations: [
          { id: { clientID: 'c', id: 1 }, result: {} },
          { id: { clientID: 'c', id: 2 }, result: { error: 'app', message: 'no' } },
          { id: { clientID: 'c', id: 3 }, result: { error: 'alreadyProcessed' } },
        ],
      }).success,
    ).toBe(true);
    expect(
      pushResponseSchema.safeParse({
        kind: 'PushFailed',
        origin: 'server',
        reason: 'oooMutation',
        message: 'm',
        mutationIDs: [{ clientID: 'c', id: 2 }],
      }).success,
    ).toBe(true);
  });
});

describe('readPushRequest', () => {
  const mutation = (id: number) => ({
    type: 'custom',
    id,
    clientID: 'c1',
    name: 'issue.create',
    args: [{ id: `i${id}`, tags: ['a'] }],
    timestamp: 1_700_000_000_000,
  });
  const push = {
    clientGroupID: 'g1',
    mutations: [mutation(1), mutation(2)],
    pushVersion: 1,
    timestamp: 1_700_000_000_000,
    requestID: 'r1',
  };

  it('reads a usual push, with or without schemaVersion, as the schema does', () => {
    for (const body of [push, { ...push, schemaVersion: 2 }, { ...push, mutations: [] }]) {
      expect(readPushRequest(body)).toEqual(pushRequestSchema.parse(body));
    }
  });

  it('drops unknown keys and copies, as the schema does', () => {
    const body = { ...push, extra: 1, mutations: [{ ...mutation(1), extra: true }] };
    const read = readPushRequest(body)!;
    expect(read).toEqual(pushRequestSchema.parse(body));
    expect(read).not.toHaveProperty('extra');
    expect(read.mutations[0]).not.toHaveProperty('extra');
    expect(read.mutations[0]!.args).not.toBe(body.mutations[0]!.args);
  });

  // Any value in any field: the reader either leaves the body to the schema or reads
  // exactly what the schema reads. Never does it accept what the schema refuses.
  it('accepts nothing the schema refuses, and reads what it reads', () => {
    const odd = fc.oneof(
      fc.anything(),
      fc.constantFrom(
        0,
        -1,
        1.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        2 ** 53,
        '',
        '\u0000',
        '\ud800',
      ),
      fc.string({ maxLength: 3 }),
      fc.constant('x'.repeat(MAX_ID_LENGTH + 1)),
      fc.constant(undefined),
    );
    const topKeys = Object.keys(push);
    const mutationKeys = Object.keys(mutation(1));
    fc.assert(
      fc.property(
        fc.constantFrom(...topKeys, 'schemaVersion'),
        fc.constantFrom(...mutationKeys, 'args.length'),
        fc.boolean(),
        odd,
        (topKey, mutationKey, inMutation, value) => {
          const body: Record<string, unknown> = structuredClone(push);
          if (!inMutation) body[topKey] = value;
          else {
            const m = (body.mutations as Record<string, unknown>[])[1]!;
            if (mutationKey === 'args.length') m.args = [1, 2];
            else m[mutationKey] = value;
          }
          const read = readPushRequest(body);
          const parsed = pushRequestSchema.safeParse(body);
          if (read !== undefined) {
            expect(parsed.success).toBe(true);
            expect(read).toEqual(parsed.data);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('leaves refused bodies to the schema', () => {
    expect(readPushRequest(null)).toBeUndefined();
    expect(readPushRequest([push])).toBeUndefined();
    expect(readPushRequest({ ...push, clientGroupID: '' })).toBeUndefined();
    expect(readPushRequest({ ...push, mutations: [{ ...mutation(1), id: 0 }] })).toBeUndefined();
    expect(readPushRequest({ ...push, schemaVersion: undefined })).toBeUndefined();
  });
});

describe('transformer', () => {
  it('round-trips rich values through an envelope', () => {
    const value = { d: new Date(0), n: 2n ** 70n, m: new Map([[1, 'a']]), s: new Set([1]) };
    const envelope = JSON.parse(JSON.stringify(encodeRich(value)));
    expect(isEnvelope(envelope)).toBe(true);
    expect(decodeRich(envelope)).toEqual(value);
  });

  it('never mistakes a push body for an envelope', () => {
    expect(isEnvelope({ clientGroupID: 'x', json: 1 })).toBe(false);
    expect(isEnvelope([1])).toBe(false);
  });

  it('encodes plain and rich values exactly as superjson does', () => {
    const shared = { a: 1 };
    const special = fc.constantFrom<unknown>(
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      new Date(0),
      5n,
      shared,
      [shared, shared],
      { x: shared, y: [shared] },
      Object.create(null),
      new Array<number>(2),
    );
    const value = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(fc.string(), fc.oneof(fc.jsonValue(), special)),
      fc.array(fc.oneof(fc.jsonValue(), special)),
      special,
    );
    fc.assert(
      fc.property(value, (v) => {
        let serialized: ReturnType<typeof superjson.serialize>;
        try {
          serialized = superjson.serialize(v);
        } catch {
          // A key superjson refuses (`__proto__` and the like): ours must refuse it too.
          expect(() => encodeRich(v)).toThrow();
          expect(() => toPlainJSON(v)).toThrow();
          return;
        }
        const { json, meta } = serialized;
        expect(encodeRich(v)).toStrictEqual(meta === undefined ? { json } : { json, meta });
        expect(toPlainJSON(v)).toStrictEqual(json);
      }),
    );
  });

  it('refuses the keys superjson refuses', () => {
    expect(() => toPlainJSON(JSON.parse('{"__proto__": 1}'))).toThrow(/prototype pollution/);
  });

  it('makes rich values plain-JSON safe', () => {
    expect(toPlainJSON({ d: new Date(0), n: 5n })).toEqual({
      d: '1970-01-01T00:00:00.000Z',
      n: '5',
    });
  });
});
