import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from '@reprise/server';
import { toNodeHandler } from '@reprise/server/node';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import postgres from 'postgres';
import { redactDatabaseURL } from './database-url';
import { createApp, prepareDatabase } from './server';

// Starts the issue tracker: embedded PGlite (data in examples/issue-tracker/.data) by
// default, or the Postgres server at DATABASE_URL. `npm start` builds the page first.

async function openDatabase(): Promise<{ db: Database<any>; where: string }> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const db = createPostgresJsDatabase(postgres(url, { onnotice: () => {} }));
    return { db, where: redactDatabaseURL(url) };
  }
  const dir = fileURLToPath(new URL('../.data/pglite', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return { db: createPGliteDatabase(new PGlite(dir)), where: `PGlite in ${dir}` };
}

const { db, where } = await openDatabase();
await prepareDatabase(db);
const app = createApp({ db });
const port = Number(process.env.PORT ?? 3000);
const server = createServer(toNodeHandler(app.fetch));
server.listen(port, () => {
  console.log(`Reprise issue tracker on ${where}`);
  console.log(`Open http://localhost:${port} (two tabs, or two browsers, to see changes flow)`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await app.close();
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
