import { createSchema } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { defineWritePolicy, resolveScopeKeys } from './write-policy';

const folder = pgTable('folder', { id: text('id').primaryKey(), parentID: text('parent_id') });
const file = pgTable('file', {
  id: text('id').primaryKey(),
  folderID: text('folder_id').notNull(),
});
const schema = createSchema({ tables: { folder, file } });

describe('defineWritePolicy', () => {
  it('accepts owner, parent, allow and unrestricted rules', () => {
    const policy = { folder: 'unrestricted', file: { parent: 'folder', via: 'folderID' } } as const;
    expect(defineWritePolicy(schema, policy)).toBe(policy);
    expect(() => defineWritePolicy(schema, { file: { allow: () => true } })).not.toThrow();
  });

  it('refuses what could never be checked, naming it', () => {
    const define = (policy: unknown) => () => defineWritePolicy(schema, policy as never);
    expect(define({ nope: 'unrestricted' })).toThrow('defineWritePolicy: unknown table "nope"');
    expect(define({ file: { owner: 'ownerID' } })).toThrow(
      'defineWritePolicy: file: "ownerID" is not a column of file',
    );
    expect(define({ file: { parent: 'folder', via: 'folderID' } })).toThrow(
      'defineWritePolicy: file: parent folder has no rule of its own',
    );
    expect(define({ file: { parent: 'disk', via: 'folderID' } })).toThrow(
      'unknown parent table "disk"',
    );
    expect(define({ file: 'public' })).toThrow(
      "a rule is {owner}, {parent, via}, {allow} or 'unrestricted'",
    );
  });

  it('refuses a parent chain that loops', () => {
    expect(() =>
      defineWritePolicy(schema, { folder: { parent: 'folder', via: 'parentID' } }),
    ).toThrow('defineWritePolicy: the parent chain from folder loops at folder');
  });
});

describe('resolveScopeKeys', () => {
  it('takes a key, a list, or a function of the source; nothing gives no keys', () => {
    expect([...resolveScopeKeys('ana', {})]).toEqual(['ana']);
    expect([...resolveScopeKeys(['org1', 'org2'], {})]).toEqual(['org1', 'org2']);
    expect([...resolveScopeKeys((s: { t: string }) => s.t, { t: 'org3' })]).toEqual(['org3']);
    expect(resolveScopeKeys(undefined, {}).size).toBe(0);
    expect(resolveScopeKeys(() => null, {}).size).toBe(0);
  });
});
