// http/: what the handlers share about HTTP: reading and decoding a request body (size
// limit, content type, superjson envelope), and `toNodeHandler` for node:http and Express.

import { decodeRich, describeIssues, isEnvelope } from '@reprise/shared';
import type { z } from 'zod';

/**
 * Why a request's body is not declared as JSON, or undefined when it is. Requiring
 * `application/json` keeps push and pull out of the CORS "simple requests" (`text/plain`,
 * form encodings) that any web page can make a signed-in browser send without asking:
 * a cross-site page cannot send this content type without a preflight the app must allow.
 * The body is read as UTF-8, so a `charset` parameter, when given, must say so.
 *
 * @example
 * contentTypeProblem(new Request(url, {method: 'POST', body: '{}'})); // 'Content-Type must be …'
 */
export function contentTypeProblem(request: Request): string | undefined {
  const header = request.headers.get('content-type');
  const expected = 'Content-Type must be application/json';
  if (header === null) return `${expected}; the request has none`;
  const [type = '', ...parameters] = header.split(';');
  const shown = header.length > 100 ? `${header.slice(0, 100)}…` : header;
  if (type.trim().toLowerCase() !== 'application/json') return `${expected}, not ${shown}`;
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    if (!/^"?utf-?8"?$/i.test(value.trim())) return `${expected} in UTF-8, not ${shown}`;
  }
  return undefined;
}

/**
 * The 415 answer to a request whose body is not declared as JSON (see `contentTypeProblem`),
 * with `body` shaping the message for the route's protocol; undefined when it is JSON.
 *
 * @example
 * const refused = refuseUnlessJSON(request, (message) => failed(415, 'parse', message).body);
 * if (refused) return refused;
 */
export function refuseUnlessJSON(
  request: Request,
  body: (message: string) => unknown,
): Response | undefined {
  const problem = contentTypeProblem(request);
  return problem === undefined ? undefined : notJSONResponse(problem, body);
}

/**
 * The 415 answer for a `contentTypeProblem` already found.
 *
 * @example
 * const problem = contentTypeProblem(request);
 * if (problem !== undefined) return notJSONResponse(problem, (message) => ({error: message}));
 */
export function notJSONResponse(problem: string, body: (message: string) => unknown): Response {
  return Response.json(body(problem), {
    status: 415,
    headers: { 'accept-post': 'application/json' },
  });
}

/** Reads a body up to `limit` bytes; `undefined` means it was larger. */
export async function readBody(request: Request, limit: number): Promise<string | undefined> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) return undefined;
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A parsed message, or why it could not be parsed. `rich` says the reply should be too. */
export type DecodedBody<T> =
  | { readonly ok: true; readonly value: T; readonly rich: boolean }
  | { readonly ok: false; readonly message: string };

/**
 * Unwraps a superjson envelope if the body is one and checks it against `schema`, naming
 * the failing fields. `read`, if given, reads a body of the usual shape faster, as the
 * schema would, and returns `undefined` for anything else. Push and pull share it, so both
 * accept rich and plain JSON alike.
 *
 * @example
 * const decoded = decodeBody(body, pushRequestSchema, 'push');
 * if (!decoded.ok) return failed(400, 'parse', decoded.message);
 */
export function decodeBody<T>(
  body: unknown,
  schema: z.ZodType<T>,
  what: string,
  read?: (raw: unknown) => T | undefined,
): DecodedBody<T> {
  const rich = isEnvelope(body);
  let raw: unknown;
  try {
    raw = rich ? decodeRich(body) : body;
  } catch (error) {
    return { ok: false, message: `Bad superjson body: ${(error as Error).message}` };
  }
  // A hand-written reader of the usual shape, where there is one; the schema otherwise.
  const quick = read?.(raw);
  if (quick !== undefined) return { ok: true, value: quick, rich };
  const parsed = schema.safeParse(raw);
  return parsed.success
    ? { ok: true, value: parsed.data, rich }
    : { ok: false, message: `Bad ${what} body: ${describeIssues(parsed.error.issues)}` };
}
