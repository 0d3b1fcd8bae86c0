import type { AnySchema } from '@reprise/shared';
import { announceCommit } from '../changes/announcer';
import { originStatement } from '../changes/capture';
import { type ChangeOrigin, type RecordedChange, writeChanges } from '../changes/changelog';
import { conflictGateOf } from '../db/conflict-gate';
import {
  type Database,
  type DatabaseTransaction,
  databaseErrorMessage,
  type IsolationLevel,
  isTransientError,
} from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { type RetryPolicy, withRetries } from '../db/retry';
import type { CrudOperation } from '../push/crud-protocol';
import { MAX_MUTATIONS_PER_TRANSACTION } from '../push/push-processor';
import { type CrudWrite, type RefusalReason, validateOperation } from '../push/row-validation';
import { type AnyTableMutator, createSchemaMutate } from '../push/schema-mutate';
import type { WriteCapture } from '../push/table-writer';
import { WriteForbiddenError } from '../push/write-forbidden';
import { createWriteGuard } from '../push/write-guard';
import { resolveScopeKeys, type ScopeKey, type WritePolicy } from '../push/write-policy';

/** Why an operation was refused. */
export type CrudRefusalReason = RefusalReason | 'forbidden' | 'custom' | 'conflict';

/** What became of one operation. */
export type CrudOutcome =
  | { readonly status: 'applied' }
  | { readonly status: 'alreadyProcessed' }
  | { readonly status: 'refused'; readonly reason: CrudRefusalReason; readonly message: string };

/** What `customValidation` is given beside the operation. */
export interface CrudValidationContext {
  /** Runs SQL in the operation's transaction (its savepoint): it sees earlier operations. */
  readonly query: <R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ) => Promise<R[]>;
  readonly userID: string | undefined;
  readonly scopeKeys: ReadonlySet<string>;
  /** The `context` passed to the handler. */
  readonly context: unknown;
}

/** The app's own check of an operation: an error message refuses it, nothing lets it go on. */
export type CustomValidation = (
  op: CrudOperation,
  ctx: CrudValidationContext,
) =>
  | string
  | null
  | undefined
  | { readonly errorMessage: string | null | undefined }
  | Promise<string | null | undefined | { readonly errorMessage: string | null | undefined }>;

/** Everything the processor needs, with defaults filled in. */
export interface CrudConfig {
  readonly db: Database;
  readonly schema: AnySchema;
  readonly tables: EngineTables;
  readonly isolation: IsolationLevel;
  readonly retry: RetryPolicy;
  readonly userID: string | undefined;
  readonly clientID: string;
  readonly writePolicy: WritePolicy;
  readonly scopeKey: ScopeKey<CrudOperation> | undefined;
  readonly customValidation: CustomValidation | undefined;
  readonly context: unknown;
  /** Record writes in the engine where the database has no triggers (pg-mem). */
  readonly changelog: boolean;
  readonly aliases: Readonly<Record<string, string>> | undefined;
  readonly logger: Logger;
}

