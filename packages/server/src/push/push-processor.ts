import {
  type AnyMutators,
  type AnySchema,
  ApplicationError,
  type CustomMutation,
  encodeRich,
  flattenMutators,
  type MutationResponse,
  type MutationResult,
  type Mutator,
  type PushRequest,
  runMutator,
  type ServerTransaction,
} from '@reprise/shared';
import { announceCommit } from '../changes/announcer';
import {
  originStatement,
  originStatementText,
  type PendingOrigin,
  pendingOrigin,
  storeFunctionReady,
} from '../changes/capture';
import { ORIGIN_SETTING, storeCallSQL } from '../changes/capture-functions';
import { type ChangeOrigin, type RecordedChange, writeChanges } from '../changes/changelog';
import {
  type ClientClaim,
  checkOwner,
  claimClient,
  claimGroup,
  ForbiddenError,
  leadingRun,
} from '../db/client-claim';
import { conflictGateOf } from '../db/conflict-gate';
import {
  type Database,
  DatabaseError,
  type DatabaseTransaction,
  databaseErrorMessage,
  type IsolationLevel,
  isTransientError,
  publicDatabaseReason,
} from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { type RetryPolicy, withRetries } from '../db/retry';
import {
  CLEANUP_RESULTS_MUTATION,
  claimZeroClient,
  cleanupShardResults,
  type ShardTables,
  saveShardLMID,
  storeShardResult,
} from '../db/zero-shard';
import type { JobSpec } from '../jobs/job-backend';
import { collectJobs, type JobQueue, queueInternals } from '../jobs/job-queue';
import { observeAttempt } from '../telemetry';
import { createSchemaMutate } from './schema-mutate';
import { storableAppError, storableData } from './storable-result';
import type { WriteCapture } from './table-writer';
import { createWatchedTransaction, type TransactionUse } from './watched-transaction';
import { createWriteGuard } from './write-guard';
import { resolveScopeKeys, type ScopeKey, type WritePolicy } from './write-policy';

/** Everything the processor needs, with defaults filled in. */
export interface PushConfig {
  readonly db: Database;
  readonly schema: AnySchema;
  readonly mutators: AnyMutators;
  readonly context: unknown;
  readonly userID: string | undefined;
  readonly tables: EngineTables;
  readonly isolation: IsolationLevel;
  readonly retry: RetryPolicy;
  readonly logger: Logger;
  /**
   * Record every tx.mutate write in the changelog (the default). Only where the database
   * has no triggers (pg-mem): elsewhere the capture triggers record every write.
   */
  readonly changelog: boolean;
  /** Checked on every `tx.mutate` write when set; the scope keys come from `scopeKey`. */
  readonly writePolicy?: WritePolicy | undefined;
  readonly scopeKey?: ScopeKey<CustomMutation> | undefined;
  /**
   * Zero mode: LMIDs and app-error results go to this shard's tables (zero-shard.ts), ids
   * are compared as Zero compares them, and `_zero_cleanupResults` deletes results.
   */
  readonly zero?: { readonly shard: ShardTables } | undefined;
  /** The queue `tx.enqueue` adds jobs to. */
  readonly jobs?: JobQueue | undefined;
}

/** How a push ended, before it is put on the wire. */
export type PushOutcome =
  | { readonly kind: 'ok'; readonly mutations: MutationResponse[] }
  | {
      readonly kind: 'ooo' | 'database';
      readonly message: string;
      readonly processed: MutationResponse[];
      readonly unprocessed: CustomMutation[];
    }
  | { readonly kind: 'forbidden'; readonly message: string };

const NO_JOB_QUEUE = 'tx.enqueue needs a job queue: pass `jobs` to the mutate handler';

/** The first mutation applied in a transaction threw; the transaction must roll back. */
class FirstMutationFailed extends Error {
  constructor(
    readonly index: number,
    readonly error: unknown,
    readonly processed: MutationResponse[],
  ) {
    super('first mutation of the transaction failed');
  }
}

/**
 * A later mutation, run without a savepoint, threw after it may have written (or a
 * statement failed): the transaction must roll back, and the chunk runs again with a
 * savepoint for each mutation from `index` on.
 */
class SavepointNeeded extends Error {
  constructor(readonly index: number) {
    super('a mutation without a savepoint failed');
  }
}

/**
 * A client's claim went out ahead of its first mutation on the guess that the mutation is
 * the client's next, and it was not: the transaction rolls back, and the chunk runs again
 * with each claim answered before its mutations start.
 */
