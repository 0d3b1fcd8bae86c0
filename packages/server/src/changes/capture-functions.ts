import { createHash } from 'node:crypto';
import type { TableInfo } from '@reprise/shared';
import { quoteIdent } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import { nameLiteral } from '../query/query-sql';
import { changeChannel } from './changelog';
import { keyColumns, rowSQL } from './row-json';

// The two functions behind each captured table's triggers (capture.ts installs them), as
// SQL generated from the table's schema.

/**
 * The setting that names the running mutation, read by the capture triggers: JSON text,
 * `[clientGroupID, clientID, mutationID]`, copied as it is into each change it captures.
 */
export const ORIGIN_SETTING = 'reprise.origin';

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

export function functionName(tables: EngineTables, table: TableInfo, kind = 'capture'): string {
  const hash = createHash('sha256')
    .update(`${table.sqlSchema ?? ''}.${table.sqlName}`)
    .digest();
  const name = `${kind}_${table.name}`.slice(0, 50);
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
export function captureFunctionSQL(
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
    `set_config(${nameLiteral(buffer)}, coalesce(nullif(current_setting(${nameLiteral(buffer)}, true), '') || ',', '') || ${changes}, true) || ${
      announcedByEngine
        ? `CASE WHEN current_setting(${nameLiteral(ORIGIN_SETTING)}, true) <> '' THEN '' ELSE pg_notify(${nameLiteral(changeChannel(tables))}, ${nameLiteral(table.name)})::text END`
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
      VALUES (${partsDone(tables)}, '[' || waiting || ']');
    waiting := set_config(${nameLiteral(parts)}, (${partsDone(tables)} + 1)::text, true)
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
export function commitFunctionSQL(tables: EngineTables, table: TableInfo): string {
  const { buffer, parts, stored } = bufferSettings(tables);
  const columns = [...table.columns.values()];
  const done = partsDone(tables);
  const lost = (record: string) =>
    `nullif(current_setting(${nameLiteral(parts)}, true), '') IS NULL AND strpos(waiting, ${rowSQL(record, columns)}) = 0`;
  return `CREATE OR REPLACE FUNCTION ${functionName(tables, table, 'commit')}() RETURNS trigger
LANGUAGE plpgsql AS $reprise$
DECLARE
  waiting text := current_setting(${nameLiteral(buffer)}, true);
BEGIN
  IF coalesce(waiting, '') = '' THEN
    IF current_setting(${nameLiteral(stored)}, true) = 'on' THEN
      RETURN NULL;
    ELSIF ${done} > 0 THEN
      UPDATE ${tables.txChanges} SET "seq" = nextval('${tables.commitSeq}')
        WHERE "txid" = pg_current_xact_id() AND "part" = ${done} - 1 AND "seq" IS NULL;
      waiting := set_config(${nameLiteral(stored)}, 'on', true);
      RETURN NULL;
    END IF;
    waiting := '';
  END IF;
  -- Only the expressions a transaction runs are prepared in it: one row's test, not both.
  IF TG_OP = 'DELETE' THEN
    IF ${lost('OLD')} THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${LOST_MESSAGE}, HINT = ${LOST_HINT};
    END IF;
  ELSIF ${lost('NEW')} THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${LOST_MESSAGE}, HINT = ${LOST_HINT};
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

const LOST_MESSAGE = nameLiteral(
  'Reprise lost the changes this transaction wrote before it committed, so it is not committed: was RESET ALL run in it, or the capture trigger disabled without its commit trigger?',
);
const LOST_HINT = nameLiteral(
  'Disable both triggers to write without capture, or use session_replication_role = replica.',
);
