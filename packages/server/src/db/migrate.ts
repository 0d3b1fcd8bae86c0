import { type Database, quoteIdent } from './database';
import { DEFAULT_ENGINE_SCHEMA, type EngineTables, engineTables } from './engine-tables';

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
];

/** The newest engine schema version this package knows. */
export const ENGINE_SCHEMA_VERSION = STEPS.at(-1)!.version;

/**
 * Creates or upgrades the engine's own tables (clients, client groups, mutation results)
 * in `schema`. Safe to run on every start and from several processes at once: it takes an
 * advisory lock where the database has them and skips steps already applied.
 *
 * @example
 * await migrate(db);                      // schema "reprise"
 * await migrate(db, {schema: 'sync'});
 */
export async function migrate(
  db: Database,
  options: { schema?: string } = {},
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
