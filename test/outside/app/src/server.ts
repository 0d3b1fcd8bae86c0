// src/server.ts
import {
  createPokeHub,
  defineVisibility,
  handleMutateRequest,
  handlePullRequest,
  migrate,
} from '@reprise/server';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import postgres from 'postgres';
import { mutators, schema } from './schema.js';

const db = createPostgresJsDatabase(postgres(process.env.DATABASE_URL!));
// After the app's own migrations: the engine's tables (schema "reprise"), and a trigger on
// each of the schema's tables that captures every write, whoever makes it. Idempotent.
await migrate(db, { capture: schema });
const visibility = defineVisibility(schema, {
  issue: 'ownerID', // a column holding the scope
  comment: (row) => `issue:${row.issueID}`, // or a function of the row
}); // tables left out are never synced; `() => PUBLIC_SCOPE` means everyone
const pokes = createPokeHub({ db, schema, visibility }); // pokes only those a commit concerns

/** One Web handler for the three routes; `userID` comes from your auth. */
export async function sync(request: Request, userID: string): Promise<Response> {
  const { pathname } = new URL(request.url);
  const scopes = [userID]; // what this user may read: here, the issues they own
  if (pathname.endsWith('/mutate')) {
    return handleMutateRequest({
      db,
      schema,
      mutators,
      request,
      userID,
      context: { userID },
    });
  }
  if (pathname.endsWith('/pull')) {
    return handlePullRequest({ db, schema, visibility, request, userID, scopes });
  }
  if (pathname.endsWith('/poke')) return pokes.handlePokeRequest({ request, scopes });
  return new Response('Not found', { status: 404 });
}
