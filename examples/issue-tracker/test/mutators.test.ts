import { createTestDatabase, type TestDatabase, type TestEngine } from '@reprise/server/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mutators } from '../src/shared/mutators';
import { APP_DDL, q, schema } from '../src/shared/schema';

// The tracker's mutators, unit-tested the way an app would: `createTestDatabase` runs each
// one through the engine's real push path on an in-memory database, no server needed.

const ana = { userID: 'ana', context: { userID: 'ana' } };
const bob = { userID: 'bob', context: { userID: 'bob' } };

describe.each<TestEngine>(['pglite', 'pg-mem'])('the tracker mutators on %s', (engine) => {
  let t: TestDatabase<typeof schema, typeof mutators>;

  beforeEach(async () => {
    t = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
    await t.mutate(mutators.issue.create({ id: 'i1', title: '  Printer on fire ' }), ana);
  });
  afterEach(() => t.close());

  it('creates an issue owned by the caller, with its title trimmed', async () => {
    expect(await t.run(q.issue.where('id', 'i1').one())).toMatchObject({
      title: 'Printer on fire',
      ownerID: 'ana',
      open: true,
    });
  });

  it('refuses a second issue with the same id, and an empty title', async () => {
    const again = await t.mutate(mutators.issue.create({ id: 'i1', title: 'Again' }), bob);
    expect(again.ok || again.error.message).toBe('An issue with this id already exists');
    const empty = await t.mutate(mutators.issue.create({ id: 'i2', title: '   ' }), ana);
    expect(empty.ok || empty.error.message).toContain('A title is required');
    expect(await t.run(q.issue)).toHaveLength(1);
  });

  it('lets only the owner rename, close, reopen or delete an issue', async () => {
    for (const [call, verb] of [
      [mutators.issue.rename({ id: 'i1', title: 'Mine now' }), 'rename'],
      [mutators.issue.close({ id: 'i1' }), 'close'],
      [mutators.issue.delete({ id: 'i1' }), 'delete'],
    ] as const) {
      const refused = await t.mutate(call, bob);
      expect(refused.ok).toBe(false);
      if (!refused.ok) {
        expect(refused.error.message).toBe(`Only ana, who opened this issue, can ${verb} it`);
        expect(refused.error.details).toEqual({ issueID: 'i1', ownerID: 'ana' });
      }
    }
    expect(await t.run(q.issue.where('id', 'i1').one())).toMatchObject({
      title: 'Printer on fire',
      open: true,
    });
    await t.mutate(mutators.issue.close({ id: 'i1' }), ana);
    const reopen = await t.mutate(mutators.issue.reopen({ id: 'i1' }), bob);
    expect(reopen.ok || reopen.error.message).toBe(
      'Only ana, who opened this issue, can reopen it',
    );
    expect((await t.run(q.issue.where('id', 'i1').one()))?.open).toBe(false);
    expect(await t.mutate(mutators.issue.rename({ id: 'i1', title: 'Renamed' }), ana)).toEqual({
      ok: true,
      data: undefined,
    });
  });

  it('closes and reopens, refusing to do either twice', async () => {
    expect((await t.mutate(mutators.issue.close({ id: 'i1' }), ana)).ok).toBe(true);
    const twice = await t.mutate(mutators.issue.close({ id: 'i1' }), ana);
    expect(twice.ok || twice.error.message).toBe('This issue is already closed');
    expect((await t.mutate(mutators.issue.reopen({ id: 'i1' }), ana)).ok).toBe(true);
    const again = await t.mutate(mutators.issue.reopen({ id: 'i1' }), ana);
    expect(again.ok || again.error.message).toBe('This issue is already open');
    expect((await t.run(q.issue.where('id', 'i1').one()))?.open).toBe(true);
  });

  it('takes comments on open issues only, from anyone', async () => {
    const added = await t.mutate(
      mutators.comment.add({ id: 'c1', issueID: 'i1', body: 'Have you tried water?' }),
      bob,
    );
    expect(added).toEqual({ ok: true, data: { id: 'c1' } });
    await t.mutate(mutators.issue.close({ id: 'i1' }), ana);
    const late = await t.mutate(mutators.comment.add({ id: 'c2', issueID: 'i1', body: 'Hi' }), bob);
    expect(late.ok || late.error.message).toBe('This issue is closed: reopen it to comment');
    const nowhere = await t.mutate(
      mutators.comment.add({ id: 'c3', issueID: 'nope', body: 'Hi' }),
      bob,
    );
    expect(nowhere.ok || nowhere.error.message).toBe('This issue no longer exists');
    expect((await t.run(q.comment)).map((c) => c.id)).toEqual(['c1']);
  });

  it('deletes an issue together with its comments', async () => {
    await t.mutate(mutators.issue.create({ id: 'i2', title: 'Keep me' }), ana);
    for (const [id, issueID] of [
      ['c1', 'i1'],
      ['c2', 'i1'],
      ['c3', 'i2'],
    ]) {
      await t.mutate(mutators.comment.add({ id: id!, issueID: issueID!, body: 'Noted' }), bob);
    }
    expect((await t.mutate(mutators.issue.delete({ id: 'i1' }), ana)).ok).toBe(true);
    expect((await t.run(q.issue)).map((i) => i.id)).toEqual(['i2']);
    expect((await t.run(q.comment)).map((c) => c.id)).toEqual(['c3']);
  });
});
