import type { RowOf } from '@reprise/shared';
import type { schema } from '../shared/schema';

// Pure rendering: state in, HTML out. Every value from the data goes through `esc`.

/** An issue row with its comments, as the page's live query returns it. */
export type IssueView = RowOf<typeof schema, 'issue'> & {
  readonly comments: readonly RowOf<typeof schema, 'comment'>[];
};

export interface ListState {
  readonly issues: readonly IssueView[];
  readonly userID: string;
  readonly expanded: ReadonlySet<string>;
  readonly editing: ReadonlySet<string>;
  /** Unconfirmed mutations per issue, from this page's calls. */
  readonly pending: ReadonlyMap<string, number>;
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

export function renderLogin(): string {
  return `
    <main class="login">
      <h1>Reprise issue tracker</h1>
      <form method="post" action="/login" data-testid="login">
        <label>Your name <input name="name" required maxlength="32" autofocus></label>
        <button>Sign in</button>
      </form>
      <p class="hint">Any name will do: it decides which issues you own. Open a second
      browser (or a private window) as someone else to watch changes flow.</p>
    </main>`;
}

export function renderShell(userID: string): string {
  return `
    <header>
      <h1>Issues</h1>
      <span class="who">Signed in as <b data-testid="user">${esc(userID)}</b></span>
      <form method="post" action="/logout"><button class="link">Sign out</button></form>
      <span class="spacer"></span>
      <span data-status class="status" data-testid="status"></span>
      <label class="toggle"><input type="checkbox" data-offline data-testid="offline-toggle"> Work offline</label>
    </header>
    <ul class="errors" data-errors data-testid="errors"></ul>
    <form class="create" data-form="create" data-testid="create-form">
      <input name="title" placeholder="What needs doing?" maxlength="200" autocomplete="off" data-testid="new-title">
      <button>Create issue</button>
    </form>
    <div class="filters">
      <select data-filter="status" data-testid="filter-status">
        <option value="open">Open</option>
        <option value="closed">Closed</option>
        <option value="all">All</option>
      </select>
      <label><input type="checkbox" data-filter="mine" data-testid="filter-mine"> Only mine</label>
      <input type="search" data-filter="text" placeholder="Search titles" data-testid="filter-text">
    </div>
    <ul class="issues" data-list data-testid="issues"></ul>`;
}

export function renderStatus(options: {
  online: boolean;
  forcedOffline: boolean;
  pending: number;
}): string {
  const connection = options.forcedOffline
    ? '<span class="dot off"></span>Offline'
    : options.online
      ? '<span class="dot on"></span>Online'
      : '<span class="dot off"></span>Server unreachable';
  const pending =
    options.pending === 0
      ? 'all changes saved'
      : `<b data-testid="pending-count">${options.pending}</b> change${options.pending === 1 ? '' : 's'} not yet confirmed`;
  return `${connection} · ${pending}`;
}

export function renderErrors(errors: ReadonlyArray<{ key: number; text: string }>): string {
  return errors
    .map(
      (e) =>
        `<li data-testid="error">${esc(e.text)} <button class="link" data-dismiss="${e.key}">dismiss</button></li>`,
    )
    .join('');
}

function renderIssue(issue: IssueView, state: ListState): string {
  const id = esc(issue.id);
  const pending = state.pending.get(issue.id) ?? 0;
  const title = state.editing.has(issue.id)
    ? `<form class="rename" data-form="rename">
         <input name="title" value="${esc(issue.title)}" maxlength="200" data-key="rename:${id}" data-testid="rename-input">
         <button>Save</button><button type="button" data-action="cancel-edit">Cancel</button>
       </form>`
    : `<span class="title" data-testid="issue-title">${esc(issue.title)}</span>`;
  const comments = state.expanded.has(issue.id)
    ? `<ul class="comments">
         ${issue.comments
           .map((c) => `<li data-testid="comment"><b>${esc(c.authorID)}</b> ${esc(c.body)}</li>`)
           .join('')}
         <li><form data-form="comment">
           <input name="body" placeholder="Add a comment" maxlength="2000" autocomplete="off" data-key="comment:${id}">
           <button>Comment</button>
         </form></li>
       </ul>`
    : '';
  return `
    <li class="issue${issue.open ? '' : ' closed'}${pending ? ' pending' : ''}" data-issue="${id}" data-testid="issue">
      <div class="row">
        <span class="badge" data-testid="issue-state">${issue.open ? 'open' : 'closed'}</span>
        ${title}
        ${pending ? '<span class="saving" data-testid="issue-pending">saving…</span>' : ''}
        <span class="meta">by ${esc(issue.ownerID)}${issue.ownerID === state.userID ? ' (you)' : ''}</span>
        <span class="actions">
          <button class="link" data-action="edit">Edit</button>
          <button class="link" data-action="toggle">${issue.open ? 'Close' : 'Reopen'}</button>
          <button class="link" data-action="delete">Delete</button>
          <button class="link" data-action="comments">Comments (${issue.comments.length})</button>
        </span>
      </div>
      ${comments}
    </li>`;
}

export function renderList(state: ListState): string {
  if (state.issues.length === 0) return '<li class="empty">No issues match.</li>';
  return state.issues.map((issue) => renderIssue(issue, state)).join('');
}