/** An operation's own refusal: rolls back its savepoint and becomes its result. */
class Refusal extends Error {
  constructor(
    readonly reason: CrudRefusalReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Applies CRUD operations in order: one transaction per up to 64 operations (as pushes
 * do), a savepoint each, so a refused one leaves no write and the rest go on. An operation
 * with an id is applied once: its receipt is written in the same transaction, and a resend
 * finds it. A transient failure retries the transaction; past the budget it is thrown.
 */
export async function processCrud(
  operations: readonly CrudOperation[],
  config: CrudConfig,
): Promise<CrudOutcome[]> {
  const outcomes: CrudOutcome[] = [];
  for (let start = 0; start < operations.length; start += MAX_MUTATIONS_PER_TRANSACTION) {
    const chunk = operations.slice(start, start + MAX_MUTATIONS_PER_TRANSACTION);
    const applied = await withRetries(
      config.retry,
      () =>
        config.db.transaction((tx) => applyChunk(tx, chunk, config), {
          isolation: config.isolation,
        }),
      conflictGateOf(config.db),
    );
    if (applied.some((outcome) => outcome.status === 'applied')) {
      announceCommit(config.db, config.tables, config.logger);
    }
    outcomes.push(...applied);
  }
  return outcomes;
}

async function applyChunk(
  tx: DatabaseTransaction,
  operations: readonly CrudOperation[],
  config: CrudConfig,
): Promise<CrudOutcome[]> {
  const outcomes: CrudOutcome[] = [];
  const changes: Array<RecordedChange & { origin: ChangeOrigin }> = [];
  for (const op of operations) {
    if (op.opID !== undefined && !(await claimReceipt(tx, config, op.opID))) {
      outcomes.push({ status: 'alreadyProcessed' });
      continue;
    }
    const opChanges: RecordedChange[] = [];
    // A CRUD client has no group: its id stands for one. A numeric op id is the mutation id.
    const sequence = Number(op.opID);
    const origin = {
      clientGroupID: config.clientID,
      clientID: config.clientID,
      mutationID: Number.isSafeInteger(sequence) ? sequence : null,
    };
    let outcome: CrudOutcome;
    try {
      await tx.savepoint(async (spTx) => {
        if (!config.db.capabilities.partialSQL) {
          const { text, params } = originStatement(origin);
          await spTx.query(text, params);
        }
        await applyOne(spTx, op, config, opChanges);
      });
      outcome = { status: 'applied' };
      for (const change of opChanges) changes.push({ ...change, origin });
    } catch (error) {
      if (isTransientError(error)) throw error;
      outcome = refusalOf(error);
      if (op.opID !== undefined) {
        await tx.query(
          `UPDATE ${config.tables.crudReceipts} SET "status" = 'refused'
           WHERE "userID" = $1 AND "clientID" = $2 AND "opID" = $3`,
          [config.userID ?? '', config.clientID, op.opID],
        );
      }
    }
    outcomes.push(outcome);
  }
  await writeChanges(tx, config.schema, config.tables, changes);
  return outcomes;
}

/** Writes the operation's receipt; false when one exists (a resend, or a repeat in the batch). */
async function claimReceipt(tx: DatabaseTransaction, config: CrudConfig, opID: string) {
  const params = [config.userID ?? '', config.clientID, opID];
  const { crudReceipts } = config.tables;
  if (config.db.capabilities.partialSQL) {
    // pg-mem: no concurrency, and no RETURNING after DO NOTHING.
    const found = await tx.query(
      `SELECT 1 FROM ${crudReceipts} WHERE "userID" = $1 AND "clientID" = $2 AND "opID" = $3`,
      params,
    );
    if (found.length) return false;
    await tx.query(
      `INSERT INTO ${crudReceipts} ("userID", "clientID", "opID", "status") VALUES ($1, $2, $3, 'applied')`,
      params,
    );
    return true;
  }
  // A concurrent resend waits here on the key until the first commits, then finds it.
  const rows = await tx.query(
    `INSERT INTO ${crudReceipts} ("userID", "clientID", "opID", "status") VALUES ($1, $2, $3, 'applied')
     ON CONFLICT DO NOTHING RETURNING 1`,
    params,
  );
  return rows.length > 0;
}

async function applyOne(
  tx: DatabaseTransaction,
  op: CrudOperation,
  config: CrudConfig,
  opChanges: RecordedChange[],
): Promise<void> {
  const checked = validateOperation(config.schema, op, config.aliases);
  if (!checked.ok) throw new Refusal(checked.reason, checked.message);
  const scopeKeys = resolveScopeKeys(config.scopeKey ?? config.userID, op);
  if (config.customValidation) {
    let message: string | null | undefined;
    try {
      const answer = await config.customValidation(op, {
        query: (sql, params) => tx.query(sql, params),
        userID: config.userID,
        scopeKeys,
        context: config.context,
      });
      message = typeof answer === 'object' && answer !== null ? answer.errorMessage : answer;
    } catch (error) {
      if (isTransientError(error)) throw error;
      // Its own throw refuses the operation too; a query's error without its SQL.
      throw new Refusal(
        'custom',
        databaseErrorMessage(error) ?? (error as Error)?.message ?? String(error),
      );
    }
    if (message) throw new Refusal('custom', message);
  }
  // The capture triggers record every write; pg-mem has none, so the engine does there.
  const capture: WriteCapture | undefined =
    config.changelog && config.db.capabilities.partialSQL
      ? { record: (change) => opChanges.push(change) }
      : undefined;
  const guard = createWriteGuard({
    policy: config.writePolicy,
    schema: config.schema,
    scopeKeys,
    partialSQL: config.db.capabilities.partialSQL,
    isolation: config.isolation,
  });
  const mutate = createSchemaMutate(tx, {
    schema: config.schema,
    partialSQL: config.db.capabilities.partialSQL,
    capture,
    guard,
  });
  await write(mutate[checked.write.table.name]!, checked.write);
}

function write(mutator: AnyTableMutator, w: CrudWrite) {
  switch (w.kind) {
    case 'insert':
      return mutator.insert(w.row as never);
    case 'upsert':
      return mutator.upsert(w.row as never);
    case 'update':
      return mutator.update(w.row as never);
    case 'delete':
      return mutator.delete(w.row as never);
  }
}

function refusalOf(error: unknown): CrudOutcome {
  if (error instanceof Refusal) {
    return { status: 'refused', reason: error.reason, message: error.message };
  }
  if (error instanceof WriteForbiddenError) {
    return { status: 'refused', reason: 'forbidden', message: error.message };
  }
  // A constraint the database enforces (unique, foreign key, not null, check): its own
  // message, never the SQL. An app function's throw says what it says.
  const dbMessage = databaseErrorMessage(error);
  if (dbMessage !== undefined) return { status: 'refused', reason: 'conflict', message: dbMessage };
  const message = error instanceof Error ? error.message : String(error);
  return { status: 'refused', reason: 'conflict', message };
}
