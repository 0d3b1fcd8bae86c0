import {
  type CustomMutation,
  idTextSchema,
  isStorableText,
  MAX_NAME_LENGTH,
  type MutationID,
  type MutationResponse,
  PUSH_VERSION,
  type PushFailed,
  type PushFailedReason,
  type PushRequest,
  type PushResponse,
} from '@reprise/shared';
import { z } from 'zod';
import { CLEANUP_RESULTS_MUTATION, type ShardTables } from '../db/zero-shard';
import { decodeBody } from '../http/request-body';
import type { PushOutcome } from './push-processor';

// Zero mode answers a push as Zero 1.9's `handleMutateRequest` (zero-server's
// process-mutations.ts) does, so zero-cache, which ignores the body of any non-2xx
// answer, passes every reason on to its client: each PushFailed is HTTP 200, the checks
// run in Zero's order (body, then query, then push version), and the body is read with
// Zero's looser rules: any number as a mutation id, any name, `crud` mutations.

const storable = (max: number) =>
  z
    .string()
    .max(max)
    .refine(isStorableText, 'must not contain U+0000 or an unpaired UTF-16 surrogate');

const zeroCustomMutationSchema = z.object({
  type: z.literal('custom'),
  id: z.number(),
  clientID: idTextSchema,
  name: storable(MAX_NAME_LENGTH),
  args: z.array(z.unknown()),
  timestamp: z.number(),
});

// Zero's legacy CRUD mutation, which Zero's server refuses (see `crudRefusal`).
const zeroCrudMutationSchema = z.object({
  type: z.literal('crud'),
  id: z.number(),
  clientID: idTextSchema,
  name: z.literal('_zero_crud'),
  args: z.tuple([
    z.object({
      ops: z.array(
        z.object({
          op: z.enum(['insert', 'upsert', 'update', 'delete']),
          tableName: z.string(),
          primaryKey: z.array(z.string()).min(1),
          value: z.record(z.string(), z.unknown()),
        }),
      ),
    }),
  ]),
  timestamp: z.number(),
});

const zeroPushRequestSchema = z.object({
  clientGroupID: idTextSchema,
  mutations: z.array(z.union([zeroCustomMutationSchema, zeroCrudMutationSchema])),
  pushVersion: z.number(),
  schemaVersion: z.number().optional(),
  timestamp: z.number(),
  requestID: storable(MAX_NAME_LENGTH),
});

type ZeroPush = z.infer<typeof zeroPushRequestSchema>;

/** A Zero-mode PushFailed: always HTTP 200, since zero-cache reads no other body. */
export function zeroFailed(
  reason: Exclude<PushFailedReason, 'unauthorized'>,
  message: string,
  mutations: readonly MutationID[] = [],
): { status: 200; body: PushFailed } {
  return {
    status: 200,
    body: {
      kind: 'PushFailed',
      origin: 'server',
      reason,
      message,
      mutationIDs: mutations.map((m) => ({ id: m.id, clientID: m.clientID })),
    },
  };
}

type QueryInput = URLSearchParams | Readonly<Record<string, unknown>>;

/** zero-cache's `schema` and `appID`, both required as Zero requires them. */
function readZeroQuery(query: QueryInput): { schema: string } | { message: string } {
  // As Zero reads them: the last of repeated parameters wins.
  const entries: Record<string, unknown> =
    query instanceof URLSearchParams ? Object.fromEntries(query) : { ...query };
  const missing = ['schema', 'appID'].filter((key) => typeof entries[key] !== 'string');
  if (missing.length > 0) {
    return {
      message: `Failed to parse push query parameters: ${missing.join(' and ')} must be given as text (zero-cache appends ?schema=<appID>_<shardNum>&appID=<appID>)`,
    };
  }
  return { schema: entries.schema as string };
}

/** What the Zero-mode push needs from `processMutateRequest`. */
export interface ZeroPushInput {
  readonly body: unknown;
  readonly query: QueryInput;
  readonly shards: ReadonlyMap<string, ShardTables>;
  readonly maxMutations: number;
  /** Why the authenticated user id cannot be stored, if it cannot. */
  readonly badUserID: string | undefined;
  /** Applies the push; `internal` when it threw (the error is logged by then). */
  readonly run: (
    push: PushRequest,
    shard: ShardTables,
  ) => Promise<PushOutcome | { readonly kind: 'internal' }>;
  readonly userID: string | undefined;
}

