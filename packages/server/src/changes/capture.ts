import type { AnySchema } from '@reprise/shared';
import { type Database, type DatabaseTransaction, quoteIdent } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { nameLiteral, tableSQL } from '../query/query-sql';
import {
  captureFunctionSQL,
  commitFunctionSQL,
  functionName,
  ORIGIN_SETTING,
  storeFunctionSQL,
} from './capture-functions';
import type { ChangeOrigin } from './changelog';

// Capture: every committed insert, update and delete of a schema table lands in the
// changelog in the writer's own transaction, whoever the writer is, because row triggers
// record it (docs/capture.md says why triggers, and why one changelog row per transaction).
// `migrate(db, {capture: schema})` installs a trigger on each table, with a function
// generated from the schema (capture-functions.ts) so that rows are stored in the
// changelog's JSON form (row-json.ts), and one deferred trigger on the engine's `txPending`
// that stores each transaction's changes as it commits. The engine tells the triggers
// which mutation is running through a transaction-local setting; any other writer leaves
// it empty.

/** The trigger's name on each captured table: one per engine schema. */
export function captureTriggerName(tables: EngineTables): string {
  return `${tables.schema}_capture`;
}

/**
 * The deferred trigger on `txPending` that stores a transaction's captured changes as it
 * commits. Until engine schema 9, each captured table had one.
 */
export function commitTriggerName(tables: EngineTables): string {
  return `${tables.schema}_capture_commit`;
}

/** The tables of any schema that carry this engine schema's capture trigger. */
async function capturedTables(
  tx: Pick<DatabaseTransaction, 'query'>,
  tables: EngineTables,
): Promise<{ schema: string; table: string }[]> {
  return tx.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS "schema", c.relname AS "table"
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE t.tgname = $1`,
    [captureTriggerName(tables)],
  );
}

/**
 * Installs (or brings up to date) the capture triggers on every table of `schema`, and
 * removes them from tables the schema no longer has. Run by `migrate` inside its transaction.
 */
export async function installCapture(
  tx: DatabaseTransaction,
  tables: EngineTables,
  schema: AnySchema,
  options: { readonly announcedByEngine: boolean },
): Promise<void> {
  const trigger = quoteIdent(captureTriggerName(tables));
  const wanted = new Set<string>();
  for (const table of schema.tableInfo.values()) {
    const [found] = await tx.query<{ oid: string | null }>(
      'SELECT to_regclass($1)::text AS "oid"',
      [tableSQL(table)],
    );
    if (!found?.oid) {
      throw new Error(
        `migrate: cannot capture writes to ${table.name}: its table ${tableSQL(table)} does not exist yet. Create the app's tables first, then migrate with capture.`,
      );
    }
    wanted.add(`${table.sqlSchema ?? ''}.${table.sqlName}`);
    await tx.query(captureFunctionSQL(tables, table));
    await tx.query(
      `CREATE OR REPLACE TRIGGER ${trigger} AFTER INSERT OR UPDATE OR DELETE ON ${tableSQL(table)}
       FOR EACH ROW EXECUTE FUNCTION ${functionName(tables, table)}()`,
    );
  }
  await tx.query(commitFunctionSQL(tables, options.announcedByEngine));
  // Engine schema 10 created it; this brings its body up to date.
  await tx.query(storeFunctionSQL(tables));
  // A constraint trigger cannot be replaced in place; creating it only where it is missing
  // spares writers the lock that dropping it takes.
  const [committing] = await tx.query(
    'SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2',
    [tables.txPending, commitTriggerName(tables)],
  );
  if (!committing) {
    await tx.query(
      `CREATE CONSTRAINT TRIGGER ${quoteIdent(commitTriggerName(tables))} AFTER INSERT ON ${tables.txPending}
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${tables.commitChanges}()`,
    );
  }
  for (const found of await capturedTables(tx, tables)) {
    const inSchema =
      wanted.has(`${found.schema}.${found.table}`) ||
      (found.schema === 'public' && wanted.has(`.${found.table}`));
    if (!inSchema) {
      await tx.query(
        `DROP TRIGGER ${trigger} ON ${quoteIdent(found.schema)}.${quoteIdent(found.table)}`,
      );
    }
  }
}

/** Thrown when a synced table's writes are not captured: `migrate` was not given the schema. */
export class CaptureMissingError extends Error {
  override readonly name = 'CaptureMissingError';
  readonly code = 'captureMissing' as const;
}

// Positive answers only: a capture installed later (by another process) is seen at once.
const verified = new WeakMap<Database<any>, Set<string>>();

/**
 * Throws `CaptureMissingError` unless every one of `tableNames` (schema names) carries the
 * capture trigger. Databases without triggers (pg-mem) record in the engine instead.
 */
