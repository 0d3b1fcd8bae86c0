import { z } from 'zod';

// The push protocol, version 1, as Zero's client and zero-cache speak it. Unknown keys are
// ignored rather than refused, so newer senders keep working.

/**
 * True when Postgres stores `text` exactly as it is. `text` and `jsonb` refuse U+0000;
 * `jsonb` refuses an unpaired UTF-16 surrogate, and drivers turn one into U+FFFD on its
 * way into `text`, so an id holding one would come back as another id.
 *
 * @example
 * isStorableText('c1'); // true
 * isStorableText('c\u00001'); // false
 */
export function isStorableText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0) return false;
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

// A surrogate pair is kept; a lone surrogate or U+0000 is replaced.
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is what it looks for.
const UNSTORABLE = /[\uD800-\uDBFF][\uDC00-\uDFFF]|[\u0000\uD800-\uDFFF]/g;

/**
 * `text` with every U+0000 and unpaired UTF-16 surrogate replaced by U+FFFD, so Postgres
 * stores it and hands it back unchanged.
 *
 * @example
 * toStorableText('a\u0000b'); // 'a\uFFFDb'
 */
export function toStorableText(text: string): string {
  if (isStorableText(text)) return text;
  return text.replace(UNSTORABLE, (match) => (match.length === 2 ? match : '\uFFFD'));
}

/** The longest client and client group id accepted, in UTF-16 units: well inside an index row. */
export const MAX_ID_LENGTH = 256;
/** The longest mutator name (and request id) accepted. */
export const MAX_NAME_LENGTH = 1024;

const UNSTORABLE_MESSAGE = 'must not contain U+0000 or an unpaired UTF-16 surrogate';

/** A string Postgres stores unchanged, of `min` to `max` UTF-16 units. */
function storableString(min: number, max: number) {
  return z.string().min(min).max(max).refine(isStorableText, UNSTORABLE_MESSAGE);
}

/** A client or client group id as a request may carry it. */
export const idTextSchema = storableString(1, MAX_ID_LENGTH);

/** The id of one mutation: its client and its per-client number. */
export const mutationIDSchema = z.object({
  id: z.number().int().nonnegative(),
  clientID: z.string().min(1),
});
export type MutationID = z.infer<typeof mutationIDSchema>;

/** One mutation in a push: a named mutator call with its single argument. */
export const customMutationSchema = z.object({
  type: z.literal('custom'),
  id: z.number().int().positive(),
  clientID: idTextSchema,
  name: storableString(1, MAX_NAME_LENGTH),
  args: z.array(z.unknown()).max(1, 'args holds the mutator argument as its only element'),
  timestamp: z.number(),
});
export type CustomMutation = z.infer<typeof customMutationSchema>;

export const pushRequestSchema = z.object({
  clientGroupID: idTextSchema,
  mutations: z.array(customMutationSchema),
  pushVersion: z.number().int(),
  schemaVersion: z.number().optional(),
  timestamp: z.number(),
  requestID: storableString(0, MAX_NAME_LENGTH),
});
export type PushRequest = z.infer<typeof pushRequestSchema>;

const isText = (value: unknown, min: number, max: number): value is string =>
  typeof value === 'string' && value.length >= min && value.length <= max && isStorableText(value);

const isRecord = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

function readMutation(m: unknown): CustomMutation | undefined {
  if (!isRecord(m) || m.type !== 'custom') return undefined;
  const { id, clientID, name, args, timestamp } = m;
  if (!Number.isSafeInteger(id) || (id as number) <= 0) return undefined;
  if (!isText(clientID, 1, MAX_ID_LENGTH) || !isText(name, 1, MAX_NAME_LENGTH)) return undefined;
  if (!Array.isArray(args) || args.length > 1 || !Number.isFinite(timestamp)) return undefined;
  return {
    type: 'custom',
    id: id as number,
    clientID,
    name,
    args: [...args],
    timestamp: timestamp as number,
  };
}

