// The browser side, built by Vite from the packed @reprise/client.
import { createClient } from '@reprise/client';
import { mutators, schema } from './schema.js';

const client = await createClient({
  schema,
  mutators,
  userID: 'ana',
  server: '/api',
  context: { userID: 'ana' },
});
client.query.issue.where('open', true).subscribe((rows) => {
  document.querySelector('#issues')!.textContent = rows.map((row) => row.title).join(', ');
});
