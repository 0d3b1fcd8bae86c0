import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BenchPush, buildScripts } from './pushes';
import { median, renderTable } from './report';
import { createPostgresTarget, resolveServerURL, type Target } from './targets';

// `npm run bench -- scale`: do more app-server processes serve more? Case (c) of the push
// section, 8 clients × 10 mutations per push, over HTTP against one and then two server
// processes (scale-server.ts) on one Postgres database, the clients shared out between
// them, alternating which count goes first. The load generator is this process. Each run
// reports where the CPU went (the servers, the generator, the Postgres backends), so the
// figure can be projected to a machine with more cores.

type Progress = (message: string) => void;

const SERVER = fileURLToPath(new URL('./scale-server.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENTS = 8;
const PER_PUSH = 10;
const session = randomBytes(3).toString('hex');

interface Server {
  readonly base: string;
  readonly child: ChildProcess;
}

function startServer(url: string): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    cwd: ROOT,
    env: { ...process.env, BENCH_DATABASE_URL: url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening (\d+)/.exec(out);
      if (match) resolve({ base: `http://127.0.0.1:${match[1]}`, child });
    });
    child.once('exit', (code) => reject(new Error(`scale server exited with ${code}`)));
  });
}

async function stopServer(server: Server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

async function serverCpu(server: Server): Promise<number> {
  const response = await fetch(`${server.base}/cpu`);
  return ((await response.json()) as { us: number }).us;
}

async function post(server: Server, push: BenchPush) {
  const response = await fetch(`${server.base}/mutate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: push.body,
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`push of ${push.clientID} got HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
}

interface ScaleRun {
  readonly mutations: number;
  readonly ms: number;
  readonly serversCpuUs: number;
  readonly generatorCpuUs: number;
  readonly postgresCpuUs: number | undefined;
}

/** One run: every client's pushes one after another, client i on server i mod n. */
async function run(
  target: Target,
  servers: readonly Server[],
  tag: string,
  pushesPerClient: number,
): Promise<ScaleRun> {
  const scripts = buildScripts(tag, CLIENTS, pushesPerClient, PER_PUSH);
  const before = await Promise.all(servers.map(serverCpu));
  const pgBefore = await target.serverCpu?.();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    scripts.map(async (script, i) => {
      const server = servers[i % servers.length]!;
      for (const push of script.pushes) await post(server, push);
    }),
  );
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const pgAfter = await target.serverCpu?.();
  const after = await Promise.all(servers.map(serverCpu));
  const mutations = CLIENTS * pushesPerClient * PER_PUSH;
  const [row] = await target.db.query<{ n: string | number }>(
    'SELECT count(*) AS n FROM item WHERE id LIKE $1',
    [`${tag}-%`],
  );
  if (Number(row?.n) !== mutations) {
    throw new Error(`scale run ${tag}: ${row?.n} rows in item, expected ${mutations}`);
  }
  let postgresCpuUs: number | undefined;
  if (pgBefore && pgAfter) {
    postgresCpuUs = 0;
    for (const [pid, us] of pgAfter) postgresCpuUs += us - (pgBefore.get(pid) ?? 0);
  }
  return {
    mutations,
    ms,
    serversCpuUs: after.reduce((sum, us, i) => sum + us - before[i]!, 0),
    generatorCpuUs: cpu.user + cpu.system,
    postgresCpuUs,
  };
}

/** Runs the scale section; true when it failed. */
export async function runScaleBench(options: {
  reps: number;
  scale: number;
  progress: Progress;
}): Promise<boolean> {
  const { reps, scale, progress } = options;
  console.log(
    `\nScale: 8 clients x 10 per push over HTTP, one against two server processes (median of ${reps} alternating runs, ${availableParallelism()} cores)`,
  );
  const found = await resolveServerURL();
  if (!('url' in found)) {
    console.log(`NOTICE: ${found.notice}; the scale section needs a Postgres server.`);
    return false;
  }
  const target = await createPostgresTarget(found.url);
  const servers: Server[] = [];
  try {
    servers.push(await startServer(target.url), await startServer(target.url));
    const counts = [1, 2];
    const pushesPerClient = Math.max(5, Math.round((5000 * scale) / (CLIENTS * PER_PUSH)));
    const runs = new Map<number, ScaleRun[]>(counts.map((n) => [n, []]));
    let n = 0;
    for (const count of counts) await run(target, servers.slice(0, count), `${session}-w${n++}`, 5);
    for (let rep = 0; rep < reps; rep++) {
      for (let k = 0; k < counts.length; k++) {
        const count = counts[(k + rep) % counts.length]!;
        const result = await run(
          target,
          servers.slice(0, count),
          `${session}-${n++}`,
          pushesPerClient,
        );
        runs.get(count)!.push(result);
        const rate = Math.round((result.mutations / result.ms) * 1000);
        progress(`  scale run ${rep + 1}/${reps}, ${count} server(s): ${rate} mut/s`);
      }
    }
    const rates = new Map(
      counts.map((count) => [
        count,
        median(runs.get(count)!.map((r) => (r.mutations / r.ms) * 1000)),
      ]),
    );
    const perMutation = (values: number[]) => median(values).toFixed(0);
    const rows = counts.map((count) => {
      const list = runs.get(count)!;
      const busy = median(
        list.map(
          (r) =>
            (r.serversCpuUs + r.generatorCpuUs + (r.postgresCpuUs ?? 0)) /
            (r.ms * 1000 * availableParallelism()),
        ),
      );
      return [
        String(count),
        rates.get(count)!.toFixed(0),
        (rates.get(count)! / rates.get(1)!).toFixed(2),
        perMutation(list.map((r) => r.serversCpuUs / r.mutations)),
        perMutation(list.map((r) => r.generatorCpuUs / r.mutations)),
        list.every((r) => r.postgresCpuUs !== undefined)
          ? perMutation(list.map((r) => r.postgresCpuUs! / r.mutations))
          : 'n/a',
        `${(busy * 100).toFixed(0)}%`,
      ];
    });
    console.log(
      `\n${renderTable(
        [
          'servers',
          'mut/s',
          'vs one',
          "servers' CPU µs/mut",
          'generator µs/mut',
          'Postgres µs/mut',
          'cores busy',
        ],
        rows,
      )}`,
    );
    return false;
  } catch (error) {
    progress(`  scale FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return true;
  } finally {
    await Promise.all(servers.map(stopServer));
    await target.close();
  }
}
