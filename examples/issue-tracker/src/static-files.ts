import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * Serves the built page from `dir`: `/` is `index.html`, hashed assets are cached for good.
 * Answers undefined for a path that is not a file there, so the caller can 404.
 */
export async function serveStatic(dir: string, pathname: string): Promise<Response | undefined> {
  const root = resolve(dir);
  const file = resolve(root, `.${pathname === '/' ? '/index.html' : decodeURIComponent(pathname)}`);
  if (!file.startsWith(root + sep)) return undefined;
  const body = await readFile(file).catch(() => undefined);
  if (!body) {
    if (pathname !== '/') return undefined;
    return new Response(
      'The page is not built yet. Run `npm start` at the repository root, which builds it.',
      { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' } },
    );
  }
  const immutable = pathname.startsWith('/assets/');
  return new Response(body, {
    headers: {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    },
  });
}