/**
 * `pushRequestSchema.parse` for a push of the usual shape, by hand: a server reads one on
 * every push, and zod's general walk over it costs several times this. It accepts no more
 * than the schema and returns what the schema would (known keys only, in a fresh object);
 * anything it does not accept outright is `undefined`, and the caller asks the schema,
 * which also says what is wrong. `pushRequestSchema` stays the definition and the type.
 *
 * @example
 * const push = readPushRequest(body) ?? pushRequestSchema.parse(body);
 */
export function readPushRequest(raw: unknown): PushRequest | undefined {
  if (!isRecord(raw)) return undefined;
  const { clientGroupID, mutations, pushVersion, schemaVersion, timestamp, requestID } = raw;
  if (!isText(clientGroupID, 1, MAX_ID_LENGTH) || !isText(requestID, 0, MAX_NAME_LENGTH)) {
    return undefined;
  }
  if (!Number.isSafeInteger(pushVersion) || !Number.isFinite(timestamp)) return undefined;
  // A key present with `undefined` (a superjson body can carry one) is left to the schema.
  const hasSchemaVersion = Object.hasOwn(raw, 'schemaVersion');
  if (hasSchemaVersion && !Number.isFinite(schemaVersion)) return undefined;
  if (!Array.isArray(mutations)) return undefined;
  const read: CustomMutation[] = [];
  for (const m of mutations) {
    const mutation = readMutation(m);
    if (!mutation) return undefined;
    read.push(mutation);
  }
  return {
    clientGroupID,
    mutations: read,
    pushVersion: pushVersion as number,
    ...(hasSchemaVersion ? { schemaVersion: schemaVersion as number } : {}),
    timestamp: timestamp as number,
    requestID,
  };
}

/** The version of the push protocol this package speaks. */
export const PUSH_VERSION = 1;

const identifier = z
  .string()
  .regex(/^[A-Za-z0-9_]+$/, 'must be letters, digits and underscores')
  .max(63);

/** The query parameters zero-cache appends to the push URL. */
export const pushQuerySchema = z.object({
  schema: identifier.optional(),
  appID: identifier.optional(),
});
export type PushQuery = z.infer<typeof pushQuerySchema>;

export const mutationOkSchema = z.object({ data: z.unknown().optional() });
export const mutationAppErrorSchema = z.object({
  error: z.literal('app'),
  message: z.string().optional(),
  details: z.unknown().optional(),
});
export const mutationAlreadyProcessedSchema = z.object({
  error: z.literal('alreadyProcessed'),
  details: z.unknown().optional(),
});
export const mutationResultSchema = z.union([
  mutationAppErrorSchema,
  mutationAlreadyProcessedSchema,
  mutationOkSchema,
]);
export type MutationResult = z.infer<typeof mutationResultSchema>;

export const mutationResponseSchema = z.object({
  id: mutationIDSchema,
  result: mutationResultSchema,
});
export type MutationResponse = z.infer<typeof mutationResponseSchema>;

export const mutateResponseSchema = z.object({
  kind: z.literal('MutateResponse'),
  userID: z.string().optional(),
  mutations: z.array(mutationResponseSchema),
});
export type MutateResponse = z.infer<typeof mutateResponseSchema>;

// `unauthorized` (sent with a 403) extends Zero's list: the client group belongs to
// another user.
export const pushFailedReasonSchema = z.enum([
  'parse',
  'unauthorized',
  'oooMutation',
  'unsupportedPushVersion',
  'database',
  'internal',
]);
export type PushFailedReason = z.infer<typeof pushFailedReasonSchema>;

export const pushFailedSchema = z.object({
  kind: z.literal('PushFailed'),
  origin: z.literal('server'),
  reason: pushFailedReasonSchema,
  message: z.string(),
  mutationIDs: z.array(mutationIDSchema),
  details: z.unknown().optional(),
});
export type PushFailed = z.infer<typeof pushFailedSchema>;

export const pushResponseSchema = z.discriminatedUnion('kind', [
  mutateResponseSchema,
  pushFailedSchema,
]);
export type PushResponse = z.infer<typeof pushResponseSchema>;

/**
 * Summarises zod issues as one line naming each failing path, for 400 bodies.
 *
 * @example
 * describeIssues(error.issues); // 'mutations.0.id: Invalid input: expected number'
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`)
    .join('; ');
}
