// Not in the README: pins that the packed .d.ts files carry the types end to end.
import { type ClientClosedError, createClient } from '@reprise/client';
import { type ApplicationError, defineMutator } from '@reprise/shared';
import { z } from 'zod';
import { mutators, q, schema } from './schema.js';

const client = await createClient({
  schema,
  mutators,
  userID: 'ana',
  server: '/api',
  context: { userID: 'ana' },
});

type CreateArgs = Parameters<typeof client.mutate.issue.create>[0];
const args: CreateArgs = { id: 'i2', title: 'Typed' };
const { server } = client.mutate.issue.create(args);
const outcome = await server;
if (!outcome.ok) {
  // The server's refusal, or the client closed before the outcome arrived.
  const error: ApplicationError | ClientClosedError = outcome.error;
  console.log(error.code === 'closed' ? 'closed' : error.message);
}
// @ts-expect-error: title must be a string
client.mutate.issue.create({ id: 'i3', title: 42 });
// @ts-expect-error: there is no mutator issue.delete
client.mutate.issue.delete({ id: 'i3' });
// @ts-expect-error: the issue table has no column "name"
q.issue.where('name', 'x');
const rows = await client.query.issue.where('open', true).run();
const title: string | undefined = rows[0]?.title;
// @ts-expect-error: rows are typed from the drizzle table, and `open` is a boolean
const wrong: string | undefined = rows[0]?.open;
console.log(title, wrong);

// tx.enqueue is typed from the registered jobs (src/jobs.ts).
defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
  if (tx.location !== 'server') return;
  await tx.enqueue('issue.notify', { issueID: args.id, title: 't' });
  // @ts-expect-error: issue.notify's payload needs a title
  await tx.enqueue('issue.notify', { issueID: args.id });
  // @ts-expect-error: no job is named issue.archive
  await tx.enqueue('issue.archive', { issueID: args.id });
});
