// src/client.ts (in the browser app)
import { createClient } from '@reprise/client';
import { mutators, schema } from './schema.js';

const client = await createClient({
  schema,
  mutators,
  userID: 'ana',
  server: 'https://api.example.com', // → /mutate, /pull, /poke; or {mutate, pull, poke?}
  auth: () => `Bearer ${localStorage.getItem('token')}`, // a header value, or an (async) function
  storage: 'indexeddb', // 'memory' (default), 'indexeddb', or a ClientStorage
  context: { userID: 'ana' }, // the mutators' ctx on the client
});

const { client: applied, server } = client.mutate.issue.create({ id: 'i1', title: 'Hi' });
await applied; // the optimistic write is in the local store and queued
const result = await server; // {ok: true, data} | {ok: false, error: ApplicationError | ClientClosedError}
if (!result.ok) console.warn(result.error.message);
