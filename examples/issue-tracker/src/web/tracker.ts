import type { Client, MutationCall } from '@reprise/client';
import { nanoid } from 'nanoid';
import type { mutators } from '../shared/mutators';
import type { schema } from '../shared/schema';
import { type IssueView, renderErrors, renderList, renderShell, renderStatus } from './view';

// The tracker's behaviour: a live query feeds the list, each button calls a mutator, and
// what the server refuses shows up as an error while the rebase takes the change back.

type TrackerClient = Client<typeof schema, typeof mutators>;

interface Filters {
  status: 'open' | 'closed' | 'all';
  mine: boolean;
  text: string;
}

const NAMES: Record<string, string> = {
  'issue.create': 'Creating the issue',
  'issue.rename': 'Renaming the issue',
  'issue.close': 'Closing the issue',
  'issue.reopen': 'Reopening the issue',
  'issue.delete': 'Deleting the issue',
  'comment.add': 'Adding the comment',
};

/** Escapes LIKE's wildcards so a search for "50%" means those characters. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function must<E extends Element>(root: ParentNode, selector: string): E {
  const found = root.querySelector<E>(selector);
  if (!found) throw new Error(`The page has no ${selector}`);
  return found;
}

/** Replaces `el`'s children, keeping typed text and focus in inputs marked `data-key`. */
function patch(el: HTMLElement, html: string) {
  const kept = new Map<string, { value: string; focused: boolean; caret: number | null }>();
  for (const input of el.querySelectorAll<HTMLInputElement>('input[data-key]')) {
    kept.set(input.dataset.key ?? '', {
      value: input.value,
      focused: document.activeElement === input,
      caret: input.selectionStart,
    });
  }
  el.innerHTML = html;
  for (const input of el.querySelectorAll<HTMLInputElement>('input[data-key]')) {
    const was = kept.get(input.dataset.key ?? '');
    if (!was) continue;
    input.value = was.value;
    if (was.focused) {
      input.focus();
      if (was.caret !== null) input.setSelectionRange(was.caret, was.caret);
    }
  }
}

