import { fileURLToPath } from 'node:url';
import {
  createPokeHub,
  type Database,
  defineVisibility,
  handleMutateRequest,
  handlePullRequest,
  migrate,
  PUBLIC_SCOPE,
} from '@reprise/server';
import { handleLogin, handleLogout, userOf } from './login';
import { mutators } from './shared/mutators';
import { APP_DDL, schema } from './shared/schema';
import { serveStatic } from './static-files';

/** Creates the app's tables and the engine's, and captures the app's writes; idempotent. */
export async function prepareDatabase(db: Database<any>) {
  for (const statement of APP_DDL) await db.query(statement);
  await migrate(db, { capture: schema });
}

/**
 * Who sees what: every signed-in user sees every issue and comment in this small demo. A
 * real tracker would scope issues by project (`issue: 'projectID'`) and grant each user
 * their projects below, in `scopesOf`.
 */
export const visibility = defineVisibility(schema, {
  issue: () => PUBLIC_SCOPE,
  comment: () => PUBLIC_SCOPE,
});

/** The scopes a user may read; `PUBLIC_SCOPE` is always granted. */
function scopesOf(userID: string): string[] {
  return [`user:${userID}`];
}

export interface AppOptions {
  readonly db: Database<any>;
  /** Where the built page lives (default `examples/issue-tracker/dist`). */
  readonly assetsDir?: string;
}

/** The issue tracker as a Web handler (`fetch`), plus `close` to end open poke streams. */
export interface App {
  fetch(request: Request): Promise<Response>;
  close(): Promise<void>;
}

const DEFAULT_ASSETS = fileURLToPath(new URL('../dist', import.meta.url));

const unauthorized = () =>
  Response.json({ error: 'unauthorized', message: 'Sign in first' }, { status: 401 });

/**
 * The app's routes: `/mutate`, `/pull`, `/poke` for the Reprise client, `/login`,
 * `/logout` and `/api/me` for the demo login, `/health`, and the page itself.
 */
export function createApp(options: AppOptions): App {
  const { db } = options;
  const assetsDir = options.assetsDir ?? DEFAULT_ASSETS;
  const pokes = createPokeHub({ db, schema, visibility });

  async function route(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    const method = request.method;
    if (pathname === '/health') {
      await db.query('SELECT 1');
      return Response.json({ ok: true, database: db.name });
    }
    if (pathname === '/login' && method === 'POST') return handleLogin(request);
    if (pathname === '/logout' && method === 'POST') return handleLogout();

    const userID = userOf(request);
    if (pathname === '/api/me') {
      return userID ? Response.json({ userID }) : unauthorized();
    }
    if (pathname === '/mutate' && method === 'POST') {
      if (!userID) return unauthorized();
      // The client group belongs to the first user who pushes to it: another user's push
      // to it is refused with a 403.
      return handleMutateRequest({
        db,
        schema,
        mutators,
        request,
        userID,
        context: { userID },
      });
    }
    if (pathname === '/pull' && method === 'POST') {
      if (!userID) return unauthorized();
      return handlePullRequest({
        db,
        schema,
        visibility,
        request,
        userID,
        scopes: scopesOf(userID),
      });
    }
    if (pathname === '/poke' && method === 'GET') {
      if (!userID) return unauthorized();
      return pokes.handlePokeRequest({ request, scopes: scopesOf(userID) });
    }
    if (method === 'GET' || method === 'HEAD') {
      const file = await serveStatic(assetsDir, pathname);
      if (file) return file;
    }
    return new Response('Not found', { status: 404 });
  }

  return { fetch: route, close: () => pokes.close() };
}
