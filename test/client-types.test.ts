import type { MutationCall, MutationOutcome } from '@reprise/client';
import { describe, expectTypeOf, it } from 'vitest';
import type { TestClient } from './fixtures/client';

// Types flow from the mutators tree into client.mutate with no generics written.

describe('client.mutate types', () => {
  it('infers args and return types from the mutators', () => {
    type Mutate = TestClient['mutate'];
    expectTypeOf<Parameters<Mutate['issue']['create']>[0]>().toEqualTypeOf<{
      id: string;
      title: string;
      labels?: string[] | undefined;
      createdAt?: Date | undefined;
    }>();
    expectTypeOf<ReturnType<Mutate['comment']['add']>>().toEqualTypeOf<
      MutationCall<{ commentID: string; at: Date }>
    >();
    expectTypeOf<Awaited<ReturnType<Mutate['issue']['rename']>['server']>>().toEqualTypeOf<
      MutationOutcome<void>
    >();
  });

  it('refuses wrong args and unknown mutators', () => {
    const check = (client: TestClient) => {
      // @ts-expect-error: title must be a string
      client.mutate.issue.create({ id: 'i1', title: 1 });
      // @ts-expect-error: there is no issue.archive
      client.mutate.issue.archive({ id: 'i1' });
      // @ts-expect-error: a query's column names are checked
      client.query.issue.where('nope', 1);
    };
    expectTypeOf(check).toBeFunction();
  });
});