/** Renders the tracker into `root` and keeps it in sync with `client`. */
export function startTracker(root: HTMLElement, client: TrackerClient, userID: string) {
  root.innerHTML = renderShell(userID);
  const list = must<HTMLElement>(root, '[data-list]');
  const status = must<HTMLElement>(root, '[data-status]');
  const errorList = must<HTMLElement>(root, '[data-errors]');
  const offline = must<HTMLInputElement>(root, '[data-offline]');

  const filters: Filters = { status: 'open', mine: false, text: '' };
  let issues: readonly IssueView[] = [];
  const expanded = new Set<string>();
  const editing = new Set<string>();
  const pending = new Map<string, number>();
  let errors: Array<{ key: number; text: string }> = [];
  let errorKey = 0;

  const drawList = () => patch(list, renderList({ issues, userID, expanded, editing, pending }));
  const drawStatus = () => {
    status.innerHTML = renderStatus({
      online: client.online,
      forcedOffline: offline.checked,
      pending: client.pending,
    });
  };
  const showError = (text: string) => {
    errors = [...errors.slice(-4), { key: ++errorKey, text }];
    errorList.innerHTML = renderErrors(errors);
  };

  let unsubscribe: (() => void) | undefined;
  const subscribe = () => {
    unsubscribe?.();
    let query = client.query.issue
      .related('comments', (c) => c.orderBy('createdAt', 'asc'))
      .orderBy('createdAt', 'desc');
    if (filters.status !== 'all') query = query.where('open', filters.status === 'open');
    if (filters.mine) query = query.where('ownerID', userID);
    if (filters.text) query = query.where('title', 'ILIKE', `%${likeLiteral(filters.text)}%`);
    unsubscribe = query.subscribe((rows) => {
      issues = rows;
      drawList();
    });
  };

  /** Calls a mutator for `issueID`, marking the issue as saving until the server answers. */
  const run = (issueID: string, mutate: () => MutationCall<unknown>) => {
    const call = mutate();
    pending.set(issueID, (pending.get(issueID) ?? 0) + 1);
    // Applied and queued: the pending count has grown. Refused locally (bad input, a
    // missing issue): nothing was queued.
    call.client.then(drawStatus, (error: unknown) => {
      showError(error instanceof Error ? error.message : String(error));
    });
    void call.server.then(() => {
      const left = (pending.get(issueID) ?? 1) - 1;
      if (left > 0) pending.set(issueID, left);
      else pending.delete(issueID);
      drawList();
      drawStatus();
    });
    drawList();
    drawStatus();
  };

  // Every refusal by the server, this page's calls and those queued before a reload alike.
  client.onMutationSettled(({ name, outcome }) => {
    if (!outcome.ok) showError(`${NAMES[name] ?? name} failed: ${outcome.error.message}`);
    drawStatus();
  });
  client.onOnlineChange(drawStatus);
  client.onPendingChange(drawStatus);

  offline.addEventListener('change', () => {
    client.setOnline(!offline.checked);
    drawStatus();
  });

  root.addEventListener('input', (event) => {
    const target = event.target as HTMLInputElement | HTMLSelectElement;
    const filter = target.dataset.filter;
    if (!filter) return;
    if (filter === 'status') filters.status = target.value as Filters['status'];
    if (filter === 'mine') filters.mine = (target as HTMLInputElement).checked;
    if (filter === 'text') filters.text = target.value.trim();
    subscribe();
  });

  root.addEventListener('submit', (event) => {
    const form = event.target as HTMLFormElement;
    const kind = form.dataset.form;
    if (!kind) return;
    event.preventDefault();
    const data = new FormData(form);
    const issueID = form.closest<HTMLElement>('[data-issue]')?.dataset.issue ?? '';
    if (kind === 'create') {
      const id = nanoid();
      const title = String(data.get('title') ?? '');
      run(id, () => client.mutate.issue.create({ id, title, createdAt: new Date() }));
      form.reset();
    } else if (kind === 'rename') {
      editing.delete(issueID);
      const title = String(data.get('title') ?? '');
      run(issueID, () => client.mutate.issue.rename({ id: issueID, title }));
    } else if (kind === 'comment') {
      const body = String(data.get('body') ?? '');
      run(issueID, () =>
        client.mutate.comment.add({ id: nanoid(), issueID, body, createdAt: new Date() }),
      );
      form.reset();
    }
  });

  root.addEventListener('click', (event) => {
    const target = event.target as HTMLElement;
    const dismiss = target.closest<HTMLElement>('[data-dismiss]')?.dataset.dismiss;
    if (dismiss) {
      errors = errors.filter((e) => String(e.key) !== dismiss);
      errorList.innerHTML = renderErrors(errors);
      return;
    }
    const action = target.closest<HTMLElement>('[data-action]')?.dataset.action;
    const issueID = target.closest<HTMLElement>('[data-issue]')?.dataset.issue;
    if (!action || !issueID) return;
    const issue = issues.find((i) => i.id === issueID);
    if (action === 'edit') editing.add(issueID);
    else if (action === 'cancel-edit') editing.delete(issueID);
    else if (action === 'comments') {
      if (expanded.has(issueID)) expanded.delete(issueID);
      else expanded.add(issueID);
    } else if (action === 'toggle' && issue) {
      run(issueID, () =>
        issue.open
          ? client.mutate.issue.close({ id: issueID })
          : client.mutate.issue.reopen({ id: issueID }),
      );
      return;
    } else if (action === 'delete') {
      run(issueID, () => client.mutate.issue.delete({ id: issueID }));
      return;
    }
    drawList();
    if (action === 'edit')
      list.querySelector<HTMLInputElement>(`[data-key="rename:${CSS.escape(issueID)}"]`)?.select();
  });

  subscribe();
  drawStatus();
  return { showError };
}
