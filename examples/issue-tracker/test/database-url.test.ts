import { expect, it } from 'vitest';
import { redactDatabaseURL } from '../src/database-url';

// The server prints where its data lives; a DATABASE_URL's password must not be in it.

it('replaces the password of a database URL', () => {
  expect(redactDatabaseURL('postgres://app:s3cret@db.internal:5432/tracker')).toBe(
    'postgres://app:***@db.internal:5432/tracker',
  );
});

it('replaces a password given as a parameter', () => {
  expect(redactDatabaseURL('postgresql://app@db/tracker?sslmode=require&password=s3cret')).toBe(
    'postgresql://app@db/tracker?sslmode=require&password=***',
  );
});

it('leaves a URL without a password as it is', () => {
  expect(redactDatabaseURL('postgres://postgres@127.0.0.1:5432/test')).toBe(
    'postgres://postgres@127.0.0.1:5432/test',
  );
});

it('shows nothing of a URL it cannot parse', () => {
  expect(redactDatabaseURL('app:s3cret@db/tracker')).not.toContain('s3cret');
});
