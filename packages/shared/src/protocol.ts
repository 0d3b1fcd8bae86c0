import { z } from 'zod';

// The push protocol, version 1, as Zero's client and zero-cache speak it. Unknown keys are
// ignored rather than refused, so newer senders keep working.

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
  clientID: z.string().min(1),
  name: z.string().min(1),
  args: z.array(z.unknown()).max(1, 'args holds the mutator argument as its only element'),
  timestamp: z.number(),
});
export type CustomMutation = z.infer<typeof customMutationSchema>;

export const pushRequestSchema = z.object({
  clientGroupID: z.string().min(1),
  mutations: z.array(customMutationSchema),
  pushVersion: z.number().int(),
  schemaVersion: z.number().optional(),
  timestamp: z.number(),
  requestID: z.string(),
});
export type PushRequest = z.infer<typeof pushRequestSchema>;

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
