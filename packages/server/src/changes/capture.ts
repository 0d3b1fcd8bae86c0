import { createHash } from 'node:crypto';
import type { AnySchema, TableInfo } from '@reprise/shared';
import { type Database, type DatabaseTransaction, quoteIdent } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { nameLiteral, tableSQL } from '../query/query-sql';
import { type ChangeOrigin, changeChannel } from './changelog';
import { keyColumns, rowSQL } from './row-json';

// Capture: every committed insert, update and delete of a schema table lands in the
// changelog in the writer's own transaction, whoever the writer is, because a row trigger
// writes it (docs/capture.md says why triggers). `migrate(db, {capture: schema})` installs
// one trigger function per table, generated from the schema so that rows are stored in
// the changelog's JSON form (row-json.ts). The engine tells the trigger which mutation is
// running through three transaction-local settings; any other writer leaves them empty.

/** The settings that name the running mutation, read by the capture triggers. */
const ORIGIN_SETTINGS = ['reprise.client_group_id', 'reprise.client_id', 'reprise.mutation_id'];

/** The trigger's name on each captured table: one per engine schema. */
export function captureTriggerName(tables: EngineTables): string {
  return `${tables.schema}_capture`;
}

function functionName(tables: EngineTables, table: TableInfo): string {
  const hash = createHash('sha256')
    .update(`${table.sqlSchema ?? ''}.${table.sqlName}`)
    .digest();
  const name = `capture_${table.name}`.slice(0, 50);
  return `${quoteIdent(tables.schema)}.${quoteIdent(`${name}_${hash.toString('hex').slice(0, 8)}`)}`;
}

/**
 * `CREATE FUNCTION` for one table's capture trigger. With `announcedByEngine`, a write
 * whose origin is set (it came through the engine) is not announced by `NOTIFY`: the
 * engine announces its commits itself (announcer.ts).
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
  const insert = (
    action: string,
    record: 'NEW' | 'OLD',
    before: string,
    after: string,
    opens = 'opens',
  ) =>
    `INSERT INTO ${tables.changes} ("table", "action", "key", "before", "after", "clientGroupID", "clientID", "mutationID", "opensCommit")
       VALUES (${nameLiteral(table.name)}, '${action}', ${rowSQL(record, keys)}, ${before}, ${after}, cg, cid, mid, ${opens});`;
  const oldRow = rowSQL('OLD', columns);
  const newRow = rowSQL('NEW', columns);
  const [group, client, mutation] = ORIGIN_SETTINGS.map(nameLiteral);
  // An update that moves the primary key is, for anyone keyed by it, a delete and a create.
  return `CREATE OR REPLACE FUNCTION ${functionName(tables, table)}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  cg text := nullif(current_setting(${group}, true), '');
  cid text := nullif(current_setting(${client}, true), '');
  mid bigint := nullif(current_setting(${mutation}, true), '')::bigint;
  opens boolean;
BEGIN
  -- The transaction's first captured change is flagged: a deferred trigger on it numbers
  -- the transaction as it commits (migrate.ts, step 5).
  IF current_setting(${nameLiteral(`${tables.schema}.registered`)}, true) IS DISTINCT FROM 'on' THEN
    PERFORM set_config(${nameLiteral(`${tables.schema}.registered`)}, 'on', true);
    opens := true;
  END IF;
  IF TG_OP = 'INSERT' THEN
    ${insert('create', 'NEW', 'NULL', newRow)}
  ELSIF TG_OP = 'DELETE' THEN
    ${insert('delete', 'OLD', oldRow, 'NULL')}
  ELSIF ${keyChanged || 'false'} THEN
    ${insert('delete', 'OLD', oldRow, 'NULL')}
    ${insert('create', 'NEW', 'NULL', newRow, 'NULL')}
  ELSE
    ${insert('update', 'NEW', oldRow, newRow)}
  END IF;
  ${announcedByEngine ? 'IF cg IS NULL THEN ' : ''}PERFORM pg_notify(${nameLiteral(changeChannel(tables))}, ${nameLiteral(table.name)});${announcedByEngine ? ' END IF;' : ''}
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
 * Installs (or brings up to date) the capture trigger on every table of `schema`, and
 * removes it from tables the schema no longer has. Run by `migrate` inside its transaction.
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
    await tx.query(captureFunctionSQL(tables, table, options.announcedByEngine));
    await tx.query(
      `CREATE OR REPLACE TRIGGER ${trigger} AFTER INSERT OR UPDATE OR DELETE ON ${tableSQL(table)}
       FOR EACH ROW EXECUTE FUNCTION ${functionName(tables, table)}()`,
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

/**
 * The origin settings for `claimClient` to set in its statement: the client's next
 * mutation, which is the one the push runs next unless it was already processed.
 */
export function originSettings(
  clientGroupID: string,
  clientID: string,
): (readonly [string, string | 'next'])[] {
  const [group, client, mutation] = ORIGIN_SETTINGS as [string, string, string];
  return [
    [group, clientGroupID],
    [client, clientID],
    [mutation, 'next'],
  ];
}

/**
 * `originStatement` with its values written in as literals, for `savepointWith`, which
 * takes no parameters. `E''` strings read the same whatever `standard_conforming_strings`
 * says; the IDs hold no NUL (the push's parser refuses it).
 */
export function originStatementText(origin: ChangeOrigin): string {
  const values = [origin.clientGroupID, origin.clientID, String(origin.mutationID ?? '')];
  const literal = (value: string) => `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `SELECT ${ORIGIN_SETTINGS.map((name, i) => `set_config(${nameLiteral(name)}, ${literal(values[i]!)}, true)`).join(', ')}`;
}

/**
 * The statement that names the running mutation for the capture triggers, until the
 * transaction (or the savepoint it runs in) ends.
 */
export function originStatement(origin: ChangeOrigin): { text: string; params: unknown[] } {
  return {
    text: `SELECT ${ORIGIN_SETTINGS.map((name, i) => `set_config(${nameLiteral(name)}, $${i + 1}, true)`).join(', ')}`,
    params: [origin.clientGroupID, origin.clientID, String(origin.mutationID ?? '')],
  };
}
