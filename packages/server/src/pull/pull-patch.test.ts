import { describe, expect, it } from 'vitest';
import type { Change } from '../changes/changelog';
import type { Visibility } from '../changes/visibility';
import { patchFromChanges } from './pull-patch';

const visibility: Visibility = { issue: 'ownerID' };
let nextID = 1;

function change(fields: Partial<Change> & Pick<Change, 'action'>): Change {
  return {
    id: nextID++,
    table: 'issue',
    key: { id: 'i1' },
    clientGroupID: 'g',
    clientID: 'c',
    mutationID: 1,
    ...fields,
  };
}

const row = (ownerID: string, title = 't') => ({ id: 'i1', ownerID, title });
const created = (owner: string) => change({ action: 'create', after: row(owner) });
const moved = (from: string, to: string) =>
  change({
    action: 'update',
    before: row(from),
    after: row(to),
  });
const deleted = (owner: string) => change({ action: 'delete', before: row(owner) });

const patch = (changes: Change[], granted: string[]) =>
  patchFromChanges(changes, visibility, new Set(granted));

describe('patchFromChanges', () => {
  it("puts a row's last state once", () => {
    const renamed = change({
      action: 'update',
      before: row('a'),
      after: row('a', 'new'),
    });
    expect(patch([created('a'), renamed], ['a'])).toEqual([
      { op: 'put', tableName: 'issue', value: row('a', 'new') },
    ]);
  });

  it('moves a row between scopes: del for the old viewers, put for the new', () => {
    const changes = [moved('a', 'b')];
    expect(patch(changes, ['a'])).toEqual([{ op: 'del', tableName: 'issue', id: { id: 'i1' } }]);
    expect(patch(changes, ['b'])).toEqual([{ op: 'put', tableName: 'issue', value: row('b') }]);
    expect(patch(changes, ['c'])).toEqual([]);
  });

  it('sends a del to anyone who could see the row at some point, and nothing to others', () => {
    const changes = [created('a'), moved('a', 'b'), deleted('b')];
    expect(patch(changes, ['a'])).toEqual([{ op: 'del', tableName: 'issue', id: { id: 'i1' } }]);
    expect(patch(changes, ['b'])).toEqual([{ op: 'del', tableName: 'issue', id: { id: 'i1' } }]);
    expect(patch(changes, ['c'])).toEqual([]);
  });

  it('sends nothing from tables without a visibility rule', () => {
    expect(patch([created('a'), { ...created('a'), table: 'secret' }], ['a'])).toHaveLength(1);
  });

  it('orders rows by their last change and tells keys apart by value and type', () => {
    const other = (id: unknown) => ({ ...created('a'), key: { id }, after: { ...row('a'), id } });
    const changes = [other('x'), other(1), other('1'), other('x')];
    expect(patch(changes, ['a']).map((op) => op.op === 'put' && op.value.id)).toEqual([
      1,
      '1',
      'x',
    ]);
  });

  it("works out scopes by the puller's rules, a function's too", () => {
    const rule: Visibility = { issue: (r: Record<string, unknown>) => `team:${r.ownerID}` };
    const changes = [created('a')];
    expect(patchFromChanges(changes, rule, new Set(['team:a']))).toEqual([
      { op: 'put', tableName: 'issue', value: row('a') },
    ]);
    expect(patchFromChanges(changes, rule, new Set(['a']))).toEqual([]);
  });
});