export async function ensureCaptured(
  db: Database<any>,
  tables: EngineTables,
  schema: AnySchema,
  tableNames: Iterable<string>,
): Promise<void> {
  if (db.capabilities.partialSQL) return;
  let known = verified.get(db);
  if (!known) {
    known = new Set();
    verified.set(db, known);
  }
  const wanted = [...tableNames].filter((name) => !known.has(`${tables.schema}:${name}`));
  if (wanted.length === 0) return;
  const found = new Set(
    (await capturedTables(db, tables)).map((row) => `${row.schema}.${row.table}`),
  );
  const missing: string[] = [];
  for (const name of wanted) {
    const table = schema.tableInfo.get(name);
    if (table && found.has(`${table.sqlSchema ?? 'public'}.${table.sqlName}`)) {
      known.add(`${tables.schema}:${name}`);
    } else {
      missing.push(name);
    }
  }
  if (missing.length) {
    throw new CaptureMissingError(
      `Writes to ${missing.join(', ')} are not captured, so pulls and streams would miss them: run migrate(db, {capture: schema}) after creating the app's tables`,
    );
  }
}

const storeFunctions = new WeakMap<Database<any>, Map<string, boolean>>();

/**
 * Whether the database has the function that stores a push's captured changes (engine
 * schema 10): a process that serves a database not yet migrated keeps the commit trigger.
 * Asked once per database and engine schema; known, the answer comes without a wait.
 */
export function storeFunctionReady(
  tx: Pick<DatabaseTransaction, 'query'>,
  db: Database<any>,
  tables: EngineTables,
): boolean | Promise<boolean> {
  return storeFunctions.get(db)?.get(tables.schema) ?? askStoreFunction(tx, db, tables);
}

async function askStoreFunction(
  tx: Pick<DatabaseTransaction, 'query'>,
  db: Database<any>,
  tables: EngineTables,
): Promise<boolean> {
  const [row] = await tx.query<{ ready: boolean }>(
    'SELECT to_regprocedure($1) IS NOT NULL AS "ready"',
    [`${tables.storeChanges}()`],
  );
  const ready = row?.ready === true;
  let known = storeFunctions.get(db);
  if (!known) {
    known = new Map();
    storeFunctions.set(db, known);
  }
  known.set(tables.schema, ready);
  return ready;
}

/** The origin as `ORIGIN_SETTING` holds it. */
function originJSON(origin: ChangeOrigin): string {
  return JSON.stringify([origin.clientGroupID, origin.clientID, origin.mutationID]);
}

/**
 * `originStatement` with its value written in as a literal, for `savepointWith`, which
 * takes no parameters. `E''` strings read the same whatever `standard_conforming_strings`
 * says; the IDs hold no NUL (the push's parser refuses it).
 */
export function originStatementText(origin: ChangeOrigin): string {
  const value = originJSON(origin).replace(/\\/g, '\\\\').replace(/'/g, "''");
  return `SELECT set_config(${nameLiteral(ORIGIN_SETTING)}, E'${value}', true)`;
}

/**
 * The statement that names the running mutation for the capture triggers, until the
 * transaction (or the savepoint it runs in) ends.
 */
export function originStatement(origin: ChangeOrigin): { text: string; params: unknown[] } {
  return {
    text: `SELECT set_config(${nameLiteral(ORIGIN_SETTING)}, $1, true)`,
    params: [originJSON(origin)],
  };
}

/**
 * A mutation's origin that the database does not hold yet: its first write names it in the
 * same statement (`namingWrite`), and raw SQL is preceded by `originStatement`.
 */
export interface PendingOrigin {
  /** The setting's value while the database does not hold it yet, else undefined. */
  readonly value: string | undefined;
  /** Says the database holds it now. */
  named(): void;
}

/** A `PendingOrigin` for `origin`, calling `onNamed` once the database holds it. */
export function pendingOrigin(origin: ChangeOrigin, onNamed: () => void): PendingOrigin {
  // A data property, not a getter: see collectJobs (job-queue.ts).
  const pending: { value: string | undefined; named(): void } = {
    value: originJSON(origin),
    named() {
      if (pending.value === undefined) return;
      pending.value = undefined;
      onNamed();
    },
  };
  return pending;
}

/**
 * `text`, a write that returns every row it writes, made to name the origin `value` as
 * well. The setting is made as the first row comes back, so before the statement ends and
 * its rows' capture triggers run; a statement that writes no row does not make it.
 */
export function namingWrite(
  text: string,
  params: readonly unknown[],
  value: string,
): { text: string; params: unknown[] } {
  return {
    text: `WITH "reprise_written" AS (${text}) SELECT * FROM "reprise_written" WHERE set_config(${nameLiteral(ORIGIN_SETTING)}, $${params.length + 1}, true) IS NOT NULL`,
    params: [...params, value],
  };
}
