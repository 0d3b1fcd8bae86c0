import { createHash } from 'node:crypto';
import type { ChangeCursor } from '../changes/changelog';
import type { Visibility } from '../changes/visibility';

// The pull cookie: base64url of `{"v":1,"s":"<pg_snapshot>","f":"<fingerprint>"}` (or `"i":<id>`
// instead of `"s"` on pg-mem, which has no snapshots). The fingerprint hashes the scopes the
// user was granted and the visibility rules; when either changes, rows the user could not
// see before may now be visible without any change having been written, so the next pull
// must be a reset rather than a patch. The cookie is not signed: whatever it says, a pull
// only ever sends rows the user's scopes cover.

const COOKIE_VERSION = 1;
const SNAPSHOT = /^(\d{1,20}):(\d{1,20}):((?:\d{1,20})(?:,\d{1,20})*)?$/;
const XID8_MAX = 2n ** 64n - 1n;
const XID_MASK = 2n ** 32n - 1n;

/** What a cookie we issued says. */
export interface PullCookie {
  readonly cursor: ChangeCursor;
  readonly fingerprint: string;
}

/**
 * A parsed cookie: usable, one we may have issued but cannot use (another version), or
 * text no Reprise server writes.
 */
export type ParsedCookie =
  | { readonly kind: 'cookie'; readonly cookie: PullCookie }
  | { readonly kind: 'unusable'; readonly reason: string }
  | { readonly kind: 'malformed'; readonly message: string };

/** Encodes a cursor and fingerprint as the opaque cookie string. */
export function encodeCookie(cookie: PullCookie): string {
  const { cursor } = cookie;
  const position = cursor.kind === 'snapshot' ? { s: cursor.snapshot } : { i: cursor.id };
  return Buffer.from(
    JSON.stringify({ v: COOKIE_VERSION, ...position, f: cookie.fingerprint }),
  ).toString('base64url');
}

/**
 * Reads a cookie. Malformed text is the client's bug and gets a 400; a cookie of another
 * version is answered with a reset.
 */
export function parseCookie(text: string): ParsedCookie {
  const malformed = (why: string): ParsedCookie => ({
    kind: 'malformed',
    message: `cookie is not one this server issued: ${why}`,
  });
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return malformed('it is not base64url text');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return malformed('it does not decode to JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return malformed('it does not decode to an object');
  }
  const { v, s, i, f } = value as Record<string, unknown>;
  if (typeof v !== 'number') return malformed('it has no version');
  if (v !== COOKIE_VERSION) return { kind: 'unusable', reason: `cookie version ${v}` };
  if (typeof f !== 'string') return malformed('it has no fingerprint');
  if (s !== undefined && i === undefined) {
    if (typeof s !== 'string' || !isSnapshot(s)) return malformed('its snapshot is invalid');
    return {
      kind: 'cookie',
      cookie: { cursor: { kind: 'snapshot', snapshot: s }, fingerprint: f },
    };
  }
  if (i !== undefined && s === undefined) {
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0) {
      return malformed('its change id is invalid');
    }
    return { kind: 'cookie', cookie: { cursor: { kind: 'id', id: i }, fingerprint: f } };
  }
  return malformed('it needs exactly one position');
}

/**
 * True for text Postgres accepts as a `pg_snapshot`, so the cast can never fail: what
 * `parse_snapshot` checks (xid8funcs.c). xmin and xmax must be valid full transaction ids,
 * whose low 32 bits (the xid within its epoch) are not 0: `4294967295:4294967296:` is
 * refused. The in-progress ids lie in [xmin, xmax), ascending.
 */
function isSnapshot(text: string): boolean {
  const match = SNAPSHOT.exec(text);
  if (!match) return false;
  const xmin = BigInt(match[1]!);
  const xmax = BigInt(match[2]!);
  if (xmin > xmax || xmax > XID8_MAX) return false;
  if ((xmin & XID_MASK) === 0n || (xmax & XID_MASK) === 0n) return false;
  let previous = xmin;
  for (const part of match[3]?.split(',') ?? []) {
    const xip = BigInt(part);
    if (xip < previous || xip >= xmax) return false;
    previous = xip;
  }
  return true;
}

/**
 * A short hash of what decides which rows a user sees: the granted scopes and the
 * visibility rules (a function rule by its source text).
 */
export function fingerprint(visibility: Visibility, scopes: readonly string[]): string {
  const rules = Object.entries(visibility as Record<string, unknown>)
    .filter(([, rule]) => rule !== undefined)
    .map(([table, rule]) => [table, typeof rule === 'function' ? rule.toString() : String(rule)])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  const granted = [...new Set(scopes)].sort();
  return createHash('sha256')
    .update(JSON.stringify({ rules, granted }))
    .digest('base64url')
    .slice(0, 22);
}
