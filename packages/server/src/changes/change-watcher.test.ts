import { describe, expect, it } from 'vitest';
import { parseNotice } from './change-watcher';

describe('parseNotice', () => {
  it('reads the scopes writeChanges sends', () => {
    expect(parseNotice('{"scopes":["alice","*"]}')).toEqual({ scopes: ['alice', '*'] });
    expect(parseNotice('{"scopes":[]}')).toEqual({ scopes: [] });
  });

  it('takes "all", and anything it cannot read, to mean every scope', () => {
    expect(parseNotice('{"all":true}')).toEqual({ all: true });
    expect(parseNotice('')).toEqual({ all: true });
    expect(parseNotice('not json')).toEqual({ all: true });
    expect(parseNotice('{"scopes":[1]}')).toEqual({ all: true });
    expect(parseNotice('null')).toEqual({ all: true });
  });
});
