import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Database,
  handleMutateRequest,
  migrate,
  processPullRequest,
  silentLogger,
} from '@reprise/server';
import { createPgDatabase } from '@reprise/server/pg';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import { decodeRich, encodeRich, type PullResponse, type PushResponse } from '@reprise/shared';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerDatabase, DATABASE_URL } from './fixtures/adapters';
import { FIXTURE_DDL, mutators, type RawExec, schema, type TestContext } from './fixtures/app';
import { visibility } from './fixtures/pull';
import { pushBody } from './fixtures/push';

// Push and pull through PgBouncer in transaction pooling mode, the way most production
// Postgres is reached: consecutive transactions of one app connection land on different
// server connections, and session state (prepared statements, session settings, LISTEN)
// does not carry over. Eight clients share two server connections here. Debian's
// pgbouncer (1.18) keeps no prepared statements in this mode, so both drivers run with
// `prepare: false`, as the README says.

const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((path) => existsSync(path));
const unavailable = !DATABASE_URL
  ? 'DATABASE_URL is not set'
  : !PGBOUNCER
    ? process.env.REPRISE_REQUIRE_PGBOUNCER
      ? undefined // CI installs it: a missing binary fails below instead of skipping.
      : 'pgbouncer is not installed (Debian package pgbouncer)'
    : undefined;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts PgBouncer in transaction mode in front of `serverURL`'s server. */
