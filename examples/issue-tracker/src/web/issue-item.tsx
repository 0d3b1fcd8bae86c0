import { useMutate } from '@reprise/react';
import type { RowOf } from '@reprise/shared';
import { nanoid } from 'nanoid';
import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from 'react';
import type { schema } from '../shared/schema';
import type { RunMutation, TrackerClient } from './tracker';

/** An issue row with its comments, as the page's live query returns it. */
export type IssueView = RowOf<typeof schema, 'issue'> & {
  readonly comments: readonly RowOf<typeof schema, 'comment'>[];
};

export interface IssueItemProps {
  readonly issue: IssueView;
  readonly userID: string;
  /** This page's calls on the issue that the server has yet to answer. */
  readonly saving: number;
  readonly run: RunMutation;
}

/** A padlock beside the actions only an issue's owner may take. */
export function LockIcon() {
  return (
    <svg className="lock" viewBox="0 0 16 16" width="11" height="11" aria-hidden="true">
      <path d="M4.5 7V5a3.5 3.5 0 0 1 7 0v2" fill="none" stroke="currentColor" strokeWidth="1.8" />
      <rect x="2.5" y="7" width="11" height="8" rx="1.5" fill="currentColor" />
    </svg>
  );
}

export function IssueItem({ issue, userID, saving, run }: IssueItemProps) {
  const mutate = useMutate<TrackerClient>();
  const [editing, setEditing] = useState(false);
  const [confirmingDelete, setConfirmingDelete] = useState(false);
  const [expanded, setExpanded] = useState(false);
  const { id, ownerID } = issue;
  const owned = ownerID === userID;
  /**
   * The server refuses these for anyone but the owner (see mustOwnIssue). The page says so
   * before the click, yet lets a user try: the change shows at once, then the rebase takes
   * it back and the server's reason shows.
   */
  const ownerOnly = (verb: string) =>
    owned
      ? { className: 'link' }
      : {
          className: 'link owner-only',
          title: `Only ${ownerID}, who opened this issue, can ${verb} it`,
        };

  const actions = confirmingDelete ? (
    <ConfirmDelete
      ownerID={owned ? undefined : ownerID}
      onConfirm={() => {
        setConfirmingDelete(false);
        run(id, mutate.issue.delete({ id }));
      }}
      onCancel={() => setConfirmingDelete(false)}
    />
  ) : (
    <span className="actions">
      <button type="button" {...ownerOnly('rename')} onClick={() => setEditing(true)}>
        {!owned && <LockIcon />}Edit
      </button>
      <button
        type="button"
        {...ownerOnly(issue.open ? 'close' : 'reopen')}
        onClick={() =>
          run(id, issue.open ? mutate.issue.close({ id }) : mutate.issue.reopen({ id }))
        }
      >
        {!owned && <LockIcon />}
        {issue.open ? 'Close' : 'Reopen'}
      </button>
      <button type="button" {...ownerOnly('delete')} onClick={() => setConfirmingDelete(true)}>
        {!owned && <LockIcon />}Delete
      </button>
      <button type="button" className="link" onClick={() => setExpanded(!expanded)}>
        Comments ({issue.comments.length})
      </button>
    </span>
  );

  return (
    <li
      className={`issue${issue.open ? '' : ' closed'}${saving ? ' pending' : ''}`}
      data-testid="issue"
    >
      <div className="row">
        <span className="badge" data-testid="issue-state">
          {issue.open ? 'open' : 'closed'}
        </span>
        {editing ? (
          <RenameForm
            title={issue.title}
            onSave={(title) => {
              setEditing(false);
              run(id, mutate.issue.rename({ id, title }));
            }}
            onCancel={() => setEditing(false)}
          />
        ) : (
          <span className="title" data-testid="issue-title">
            {issue.title}
          </span>
        )}
        {saving > 0 && (
          <span className="saving" data-testid="issue-pending">
            saving…
          </span>
        )}
        <span className="meta">
          by {ownerID}
          {owned ? ' (you)' : ''}
        </span>
        {actions}
      </div>
      {expanded && (
        <ul className="comments">
          {issue.comments.map((c) => (
            <li key={c.id} data-testid="comment">
              <b>{c.authorID}</b> {c.body}
            </li>
          ))}
          <li>
            <CommentForm issueID={id} run={run} />
          </li>
        </ul>
      )}
    </li>
  );
}

function RenameForm(props: {
  readonly title: string;
  readonly onSave: (title: string) => void;
  readonly onCancel: () => void;
}) {
  const [title, setTitle] = useState(props.title);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.select(), []);
  const save = (event: FormEvent) => {
    event.preventDefault();
    props.onSave(title);
  };
  const cancelOnEscape = (event: KeyboardEvent) => {
    if (event.key === 'Escape') props.onCancel();
  };
  return (
    <form className="rename" onSubmit={save}>
      <input
        ref={input}
        value={title}
        onChange={(event) => setTitle(event.target.value)}
        onKeyDown={cancelOnEscape}
        maxLength={200}
        aria-label="Title"
        data-testid="rename-input"
      />
      <button type="submit">Save</button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </form>
  );
}

/** The in-page question Delete asks first; `ownerID` is set when the user does not own it. */
function ConfirmDelete(props: {
  readonly ownerID: string | undefined;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
}) {
  return (
    <span className="actions confirm" data-testid="confirm-delete">
      Delete this issue?
      {props.ownerID && ` Only ${props.ownerID} can: the server will refuse.`}{' '}
      <button type="button" className="link danger" onClick={props.onConfirm}>
        Yes, delete
      </button>
      {/* biome-ignore lint/a11y/noAutofocus: the Delete button just went away; without this the keyboard's focus would fall back to the page */}
      <button type="button" className="link" onClick={props.onCancel} autoFocus>
        Keep it
      </button>
    </span>
  );
}

/** A comment box that empties once its comment is posted, so a second submit posts nothing. */
function CommentForm({ issueID, run }: { readonly issueID: string; readonly run: RunMutation }) {
  const mutate = useMutate<TrackerClient>();
  const [body, setBody] = useState('');
  const post = (event: FormEvent) => {
    event.preventDefault();
    if (body.trim() === '') return;
    run(issueID, mutate.comment.add({ id: nanoid(), issueID, body, createdAt: new Date() }));
    setBody('');
  };
  return (
    <form onSubmit={post}>
      <input
        value={body}
        onChange={(event) => setBody(event.target.value)}
        placeholder="Add a comment"
        maxLength={2000}
        autoComplete="off"
        aria-label="Comment"
        data-testid="comment-input"
      />
      <button type="submit" disabled={body.trim() === ''}>
        Comment
      </button>
    </form>
  );
}
