import { describe, expect, it } from 'vitest';
import { parseNotice } from './change-watcher';

describe('parseNotice', () => {
  it('reads the table a capture trigger names', () => {
    expect(parseNotice('issue')).toEqual({ tables: ['issue'] });
    expect(parseNotice('{"scopes":[]}')).toEqual({ tables: ['{"scopes":[]}'] });
  });

  it('takes an empty payload to mean anything at all', () => {
    expect(parseNotice('')).toEqual({ all: true });
  });
});
