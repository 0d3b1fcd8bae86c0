import {
  ApplicationError,
  decodeRich,
  encodeRich,
  type MutationResult,
  type SuperJSONEnvelope,
  toApplicationError,
  toStorableText,
} from '@reprise/shared';

// A mutation's result is stored in jsonb and sent back by push and pull. Postgres refuses
// U+0000 and unpaired UTF-16 surrogates in jsonb, and a value superjson cannot encode
// (a cycle JSON cannot hold, a key such as `constructor`, nesting past the stack) cannot
// be stored or sent at all. Either would fail the push after the mutation ran, every time
// it is resent, and block the client's queue. So such characters become U+FFFD, and a
// return value that cannot be encoded fails the mutation instead.

// How JSON.stringify writes U+0000 and an unpaired surrogate; a false hit only costs a walk.
const ESCAPED_UNSTORABLE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

type Storable = { readonly ok: true; readonly value: unknown } | { readonly ok: false };

/** `value` as Postgres stores it and the wire carries it, or `ok: false` if it cannot be. */
function toStorable(value: unknown): Storable {
  try {
    const text = JSON.stringify(encodeRich(value));
    if (!ESCAPED_UNSTORABLE.test(text)) return { ok: true, value };
    const envelope = replaceUnstorable(JSON.parse(text)) as SuperJSONEnvelope;
    return { ok: true, value: decodeRich(envelope) };
  } catch {
    return { ok: false };
  }
}

/** A copy of plain JSON with U+0000 and unpaired surrogates replaced, in keys too. */
function replaceUnstorable(value: unknown): unknown {
  if (typeof value === 'string') return toStorableText(value);
  if (Array.isArray(value)) return value.map(replaceUnstorable);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // defineProperty, so a key such as `__proto__` stays a key and sets no prototype.
    Object.defineProperty(copy, toStorableText(key), {
      value: replaceUnstorable(item),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

/**
 * What a mutator returned, as it will be stored and sent. Call it inside the mutation's
 * transaction: a value that cannot be encoded throws an `ApplicationError`, so the
 * mutation fails and its writes roll back like any other throw.
 *
 * @example
 * const data = storableData(await runMutator(mutator, {tx, args, ctx}));
 */
export function storableData(data: unknown): unknown {
  if (data === undefined) return undefined;
  const stored = toStorable({ data });
  if (!stored.ok) {
    throw new ApplicationError(
      'The mutator returned a value that cannot be stored or sent (a cycle, a key such as "constructor", or nesting too deep)',
    );
  }
  return (stored.value as { data: unknown }).data;
}

/**
 * The `{error: 'app'}` result for anything a mutator threw, as it will be stored and sent:
 * U+0000 and unpaired surrogates in the message and details become U+FFFD, and details
 * that cannot be encoded at all are dropped. It never throws.
 *
 * @example
 * storableAppError(new ApplicationError('No', {details: {why: 'a\u0000b'}}));
 * // {error: 'app', message: 'No', details: {why: 'a\uFFFDb'}}
 */
export function storableAppError(error: unknown): MutationResult {
  let appError: ApplicationError;
  try {
    appError = toApplicationError(error);
  } catch {
    // A thrown value with no usable string form, such as Object.create(null).
    appError = new ApplicationError('The mutator threw a value that is not an Error');
  }
  const message = toStorableText(String(appError.message));
  if (appError.details === undefined) return { error: 'app', message };
  const stored = toStorable({ error: 'app', message, details: appError.details });
  return stored.ok ? (stored.value as MutationResult) : { error: 'app', message };
}
