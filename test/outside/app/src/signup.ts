// src/signup.ts: Nevr's sign-up as a declarative transaction, shared by server and browser
import { createSchema, createTransactionDefiner, defineMutators } from '@reprise/shared';
import { boolean, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { z } from 'zod';

export const user = pgTable('app_user', {
  id: text('id').primaryKey(),
  email: text('email').notNull(),
  password: text('password').notNull(),
});
export const profile = pgTable('profile', {
  id: text('id').primaryKey(), // one per user: the user's id
  userId: text('user_id').notNull(),
  displayName: text('display_name').notNull(),
  avatar: text('avatar').notNull(),
});
export const settings = pgTable('settings', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  theme: text('theme').notNull(),
  notifications: boolean('notifications').notNull(),
});
export const subscription = pgTable('subscription', {
  id: text('id').primaryKey(),
  userId: text('user_id').notNull(),
  plan: text('plan').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});
export const accounts = createSchema({
  tables: { user, profile, settings, subscription },
  fields: { user: { password: { returned: false } } }, // the hash never leaves the server
});

/** The mutators' ctx: the server passes a mailer; the browser has none. */
export interface AccountContext {
  readonly mailer?: { send(mail: { to: string; subject: string }): Promise<void> };
}
// A second schema beside the registered one: a definer typed for it (createMutatorDefiner's twin).
const defineTransaction = createTransactionDefiner<typeof accounts, AccountContext>();

/** PBKDF2 from Web Crypto: the browser's optimistic run computes what the server does. */
async function hashPassword(password: string, salt: string): Promise<string> {
  const text = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', text.encode(password), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const params = { name: 'PBKDF2', hash: 'SHA-256', salt: text.encode(salt), iterations: 100_000 };
  const bits = new Uint8Array(await crypto.subtle.deriveBits(params, key, 256));
  return Array.from(bits, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

const DAY = 24 * 60 * 60 * 1000;

export const signUp = defineTransaction(
  z.object({
    userId: z.string(), // ids come from the caller, so client and server write the same rows
    email: z.string(),
    password: z.string(),
    name: z.string(),
    plan: z.enum(['free', 'pro', 'team']).default('free'),
  }),
)
  // 1. Create user
  .create('user', {
    data: async (ctx) => ({
      id: ctx.body.userId,
      email: ctx.body.email.toLowerCase(),
      password: await hashPassword(ctx.body.password, ctx.body.userId),
    }),
  })
  // 2. Create profile
  .create('profile', {
    data: (ctx) => ({
      id: ctx.results.user.id,
      userId: ctx.results.user.id,
      displayName: ctx.body.name,
      avatar: `https://api.dicebear.com/7.x/avataaars/svg?seed=${ctx.body.email}`,
    }),
  })
  // 3. Create settings
  .create('settings', {
    data: (ctx) => ({
      id: ctx.results.user.id,
      userId: ctx.results.user.id,
      theme: 'light',
      notifications: true,
    }),
  })
  // 4. Create subscription (if not free plan)
  .create('subscription', {
    condition: (ctx) => ctx.body.plan !== 'free',
    data: (ctx) => ({
      id: ctx.results.user.id,
      userId: ctx.results.user.id,
      plan: ctx.body.plan,
      expiresAt: new Date(Date.now() + 30 * DAY),
    }),
  })
  // After commit, on the server only; never for a sign-up that rolled back.
  .onSuccess(async (results, ctx) => {
    await ctx.context.mailer?.send({ to: results.user.email, subject: 'Welcome!' });
  })
  .onError((error) => console.error('Sign-up failed:', (error as Error).message));

export const accountMutators = defineMutators({ user: { signUp } });
