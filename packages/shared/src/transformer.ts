import superjson from 'superjson';
import { JSON_NULL } from './json-null';
import { parseTimestamp, Timestamp } from './timestamp';

// A Timestamp crosses the wire as its text, microseconds and infinity included; superjson's
// own Date rule would cut it to a millisecond Date. Custom rules are tried before it.
superjson.registerCustom<Timestamp, string>(
  {
    isApplicable: (value): value is Timestamp => value instanceof Timestamp,
    serialize: (value) => value.toISOString(),
    deserialize: (text) => parseTimestamp(text),
  },
  'reprise.timestamp',
);

// JSON_NULL as JSON is `null`; the rule's annotation tells it from SQL NULL.
superjson.registerCustom<unknown, null>(
  {
    isApplicable: (value): value is unknown => value === JSON_NULL,
    serialize: () => null,
    deserialize: () => JSON_NULL,
  },
  'reprise.json-null',
);

/**
 * A body in superjson's envelope. Reprise's own client sends pushes this way so that
 * Dates, BigInts, Maps and Sets survive the wire; a plain JSON body is accepted too.
 */
export interface SuperJSONEnvelope {
  readonly json: unknown;
  readonly meta?: unknown;
}

/**
 * True when `body` is a superjson envelope rather than a plain message. Plain protocol
 * messages always carry their own top-level fields, so the two never collide.
 *
 * @example
 * isEnvelope(encodeRich({a: new Date()})); // true
 */
export function isEnvelope(body: unknown): body is SuperJSONEnvelope {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  // Most bodies are plain: no `json` key, no need to list their keys.
  if (!Object.hasOwn(body, 'json')) return false;
  const keys = Object.keys(body);
  return keys.includes('json') && keys.every((key) => key === 'json' || key === 'meta');
}

/** Encodes a value as a superjson envelope. */
export function encodeRich(value: unknown): SuperJSONEnvelope {
  if (isPlainJSON(value)) return { json: value };
  const { json, meta } = superjson.serialize(value);
  return meta === undefined ? { json } : { json, meta };
}

/** Decodes a superjson envelope back to rich values. */
export function decodeRich(envelope: SuperJSONEnvelope): unknown {
  return superjson.deserialize(envelope as Parameters<typeof superjson.deserialize>[0]);
}

/**
 * Makes a value plain-JSON safe for a client that did not ask for superjson: Dates become
 * ISO strings, BigInts decimal strings, Maps objects... as superjson's JSON half has them.
 */
export function toPlainJSON(value: unknown): unknown {
  return isPlainJSON(value) ? value : superjson.serialize(value).json;
}

// Keys superjson refuses (prototype pollution); it throws on them, so they take its path.
const REFUSED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_PLAIN_DEPTH = 64;

/**
 * True when superjson would hand `value` back unchanged and without meta: strings,
 * booleans, null, finite numbers other than -0, and plain arrays and objects of those, each
 * object met once (superjson records a repeated one in meta). Most pushes, results and rows
 * are such values, and this check costs a fraction of superjson's walk.
 */
function isPlainJSON(value: unknown, seen?: Set<object>, depth = 0): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_PLAIN_DEPTH) return false;
  const visited = seen ?? new Set<object>();
  if (visited.has(value)) return false;
  visited.add(value);
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !isPlainJSON(value[i], visited, depth + 1)) return false;
    }
    return true;
  }
  // A null-prototype object comes back from superjson as an ordinary one.
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) {
    if (REFUSED_KEYS.has(key)) return false;
    if (!isPlainJSON((value as Record<string, unknown>)[key], visited, depth + 1)) return false;
  }
  return true;
}
