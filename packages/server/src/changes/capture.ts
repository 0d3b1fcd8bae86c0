import { createHash } from 'node:crypto';
import type { AnySchema, TableInfo } from '@reprise/shared';
import { type Database, type DatabaseTransaction, quoteIdent } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { nameLiteral, tableSQL } from '../query/query-sql';
import { type ChangeOrigin, changeChannel } from './changelog';
import { keyColumns, rowSQL } from './row-json';

// Capture: every committed insert, update and delete of a schema table lands in the
// changelog in the writer's own transaction, whoever the writer is, because row triggers
// record it (docs/capture.md says why triggers, and why one changelog row per transaction).
// `migrate(db, {capture: schema})` installs one trigger function per table, generated from
// the schema so that rows are stored in the changelog's JSON form (row-json.ts), and a
// deferred trigger that stores the transaction's changes as it commits. The engine tells the
// triggers which mutation is running through a transaction-local setting; any other writer
// leaves it empty.

/**
 * The setting that names the running mutation, read by the capture triggers: JSON text,
 * `[clientGroupID, clientID, mutationID]`, copied as it is into each change it captures.
 */
export const ORIGIN_SETTING = 'reprise.origin';

/** The trigger's name on each captured table: one per engine schema. */
export function captureTriggerName(tables: EngineTables): string {
  return `${tables.schema}_capture`;
}

/** The deferred trigger that stores a transaction's captured changes as it commits. */
export function commitTriggerName(tables: EngineTables): string {
  return `${tables.schema}_capture_commit`;
}

/**
 * The transaction-local settings a transaction's captured changes wait in until it commits:
 * `buffer`, the changes not yet stored (JSON objects joined by commas); `parts`, how many
 * rows of `txChanges` the transaction has written so far; `stored`, 'on' once the commit
 * trigger has stored the buffer.
 */
function bufferSettings(tables: EngineTables) {
  return {
    buffer: `${tables.schema}.buffer`,
    parts: `${tables.schema}.parts`,
    stored: `${tables.schema}.stored`,
  };
}

/**
 * Above this many bytes a transaction's waiting changes are stored as one part at once, so
 * that appending to them stays cheap in a transaction that writes many rows.
 */
const PART_BYTES = 32_000;

function functionName(tables: EngineTables, table: TableInfo, kind = 'capture'): string {
  const hash = createHash('sha256')
    .update(`${table.sqlSchema ?? ''}.${table.sqlName}`)
    .digest();
  const name = `${kind}_${table.name}`.slice(0, 50);
  return `${quoteIdent(tables.schema)}.${quoteIdent(`${name}_${hash.toString('hex').slice(0, 8)}`)}`;
}

/** The SQL text of a transaction-local setting's value, '' when it is not set. */
function settingSQL(name: string): string {
  return `coalesce(current_setting(${nameLiteral(name)}, true), '')`;
}

// Both trigger functions are written as a few large expressions rather than many small
// statements: PL/pgSQL prepares each expression anew in every transaction that runs it,
// which costs more than evaluating it, and a transaction of one write runs each once.

/**
 * `CREATE FUNCTION` for one table's capture trigger. Each written row becomes a change, a
 * JSON object appended to the transaction's buffer, a transaction-local setting, so that a
 * rolled-back savepoint takes its changes with it. The commit trigger stores the buffer as
 * one row when the transaction commits. A change holds its id (`i`), table (`t`), action
 * (`a`), the keys of the table's primary key columns (`k`), its origin (`o`) and its rows
 * before and after (`b`, `f`). With `announcedByEngine`, a write whose origin is set (it came
 * through the engine) is not announced by `NOTIFY`: the engine announces its commits itself
 * (announcer.ts).
 */
function captureFunctionSQL(
  tables: EngineTables,
  table: TableInfo,
  announcedByEngine: boolean,
): string {
  const columns = [...table.columns.values()];
  const keys = keyColumns(table);
  const keyChanged = keys
    .map((c) => `OLD.${quoteIdent(c.sqlName)} IS DISTINCT FROM NEW.${quoteIdent(c.sqlName)}`)
    .join(' OR ');
  const { buffer, parts } = bufferSettings(tables);
  const idSeq = nameLiteral(tables.changeIDs);
  // Cast to json and back: a setting that is not JSON fails the write, not every reader.
  const origin = `coalesce(nullif(current_setting(${nameLiteral(ORIGIN_SETTING)}, true), '')::json::text, 'null')`;
  const head = (action: string) =>
    `,"t":${JSON.stringify(table.name)},"a":"${action}","k":${JSON.stringify(keys.map((c) => c.key))},"o":`;
  const change = (action: string, before: string | null, after: string | null) =>
    `'{"i":' || nextval(${idSeq}) || ${nameLiteral(head(action))} || ${origin}${
      before ? ` || ',"b":' || ${before}` : ''
    }${after ? ` || ',"f":' || ${after}` : ''} || '}'`;
  // The buffer with the new changes after it; then, for a writer outside the engine, a
  // NOTIFY naming the table (pg_notify returns void, which reads as '').
  const append = (changes: string) =>
    `set_config(${nameLiteral(buffer)}, CASE WHEN ${settingSQL(buffer)} = '' THEN '' ELSE current_setting(${nameLiteral(buffer)}) || ',' END || ${changes}, true) || ${
      announcedByEngine
        ? `CASE WHEN ${origin} = 'null' THEN pg_notify(${nameLiteral(changeChannel(tables))}, ${nameLiteral(table.name)})::text ELSE '' END`
        : `pg_notify(${nameLiteral(changeChannel(tables))}, ${nameLiteral(table.name)})::text`
    }`;
  const oldRow = rowSQL('OLD', columns);
  const newRow = rowSQL('NEW', columns);
  // An update that moves the primary key is, for anyone keyed by it, a delete and a create.
  return `CREATE OR REPLACE FUNCTION ${functionName(tables, table)}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    waiting := ${append(change('create', null, newRow))};
  ELSIF TG_OP = 'DELETE' THEN
    waiting := ${append(change('delete', oldRow, null))};
  ELSIF ${keyChanged || 'false'} THEN
    waiting := ${append(`${change('delete', oldRow, null)} || ',' || ${change('create', null, newRow)}`)};
  ELSE
    waiting := ${append(change('update', oldRow, newRow))};
  END IF;
  IF octet_length(waiting) > ${PART_BYTES} THEN
    -- A large transaction stores its changes in parts as it goes; the commit trigger
    -- numbers the last as the transaction commits.
    INSERT INTO ${tables.txChanges} ("part", "changes")
      VALUES (coalesce(nullif(${settingSQL(parts)}, ''), '0')::integer, '[' || waiting || ']');
    waiting := set_config(${nameLiteral(parts)}, (coalesce(nullif(${settingSQL(parts)}, ''), '0')::integer + 1)::text, true)
      || set_config(${nameLiteral(buffer)}, '', true);
  END IF;
  RETURN NULL;
END
$reprise$`;
}

