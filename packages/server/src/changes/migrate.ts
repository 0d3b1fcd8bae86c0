import type { AnySchema } from '@reprise/shared';
import { type Database, quoteIdent } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, type EngineTables, engineTables } from '../db/engine-tables';
import { createShardTables, mustGetShards, type ZeroModeOptions } from '../db/zero-shard';
import { nameLiteral } from '../query/query-sql';
import { announcesItself } from './announcer';
import { captureTriggerName, commitTriggerName, installCapture } from './capture';
import { storeFunctionSQL } from './capture-functions';

/** One step of the engine's schema history. Steps are append-only. */
interface MigrationStep {
  readonly version: number;
  readonly statements: (t: EngineTables, db: Database) => readonly string[];
}

const STEPS: readonly MigrationStep[] = [
  {
    version: 1,
    statements: (t) => [
      `CREATE TABLE IF NOT EXISTS ${t.clientGroups} (
        "clientGroupID" TEXT PRIMARY KEY,
        "userID" TEXT,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE IF NOT EXISTS ${t.clients} (
        "clientGroupID" TEXT NOT NULL,
        "clientID" TEXT NOT NULL,
        "lastMutationID" BIGINT NOT NULL,
        "previousMutationID" BIGINT NOT NULL DEFAULT 0,
        "userID" TEXT,
        PRIMARY KEY ("clientGroupID", "clientID")
      )`,
      `CREATE TABLE IF NOT EXISTS ${t.mutationResults} (
        "clientGroupID" TEXT NOT NULL,
        "clientID" TEXT NOT NULL,
        "mutationID" BIGINT NOT NULL,
        "result" JSONB NOT NULL,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY ("clientGroupID", "clientID", "mutationID")
      )`,
    ],
  },
  {
    version: 2,
    // The changelog. "txid" orders readers by snapshot (see changelog.ts); pg-mem has no
    // transaction ids, and readers there go by "id".
    statements: (t, db) => [
      `CREATE TABLE ${t.changes} (
        "id" BIGSERIAL PRIMARY KEY,
        ${db.capabilities.partialSQL ? '' : '"txid" XID8 NOT NULL DEFAULT pg_current_xact_id(),'}
        "table" TEXT NOT NULL,
        "action" TEXT NOT NULL,
        "key" JSONB NOT NULL,
        "before" JSONB,
        "after" JSONB,
        "scopesBefore" JSONB,
        "scopesAfter" JSONB,
        "clientGroupID" TEXT,
        "clientID" TEXT,
        "mutationID" BIGINT,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      ...(db.capabilities.partialSQL
        ? []
        : [`CREATE INDEX ${quoteIdent(`${t.schema}_changes_txid`)} ON ${t.changes} ("txid")`]),
      `CREATE TABLE ${t.changelogState} (
        "singleton" BOOLEAN PRIMARY KEY DEFAULT true,
        "prunedThroughID" BIGINT NOT NULL DEFAULT 0,
        ${db.capabilities.partialSQL ? '' : '"prunedBeforeXid" XID8,'}
        CHECK ("singleton")
      )`,
      `INSERT INTO ${t.changelogState} ("singleton") VALUES (true)`,
      // Pull sends a group's results since its cookie; pg-mem sends them all.
      ...(db.capabilities.partialSQL
        ? []
        : [
            `ALTER TABLE ${t.mutationResults} ADD COLUMN "txid" XID8 NOT NULL DEFAULT pg_current_xact_id()`,
          ]),
      `CREATE TABLE ${t.streams} (
        "name" TEXT PRIMARY KEY,
        "position" TEXT NOT NULL,
        "leaseOwner" TEXT,
        "leaseExpiresAt" TIMESTAMPTZ
      )`,
    ],
  },
  {
    version: 3,
    // Capture moves into the database (changes/capture.ts) and rows are stored in one JSON
    // form (changes/row-json.ts). Changes in the old form are dropped as if pruned, so a
    // cookie or stream position from before gets a reset, never a misread row. Each
    // transaction that writes changes takes a commit sequence number as it commits
    // (a deferred trigger), and readers order by it: commit order, not id order.
    statements: (t, db) =>
      db.capabilities.partialSQL
        ? [
            `UPDATE ${t.changelogState} SET "prunedThroughID" = (SELECT coalesce(max("id"), 0) FROM ${t.changes})`,
            `DELETE FROM ${t.changes}`,
          ]
        : [
            expireChanges(t),
            `DELETE FROM ${t.changes}`,
            // One row per writing transaction, put there by its first captured write
            // (capture.ts); the deferred trigger numbers it as the transaction commits.
            `CREATE TABLE ${t.commits} (
              "txid" XID8 PRIMARY KEY,
              "seq" BIGINT
            )`,
            `CREATE SEQUENCE ${t.commitSeq}`,
            `CREATE FUNCTION ${t.stampCommit}() RETURNS trigger LANGUAGE plpgsql AS $reprise$
            BEGIN
              UPDATE ${t.commits} SET "seq" = nextval('${t.commitSeq}') WHERE "txid" = NEW."txid";
              RETURN NULL;
            END
            $reprise$`,
            `CREATE CONSTRAINT TRIGGER "stamp_commit" AFTER INSERT ON ${t.commits}
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${t.stampCommit}()`,
          ],
  },
  {
    version: 4,
    // The CRUD endpoint's receipts: one row per operation it applied or refused, keyed by
    // the pushing user, the client and the operation's own id (PowerSync's op_id, an
    // outbox event's id), so a resent operation is answered "already processed".
    statements: (t) => [
      `CREATE TABLE ${t.crudReceipts} (
        "userID" TEXT NOT NULL,
        "clientID" TEXT NOT NULL,
        "opID" TEXT NOT NULL,
        "status" TEXT NOT NULL,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY ("userID", "clientID", "opID")
      )`,
    ],
  },
  {
    version: 5,
    // Numbering a commit costs one row, written as the transaction commits: the first
    // captured write of a transaction flags its change "opensCommit", and a deferred trigger
    // on that one row inserts the transaction's numbered commits row. Before, the first
    // write inserted the commits row and a deferred trigger updated it: two writes and a
    // speculative insert where one plain insert does (bench/README.md, capture). Capture
    // functions installed earlier still register the old way until migrate reinstalls them,
    // so the old trigger stays, for rows that arrive unnumbered only.
    statements: (t, db) =>
      db.capabilities.partialSQL
        ? []
        : [
            `ALTER TABLE ${t.changes} ADD COLUMN "opensCommit" BOOLEAN`,
            // ON CONFLICT: a transaction that resets its settings (RESET ALL) flags a second
            // change; it must still commit, numbered once.
            `CREATE FUNCTION ${t.numberCommit}() RETURNS trigger LANGUAGE plpgsql AS $reprise$
            BEGIN
              INSERT INTO ${t.commits} ("txid", "seq") VALUES (NEW."txid", nextval('${t.commitSeq}'))
                ON CONFLICT ("txid") DO NOTHING;
              RETURN NULL;
            END
            $reprise$`,
            `CREATE CONSTRAINT TRIGGER "number_commit" AFTER INSERT ON ${t.changes}
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW."opensCommit")
             EXECUTE FUNCTION ${t.numberCommit}()`,
            `DROP TRIGGER "stamp_commit" ON ${t.commits}`,
            `CREATE CONSTRAINT TRIGGER "stamp_commit" AFTER INSERT ON ${t.commits}
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW."seq" IS NULL)
             EXECUTE FUNCTION ${t.stampCommit}()`,
          ],
  },
  {
    version: 6,
    // Routes' idempotency keys (routes/route-processor.ts): the first answer to a call with
    // an `Idempotency-Key`, written in the transaction of its writes, replayed to retries.
    // The body is JSON text, not jsonb, so any answer JSON.stringify made can be stored.
    statements: (t) => [
      `CREATE TABLE ${t.routeReceipts} (
        "userID" TEXT NOT NULL,
        "route" TEXT NOT NULL,
        "key" TEXT NOT NULL,
        "requestHash" TEXT NOT NULL,
        "status" INTEGER NOT NULL,
        "body" TEXT NOT NULL,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY ("userID", "route", "key")
      )`,
    ],
  },
  {
    version: 7,
    // The jobs of the in-process job runner (jobs/in-process-backend.ts), which PGlite and
    // pg-mem use; on a real server graphile-worker keeps its own schema, installed by its
    // own migrations (`queue.migrate()`), and this table stays empty. "jobWorkers" holds
    // each running worker's heartbeat, for either engine (jobs/worker-heartbeat.ts).
    statements: (t) => [
      `CREATE TABLE ${t.jobs} (
        "id" BIGSERIAL PRIMARY KEY,
        "name" TEXT NOT NULL,
        "payload" JSONB NOT NULL,
        "runAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        "attempts" INTEGER NOT NULL DEFAULT 0,
        "maxAttempts" INTEGER NOT NULL,
        "lastError" TEXT,
        "lockedBy" TEXT,
        "lockedAt" TIMESTAMPTZ,
        "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE ${t.jobWorkers} (
        "id" TEXT PRIMARY KEY,
        "heartbeatAt" TIMESTAMPTZ NOT NULL
      )`,
    ],
  },
  {
    version: 8,
    // One changelog row per writing transaction (capture.ts, docs/capture.md): the capture
    // triggers keep a transaction's changes in a transaction-local setting, and a deferred
    // trigger stores them as one JSON array, numbered from the commit sequence, as the
    // transaction commits. A large transaction stores parts as it goes, numbered by its last.
    // Changes in the old form are dropped as if pruned, as in step 3. The old capture
    // triggers, which write the old form, are dropped: until migrate installs the new ones
    // (given the schema), pulls and streams refuse with CaptureMissingError instead of
    // missing writes. pg-mem keeps its one row per change.
    statements: (t, db) =>
      db.capabilities.partialSQL
        ? []
        : [
            `CREATE TABLE ${t.txChanges} (
              "txid" XID8 NOT NULL DEFAULT pg_current_xact_id(),
              "part" INTEGER NOT NULL,
              "seq" BIGINT,
              "changes" TEXT NOT NULL,
              "createdAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
              PRIMARY KEY ("txid", "part")
            )`,
            expireChanges(t),
            // The ids of changes go on from where they were; "changes" becomes a view of
            // the changelog one row per change, as it was, for people and tests to query.
            `ALTER SEQUENCE ${t.changeIDs} OWNED BY NONE`,
            `DROP TABLE ${t.changes}`,
            `DROP TABLE ${t.commits}`,
            `DROP FUNCTION ${t.numberCommit}()`,
            `DROP FUNCTION ${t.stampCommit}()`,
            `CREATE VIEW ${t.changes} AS
             SELECT (c->>'i')::bigint AS "id", t."txid",
               max(t."seq") OVER (PARTITION BY t."txid") AS "seq",
               c->>'t' AS "table", c->>'a' AS "action",
               (SELECT jsonb_object_agg(k, coalesce(c->'f', c->'b')->k)
                FROM json_array_elements_text(c->'k') AS k) AS "key",
               (c->'b')::jsonb AS "before", (c->'f')::jsonb AS "after",
               c->'o'->>0 AS "clientGroupID", c->'o'->>1 AS "clientID",
               (c->'o'->>2)::bigint AS "mutationID", t."createdAt"
             FROM ${t.txChanges} AS t, json_array_elements(t."changes"::json) AS c`,
            `DO $reprise$
            DECLARE found record;
            BEGIN
              FOR found IN
                SELECT n.nspname AS "schema", c.relname AS "table"
                FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE g.tgname = ${nameLiteral(captureTriggerName(t))}
              LOOP
                EXECUTE format('DROP TRIGGER %I ON %I.%I', ${nameLiteral(captureTriggerName(t))}, found."schema", found."table");
              END LOOP;
            END
            $reprise$`,
          ],
  },
  {
    version: 9,
    // The commit trigger moves from each captured table, where every written row queued a
    // call of it, to "txPending", where a transaction's first change inserts one row
    // (capture-functions.ts, docs/capture.md). Unlogged: a row matters only until its
    // transaction ends. The old triggers and their functions are dropped, the capture
    // triggers too, since theirs would fill a buffer no trigger stores; `migrate` with the
    // schema installs the new ones in the same transaction.
    statements: (t, db) =>
      db.capabilities.partialSQL
        ? []
        : [
            `CREATE UNLOGGED TABLE ${t.txPending} ("first" TEXT NOT NULL)`,
            `DO $reprise$
            DECLARE found record;
            BEGIN
              FOR found IN
                SELECT n.nspname AS "schema", c.relname AS "table", g.tgname AS "trigger",
                  g.tgfoid::regprocedure AS "function"
                FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE g.tgname IN (${nameLiteral(captureTriggerName(t))}, ${nameLiteral(commitTriggerName(t))})
              LOOP
                EXECUTE format('DROP TRIGGER %I ON %I.%I', found."trigger", found."schema", found."table");
                EXECUTE format('DROP FUNCTION IF EXISTS %s', found."function");
              END LOOP;
            END
            $reprise$`,
          ],
  },
  {
    version: 10,
    // The function that stores a push's captured changes as it commits, called with COMMIT
    // on postgres.js and node-postgres; capture-functions.ts.
    statements: (t, db) => (db.capabilities.partialSQL ? [] : [storeFunctionSQL(t)]),
  },
];

/**
 * Marks every change in the per-change `changes` table as pruned, as pruning does: a
 * position that could still need one of them expires (a reset), never misreads.
 */
function expireChanges(t: EngineTables): string {
  return `UPDATE ${t.changelogState} AS s SET
    "prunedThroughID" = greatest(s."prunedThroughID", d."id"),
    "prunedBeforeXid" = greatest(coalesce(s."prunedBeforeXid", '0'::xid8), d."next")
  FROM (SELECT max("id") AS "id", (max("txid"::text::numeric) + 1)::text::xid8 AS "next"
        FROM ${t.changes}) AS d
  WHERE d."id" IS NOT NULL`;
}

/** The newest engine schema version this package knows. */
export const ENGINE_SCHEMA_VERSION = STEPS.at(-1)!.version;

export interface MigrateOptions {
  /** The Postgres schema the engine's own tables live in (default `reprise`). */
  readonly schema?: string;
  /**
   * The app's schema: every insert, update and delete of its tables is captured into the
   * changelog by a trigger, whoever makes it. Create the app's tables first. Ignored on
   * pg-mem, which has no triggers: there only `tx.mutate` writes are recorded.
   */
  readonly capture?: AnySchema;
  /**
   * Zero mode: creates each named shard's `clients` and `mutations` tables (Zero's layout,
   * e.g. `zero_0.clients`) unless they exist, for `handleMutateRequest`'s `zero` option.
   */
  readonly zero?: ZeroModeOptions;
}

/**
 * Creates or upgrades the engine's own tables (clients, client groups, mutation results,
 * the changelog) in `schema`, and with `capture` installs the capture triggers on the
 * app's tables. Safe to run on every start and from several processes at once: it takes
 * an advisory lock where the database has them and skips steps already applied.
 *
 * @example
 * await migrate(db, {capture: schema});   // engine schema "reprise", app tables captured
 * await migrate(db, {schema: 'sync', capture: schema});
 * await migrate(db, {capture: schema, zero: {shards: ['zero_0']}}); // Zero mode's shard tables
 */
export async function migrate(
  db: Database,
  options: MigrateOptions = {},
): Promise<{ version: number; applied: number[] }> {
  const tables = engineTables(options.schema ?? DEFAULT_ENGINE_SCHEMA);
  return db.transaction(
    async (tx) => {
      if (db.capabilities.advisoryLocks) {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [lockKey(tables.schema)]);
      }
      // Look before creating: pg-mem refuses IF NOT EXISTS on a table that exists, and
      // lists no schema but public in information_schema.
      const exists = await tx
        .savepoint((inner) => inner.query(`SELECT 1 FROM ${tables.migrations} LIMIT 1`))
        .then(
          () => true,
          () => false,
        );
      if (!exists) {
        await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(tables.schema)}`);
        await tx.query(
          `CREATE TABLE ${tables.migrations} (
            "version" INTEGER PRIMARY KEY,
            "appliedAt" TIMESTAMPTZ NOT NULL DEFAULT now()
          )`,
        );
      }
      const rows = await tx.query<{ version: number | string }>(
        `SELECT "version" FROM ${tables.migrations}`,
      );
      const done = new Set(rows.map((row) => Number(row.version)));
      const applied: number[] = [];
      for (const step of STEPS) {
        if (done.has(step.version)) continue;
        for (const statement of step.statements(tables, db)) await tx.query(statement);
        await tx.query(`INSERT INTO ${tables.migrations} ("version") VALUES ($1)`, [step.version]);
        applied.push(step.version);
      }
      if (options.capture && !db.capabilities.partialSQL) {
        await installCapture(tx, tables, options.capture, {
          announcedByEngine: announcesItself(db),
        });
      }
      // Not a numbered step: which shards exist is the app's choice, and zero-cache may
      // have created (or dropped and re-created) them itself.
      if (options.zero) {
        for (const shard of mustGetShards(options.zero).values())
          await createShardTables(tx, shard);
      }
      return { version: ENGINE_SCHEMA_VERSION, applied };
    },
    { isolation: 'read committed' },
  );
}

/** A stable 32-bit advisory lock key per engine schema. */
function lockKey(schema: string): number {
  let hash = 0x5245_5052; // 'REPR'
  for (const char of `reprise-migrate:${schema}`)
    hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0;
  return hash;
}
