import type { Client, MutationCall } from '@reprise/client';
import { useClient, useMutate, useQuery } from '@reprise/react';
import { nanoid } from 'nanoid';
import { type FormEvent, useCallback, useState, useSyncExternalStore } from 'react';
import type { mutators } from '../shared/mutators';
import type { schema } from '../shared/schema';
import { ConnectionStatus } from './connection-status';
import type { ErrorBanners } from './error-banners';
import { IssueItem, LockIcon } from './issue-item';
import { saveWorkOffline } from './work-offline';

// The tracker: a live query feeds the list, each button calls a mutator, and what the
// server refuses shows up as an error while the rebase takes the change back.

export type TrackerClient = Client<typeof schema, typeof mutators>;

/** Calls a mutator for an issue, marking the issue as saving until the server answers. */
export type RunMutation = (issueID: string, call: MutationCall<unknown>) => void;

interface Filters {
  readonly status: 'open' | 'closed' | 'all';
  readonly mine: boolean;
  readonly text: string;
}

const NAMES: Record<string, string> = {
  'issue.create': 'Creating the issue',
  'issue.rename': 'Renaming the issue',
  'issue.close': 'Closing the issue',
  'issue.reopen': 'Reopening the issue',
  'issue.delete': 'Deleting the issue',
  'comment.add': 'Adding the comment',
};

/** What a mutation was doing, in words, for its error banner. */
export function describeMutation(name: string): string {
  return NAMES[name] ?? name;
}

/** Escapes LIKE's wildcards so a search for "50%" means those characters. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function issuesQuery(client: TrackerClient, filters: Filters, userID: string) {
  let query = client.query.issue
    .related('comments', (c) => c.orderBy('createdAt', 'asc'))
    .orderBy('createdAt', 'desc');
  if (filters.status !== 'all') query = query.where('open', filters.status === 'open');
  if (filters.mine) query = query.where('ownerID', userID);
  const text = filters.text.trim();
  if (text) query = query.where('title', 'ILIKE', `%${likeLiteral(text)}%`);
  return query;
}

/** `run` for the issues, and how many of this page's calls on each one the server has yet to answer. */
function useRunMutation(errors: ErrorBanners) {
  const [saving, setSaving] = useState<ReadonlyMap<string, number>>(() => new Map());
  const count = useCallback((issueID: string, by: number) => {
    setSaving((before) => {
      const after = new Map(before);
      const left = (after.get(issueID) ?? 0) + by;
      if (left > 0) after.set(issueID, left);
      else after.delete(issueID);
      return after;
    });
  }, []);
  const run = useCallback<RunMutation>(
    (issueID, call) => {
      count(issueID, 1);
      // Refused on the page (bad input, a missing issue): nothing was queued. Refusals by
      // the server are reported to every page by main's onMutationSettled.
      call.client.catch((error: unknown) => {
        errors.show(error instanceof Error ? error.message : String(error));
      });
      void call.server.then(() => count(issueID, -1));
    },
    [errors, count],
  );
  return { saving, run };
}

export interface TrackerProps {
  readonly userID: string;
  readonly errors: ErrorBanners;
  /** Whether "Work offline" was ticked when the page loaded (main has applied it). */
  readonly workOffline: boolean;
}

export function Tracker({ userID, errors, workOffline }: TrackerProps) {
  const client = useClient<TrackerClient>();
  const mutate = useMutate<TrackerClient>();
  const [offline, setOffline] = useState(workOffline);
  const [filters, setFilters] = useState<Filters>({ status: 'open', mine: false, text: '' });
  const [newTitle, setNewTitle] = useState('');
  const [issues, status] = useQuery(issuesQuery(client, filters, userID));
  const { saving, run } = useRunMutation(errors);

  const toggleOffline = (next: boolean) => {
    client.setOnline(!next);
    saveWorkOffline(userID, next);
    setOffline(next);
  };
  const create = (event: FormEvent) => {
    event.preventDefault();
    const id = nanoid();
    run(id, mutate.issue.create({ id, title: newTitle, createdAt: new Date() }));
    setNewTitle('');
  };
  const othersIssues = issues.some((issue) => issue.ownerID !== userID);

  return (
    <>
      <header>
        <h1>Issues</h1>
        <span className="who">
          Signed in as <b data-testid="user">{userID}</b>
        </span>
        <form method="post" action="/logout">
          <button type="submit" className="link">
            Sign out
          </button>
        </form>
        <span className="connection">
          <ConnectionStatus offline={offline} />
          <label className="toggle">
            <input
              type="checkbox"
              checked={offline}
              onChange={(event) => toggleOffline(event.target.checked)}
              data-testid="offline-toggle"
            />{' '}
            Work offline
          </label>
        </span>
      </header>
      <ErrorList errors={errors} />
      <form className="create" onSubmit={create} data-testid="create-form">
        <input
          value={newTitle}
          onChange={(event) => setNewTitle(event.target.value)}
          placeholder="What needs doing?"
          maxLength={200}
          autoComplete="off"
          aria-label="New issue title"
          data-testid="new-title"
        />
        <button type="submit">Create issue</button>
      </form>
      <div className="filters">
        <select
          value={filters.status}
          onChange={(event) =>
            setFilters({ ...filters, status: event.target.value as Filters['status'] })
          }
          aria-label="Show"
          data-testid="filter-status"
        >
          <option value="open">Open</option>
          <option value="closed">Closed</option>
          <option value="all">All</option>
        </select>
        <label>
          <input
            type="checkbox"
            checked={filters.mine}
            onChange={(event) => setFilters({ ...filters, mine: event.target.checked })}
            data-testid="filter-mine"
          />{' '}
          Only mine
        </label>
        <input
          type="search"
          value={filters.text}
          onChange={(event) => setFilters({ ...filters, text: event.target.value })}
          placeholder="Search titles"
          aria-label="Search titles"
          data-testid="filter-text"
        />
      </div>
      {othersIssues && (
        <p className="legend" data-testid="owner-legend">
          <LockIcon /> Only an issue's owner may edit, close or delete it: the server refuses anyone
          else, and takes the change back.
        </p>
      )}
      <ul className="issues" data-testid="issues">
        {issues.length === 0 ? (
          <li className="empty">
            {status.type === 'complete'
              ? 'No issues match.'
              : 'No issues here yet: not synced with the server.'}
          </li>
        ) : (
          issues.map((issue) => (
            <IssueItem
              key={issue.id}
              issue={issue}
              userID={userID}
              saving={saving.get(issue.id) ?? 0}
              run={run}
            />
          ))
        )}
      </ul>
    </>
  );
}

function ErrorList({ errors }: { readonly errors: ErrorBanners }) {
  const banners = useSyncExternalStore(errors.subscribe, errors.getSnapshot);
  return (
    <ul className="errors" aria-live="polite" data-testid="errors">
      {banners.map((banner) => (
        <li key={banner.key} data-testid="error">
          {banner.text}
          {banner.count > 1 && <span className="repeat"> (×{banner.count})</span>}{' '}
          <button type="button" className="link" onClick={() => errors.dismiss(banner.key)}>
            dismiss
          </button>
        </li>
      ))}
    </ul>
  );
}