/**
 * `CREATE FUNCTION` for one table's commit trigger, deferred to the end of the transaction
 * and queued by every captured row (a condition on the trigger would cost each write more
 * than the call it saves). The first to run stores the changes waiting as the transaction's
 * last part, numbered from the commit sequence, so that readers order transactions by when
 * they committed; the others find them stored. Its row is the transaction's first captured
 * write still standing, so its change must be waiting: if it is not, the changes were lost
 * (`RESET ALL`, or the capture trigger disabled alone), and the transaction fails rather
 * than commit writes that readers would never see.
 */
function commitFunctionSQL(tables: EngineTables, table: TableInfo): string {
  const { buffer, parts, stored } = bufferSettings(tables);
  const columns = [...table.columns.values()];
  const done = `coalesce(nullif(${settingSQL(parts)}, ''), '0')::integer`;
  return `CREATE OR REPLACE FUNCTION ${functionName(tables, table, 'commit')}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text := ${settingSQL(buffer)};
BEGIN
  IF waiting = '' THEN
    IF ${settingSQL(stored)} = 'on' THEN
      RETURN NULL;
    ELSIF ${done} > 0 THEN
      UPDATE ${tables.txChanges} SET "seq" = nextval('${tables.commitSeq}')
        WHERE "txid" = pg_current_xact_id() AND "part" = ${done} - 1 AND "seq" IS NULL;
      waiting := set_config(${nameLiteral(stored)}, 'on', true);
      RETURN NULL;
    END IF;
  END IF;
  IF ${settingSQL(parts)} = '' AND strpos(waiting, CASE WHEN TG_OP = 'DELETE' THEN ${rowSQL('OLD', columns)} ELSE ${rowSQL('NEW', columns)} END) = 0 THEN
    RAISE EXCEPTION 'Reprise lost the changes this transaction wrote before it committed, so it is not committed: was RESET ALL run in it, or the capture trigger disabled without its commit trigger?'
      USING ERRCODE = 'P0001', HINT = 'Disable both triggers to write without capture, or use session_replication_role = replica.';
  END IF;
  INSERT INTO ${tables.txChanges} ("part", "seq", "changes")
    VALUES (${done}, nextval('${tables.commitSeq}'), '[' || waiting || ']');
  waiting := set_config(${nameLiteral(parts)}, (${done} + 1)::text, true)
    || set_config(${nameLiteral(buffer)}, '', true)
    || set_config(${nameLiteral(stored)}, 'on', true);
  RETURN NULL;
END
$reprise$`;
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
  const commitTrigger = quoteIdent(commitTriggerName(tables));
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
    await tx.query(captureFunctionSQL(tables, table, options.announcedByEngine));
    await tx.query(commitFunctionSQL(tables, table));
    await tx.query(
      `CREATE OR REPLACE TRIGGER ${trigger} AFTER INSERT OR UPDATE OR DELETE ON ${tableSQL(table)}
       FOR EACH ROW EXECUTE FUNCTION ${functionName(tables, table)}()`,
    );
    // A constraint trigger cannot be replaced in place.
    await tx.query(`DROP TRIGGER IF EXISTS ${commitTrigger} ON ${tableSQL(table)}`);
    await tx.query(
      `CREATE CONSTRAINT TRIGGER ${commitTrigger} AFTER INSERT OR UPDATE OR DELETE ON ${tableSQL(table)}
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
       EXECUTE FUNCTION ${functionName(tables, table, 'commit')}()`,
    );
  }
  for (const found of await capturedTables(tx, tables)) {
    const inSchema =
      wanted.has(`${found.schema}.${found.table}`) ||
      (found.schema === 'public' && wanted.has(`.${found.table}`));
    if (!inSchema) {
      const on = `${quoteIdent(found.schema)}.${quoteIdent(found.table)}`;
      await tx.query(`DROP TRIGGER ${trigger} ON ${on}`);
      await tx.query(`DROP TRIGGER IF EXISTS ${commitTrigger} ON ${on}`);
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
