import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import {
  type Database,
  defineVisibility,
  handleMutateRequest,
  handlePullRequest,
  migrate,
  PUBLIC_SCOPE,
} from '@reprise/server';
import { mutators } from './shared/mutators';
import { APP_DDL, schema } from './shared/schema';

/** Creates the app's tables and the engine's, idempotently. */
export async function prepareDatabase(db: Database<any>) {
  for (const statement of APP_DDL) await db.query(statement);
  await migrate(db);
}

/** The signed-in user: a name in the `user` cookie or the `x-user` header (a demo login). */
function userOf(request: Request): string {
  const cookie = request.headers.get('cookie') ?? '';
  const fromCookie = /(?:^|;\s*)user=([^;]+)/.exec(cookie)?.[1];
  return decodeURIComponent(fromCookie ?? request.headers.get('x-user') ?? 'anonymous');
}

/**
 * Who sees what: every signed-in user sees every issue and comment in this small demo. A
 * real tracker would scope issues by project or team (`issue: 'projectID'`) and grant each
 * user their projects in `/pull`'s `scopes`.
 */
export const visibility = defineVisibility(schema, {
  issue: () => PUBLIC_SCOPE,
  comment: () => PUBLIC_SCOPE,
});

/** The app as a Web handler: `/mutate`, `/pull` and a health route. */
export function createApp(db: Database<any>) {
  return async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    if (pathname === '/health') {
      await db.query('SELECT 1');
      return Response.json({ ok: true, database: db.name });
    }
    if (pathname === '/mutate') {
      const userID = userOf(request);
      return handleMutateRequest({
        db,
        schema,
        mutators,
        request,
        userID,
        context: { userID },
        visibility,
      });
    }
    if (pathname === '/pull') {
      return handlePullRequest({
        db,
        schema,
        visibility,
        request,
        userID: userOf(request),
        scopes: [],
      });
    }
    return new Response('Not found', { status: 404 });
  };
}

/** Adapts a Web handler to node:http: a few lines, as for any framework. */
export function toNodeHandler(handler: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(url, {
      method: req.method ?? 'GET',
      headers: req.headers as Record<string, string>,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    } as RequestInit);
    try {
      const response = await handler(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      console.error(error);
      res.writeHead(500).end('Internal error');
    }
  };
}
