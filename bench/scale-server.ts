import { createServer } from 'node:http';
import { handleMutateRequest, silentLogger } from '@reprise/server';
import { toNodeHandler } from '@reprise/server/node';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import postgres from 'postgres';
import { mutators, schema } from './app';
import { POOL_SIZE } from './targets';

// One app-server process of the scale section (scale-bench.ts): the push endpoint over
// node:http on its own postgres.js pool, as a deployment runs one per process. GET /cpu
// answers this process's CPU time so far, so the bench can tell where the CPU went. It
// prints `listening <port>` once it serves, and exits on SIGTERM.

const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('scale-server: BENCH_DATABASE_URL is not set');
const sql = postgres(url, { max: POOL_SIZE, onnotice: () => {} });
const db = createPostgresJsDatabase(sql);

const server = createServer(
  toNodeHandler((request) => {
    if (new URL(request.url).pathname === '/cpu') {
      const { user, system } = process.cpuUsage();
      return Promise.resolve(Response.json({ us: user + system }));
    }
    return handleMutateRequest({
      db,
      schema,
      mutators,
      userID: 'bench-user',
      logger: silentLogger,
      request,
    });
  }),
);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  sql.end({ timeout: 5 }).finally(() => process.exit(0));
});
