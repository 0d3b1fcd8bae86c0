import { type Database, handleMutateRequest, silentLogger } from '@reprise/server';
import { BENCH_REFUSAL, mutators, schema } from './app';
import { handleBaselineRequest } from './baselines';
import { type BenchPush, buildScripts, type ClientScript, isRefused } from './pushes';
import { APP_ERROR_RATIO, TARGET_RATIOS } from './report';
import type { Target } from './targets';

/** One shape of traffic, run by the engine and by the baseline it is compared with. */
export interface BenchCase {
  readonly key: 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
  readonly title: string;
  readonly clients: number;
  readonly perPush: number;
  readonly pushesPerClient: number;
  readonly warmupPushesPerClient: number;
  readonly baseline: 'perMutation' | 'perPush';
  /** Every tenth mutation is refused with an ApplicationError (`isRefused`). */
  readonly appErrors: boolean;
  /** The engine must reach this fraction of its baseline's throughput. */
  readonly target: number;
}

/**
 * `engine`: pushes through the engine with capture on (the trigger `migrate` installs);
 * `uncaptured`: the same with the capture trigger disabled; `baseline`: the raw-SQL floor,
 * also without the trigger, since it stands for code that writes nothing but its rows.
 */
export type Side = 'engine' | 'uncaptured' | 'baseline';

/**
 * Turns the bench table's capture trigger on or off between runs (off, no change queues
 * the commit trigger either).
 */
export async function setCapture(target: Target, on: boolean): Promise<void> {
  await target.db.query(`ALTER TABLE item ${on ? 'ENABLE' : 'DISABLE'} TRIGGER "reprise_capture"`);
}

/** What one timed run did. */
export interface RunResult {
  readonly mutations: number;
  readonly ms: number;
  /** Milliseconds per push, in completion order. */
  readonly latencies: number[];
  /** CPU microseconds this process spent in the run (for PGlite, the database's too). */
  readonly nodeCpuUs: number;
  /** CPU microseconds the run's Postgres backends spent, when the server is local. */
  readonly serverCpuUs?: number;
}

/**
 * The three shapes, then the same three with every tenth mutation refused; `scale` shrinks
 * or grows the mutation counts (1 ≈ 2000/5000/5000).
 */
export function benchCases(scale: number): BenchCase[] {
  const pushes = (mutations: number, perPushAll: number) =>
    Math.max(2, Math.ceil((mutations * scale) / perPushAll));
  const shapes: BenchCase[] = [
    {
      key: 'a',
      title: '1/push, sequential',
      clients: 1,
      perPush: 1,
      pushesPerClient: pushes(2000, 1),
      warmupPushesPerClient: 300,
      baseline: 'perMutation',
      appErrors: false,
      target: TARGET_RATIOS.a,
    },
    {
      key: 'b',
      title: '50/push, sequential',
      clients: 1,
      perPush: 50,
      pushesPerClient: pushes(5000, 50),
      warmupPushesPerClient: 20,
      baseline: 'perPush',
      appErrors: false,
      target: TARGET_RATIOS.b,
    },
    {
      key: 'c',
      title: '8 clients x 10/push',
      clients: 8,
      perPush: 10,
      pushesPerClient: pushes(5000, 80),
      warmupPushesPerClient: 15,
      baseline: 'perPush',
      appErrors: false,
      target: TARGET_RATIOS.c,
    },
  ];
  const withErrors = shapes.map(
    (shape, i): BenchCase => ({
      ...shape,
      key: (['d', 'e', 'f'] as const)[i]!,
      title: `${shape.title}, 10% app errors`,
      appErrors: true,
      target: APP_ERROR_RATIO,
    }),
  );
  return [...shapes, ...withErrors];
}

/**
 * Posts one push as a Web `Request` to `handle` and reads the reply's body as a framework
 * would to send it. Engine and baseline both go through here, so both pay the same HTTP
 * objects; the rows are checked after the run.
 */