class ClaimMissed extends Error {
  constructor() {
    super("a mutation started before its client's claim was answered, and was not next");
  }
}

interface Chunk {
  readonly responses: MutationResponse[];
  readonly hooks: Array<() => void | Promise<void>>;
  readonly next: number;
  readonly ooo?: { readonly expected: number };
}

/**
 * The most mutations one transaction applies. When one fails, the transaction runs again
 * with a savepoint for each mutation after it, and Postgres caches 64 subtransaction ids
 * per backend: past that, every other session's snapshot checks fall back to pg_subtrans,
 * slowing the whole server. A longer push commits and goes on in a new transaction.
 */
export const MAX_MUTATIONS_PER_TRANSACTION = 64;

/**
 * Applies a push's mutations in order, exactly once each. Mutations share one transaction
 * (up to MAX_MUTATIONS_PER_TRANSACTION) until one needs a fresh one, so a push of many
 * pays one commit. They run without savepoints, each a statement or two fewer: a mutation
 * that fails before it could write is recorded in the same transaction; one that may have
 * written rolls the transaction back, and it runs again with a savepoint for that mutation
 * and each after it, which then undo only their own writes when they fail.
 */
export async function processPush(push: PushRequest, config: PushConfig): Promise<PushOutcome> {
  const { mutations } = push;
  const responses: MutationResponse[] = [];
  let index = 0;
  let forcedFailure: { index: number; error: unknown } | undefined;
  // From which mutation on the chunk runs each mutation in a savepoint.
  let savepointsFrom = Number.POSITIVE_INFINITY;
  // Whether a client's mutations may start before its claim is answered (see applyChunk).
  let overlap = true;
  while (index < mutations.length) {
    let chunk: Chunk;
    try {
      const start = index;
      const failure = forcedFailure;
      const from = savepointsFrom;
      const early = overlap;
      chunk = await withRetries(
        config.retry,
        (attempt) =>
          observeAttempt('push', attempt, () =>
            config.db.transaction(
              (tx) =>
                applyChunk(
                  tx,
                  push,
                  { start, forcedFailure: failure, savepointsFrom: from, overlap: early },
                  config,
                ),
              { isolation: config.isolation },
            ),
          ),
        conflictGateOf(config.db),
      );
      forcedFailure = undefined;
      savepointsFrom = Number.POSITIVE_INFINITY;
      overlap = true;
    } catch (error) {
      if (error instanceof ClaimMissed) {
        // Nothing of the chunk is left: it runs again with every claim answered first.
        overlap = false;
        continue;
      }
      if (error instanceof FirstMutationFailed) {
        // Its writes are gone with the transaction; the next one records the failure.
        responses.push(...error.processed);
        index = error.index;
        forcedFailure = { index: error.index, error: error.error };
        continue;
      }
      if (error instanceof SavepointNeeded) {
        // Everything the chunk did is gone with the transaction: it runs again, from its
        // start. A mutation before `index` that fails this time (a mutator need not decide
        // the same twice) starts the savepoints earlier still, so this ends.
        savepointsFrom = error.index;
        continue;
      }
      if (error instanceof ForbiddenError) return { kind: 'forbidden', message: error.message };
      if (error instanceof DatabaseError || isTransientError(error)) {
        // The SQL stays in the server's log; the client gets the driver's message.
        const reason = publicDatabaseReason(error);
        config.logger.warn({ event: 'push.database', clientGroupID: push.clientGroupID, error });
        return {
          kind: 'database',
          message: `Database error; mutations from here on were not applied: ${reason}`,
          processed: responses,
          unprocessed: mutations.slice(index),
        };
      }
      throw error;
    }
    responses.push(...chunk.responses);
    // A mutation that succeeded may have written synced tables (an error's writes are gone).
    if (chunk.responses.some((r) => !('error' in r.result))) {
      announceCommit(config.db, config.tables, config.logger);
    }
    if (chunk.hooks.length > 0) await runHooks(chunk.hooks, config);
    if (chunk.ooo) {
      const next = mutations[chunk.next]!;
      return {
        kind: 'ooo',
        message: config.zero
          ? `Client ${next.clientID} sent mutation ID ${next.id} but expected ${chunk.ooo.expected}`
          : `Mutation ${next.id} of client ${next.clientID} is out of order: expected ${chunk.ooo.expected}`,
        processed: responses,
        unprocessed: mutations.slice(chunk.next),
      };
    }
    index = chunk.next;
  }
  return { kind: 'ok', mutations: responses };
}

