// src/issues.tsx (in a React app)
import type { Client } from '@reprise/client';
import {
  useClient,
  useLastRefusal,
  useMutate,
  useOnline,
  usePending,
  useQuery,
} from '@reprise/react';
import type { mutators, schema } from './schema.js';

// Name the client's type once: `useClient<AppClient>()` and `useMutate<AppClient>()` are
// then typed from your schema and mutators.
export type AppClient = Client<typeof schema, typeof mutators>;

export function OpenIssues() {
  const client = useClient<AppClient>();
  const mutate = useMutate<AppClient>();
  // Live: re-renders on optimistic writes, pulls and rebases. 'unknown' until the
  // client has applied a pull from the server in this session, then 'complete'.
  const [issues, status] = useQuery(client.query.issue.where('open', true).orderBy('id'));
  const pending = usePending(); // mutations the server has not confirmed yet
  const online = useOnline();
  const refusal = useLastRefusal(); // the last mutation the server refused
  return (
    <section>
      <p>
        {online ? 'Online' : 'Offline'}, {pending} unsaved
        {status.type === 'unknown' ? ' (not yet synced)' : ''}
      </p>
      {refusal && <p role="alert">{refusal.outcome.error.message}</p>}
      <ul>
        {issues.map((issue) => (
          <li key={issue.id}>
            {issue.title}{' '}
            <button type="button" onClick={() => mutate.issue.close({ id: issue.id })}>
              Close
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
