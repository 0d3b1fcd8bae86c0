import { createHash } from 'node:crypto';
import type { TableInfo } from '@reprise/shared';
import { quoteIdent } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { nameLiteral } from '../query/query-sql';
import { changeChannel } from './changelog';
import { keyColumns, rowSQL } from './row-json';

// The functions behind capture's triggers, as SQL (capture.ts installs them): one per
// captured table, generated from its schema, and the commit trigger's, one per engine
// schema.

/**
 * The setting that names the running mutation, read by the capture triggers: JSON text,
 * `[clientGroupID, clientID, mutationID]`, copied as it is into each change it captures.
 */
export const ORIGIN_SETTING = 'reprise.origin';

/**
 * The transaction-local settings a transaction's captured changes wait in until it commits:
 * `buffer`, the changes not yet stored (JSON objects joined by commas); `parts`, how many
 * rows of `txChanges` the transaction has written so far; `store`, `1` while the engine
 * will store the buffer itself just before it commits (`storeCallSQL`), so that no
 * change queues the commit trigger, and `0` once it has, or once it handed that back.
 */
function bufferSettings(tables: EngineTables) {
  return {
    buffer: `${tables.schema}.buffer`,
    parts: `${tables.schema}.parts`,
    store: `${tables.schema}.store`,
  };
}

/**
 * The SQL expression, for the statement that opens a push's transaction, that tells the
 * capture triggers the engine stores this transaction's changes itself: it then sends
 * `storeCallSQL` with its `COMMIT`.
 */
export function engineStoresSQL(tables: EngineTables): string {
  return `set_config(${nameLiteral(bufferSettings(tables).store)}, '1', true)`;
}

// Made once, as the claim's text is (client-claim.ts): the driver finds its prepared
// statement by the text, and a string made anew each push is hashed anew.
const storeCalls = new WeakMap<EngineTables, string>();

/**
 * The statement the engine sends with `COMMIT` in a transaction that opened with
 * `engineStoresSQL`: a call of the function `storeFunctionSQL` creates, which does the
 * commit trigger's work for it. The waiting changes become one `txChanges` row, numbered
 * from the commit sequence, the buffer is emptied, and the commit trigger takes over again
 * for anything written later (the app's own deferred triggers). If the settings were lost
 * (`RESET ALL`), it queues the commit trigger with a row that names no change the buffer
 * can begin with, so that the transaction fails as it commits, as it would without the
 * engine.
 */
export function storeCallSQL(tables: EngineTables): string {
  let text = storeCalls.get(tables);
  if (text === undefined) {
    text = `SELECT ${tables.storeChanges}()`;
    storeCalls.set(tables, text);
  }
  return text;
}

/**
 * `CREATE FUNCTION` for the function `storeCallSQL` calls: in the same simple query as
 * `COMMIT` on node-postgres, where a statement would be parsed and planned anew each
 * time, and as a prepared statement pipelined ahead of it on postgres.js. Plain PL/pgSQL
 * statements, each run only where needed: one statement of CTEs, which it was until
 * 2026-12-05, set up both of its inserts every time (27 k instructions more a push).
 * Engine schema 10 creates it; `migrate` with capture brings it up to date.
 */
export function storeFunctionSQL(tables: EngineTables): string {
  const { buffer, parts, store } = bufferSettings(tables);
  return `CREATE OR REPLACE FUNCTION ${tables.storeChanges}() RETURNS void
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text := current_setting(${nameLiteral(buffer)}, true);
  flag text := current_setting(${nameLiteral(store)}, true);
BEGIN
  IF flag = '1' THEN
    IF waiting <> '' THEN
      INSERT INTO ${tables.txChanges} ("part", "seq", "changes")
        VALUES (${partsDone(tables)}, nextval('${tables.commitSeq}'), '[' || waiting || ']');
      waiting := set_config(${nameLiteral(parts)}, (${partsDone(tables)} + 1)::text, true)
        || set_config(${nameLiteral(buffer)}, '', true);
    END IF;
    flag := set_config(${nameLiteral(store)}, '0', true);
  ELSIF flag IS DISTINCT FROM '0' THEN
    INSERT INTO ${tables.txPending} ("first") VALUES (${nameLiteral(LOST_MARK)});
  END IF;
END
$reprise$`;
}

/** A `txPending` row's `first` that no change begins with: the commit trigger then fails. */
const LOST_MARK = 'lost';

/**
 * Above this many bytes a transaction's waiting changes are stored as one part at once, so
 * that appending to them stays cheap in a transaction that writes many rows.
 */
const PART_BYTES = 32_000;