/** Where a chunk starts and how its transaction runs, as the tries before it decided. */
interface ChunkPlan {
  readonly start: number;
  /** The mutation that failed first in the rolled-back transaction before, and its error. */
  readonly forcedFailure: { index: number; error: unknown } | undefined;
  /** From which mutation on each mutation runs in a savepoint. */
  readonly savepointsFrom: number;
  /** Whether a client's first mutation may start before its claim is answered. */
  readonly overlap: boolean;
}

async function applyChunk(
  tx: DatabaseTransaction,
  push: PushRequest,
  { start, forcedFailure, savepointsFrom, overlap }: ChunkPlan,
  config: PushConfig,
): Promise<Chunk> {
  const { tables } = config;
  const lmids = new Map<string, { persisted: number; current: number }>();
  const responses: MutationResponse[] = [];
  const hooks: Array<() => void | Promise<void>> = [];
  const changes: Array<RecordedChange & { origin: ChangeOrigin }> = [];
  // The jobs of the mutations applied so far, added by one statement as the chunk ends.
  const jobs: JobSpec[] = [];
  const mutatorsByName = flattenMutators(config.mutators);
  let applied = 0;
  let stop: Chunk['ooo'];
  // Which mutation the capture triggers' origin settings name now, if known.
  const recordsItself = config.db.capabilities.partialSQL;
  let origin: string | undefined;
  const originKey = (clientID: string, id: number) => `${clientID}\u0000${id}`;
  // A claim still on its way, and what the mutation behind it took it to say.
  let unanswered: { claim: Promise<ClientClaim>; expected: ClientClaim } | undefined;
  // The claim left the group's owner to check (a new client): that is done, and a new group
  // claimed, once the transaction is healthy.
  let groupToClaim = false;
  /**
   * Waits for the claim in flight; one that says otherwise than guessed undoes the chunk.
   * With `groupToo`, also checks the group's owner of a new client (claiming a new group),
   * which needs a transaction whose statements all succeeded: not so while a mutation's
   * failure is being handled.
   */
  const confirmClaim = async (groupToo: boolean) => {
    if (unanswered) {
      const { claim, expected } = unanswered;
      unanswered = undefined;
      const answer = await claim;
      if (answer.previous !== expected.previous || answer.persisted !== expected.persisted) {
        throw new ClaimMissed();
      }
      // A check still owed (a mutation failed before it was made) stays owed.
      if (answer.groupUnchecked) groupToClaim = true;
    }
    if (!groupToo || !groupToClaim) return;
    groupToClaim = false;
    let owner: string | null;
    try {
      owner = await claimGroup(tx, tables, push.clientGroupID, config.userID ?? null);
    } catch (error) {
      if (isTransientError(error)) throw error;
      throw new ClaimMissed();
    }
    checkOwner(push.clientGroupID, owner, config.userID ?? null);
  };
  let index = start;

  for (; index < push.mutations.length; index++) {
    if (applied === MAX_MUTATIONS_PER_TRANSACTION) break;
    const m = push.mutations[index]!;
    if (config.zero && m.name === CLEANUP_RESULTS_MUTATION) {
      // zero-cache's own request: no LMID, no answer, never a gap; a failure is ignored,
      // as Zero ignores it. It counts as applied: a later failure that rolls the
      // transaction back runs the whole chunk again, the cleanup included.
      await cleanupShardResults(tx, config.zero.shard, m.args[0]);
      applied++;
      continue;
    }
    let lmid = lmids.get(m.clientID);
    if (!lmid && config.zero) {
      const previous = await claimZeroClient(tx, tables, config.zero.shard, {
        clientGroupID: push.clientGroupID,
        clientID: m.clientID,
        userID: config.userID,
        checkGroup: lmids.size === 0,
      });
      lmid = { persisted: previous, current: previous };
      lmids.set(m.clientID, lmid);
    } else if (!lmid) {
      // Up to where this transaction stops, so the claim's LMID needs no correcting.
      const run = leadingRun(
        push.mutations,
        index,
        m.clientID,
        index + MAX_MUTATIONS_PER_TRANSACTION - applied,
      );
      // Only where the database is another process: an embedded one runs the claim on
      // this thread either way, and its `queued` statements are not prepared.
      const queued =
        overlap && !recordsItself && !config.db.capabilities.embedded ? tx.queued : undefined;
      // Where statements go out with COMMIT, the transaction's first claim tells the capture
      // triggers that the engine stores the captured changes itself, then, sparing each
      // transaction the commit trigger's queueing and call: a function call, prepared and
      // pipelined with COMMIT (postgres.js) or in COMMIT's own query (node-postgres).
      let storesChanges =
        !recordsItself &&
        lmids.size === 0 &&
        (tx.queryAtCommit !== undefined || tx.commitWith !== undefined) &&
        storeFunctionReady(tx, config.db, tables);
      if (typeof storesChanges !== 'boolean') storesChanges = await storesChanges;
      if (storesChanges) {
        if (tx.queryAtCommit) tx.queryAtCommit(storeCallSQL(tables));
        else tx.commitWith!(storeCallSQL(tables));
      }
      const ids = {
        clientGroupID: push.clientGroupID,
        clientID: m.clientID,
        userID: config.userID,
        run,
        // Saves a statement: the claim names the client's next mutation as the origin.
        originSetting: recordsItself ? undefined : ORIGIN_SETTING,
        storesChanges,
        // A claim answered later leaves a new client's group to confirmClaim.
        groupCheck: queued ? ('later' as const) : ('now' as const),
      };
      let claim: ClientClaim;
      if (queued) {
        // The claim is queued on the connection and the mutation starts at once, on the
        // guess that it is the client's next (a resend or a gap is rare): its statements
        // reach the server behind the claim, so they run with the client's row locked,
        // and the round trip the claim's answer took is saved. The answer is checked
        // before anything is recorded; a wrong guess rolls the chunk back (ClaimMissed).
        claim = { previous: m.id - 1, persisted: run.last };
        const claimed = claimClient({ query: queued }, config.db, tables, ids);
        // Awaited in confirmClaim, which rethrows its error; until then a failure is not
        // left unhandled while the mutation runs.
        claimed.catch(() => undefined);
        unanswered = { claim: claimed, expected: claim };
      } else {
        claim = await claimClient(tx, config.db, tables, ids);
      }
      if (!recordsItself) origin = originKey(m.clientID, claim.previous + 1);
      lmid = { persisted: claim.persisted, current: claim.previous };
      lmids.set(m.clientID, lmid);
    }
    const id = { clientID: m.clientID, id: m.id };
    // As Zero compares (the same as ≤ LMID for whole ids; Zero mode accepts any number).
    if (m.id < lmid.current + 1) {
      responses.push({
        id,
        result: config.zero
          ? {
              error: 'alreadyProcessed',
              details: `Ignoring mutation from ${m.clientID} with ID ${m.id} as it was already processed. Expected: ${lmid.current + 1}`,
            }
          : { error: 'alreadyProcessed' },
      });
      continue;
    }
    if (m.id > lmid.current + 1) {
      stop = { expected: lmid.current + 1 };
      break;
    }

    // A mutation that failed first in its transaction and was rolled back with it: an
    // ApplicationError is the app's answer and is recorded as it is. Any other error runs
    // the mutation once more, in a savepoint of a fresh transaction, so that only a failure
    // seen again on a healthy connection becomes its result: a lost connection never uses
    // up a mutation's id.
    const retried = forcedFailure?.index === index;
    let result: MutationResult;
    if (retried && forcedFailure?.error instanceof ApplicationError) {
      result = appErrorResult(forcedFailure.error);
      failed(hooks, mutatorsByName.get(m.name), forcedFailure.error, m, config);
    } else {
      // Each made on first use: most mutations register no hook and enqueue no job.
      let mutationHooks: Array<() => void | Promise<void>> | undefined;
      const mutationChanges: RecordedChange[] = [];
      let mutationJobs: ReturnType<typeof collectJobs> | undefined;
      let mutationJobSpecs: JobSpec[] | undefined;
      const mutationOrigin = {
        clientGroupID: push.clientGroupID,
        clientID: m.clientID,
        mutationID: m.id,
      };
      const capture: WriteCapture | undefined =
        recordsItself && config.changelog
          ? { record: (change) => mutationChanges.push(change) }
          : undefined;
      // How the mutator used its transaction, once it has one.
      let use: TransactionUse | undefined;
      // The statement naming the mutation for the capture triggers, when one went out.
      let named: Promise<unknown> | undefined;
      // The name its first write is to make, when none went out before it.
      let pending: PendingOrigin | undefined;
      const run = async (dbTx: DatabaseTransaction) => {
        const watched = createWatchedTransaction(dbTx, {
          schema: config.schema,
          partialSQL: config.db.capabilities.partialSQL,
          clientID: m.clientID,
          mutationID: m.id,
          mutate: createSchemaMutate(dbTx, {
            schema: config.schema,
            partialSQL: config.db.capabilities.partialSQL,
            capture,
            guard: guardFor(m, config),
            origin: pending,
          }),
          afterCommit: (fn) => {
            mutationHooks ??= [];
            mutationHooks.push(fn);
          },
          enqueue: ((...args: Parameters<ServerTransaction['enqueue']>) => {
            mutationJobs ??= collectJobs(config.jobs, NO_JOB_QUEUE);
            return mutationJobs.enqueue(...args);
          }) as ServerTransaction['enqueue'],
          beforeRawSQL: () => {
            if (pending?.value === undefined) return;
            // Queued at once, so it runs before any raw SQL; its failure fails the mutation
            // when `named` is awaited.
            const { text, params } = originStatement(mutationOrigin);
            named = dbTx.queued!(text, params);
            named.catch(() => undefined);
            pending.named();
          },
        });
        use = watched.use;
        const mutator = mutatorsByName.get(m.name);
        if (!mutator) throw new ApplicationError(`Unknown mutator "${m.name}"`);
        // Checked here, so a return value that cannot be stored fails (and rolls back) the mutation.
        const data = storableData(
          await runMutator(mutator, { tx: watched.tx, args: m.args[0], ctx: config.context }),
        );
        // An enqueue the mutator did not await still fails the mutation when its payload does.
        if (mutationJobs && mutationJobs.count() > 0) mutationJobSpecs = await mutationJobs.specs();
        return data;
      };
      // The first mutation of a transaction runs without a savepoint: if it fails, the
      // whole transaction rolls back and the next one records the failure, unless nothing
      // it did can have written (recordableHere), and then this one records it. So do the
      // later ones until one fails after it may have written (SavepointNeeded).
      const inSavepoint = retried || (applied > 0 && index >= savepointsFrom);
      try {
        // Names the mutation for the capture triggers. Outside a savepoint, where the driver
        // can queue a statement at once (`queued`), its first write does it in the same
        // statement (raw SQL gets a statement of its own first). In a savepoint, where the
        // driver takes two statements at once, the name goes out with the SAVEPOINT (inside
        // it); where it pipelines, right before it. Each saves a round trip. After a failure
        // the next mutation names itself again, whether the rollback undid the name or not.
        const key = originKey(m.clientID, m.id);
        let naming: string | undefined;
        if (!recordsItself && origin !== key) {
          if (!inSavepoint && tx.queued) {
            origin = undefined;
            pending = pendingOrigin(mutationOrigin, () => {
              origin = key;
            });
          } else if (inSavepoint && tx.savepointWith) {
            origin = key;
            naming = originStatementText(mutationOrigin);
          } else {
            origin = key;
            const { text, params } = originStatement(mutationOrigin);
            named = tx.query(text, params);
            if (config.db.capabilities.pipelining) named.catch(() => undefined);
            else await named;
          }
        }
        const data = !inSavepoint
          ? await run(tx)
          : naming !== undefined
            ? await tx.savepointWith!(naming, run)
            : await tx.savepoint(run);
        if (named) await named;
        if (mutationHooks) hooks.push(...mutationHooks);
        if (mutationJobSpecs) jobs.push(...mutationJobSpecs);
        for (const change of mutationChanges) changes.push({ ...change, origin: mutationOrigin });
        result = data === undefined ? {} : { data };
      } catch (error) {
        use?.end();
        // A claim that says the mutation was not next outranks what the mutation did.
        if (unanswered) await confirmClaim(false);
        // Named again by the next mutation: cheap, and it never trusts a failed statement.
        origin = undefined;
        // A lost connection or serialization failure retries the whole transaction.
        if (isTransientError(error)) throw error;
        if (!inSavepoint && !(await recordableHere(error, use, named))) {
          if (applied === 0) throw new FirstMutationFailed(index, error, responses);
          throw new SavepointNeeded(index);
        }
        result = appErrorResult(error);
        failed(hooks, mutatorsByName.get(m.name), error, m, config);
      }
    }
    if (unanswered || groupToClaim) await confirmClaim(true);
    if ('error' in result || result.data !== undefined) {
      // Nothing later in the transaction reads it: where the driver pipelines, it goes out
      // with COMMIT (a failure still rolls the whole transaction back), saving a round trip.
      const text = `INSERT INTO ${tables.mutationResults} ("clientGroupID", "clientID", "mutationID", "result")
         VALUES ($1, $2, $3, $4::text::jsonb)`;
      const params = [push.clientGroupID, m.clientID, m.id, JSON.stringify(encodeRich(result))];
      if (tx.queryAtCommit) tx.queryAtCommit(text, params);
      else await tx.query(text, params);
      if (config.zero && 'error' in result) {
        await storeShardResult(tx, config.zero.shard, push.clientGroupID, m.clientID, m.id, result);
      }
    }
    lmid.current = m.id;
    applied++;
    responses.push({ id, result });
  }

  // Every claim was answered above; this only keeps the chunk from ending unchecked.
  if (unanswered || groupToClaim) await confirmClaim(true);
  if (changes.length > 0) await writeChanges(tx, config.schema, tables, changes);

  if (jobs.length > 0 && config.jobs) {
    // One statement for every job of the chunk; sent with COMMIT where the driver pipelines.
    const queue = queueInternals(config.jobs);
    const { text, params } = queue.statement(jobs);
    if (tx.queryAtCommit) tx.queryAtCommit(text, params);
    else await tx.query(text, params);
    hooks.push(() => queue.added());
  }

  // The claim already wrote the LMID for the usual in-order push; only a push that went
  // past its first contiguous run needs another write.
  for (const [clientID, lmid] of lmids) {
    if (config.zero) {
      if (lmid.current !== lmid.persisted || lmid.current === 0) {
        await saveShardLMID(tx, config.zero.shard, push.clientGroupID, clientID, lmid.current);
      }
      continue;
    }
    if (lmid.current === lmid.persisted) continue;
    await tx.query(
      `UPDATE ${tables.clients} SET "lastMutationID" = $3
       WHERE "clientGroupID" = $1 AND "clientID" = $2`,
      [push.clientGroupID, clientID, lmid.current],
    );
  }
  return stop ? { responses, hooks, next: index, ooo: stop } : { responses, hooks, next: index };
}

