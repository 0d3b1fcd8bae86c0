// src/accounts.ts: field policies, and the entity API for server code outside mutators
import { randomBytes, scryptSync } from 'node:crypto';
import { createEntityContext, type Database } from '@reprise/server';
import { createSchema, filterInput, filterOutput } from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';

export const account = pgTable('account', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').notNull().default('member'),
});
export const accountSchema = createSchema({
  tables: { account },
  fields: {
    account: {
      passwordHash: { returned: false }, // never leaves the server
      role: { input: false }, // clients may not set it; server code may
    },
  },
});

function hashPassword(password: string): string {
  const salt = randomBytes(16).toString('hex');
  return `${salt}:${scryptSync(password, salt, 32).toString('hex')}`;
}

/** A sign-up webhook: a JSON body in, the account out, without its hash. */
export async function signUp(db: Database, body: Record<string, unknown>): Promise<Response> {
  const input = filterInput(body, account); // drops `role`: a caller cannot make itself admin
  if (typeof input.id !== 'string' || typeof input.email !== 'string') {
    return Response.json({ errors: ['id and email are required'] }, { status: 400 });
  }
  const entities = createEntityContext({ db, schema: accountSchema });
  const created = await entities.account.create({
    id: input.id,
    email: input.email,
    passwordHash: hashPassword(String(body.password)),
  });
  return Response.json(filterOutput(created, account));
}