async function post(handle: (request: Request) => Promise<Response>, push: BenchPush) {
  const request = new Request('http://localhost/mutate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: push.body,
  });
  const response = await handle(request);
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`push of ${push.clientID} got HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
}

/** Posts one push through `handleMutateRequest`, as a server would. */
export function enginePush(db: Database<any>, push: BenchPush): Promise<void> {
  return post(
    (request) =>
      handleMutateRequest({
        db,
        schema,
        mutators,
        userID: 'bench-user',
        logger: silentLogger,
        request,
      }),
    push,
  );
}

/**
 * Runs one side of a case: every client's pushes one after another, all clients at once.
 * The pushes are built before the clock starts; the rows and LMIDs are checked after.
 */
export async function runSide(
  target: Target,
  bench: BenchCase,
  side: Side,
  tag: string,
  pushesPerClient: number,
  db: Database<any> = target.db,
): Promise<RunResult> {
  const scripts = buildScripts(tag, bench.clients, pushesPerClient, bench.perPush, bench.appErrors);
  await setCapture(target, side === 'engine');
  const apply =
    side !== 'baseline'
      ? (push: BenchPush) => enginePush(db, push)
      : (push: BenchPush) =>
          post((request) => handleBaselineRequest(request, target.baseline[bench.baseline]), push);
  const latencies: number[] = [];
  const serverBefore = await target.serverCpu?.();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    scripts.map(async (script) => {
      for (const push of script.pushes) {
        const pushStarted = performance.now();
        await apply(push);
        latencies.push(performance.now() - pushStarted);
      }
    }),
  );
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const serverAfter = await target.serverCpu?.();
  const mutations = bench.clients * pushesPerClient * bench.perPush;
  await verify(target, side, tag, scripts, pushesPerClient * bench.perPush, bench.appErrors);
  return {
    mutations,
    ms,
    latencies,
    nodeCpuUs: cpu.user + cpu.system,
    ...(serverBefore && serverAfter ? { serverCpuUs: cpuSpent(serverBefore, serverAfter) } : {}),
  };
}

/** CPU microseconds spent between two readings of the same backends. */
function cpuSpent(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>) {
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}

/**
 * Asserts every row landed, no refused mutation's row did, each refused mutation's
 * `{error: 'app'}` result is stored (and nothing else), and every client's LMID reached its
 * last mutation.
 */
async function verify(
  target: Target,
  side: Side,
  tag: string,
  scripts: readonly ClientScript[],
  perClient: number,
  appErrors: boolean,
) {
  const fail = (what: string) => {
    throw new Error(`${side} run ${tag}: ${what}`);
  };
  const refused = appErrors
    ? Array.from({ length: perClient }, (_, i) => i + 1).filter(isRefused)
    : [];
  // A refused mutation's row ID ends in 0, like its mutation ID (pushes.ts).
  const rows = await target.db.query<{ n: string | number; refused: string | number }>(
    `SELECT count(*) AS n, count(*) FILTER (WHERE id LIKE '%0') AS refused
     FROM item WHERE id LIKE $1`,
    [`${tag}-%`],
  );
  const expected = scripts.length * (perClient - refused.length);
  if (Number(rows[0]?.n) !== expected) fail(`${rows[0]?.n} rows in item, expected ${expected}`);
  if (appErrors && Number(rows[0]?.refused) !== 0) {
    fail(`${rows[0]?.refused} rows of refused mutations in item`);
  }
  const resultsTable = side === 'baseline' ? 'bench_results' : 'reprise."mutationResults"';
  const results = await target.db.query<{ clientID: string; mutationID: string | number }>(
    `SELECT "clientID", "mutationID" FROM ${resultsTable}
     WHERE "clientGroupID" LIKE $1 AND "result"->'json'->>'error' = 'app'
       AND "result"->'json'->>'message' = $2
     ORDER BY "clientID", "mutationID"`,
    [`${tag}-%`, BENCH_REFUSAL],
  );
  const all = await target.db.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM ${resultsTable} WHERE "clientGroupID" LIKE $1`,
    [`${tag}-%`],
  );
  const got = results.map((r) => `${r.clientID}:${Number(r.mutationID)}`);
  const want = scripts.flatMap((script) => refused.map((id) => `${script.clientID}:${id}`)).sort();
  if (Number(all[0]?.n) !== want.length || got.sort().join() !== want.join()) {
    fail(`${all[0]?.n} stored results (${got.length} refusals), expected ${want.length} refusals`);
  }
  const clients = side === 'baseline' ? 'bench_clients' : 'reprise.clients';
  const lmids = await target.db.query<{ lastMutationID: string | number }>(
    `SELECT "lastMutationID" FROM ${clients} WHERE "clientGroupID" LIKE $1`,
    [`${tag}-%`],
  );
  if (
    lmids.length !== scripts.length ||
    lmids.some((r) => Number(r.lastMutationID) !== perClient)
  ) {
    fail(`LMIDs ${JSON.stringify(lmids)}, expected ${perClient}`);
  }
}
