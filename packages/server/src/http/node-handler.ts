import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

// node:http and Express speak IncomingMessage/ServerResponse; Reprise's handlers speak Web
// Request/Response. This translates, streaming the response so a poke stream flows, and
// aborts the Request's signal when the client goes away so the stream is closed.

/** A Web handler: Hono's `app.fetch`, or a function calling `handleMutateRequest`. */
export type WebHandler = (request: Request) => Promise<Response>;

/**
 * Adapts a Web handler to node:http and to Express (where it reads `req.originalUrl`, so
 * it works under `app.use('/sync', …)` too). A body already read by a body parser cannot
 * be read again: mount it before `express.json()`, or use `processMutateRequest`.
 *
 * @example
 * createServer(toNodeHandler((request) => handleMutateRequest({db, schema, mutators, request, userID})));
 * expressApp.use('/mutate', toNodeHandler(mutate));
 */
export function toNodeHandler(handler: WebHandler) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    let request: Request;
    try {
      request = toWebRequest(req, gone.signal);
    } catch (error) {
      // A Host header no URL can hold, or a method fetch forbids (CONNECT, TRACE): the
      // client's mistake, and a throw here would be an unhandled rejection.
      const message = `Bad request: ${error instanceof Error ? error.message : String(error)}`;
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end(message);
      req.resume();
      return;
    }
    try {
      const response = await handler(request);
      res.writeHead(response.status, [...response.headers].flat());
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          if (res.write(chunk)) continue;
          // Backpressure: wait until the socket drains (or closes, ending the loop).
          await new Promise((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
          if (gone.signal.aborted) break;
        }
      }
      res.end();
    } catch (error) {
      if (gone.signal.aborted) return;
      console.error(error);
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal error');
    }
  };
}

function toWebRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const path = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  const url = new URL(path, `http://${req.headers.host ?? 'localhost'}`);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return new Request(url, {
    method: req.method ?? 'GET',
    headers,
    signal,
    ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
  } as RequestInit);
}
