import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { toNodeHandler, type WebHandler } from './node-handler';

let server: Server | undefined;

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handle);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

it('passes method, URL, headers and body through, and every Set-Cookie back', async () => {
  const handler: WebHandler = async (request) => {
    const headers = new Headers({ 'x-echo': request.headers.get('x-user') ?? '' });
    headers.append('set-cookie', 'a=1');
    headers.append('set-cookie', 'b=2');
    return Response.json(
      { method: request.method, url: request.url, body: await request.text() },
      { status: 201, headers },
    );
  };
  const base = await serve(toNodeHandler(handler));
  const response = await fetch(`${base}/mutate?x=1`, {
    method: 'POST',
    headers: { 'x-user': 'ana' },
    body: 'hello',
  });
  expect(response.status).toBe(201);
  expect(response.headers.get('x-echo')).toBe('ana');
  expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
  expect(await response.json()).toEqual({
    method: 'POST',
    url: `${base}/mutate?x=1`,
    body: 'hello',
  });
});

it("reads Express's originalUrl, so a mounted handler sees its full path", async () => {
  const node = toNodeHandler(async (request) => new Response(new URL(request.url).pathname));
  // What Express does under app.use('/sync', …): strip the mount path from req.url.
  const base = await serve((req, res) => {
    Object.assign(req, { originalUrl: req.url, url: req.url!.replace(/^\/sync/, '') });
    void node(req, res);
  });
  expect(await (await fetch(`${base}/sync/pull`)).text()).toBe('/sync/pull');
});

it('streams the response, and aborts the request signal when the client goes away', async () => {
  let aborted!: () => void;
  const abortedSeen = new Promise<void>((resolve) => {
    aborted = resolve;
  });
  const base = await serve(
    toNodeHandler(async (request) => {
      request.signal.addEventListener('abort', () => aborted());
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('event: ready\n\n'));
          // Never closes on its own, like a poke stream.
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    }),
  );
  const client = new AbortController();
  const response = await fetch(`${base}/poke`, { signal: client.signal });
  const { value } = await response.body!.getReader().read();
  expect(new TextDecoder().decode(value)).toBe('event: ready\n\n');
  client.abort();
  await abortedSeen;
});

it('answers 500 when the handler throws', async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (error: unknown) => errors.push(error);
  try {
    const base = await serve(
      toNodeHandler(async () => {
        throw new Error('boom');
      }),
    );
    const response = await fetch(base);
    expect(response.status).toBe(500);
    expect(errors).toHaveLength(1);
  } finally {
    console.error = original;
  }
});

/** Sends raw HTTP/1.1 text and returns the status line of the answer. */
async function rawStatusLine(base: string, text: string): Promise<string> {
  const { connect } = await import('node:net');
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n')) {
        socket.destroy();
        resolve(received.split('\r\n')[0]!);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error('no answer within 2 s'));
    });
  });
}

it.each([
  [
    'a Host header no URL can hold',
    'POST /mutate HTTP/1.1\r\nHost: a b\r\nContent-Length: 0\r\n\r\n',
  ],
  ['a method fetch forbids', 'TRACE /mutate HTTP/1.1\r\nHost: localhost\r\n\r\n'],
])('answers 400 to %s, without an unhandled rejection, and serves on', async (_, text) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    let calls = 0;
    const base = await serve(
      toNodeHandler(async () => {
        calls++;
        return new Response('ok');
      }),
    );
    expect(await rawStatusLine(base, text)).toBe('HTTP/1.1 400 Bad Request');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(rejections).toEqual([]);
    expect(calls).toBe(0);
    expect(await (await fetch(base)).text()).toBe('ok');
  } finally {
    process.off('unhandledRejection', onRejection);
  }
});
