import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { type Database, migrate } from '@reprise/server';
import { createPgDatabase } from '@reprise/server/pg';
import { createPGliteDatabase } from '@reprise/server/pglite';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import type { AnySchema } from '@reprise/shared';
import pg from 'pg';
import postgres from 'postgres';
import { BENCH_DDL, schema } from './app';
import {
  type Baseline,
  createPGliteBaseline,
  createPgBaseline,
  createPostgresJsBaseline,
} from './baselines';

/** One database the bench runs against: the engine's adapter and the raw baselines. */
export interface Target {
  readonly label: string;
  readonly db: Database<any>;
  readonly baseline: Baseline;
  /**
   * CPU microseconds used so far by each backend serving the bench database, by pid, read
   * from /proc; absent where the server is not on this machine (or is PGlite, whose CPU is
   * the process's own).
   */
  serverCpu?(): Promise<Map<number, number> | undefined>;
  /** The Postgres target's own database, for tools with connections of their own. */
  readonly url?: string;
  close(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** Reads the CPU time of the backends connected to the current database, if local. */
async function backendCpu(db: Database<any>): Promise<Map<number, number> | undefined> {
  const rows = await db.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
  );
  const spent = new Map<number, number>();
  for (const { pid } of rows) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined; // not this machine's process: the server is elsewhere
    }
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    spent.set(pid, ((Number(fields[11]) + Number(fields[12])) * 1e6) / USER_HZ);
  }
  return spent;
}

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The connection pool size: one connection per concurrent client of case (c). */
export const POOL_SIZE = 8;

async function prepare(db: Database<any>, ddl: readonly string[], capture: AnySchema) {
  for (const statement of ddl) await db.query(statement);
  await migrate(db, { capture });
  for (const statement of extraSQL()) await db.query(statement);
}

/**
 * `BENCH_EXTRA_SQL`: statements separated by `;;`, run after `migrate` on every bench
 * database, to try a change to the engine's tables or capture triggers without editing the
 * engine (bench/README.md has an example). Unset, nothing runs.
 */
function extraSQL(): string[] {
  return (process.env.BENCH_EXTRA_SQL ?? '')
    .split(';;')
    .map((statement) => statement.trim())
    .filter(Boolean);
}

/**
 * An in-memory PGlite, shared by the engine and the baseline as one app would share it.
 * `ddl` creates the app's tables (the push bench's by default).
 */
export async function createPGliteTarget(
  ddl: readonly string[] = BENCH_DDL,
  capture: AnySchema = schema,
): Promise<Target> {
  const pglite = new PGlite();
  const db = createPGliteDatabase(pglite);
  await prepare(db, ddl, capture);
  return {
    label: 'PGlite',
    db,
    baseline: createPGliteBaseline(pglite),
    close: () => pglite.close(),
  };
}

/** The server URL to use, or why there is none: `DATABASE_URL`, else the local default. */
export async function resolveServerURL(): Promise<{ url: string } | { notice: string }> {
  const url = process.env.DATABASE_URL || DEFAULT_URL;
  const source = process.env.DATABASE_URL ? 'DATABASE_URL' : 'the default URL';
  const probe = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`SELECT 1`;
    return { url };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      notice: `Postgres at ${redact(url)} (${source}) is not reachable (${reason}); running PGlite only.`,
    };
  } finally {
    await probe.end({ timeout: 1 });
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * A fresh `bench_<random>` database on the server, so runs never see each other's rows.
 * It is dropped on `close`, and on Ctrl-C.
 */
export async function createPostgresTarget(
  serverURL: string,
  ddl: readonly string[] = BENCH_DDL,
  capture: AnySchema = schema,
): Promise<Target & { readonly url: string }> {
  const admin = postgres(serverURL, { max: 1, onnotice: () => {} });
  const name = `bench_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(serverURL);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: POOL_SIZE, onnotice: () => {} });

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      process.off('SIGINT', onInterrupt);
      await sql.end({ timeout: 5 });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    })();
    return closed;
  };
  const onInterrupt = () => {
    console.error(`\nInterrupted; dropping database ${name}…`);
    close().finally(() => process.exit(130));
  };
  process.on('SIGINT', onInterrupt);

  try {
    const db = createPostgresJsDatabase(sql);
    await prepare(db, ddl, capture);
    return {
      label: 'Postgres',
      db,
      baseline: createPostgresJsBaseline(sql),
      serverCpu: () => backendCpu(db),
      close,
      url: url.toString(),
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The same database on node-postgres: a second target over the Postgres target's
 * database, so the two drivers are measured on one server in one run. Closing it ends only
 * its pool.
 */
export function createPgTarget(on: { readonly url: string }): Target {
  const pool = new pg.Pool({ connectionString: on.url, max: POOL_SIZE });
  pool.on('error', () => {});
  const db = createPgDatabase(pool);
  return {
    label: 'Postgres (pg)',
    db,
    baseline: createPgBaseline(pool),
    serverCpu: () => backendCpu(db),
    close: () => pool.end(),
  };
}
