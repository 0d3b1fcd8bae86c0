import { describe, expect, it } from 'vitest';
import { PUBLIC_SCOPE } from '../changes/visibility';
import { encodeCookie, fingerprint, parseCookie } from './pull-cookie';

const b64 = (text: string) => Buffer.from(text).toString('base64url');

describe('pull cookie', () => {
  it('reads back the snapshot or id position and the fingerprint it was made with', () => {
    for (const cursor of [
      { kind: 'snapshot', snapshot: '10:20:12,15' } as const,
      { kind: 'id', id: 42 } as const,
    ]) {
      const cookie = { cursor, fingerprint: 'f' };
      expect(parseCookie(encodeCookie(cookie))).toEqual({ kind: 'cookie', cookie });
    }
  });

  it('calls a cookie of another version unusable, not malformed', () => {
    expect(parseCookie(b64('{"v":2,"whatever":true}'))).toEqual({
      kind: 'unusable',
      reason: 'cookie version 2',
    });
  });

  it.each([
    ['not base64url', 'a b', /not base64url/],
    ['not JSON', b64('hello'), /does not decode to JSON/],
    ['not an object', b64('[1]'), /not decode to an object/],
    ['without a version', b64('{"s":"1:1:","f":"f"}'), /no version/],
    ['without a fingerprint', b64('{"v":1,"s":"1:1:"}'), /no fingerprint/],
    ['with both positions', b64('{"v":1,"s":"1:1:","i":1,"f":"f"}'), /exactly one position/],
    ['with neither position', b64('{"v":1,"f":"f"}'), /exactly one position/],
    ['with a negative id', b64('{"v":1,"i":-1,"f":"f"}'), /change id is invalid/],
    ['with xmin above xmax', b64('{"v":1,"s":"5:3:","f":"f"}'), /snapshot is invalid/],
    ['with xmin zero', b64('{"v":1,"s":"0:0:","f":"f"}'), /snapshot is invalid/],
    ['with an xip out of range', b64('{"v":1,"s":"3:9:9","f":"f"}'), /snapshot is invalid/],
    ['with xips out of order', b64('{"v":1,"s":"3:9:8,4","f":"f"}'), /snapshot is invalid/],
    ['with xmax past xid8', b64('{"v":1,"s":"1:18446744073709551616:","f":"f"}'), /invalid/],
    // Postgres refuses a full transaction id whose xid within its epoch is 0.
    ['with xmax at an epoch start', b64('{"v":1,"s":"4294967295:4294967296:","f":"f"}'), /invalid/],
    ['with xmin at an epoch start', b64('{"v":1,"s":"8589934592:8589934593:","f":"f"}'), /invalid/],
  ])('refuses a cookie %s as malformed', (_, text, message) => {
    const parsed = parseCookie(text);
    expect(parsed.kind).toBe('malformed');
    expect(parsed.kind === 'malformed' && parsed.message).toMatch(message);
  });

  it('fingerprints the granted scopes as a set, and the rules', () => {
    const rules = { issue: 'ownerID', label: () => PUBLIC_SCOPE };
    const base = fingerprint(rules, ['a', 'b']);
    expect(fingerprint(rules, ['b', 'a', 'a'])).toBe(base);
    expect(fingerprint(rules, ['a'])).not.toBe(base);
    expect(fingerprint({ ...rules, issue: 'teamID' }, ['a', 'b'])).not.toBe(base);
    expect(fingerprint({ issue: 'ownerID' }, ['a', 'b'])).not.toBe(base);
  });
});
