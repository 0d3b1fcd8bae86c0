import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { querySchema } from '../../../../test/fixtures/query-schema';
import { createMemoryStore } from './memory-store';
import type { MemoryStore } from './store';

const user = (id: string, karma: number | null = null) => ({ id, name: `User ${id}`, karma });
const issue = (id: string, ownerID: string) => ({
  id,
  title: `Issue ${id}`,
  ownerID,
  open: true,
  priority: null,
  votes: null,
  createdAt: null,
  meta: null,
});
const ids = (rows: Iterable<{ id: string }>) => Array.from(rows, (row) => row.id).sort();

function baseStore() {
  const store = createMemoryStore(querySchema);
  store.createIndex('issue', 'ownerID');
  store.put('user', user('u1', 1));
  store.put('user', user('u2', 2));
  store.put('issue', issue('i1', 'u1'));
  store.put('issue', issue('i2', 'u2'));
  return store;
}

describe('store.fork()', () => {
  it('reads its own writes over the store, which sees none of them until commit', () => {
    const store = baseStore();
    const draft = store.fork();
    draft.put('user', user('u1', 10));
    draft.put('user', user('u3'));
    expect(draft.delete('user', { id: 'u2' })).toBe(true);
    expect(draft.delete('user', { id: 'u9' })).toBe(false);

    expect(draft.get('user', { id: 'u1' })?.karma).toBe(10);
    expect(draft.get('user', { id: 'u2' })).toBeUndefined();
    expect(ids(draft.scan('user'))).toEqual(['u1', 'u3']);
    expect(draft.size('user')).toBe(2);
    expect(store.get('user', { id: 'u1' })?.karma).toBe(1);
    expect(ids(store.scan('user'))).toEqual(['u1', 'u2']);

    draft.commit();
    expect(ids(store.scan('user'))).toEqual(['u1', 'u3']);
    expect(store.get('user', { id: 'u1' })?.karma).toBe(10);
  });

  it('commit returns each row it wrote or deleted once, with its table and key', () => {
    const store = baseStore();
    const draft = store.fork();
    draft.put('user', user('u1', 10));
    draft.put('user', user('u1', 11));
    draft.delete('user', { id: 'u2' });
    draft.delete('user', { id: 'u9' }); // not there: nothing written
    draft.put('issue', issue('i3', 'u1'));
    const written = draft.commit();
    expect(written.map(({ table, key }) => `${table}/${key.id}`).sort()).toEqual([
      'issue/i3',
      'user/u1',
      'user/u2',
    ]);
    expect(draft.commit()).toEqual([]);
  });

  it("looks rows up through the store's index, with its own writes laid over", () => {
    const store = baseStore();
    const draft = store.fork();
    draft.put('issue', issue('i1', 'u2')); // moves from u1 to u2
    draft.put('issue', issue('i3', 'u1'));
    draft.delete('issue', { id: 'i2' });
    expect(draft.hasIndex('issue', 'ownerID')).toBe(true);
    expect(ids(draft.lookup('issue', 'ownerID', 'u1'))).toEqual(['i3']);
    expect(ids(draft.lookup('issue', 'ownerID', 'u2'))).toEqual(['i1']);
    expect(ids(store.lookup('issue', 'ownerID', 'u2'))).toEqual(['i2']);
  });

  it('is thrown away by not committing, and can be forked and cloned in turn', () => {
    const store = baseStore();
    const draft = store.fork();
    draft.put('user', user('u3'));
    const inner = draft.fork();
    inner.delete('user', { id: 'u1' });
    expect(ids(inner.scan('user'))).toEqual(['u2', 'u3']);
    const copy = inner.clone();
    inner.commit();
    expect(ids(draft.scan('user'))).toEqual(['u2', 'u3']);
    expect(ids(copy.scan('user'))).toEqual(['u2', 'u3']);
    expect(ids(store.scan('user'))).toEqual(['u1', 'u2']);
    expect(() => draft.createIndex('user', 'name')).toThrow(/not a draft/);
  });

  it('answers every read exactly as a clone given the same writes would (property)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('put' as const),
        id: fc.constantFrom('i1', 'i2', 'i3', 'i4'),
        owner: fc.constantFrom('u1', 'u2', 'u3'),
      }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.constantFrom('i1', 'i2', 'i3') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.boolean(), (ops, commit) => {
        const store = baseStore();
        const draft = store.fork();
        const expected = store.clone();
        for (const o of ops) {
          for (const target of [draft, expected] as MemoryStore<typeof querySchema>[]) {
            if (o.kind === 'put') target.put('issue', issue(o.id, o.owner));
            else target.delete('issue', { id: o.id });
          }
        }
        if (commit) draft.commit();
        const actual: MemoryStore<typeof querySchema> = commit ? store : draft;
        expect(ids(actual.scan('issue'))).toEqual(ids(expected.scan('issue')));
        expect(actual.size('issue')).toBe(expected.size('issue'));
        for (const owner of ['u1', 'u2', 'u3']) {
          expect(ids(actual.lookup('issue', 'ownerID', owner))).toEqual(
            ids(expected.lookup('issue', 'ownerID', owner)),
          );
        }
        for (const id of ['i1', 'i2', 'i3', 'i4']) {
          expect(actual.get('issue', { id })).toEqual(expected.get('issue', { id }));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('holding each row before the store writes it keeps the store as it was, and commit restores it (property)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('put' as const),
        id: fc.constantFrom('i1', 'i2', 'i3', 'i4'),
        owner: fc.constantFrom('u1', 'u2', 'u3'),
      }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.constantFrom('i1', 'i2', 'i4') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        const store = baseStore();
        const before = store.clone();
        const held = store.fork();
        for (const o of ops) {
          held.hold('issue', { id: o.id });
          if (o.kind === 'put') store.put('issue', issue(o.id, o.owner));
          else store.delete('issue', { id: o.id });
        }
        const reads = (target: MemoryStore<typeof querySchema>) => ({
          scan: ids(target.scan('issue')),
          size: target.size('issue'),
          byOwner: ['u1', 'u2', 'u3'].map((owner) => ids(target.lookup('issue', 'ownerID', owner))),
          byID: ['i1', 'i2', 'i3', 'i4'].map((id) => target.get('issue', { id })),
        });
        expect(reads(held)).toEqual(reads(before));
        held.commit();
        expect(reads(store)).toEqual(reads(before));
      }),
      { numRuns: 300 },
    );
  });

  it('writes() names what commit would write, and hold leaves a row already written alone', () => {
    const store = baseStore();
    const draft = store.fork();
    draft.put('user', user('u1', 10));
    draft.hold('user', { id: 'u1' });
    draft.hold('user', { id: 'u9' });
    store.put('user', user('u9', 9));
    expect(draft.writes().map((w) => [w.table, w.key.id])).toEqual([
      ['user', 'u1'],
      ['user', 'u9'],
    ]);
    expect(draft.get('user', { id: 'u1' })?.karma).toBe(10);
    expect(draft.get('user', { id: 'u9' })).toBeUndefined();
    expect(store.get('user', { id: 'u1' })?.karma).toBe(1);
  });
});
