import type { Client, MutationCall, MutationOutcome } from '@reprise/client';
import { createTransactionDefiner } from '@reprise/shared';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { schema, TestContext } from './fixtures/app';
import type { declarativeMutators } from './fixtures/declarative';

// Types flow from the schema into a declarative transaction's operations, its results and
// client.mutate, with no generics written.

const defineTransaction = createTransactionDefiner<typeof schema, TestContext>();
type DeclClient = Client<typeof schema, typeof declarativeMutators>;

describe('defineTransaction types', () => {
  it('types the results from the schema, transforms and conditions', () => {
    type Mutate = DeclClient['mutate']['decl'];
    expectTypeOf<Parameters<Mutate['openIssue']>[0]>().toEqualTypeOf<{
      id: string;
      title: string;
      comment?: string | undefined;
    }>();
    type Results = Awaited<ReturnType<Mutate['openIssue']>['server']>;
    type Data = Extract<Results, { ok: true }>['data'];
    expectTypeOf<Data['issue']['title']>().toEqualTypeOf<string>();
    expectTypeOf<Data['comment']>().toEqualTypeOf<
      { id: string; issueID: string; body: string } | undefined
    >();
    expectTypeOf<Data['summary']>().toEqualTypeOf<{ id: string; title: string; open: boolean }>();
    expectTypeOf<Data['counter']>().toEqualTypeOf<{ id: string; value: number } | null>();
    expectTypeOf<ReturnType<Mutate['closeIssue']>>().toMatchTypeOf<MutationCall<unknown>>();
    type Closed = Extract<Awaited<ReturnType<Mutate['closeIssue']>['server']>, { ok: true }>;
    expectTypeOf<Closed['data']['comments']>().toEqualTypeOf<
      { id: string; issueID: string; body: string }[]
    >();
    expectTypeOf<Closed['data']['issue']>().toEqualTypeOf<{
      open: boolean;
      count: number;
    } | null>();
    expectTypeOf<Awaited<ReturnType<Mutate['fourSteps']>['server']>>().toMatchTypeOf<
      MutationOutcome<unknown>
    >();
  });

  it('refuses a wrong column in data or where, and a result that is not there yet', () => {
    const args = z.object({ id: z.string() });
    defineTransaction(args)
      // @ts-expect-error: issue has no column "nope"
      .create('issue', { data: { id: 'i', title: 't', ownerID: 'o', nope: 1 } });
    defineTransaction(args).create('issue', {
      // @ts-expect-error: issue has no column "nope", in data from a function either
      data: (ctx) => ({ id: ctx.body.id, title: 't', ownerID: 'o', nope: 1 }),
    });
    // @ts-expect-error: title is required on create
    defineTransaction(args).create('issue', { data: { id: 'i', ownerID: 'o' } });
    // @ts-expect-error: comment has no column "title"
    defineTransaction(args).read('comment', { where: { title: 'x' } });
    // @ts-expect-error: open is a boolean
    defineTransaction(args).update('issue', { where: { id: 'i' }, data: { open: 'yes' } });
    // @ts-expect-error: there is no table "user"
    defineTransaction(args).list('user');
    defineTransaction(args).create('comment', {
      // @ts-expect-error: no earlier operation gives results.issue
      data: (ctx) => ({ id: 'c', issueID: ctx.results.issue.id, body: '' }),
    });
    defineTransaction(args)
      .create('issue', { data: { id: 'i', title: 't', ownerID: 'o' } })
      .delete('comment', {
        // @ts-expect-error: where values have the column's type
        where: (ctx) => ({ issueID: ctx.results.issue.open }),
      });
  });
});
