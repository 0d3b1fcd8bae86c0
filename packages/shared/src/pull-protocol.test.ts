import { describe, expect, expectTypeOf, it } from 'vitest';
import { type PullResponse, pullRequestSchema, pullResponseSchema } from './pull-protocol';

describe('pull protocol schemas', () => {
  it('accepts a first pull, a pull with a cookie, and keys it does not know', () => {
    expect(pullRequestSchema.parse({ clientGroupID: 'g', cookie: null })).toEqual({
      clientGroupID: 'g',
      cookie: null,
    });
    const extra = { clientGroupID: 'g', cookie: 'abc', pullVersion: 1, schemaVersion: '3' };
    expect(pullRequestSchema.safeParse(extra).success).toBe(true);
  });

  it('refuses a pull without a client group or with a missing cookie', () => {
    expect(pullRequestSchema.safeParse({ cookie: null }).success).toBe(false);
    expect(pullRequestSchema.safeParse({ clientGroupID: 'g' }).success).toBe(false);
  });

  it('reads a response with each kind of patch operation', () => {
    const response: PullResponse = {
      cookie: 'c',
      lastMutationIDChanges: { c1: 3 },
      patch: [
        { op: 'clear' },
        { op: 'put', tableName: 'issue', value: { id: 'i1', at: new Date(0) } },
        { op: 'del', tableName: 'issue', id: { id: 'i2' } },
      ],
      mutationResults: [{ id: { clientID: 'c1', id: 3 }, result: { error: 'app', message: 'no' } }],
    };
    expect(pullResponseSchema.parse(response)).toEqual(response);
    expect(pullResponseSchema.safeParse({ ...response, patch: [{ op: 'put' }] }).success).toBe(
      false,
    );
    expectTypeOf<PullResponse['patch'][number]['op']>().toEqualTypeOf<'put' | 'del' | 'clear'>();
  });
});
