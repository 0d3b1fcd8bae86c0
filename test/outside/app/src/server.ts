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
await migrate(db); // the engine's own tables, in schema "reprise"; idempotent
const visibility = defineVisibility(schema, {
  issue: 'ownerID', // a column holding the scope
  comment: (row) => `issue:${row.issueID}`, // or a function of the row
}); // tables left out are never synced; `() => PUBLIC_SCOPE` means everyone
const pokes = createPokeHub({ db });

/** One Web handler for the three routes; `userID` comes from your auth. */
export async function sync(request: Request, userID: string): Promise<Response> {
  const { pathname } = new URL(request.url);
  const scopes = [userID]; // what this user may read: here, the issues they own
  if (pathname.endsWith('/mutate')) {
    return handleMutateRequest({
      db,
      schema,
      mutators,
      visibility,
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