/** The name of one table's capture function: the table's name and a hash of its SQL name. */
export function functionName(tables: EngineTables, table: TableInfo): string {
  const hash = createHash('sha256')
    .update(`${table.sqlSchema ?? ''}.${table.sqlName}`)
    .digest();
  const name = `capture_${table.name}`.slice(0, 50);
  return `${quoteIdent(tables.schema)}.${quoteIdent(`${name}_${hash.toString('hex').slice(0, 8)}`)}`;
}

/** How many parts of `txChanges` the transaction has stored so far, in SQL. */
function partsDone(tables: EngineTables): string {
  return `coalesce(nullif(current_setting(${nameLiteral(bufferSettings(tables).parts)}, true), ''), '0')::integer`;
}

// Both trigger functions are written as a few large expressions rather than many small
// statements: PL/pgSQL prepares each expression anew in every transaction that runs it,
// which costs more than evaluating it, and a transaction of one write runs each once. But
// branches stay separate statements: an expression is prepared whole, the branches a
// CASE does not take included (one CASE over TG_OP cost a one-row transaction 36% more).

/** One change in a capture trigger: a `format()` template and the SQL of its arguments. */
interface Change {
  readonly template: string;
  readonly args: readonly string[];
}

/**
 * `CREATE FUNCTION` for one table's capture trigger. Each written row becomes a change, a
 * JSON object appended to the transaction's buffer, a transaction-local setting, so that a
 * rolled-back savepoint takes its changes with it. A change holds its id (`i`), table
 * (`t`), action (`a`), the keys of the table's primary key columns (`k`), its origin (`o`)
 * and its rows before and after (`b`, `f`). The change that finds the buffer empty, the
 * transaction's first, also inserts a row into `txPending` naming it: that row queues the
 * deferred commit trigger (`commitFunctionSQL`) once per transaction, where a deferred
 * trigger on the table itself would be queued, and called, once per written row.
 */
export function captureFunctionSQL(tables: EngineTables, table: TableInfo): string {
  const columns = [...table.columns.values()];
  const keys = keyColumns(table);
  const keyChanged = keys
    .map((c) => `OLD.${quoteIdent(c.sqlName)} IS DISTINCT FROM NEW.${quoteIdent(c.sqlName)}`)
    .join(' OR ');
  const { buffer, parts, store } = bufferSettings(tables);
  const idSeq = nameLiteral(tables.changeIDs);
  // Cast to json and back: a setting that is not JSON fails the write, not every reader.
  const origin = `coalesce(nullif(current_setting(${nameLiteral(ORIGIN_SETTING)}, true), '')::json::text, 'null')`;
  const head = (action: string) =>
    `,"t":${JSON.stringify(table.name)},"a":"${action}","k":${JSON.stringify(keys.map((c) => c.key))},"o":`;
  // A change as a format() template and its arguments: one call, where concatenating the
  // pieces took an operator each, which PL/pgSQL sets up anew in every transaction.
  const change = (action: string, before: string | null, after: string | null): Change => ({
    template: `{"i":%s${head(action).replaceAll('%', '%%')}%s${before ? ',"b":%s' : ''}${after ? ',"f":%s' : ''}}`,
    args: [`nextval(${idSeq})`, origin, ...(before ? [before] : []), ...(after ? [after] : [])],
  });
  const formatted = (changes: Change[], appendedTo?: string) =>
    `format(${nameLiteral(`${appendedTo ? '%s,' : ''}${changes.map((c) => c.template).join(',')}`)}, ${[
      ...(appendedTo ? [appendedTo] : []),
      ...changes.flatMap((c) => c.args),
    ].join(', ')})`;
  const oldRow = rowSQL('OLD', columns);
  const newRow = rowSQL('NEW', columns);
  // The row's changes, by operation. An update that moves the primary key is, for anyone
  // keyed by it, a delete and a create.
  const byOperation = (set: (changes: Change[]) => string) => `IF TG_OP = 'INSERT' THEN
      waiting := ${set([change('create', null, newRow)])};
    ELSIF TG_OP = 'DELETE' THEN
      waiting := ${set([change('delete', oldRow, null)])};
    ELSIF ${keyChanged || 'false'} THEN
      waiting := ${set([change('delete', oldRow, null), change('create', null, newRow)])};
    ELSE
      waiting := ${set([change('update', oldRow, newRow)])};
    END IF;`;
  const setBuffer = (value: string) => `set_config(${nameLiteral(buffer)}, ${value}, true)`;
  return `CREATE OR REPLACE FUNCTION ${functionName(tables, table)}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text := current_setting(${nameLiteral(buffer)}, true);
BEGIN
  IF waiting <> '' THEN
    ${byOperation((changes) => setBuffer(formatted(changes, 'waiting')))}
    IF octet_length(waiting) > ${PART_BYTES} THEN
      -- A large transaction stores its changes in parts as it goes; the commit trigger
      -- numbers the last as the transaction commits, the engine's included: it hands that
      -- back to the trigger here.
      INSERT INTO ${tables.txChanges} ("part", "changes")
        VALUES (${partsDone(tables)}, '[' || waiting || ']');
      waiting := set_config(${nameLiteral(parts)}, (${partsDone(tables)} + 1)::text, true)
        || ${setBuffer("''")};
      IF current_setting(${nameLiteral(store)}, true) = '1' THEN
        waiting := set_config(${nameLiteral(store)}, '0', true);
        INSERT INTO ${tables.txPending} ("first") VALUES ('');
      END IF;
    END IF;
    RETURN NULL;
  END IF;
  -- The transaction's first change, or its first since a part or the commit trigger
  -- stored the buffer: queue the commit trigger, naming the change by its id, unless the
  -- engine stores the changes itself as it commits.
  ${byOperation((changes) => setBuffer(formatted(changes)))}
  IF current_setting(${nameLiteral(store)}, true) = '1' THEN
    RETURN NULL;
  END IF;
  INSERT INTO ${tables.txPending} ("first") VALUES (left(waiting, strpos(waiting, ',')));
  RETURN NULL;
END
$reprise$`;
}