/**
 * Whether the failure of a mutation that ran without a savepoint can be recorded in that
 * same transaction: an ApplicationError (the app's answer, final whatever the connection
 * does) thrown before the mutator could have written, with every statement of the
 * transaction so far answered without error. Then the one transaction holds exactly what
 * a rollback and a second transaction would (the LMID and the error result), at one
 * commit. Any other failure rolls back and runs once more, in a savepoint of a fresh
 * transaction, where it becomes the result if it fails again.
 */
async function recordableHere(
  error: unknown,
  use: TransactionUse | undefined,
  named: Promise<unknown> | undefined,
): Promise<boolean> {
  if (!(error instanceof ApplicationError)) return false;
  if (!use?.untouched()) return false;
  return (
    named === undefined ||
    named.then(
      () => true,
      () => false,
    )
  );
}

function guardFor(m: CustomMutation, config: PushConfig) {
  if (!config.writePolicy) return undefined;
  return createWriteGuard({
    policy: config.writePolicy,
    schema: config.schema,
    scopeKeys: resolveScopeKeys(config.scopeKey ?? config.userID, m),
    partialSQL: config.db.capabilities.partialSQL,
    isolation: config.isolation,
  });
}

/** Its failure is final once this transaction commits: then the mutator's `onFailure` runs. */
function failed(
  hooks: Array<() => void | Promise<void>>,
  mutator: Mutator | undefined,
  error: unknown,
  m: CustomMutation,
  config: PushConfig,
) {
  const onFailure = mutator?.definition.onFailure;
  if (onFailure) hooks.push(() => onFailure(error, { args: m.args[0], ctx: config.context }));
}

function appErrorResult(error: unknown): MutationResult {
  // Driver errors reach the client without the SQL text, which stays in server logs.
  const dbMessage = error instanceof ApplicationError ? undefined : databaseErrorMessage(error);
  // Stored in jsonb: U+0000 or an unencodable detail must not fail the push (see there).
  return storableAppError(dbMessage === undefined ? error : new Error(dbMessage, { cause: error }));
}

async function runHooks(hooks: Array<() => void | Promise<void>>, config: PushConfig) {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      config.logger.error({ event: 'push.afterCommit', error });
    }
  }
}