/** The Zero-mode answer to a push: the body and whether it came in superjson's envelope. */
export async function processZeroPush(
  input: ZeroPushInput,
): Promise<{ status: number; body: unknown; rich: boolean }> {
  const decoded = decodeBody(input.body, zeroPushRequestSchema, 'push');
  if (!decoded.ok) {
    return { ...zeroFailed('parse', `Failed to parse push body: ${decoded.message}`), rich: false };
  }
  const { value: push, rich } = decoded;
  const all = push.mutations;
  const query = readZeroQuery(input.query);
  if ('message' in query) return { ...zeroFailed('parse', query.message, all), rich };
  if (input.badUserID !== undefined) {
    return { ...zeroFailed('parse', `userID: ${input.badUserID}`, all), rich };
  }
  if (push.pushVersion !== PUSH_VERSION) {
    const message = `Unsupported push version: ${push.pushVersion}`;
    return { ...zeroFailed('unsupportedPushVersion', message, all), rich };
  }
  if (all.length > input.maxMutations) {
    const message = `Push carries ${all.length} mutations; at most ${input.maxMutations} are accepted (zero-cache sends queued pushes together: raise or remove maxMutations)`;
    return { ...zeroFailed('parse', message, all), rich };
  }

  // Zero's server handles the mutations before a `crud` one, then fails the push there.
  const crudAt = all.findIndex((m) => m.type === 'crud');
  const custom = (crudAt === -1 ? all : all.slice(0, crudAt)) as CustomMutation[];
  const shard = input.shards.get(query.schema);
  if (!shard) {
    // Zero's LMID statement fails on the missing table; its cleanup failures are ignored.
    const first = custom.findIndex((m) => m.name !== CLEANUP_RESULTS_MUTATION);
    if (first !== -1) {
      const message = `Database transaction failed: shard "${query.schema}" is not one this server keeps (its zero.shards option names ${[...input.shards.keys()].join(', ')})`;
      return { ...zeroFailed('database', message, all.slice(first)), rich };
    }
    return crudAt === -1 ? { ...success([], input.userID), rich } : crudRefusal(all, crudAt, rich);
  }

  const outcome = await input.run(asPushRequest(push, custom), shard);
  if (outcome.kind === 'internal') {
    return { ...zeroFailed('internal', 'Internal error while processing the push', all), rich };
  }
  if (outcome.kind === 'forbidden') {
    // Zero has no reason for this (Reprise's `unauthorized`); zero-cache only accepts its own.
    return { ...zeroFailed('internal', outcome.message, all), rich };
  }
  if (outcome.kind !== 'ok') {
    const reason = outcome.kind === 'ooo' ? 'oooMutation' : 'database';
    return { ...zeroFailed(reason, outcome.message, rest(outcome, all, custom)), rich };
  }
  if (crudAt !== -1) return crudRefusal(all, crudAt, rich);
  return { ...success(outcome.mutations, input.userID), rich };
}

/** Zero's `mutationIDs`: those not processed, up to the end of the push (crud ones too). */
function rest(
  outcome: { unprocessed: readonly CustomMutation[] },
  all: ZeroPush['mutations'],
  custom: readonly CustomMutation[],
) {
  return all.slice(custom.length - outcome.unprocessed.length);
}

/**
 * Zero 1.9's server asserts every mutation it is sent is a custom one: a legacy `crud`
 * mutation fails the push as `internal` there, listing it and the ones after it.
 */
function crudRefusal(all: ZeroPush['mutations'], crudAt: number, rich: boolean) {
  return { ...zeroFailed('internal', 'Expected custom mutation', all.slice(crudAt)), rich };
}

function success(mutations: MutationResponse[], userID: string | undefined) {
  const body: PushResponse = {
    kind: 'MutateResponse',
    ...(userID === undefined ? {} : { userID }),
    mutations,
  };
  return { status: 200, body };
}

function asPushRequest(push: ZeroPush, mutations: CustomMutation[]): PushRequest {
  return {
    clientGroupID: push.clientGroupID,
    mutations,
    pushVersion: push.pushVersion,
    ...(push.schemaVersion === undefined ? {} : { schemaVersion: push.schemaVersion }),
    timestamp: push.timestamp,
    requestID: push.requestID,
  };
}