/**
 * `CREATE FUNCTION` for the commit trigger, deferred to the end of the transaction and
 * queued by each `txPending` row, so about once per writing transaction. It stores the
 * changes waiting as the transaction's last part, numbered from the commit sequence, so
 * that readers order transactions by when they committed. The `txPending` row names the
 * transaction's first change: unless a part was stored already, the buffer must begin with
 * it; if not, the changes were lost (`RESET ALL`), and the transaction fails rather than
 * commit writes that readers would never see. A writer outside the engine is announced
 * here, by one `NOTIFY` per transaction; with `announcedByEngine`, the engine announces its
 * own (announcer.ts).
 */
export function commitFunctionSQL(tables: EngineTables, announcedByEngine: boolean): string {
  const { buffer, parts } = bufferSettings(tables);
  // pg_notify returns void, which reads as ''. An empty payload means "any table".
  const notify = `pg_notify(${nameLiteral(changeChannel(tables))}, '')::text`;
  const announce = announcedByEngine
    ? `CASE WHEN current_setting(${nameLiteral(ORIGIN_SETTING)}, true) <> '' THEN '' ELSE ${notify} END`
    : notify;
  const settings = (part: string) => `set_config(${nameLiteral(parts)}, ${part}, true)
      || set_config(${nameLiteral(buffer)}, '', true)
      || ${announce}`;
  const partsSet = `current_setting(${nameLiteral(parts)})::integer`;
  return `CREATE OR REPLACE FUNCTION ${tables.commitChanges}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text := current_setting(${nameLiteral(buffer)}, true);
BEGIN
  IF nullif(current_setting(${nameLiteral(parts)}, true), '') IS NULL THEN
    -- The usual case: all of the transaction's changes wait in the buffer.
    IF NOT starts_with(coalesce(waiting, ''), NEW."first") THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${LOST_MESSAGE}, HINT = ${LOST_HINT};
    END IF;
    INSERT INTO ${tables.txChanges} ("part", "seq", "changes")
      VALUES (0, nextval('${tables.commitSeq}'), '[' || waiting || ']');
    waiting := ${settings("'1'")};
    RETURN NULL;
  ELSIF coalesce(waiting, '') = '' THEN
    -- Nothing waits: the last part is stored; number it unless a call before this did.
    -- (A second NOTIFY alike in one transaction is not sent.)
    UPDATE ${tables.txChanges} SET "seq" = nextval('${tables.commitSeq}')
      WHERE "txid" = pg_current_xact_id() AND "part" = ${partsSet} - 1 AND "seq" IS NULL;
    waiting := ${announce};
    RETURN NULL;
  END IF;
  INSERT INTO ${tables.txChanges} ("part", "seq", "changes")
    VALUES (${partsSet}, nextval('${tables.commitSeq}'), '[' || waiting || ']');
  waiting := ${settings(`(${partsSet} + 1)::text`)};
  RETURN NULL;
END
$reprise$`;
}

const LOST_MESSAGE = nameLiteral(
  'Reprise lost the changes this transaction wrote before it committed, so it is not committed: was RESET ALL run in it, or a reprise.* setting changed?',
);
const LOST_HINT = nameLiteral(
  "To write without capture, disable the table's capture trigger or use session_replication_role = replica.",
);
