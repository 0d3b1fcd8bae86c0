import superjson from 'superjson';

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
  const keys = Object.keys(body);
  return keys.includes('json') && keys.every((key) => key === 'json' || key === 'meta');
}

/** Encodes a value as a superjson envelope. */
export function encodeRich(value: unknown): SuperJSONEnvelope {
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
  return superjson.serialize(value).json;
}
