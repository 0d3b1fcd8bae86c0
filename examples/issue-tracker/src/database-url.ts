/**
 * A database URL as the console may show it: the password (in the user part, or a
 * `password` parameter) replaced by `***`. Anything but a parsable `postgres://` or
 * `postgresql://` URL is not shown at all, since where its password sits cannot be told.
 *
 * @example
 * redactDatabaseURL('postgres://app:s3cret@db:5432/tracker'); // 'postgres://app:***@db:5432/tracker'
 */
export function redactDatabaseURL(url: string): string {
  const hidden = 'the Postgres server at DATABASE_URL';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return hidden;
  }
  // `user:password@host` without a scheme parses too, with `user:` as the scheme.
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return hidden;
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}
