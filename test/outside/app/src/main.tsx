// src/main.tsx: the provider hands the client to every hook below it
import { createClient } from '@reprise/client';
import { RepriseProvider } from '@reprise/react';
import { createRoot } from 'react-dom/client';
import { OpenIssues } from './issues.js';
import { mutators, schema } from './schema.js';

const client = await createClient({ schema, mutators, userID: 'ana', server: '/api' });
createRoot(document.getElementById('root')!).render(
  <RepriseProvider client={client}>
    <OpenIssues />
  </RepriseProvider>,
);
