// src/signup-route.ts: the same transaction as a route, for a plain fetch or a webhook
import { mapRoute } from '@reprise/server';
import { accountMutators } from './signup.js';

export const signUpRoute = mapRoute({
  path: '/auth/sign-up',
  method: 'POST',
  validate: (body) => {
    const errors = [];
    if (!body.email?.includes('@')) errors.push('Invalid email');
    if (!(body.password?.length >= 8)) errors.push('Password must be 8+ characters');
    if (!body.name?.trim()) errors.push('Name is required');
    return { valid: errors.length === 0, errors };
  },
  mutator: accountMutators.user.signUp,
  response: { entity: 'user', omit: ['password'] }, // returned: false drops it anyway
});
// Mount it: signUpRoute(request, {db, schema: accounts, userID, context: {mailer}})
