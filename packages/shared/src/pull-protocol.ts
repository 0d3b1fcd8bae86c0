import { z } from 'zod';
import { idTextSchema, mutationResponseSchema } from './protocol';

// The pull protocol: a client group sends the cookie of its last pull and gets back what
// changed since, as a patch. Unknown keys in a request are ignored, as in push.

/** The version of the pull protocol this package speaks. */
export const PULL_VERSION = 1;

export const pullRequestSchema = z.object({
  clientGroupID: idTextSchema,
  /** The cookie of the last pull, or null for a first pull (a reset). */
  cookie: z.string().nullable(),
  pullVersion: z.number().int().optional(),
});
export type PullRequest = z.infer<typeof pullRequestSchema>;

const rowSchema = z.record(z.string(), z.unknown());

/** Insert or replace a row, by its primary key. */
export const putOpSchema = z.object({
  op: z.literal('put'),
  tableName: z.string(),
  value: rowSchema,
});
/** Remove the row with this primary key, if the client has it. */
export const delOpSchema = z.object({
  op: z.literal('del'),
  tableName: z.string(),
  id: rowSchema,
});
/** Drop every row the client holds; the puts that follow are all it may see. */
export const clearOpSchema = z.object({ op: z.literal('clear') });

export const patchOperationSchema = z.discriminatedUnion('op', [
  putOpSchema,
  delOpSchema,
  clearOpSchema,
]);
export type PatchOperation = z.infer<typeof patchOperationSchema>;

export const pullResponseSchema = z.object({
  /** Send it with the next pull. Opaque: only the server that issued it reads it. */
  cookie: z.string(),
  /** The last mutation id processed for every client of the group. */
  lastMutationIDChanges: z.record(z.string(), z.number().int().nonnegative()),
  patch: z.array(patchOperationSchema),
  /** Results (errors and return values) of the group's mutations since the cookie. */
  mutationResults: z.array(mutationResponseSchema),
});
export type PullResponse = z.infer<typeof pullResponseSchema>;

export const pullErrorKindSchema = z.enum([
  'parse',
  'badCookie',
  'unsupportedPullVersion',
  'unauthorized',
  'database',
  'internal',
]);
export type PullErrorKind = z.infer<typeof pullErrorKindSchema>;

/** The body of every non-200 pull response. */
export const pullErrorSchema = z.object({
  error: pullErrorKindSchema,
  message: z.string(),
});
export type PullError = z.infer<typeof pullErrorSchema>;
