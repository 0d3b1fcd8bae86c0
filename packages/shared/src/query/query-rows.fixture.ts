import { querySchema } from '../../../../test/fixtures/query-schema';
import { createMemoryStore } from './memory-store';
import type { MemoryStore } from './store';

// Rows for the evaluator's tests: nulls in every nullable column, ties on priority, an
// astral title, a comment without an author and one whose issue is missing.

export type QueryStore = MemoryStore<typeof querySchema>;

const day = (iso: string) => new Date(`${iso}T00:00:00.000Z`);

export function seedQueryStore(store: QueryStore = createMemoryStore(querySchema)): QueryStore {
  store.put('user', { id: 'u1', name: 'Ada', karma: 10 });
  store.put('user', { id: 'u2', name: 'bob', karma: null });
  store.put('user', { id: 'u3', name: 'Cy', karma: 5 });
  const issue = {
    open: true,
    priority: null,
    votes: null,
    createdAt: null,
    meta: null,
  };
  store.put('issue', {
    ...issue,
    id: 'i1',
    title: 'Crash on start',
    ownerID: 'u1',
    priority: 2,
    votes: 10n,
    createdAt: day('2026-01-01'),
    meta: { tags: ['bug'] },
  });
  store.put('issue', { ...issue, id: 'i2', title: 'crash in editor', ownerID: 'u1', open: false });
  store.put('issue', {
    ...issue,
    id: 'i3',
    title: 'Dark mode',
    ownerID: 'u2',
    priority: 1,
    votes: 3n,
    createdAt: day('2026-02-01'),
  });
  store.put('issue', {
    ...issue,
    id: 'i4',
    title: 'Docs 100%',
    ownerID: 'u3',
    priority: 2,
    createdAt: day('2026-01-15'),
  });
  store.put('issue', { ...issue, id: 'i5', title: '\u{1F600} emoji', ownerID: 'u3', open: false });
  store.put('comment', { id: 'c1', issueID: 'i1', authorID: 'u2', body: 'me too', score: 3 });
  store.put('comment', { id: 'c2', issueID: 'i1', authorID: null, body: 'same', score: 5 });
  store.put('comment', { id: 'c3', issueID: 'i1', authorID: 'u3', body: 'fixed?', score: 1 });
  store.put('comment', { id: 'c4', issueID: 'i3', authorID: 'u1', body: 'yes', score: 2 });
  store.put('comment', { id: 'c5', issueID: 'i9', authorID: 'u1', body: 'orphan', score: 9 });
  return store;
}