async function startBouncer(serverURL: string) {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed (Debian package pgbouncer)');
  const server = new URL(serverURL);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'reprise-pgbouncer-'));
  // PgBouncer refuses to run as root; it then switches to the server's own user.
  const asRoot = process.getuid?.() === 0;
  await chmod(dir, 0o777);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : '';
  const config = join(dir, 'pgbouncer.ini');
  await writeFile(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  await writeFile(
    config,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}${password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 2',
      'max_client_conn = 100',
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
    ].join('\n'),
    { mode: 0o644 },
  );
  const child: ChildProcess = spawn(
    PGBOUNCER,
    [...(asRoot ? ['-u', user === 'postgres' ? 'postgres' : 'nobody'] : []), config],
    { stdio: 'ignore' },
  );
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`pgbouncer exited with code ${code}`))),
  );
  exited.catch(() => undefined);
  // Ready when it answers a query.
  const probeURL = new URL(serverURL);
  probeURL.host = `127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    const probe = postgres(probeURL.toString(), { max: 1, prepare: false, onnotice: () => {} });
    try {
      await Promise.race([probe`SELECT 1`, exited]);
      break;
    } catch (error) {
      if (attempt > 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await probe.end({ timeout: 1 });
    }
  }
  return {
    /** `url` with its host and port replaced by the bouncer's. */
    through(url: string) {
      const via = new URL(url);
      via.host = `127.0.0.1:${port}`;
      return via.toString();
    },
    async stop() {
      child.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Driver {
  readonly name: string;
  open(url: string): { db: Database<any>; raw: RawExec; end(): Promise<void> };
}

const DRIVERS: Driver[] = [
  {
    name: 'postgres.js (prepare: false)',
    open(url) {
      const sql = postgres(url, { max: 8, prepare: false, onnotice: () => {} });
      return {
        db: createPostgresJsDatabase(sql),
        raw: async (w, text, params) =>
          (await (w as postgres.TransactionSql).unsafe(
            text,
            params as never[],
          )) as unknown as unknown[],
        end: () => sql.end({ timeout: 5 }),
      };
    },
  },
  {
    name: 'node-postgres pool (prepare: false)',
    open(url) {
      const pool = new pg.Pool({ connectionString: url, max: 8 });
      pool.on('error', () => {});
      return {
        db: createPgDatabase(pool, { prepare: false }),
        raw: async (w, text, params) => (await (w as pg.ClientBase).query(text, params)).rows,
        end: () => pool.end(),
      };
    },
  },
];

const title = unavailable ? `[skipped: ${unavailable}]` : '';
describe.skipIf(unavailable !== undefined)(`behind PgBouncer in transaction mode ${title}`, () => {
  let bouncer: Awaited<ReturnType<typeof startBouncer>>;
  beforeAll(async () => {
    bouncer = await startBouncer(DATABASE_URL!);
    return () => bouncer.stop();
  });

  for (const driver of DRIVERS) {
    describe(driver.name, () => {
      let database: Awaited<ReturnType<typeof createServerDatabase>>;
      let app: ReturnType<Driver['open']>;
      let direct: postgres.Sql;
      beforeAll(async () => {
        database = await createServerDatabase();
        direct = postgres(database.url, { max: 1, onnotice: () => {} });
        app = driver.open(bouncer.through(database.url));
        for (const statement of FIXTURE_DDL) await app.db.query(statement);
        await migrate(app.db, { capture: schema });
      });
      afterAll(async () => {
        await app?.end();
        await direct?.end();
        await database?.drop();
      });

      const push = async (userID: string, clientID: string, from: number, count: number) => {
        const body = pushBody(
          Array.from({ length: count }, (_, i) => {
            const id = from + i;
            return i % 2 === 0
              ? { id, name: 'counter.increment', args: { id: 'shared' } }
              : { id, name: 'issue.create', args: { id: `${clientID}-${id}`, title: 'hi' } };
          }),
          { clientGroupID: `g-${clientID}`, clientID },
        );
        const context: TestContext = { userID, raw: app.raw };
        const response = await handleMutateRequest({
          db: app.db,
          schema,
          mutators,
          context,
          userID,
          logger: silentLogger,
          request: new Request('http://localhost/mutate', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(encodeRich(body)),
          }),
        });
        return { status: response.status, body: decodeRich(await response.json()) };
      };

      const pull = async (userID: string, cookie: string | null) => {
        const { status, body } = await processPullRequest({
          db: app.db,
          schema,
          visibility,
          userID,
          scopes: [userID],
          logger: silentLogger,
          body: encodeRich({ clientGroupID: `pull-${userID}`, cookie }),
        });
        expect(status).toBe(200);
        return decodeRich(body as Parameters<typeof decodeRich>[0]) as PullResponse;
      };

      it('eight clients push at once over two server connections: every mutation once, in order', async () => {
        const clients = Array.from({ length: 8 }, (_, i) => `c${i}`);
        const pushes = 10;
        const perPush = 4;
        let unavailableAnswers = 0;
        await Promise.all(
          clients.map(async (clientID) => {
            for (let p = 0; p < pushes; p++) {
              // A client resends a push answered 503, as the real client does.
              for (;;) {
                const reply = await push('ana', clientID, p * perPush + 1, perPush);
                if (reply.status === 503) {
                  unavailableAnswers++;
                  continue;
                }
                expect(reply.status).toBe(200);
                const body = reply.body as PushResponse;
                expect(body.kind).toBe('MutateResponse');
                if (body.kind !== 'MutateResponse') return;
                for (const { result } of body.mutations) expect(result).not.toHaveProperty('error');
                break;
              }
            }
          }),
        );
        const total = clients.length * pushes * perPush;
        const lmids = await direct<{ clientID: string; lastMutationID: string }[]>`
          SELECT "clientID", "lastMutationID" FROM reprise.clients ORDER BY "clientID"`;
        expect(lmids.map((r) => [r.clientID, Number(r.lastMutationID)])).toEqual(
          clients.map((c) => [c, pushes * perPush]),
        );
        const [counter] = await direct<{ value: number }[]>`
          SELECT value FROM counter WHERE id = 'shared'`;
        expect(counter?.value).toBe(total / 2);
        const [issues] = await direct<{ n: number }[]>`SELECT count(*)::int AS n FROM issue`;
        expect(issues?.n).toBe(total / 2);
        // Every write was captured once, numbered as its transaction committed.
        const [changes] = await direct<{ n: number; unnumbered: number }[]>`
          SELECT count(*)::int AS n, count(*) FILTER (WHERE "seq" IS NULL)::int AS unnumbered
          FROM reprise.changes`;
        expect(changes).toEqual({ n: total, unnumbered: 0 });
        expect(unavailableAnswers).toBeLessThan(total / 10);
      });

      it('a full pull, then an incremental pull sees only what committed since', async () => {
        const first = await pull('ana', null);
        const issues = first.patch.filter((op) => op.op === 'put' && op.tableName === 'issue');
        const [count] = await direct<{ n: number }[]>`SELECT count(*)::int AS n FROM issue`;
        expect(issues).toHaveLength(count!.n);
        const reply = await push('ana', 'late', 1, 2);
        expect(reply.status).toBe(200);
        const next = await pull('ana', first.cookie as string);
        expect(
          next.patch.filter((op) => op.op === 'put' && op.tableName === 'issue'),
        ).toMatchObject([{ value: { id: 'late-2' } }]);
        expect(next.lastMutationIDChanges).toEqual({});
      });
    });
  }
});
