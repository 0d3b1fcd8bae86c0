import { type Database, handlePullRequest, silentLogger } from '@reprise/server';
import { notesSchema, notesVisibility, PULLER } from './changes-app';
import { Breakdown, instrument } from './profile';

// Pulls as the puller, through `handlePullRequest` with a Web `Request`, the reply read as
// a server would send it.

const GROUP = `${PULLER}-cg`;

/** One pull: its wall-clock time and the reply as sent. */
export interface PullReply {
  readonly ms: number;
  readonly text: string;
}

/** What a reply's patch holds. */
export interface PatchSummary {
  readonly cookie: string;
  readonly puts: number;
  readonly dels: number;
  readonly clear: boolean;
  readonly bytes: number;
}

export async function pullNotes(db: Database<any>, cookie: string | null): Promise<PullReply> {
  const started = performance.now();
  const request = new Request('http://localhost/pull', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientGroupID: GROUP, cookie }),
  });
  const response = await handlePullRequest({
    db,
    schema: notesSchema,
    visibility: notesVisibility,
    userID: PULLER,
    scopes: [PULLER],
    logger: silentLogger,
    request,
  });
  const text = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) {
    throw new Error(`pull got HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  return { ms, text };
}

export function summarise(reply: PullReply): PatchSummary {
  const body = JSON.parse(reply.text) as { cookie: string; patch: Array<{ op: string }> };
  const count = (op: string) => body.patch.filter((x) => x.op === op).length;
  return {
    cookie: body.cookie,
    puts: count('put'),
    dels: count('del'),
    clear: count('clear') === 1,
    bytes: Buffer.byteLength(reply.text),
  };
}

/** Timed pulls of one kind, and what every one of them sent. */
export interface PullTimes {
  readonly ms: number[];
  readonly patch: PatchSummary;
}

/**
 * Times `reps` incremental pulls from `cookie` and as many resets, alternating, after one
 * of each to warm up. Every reply must put exactly the rows expected: a wrong patch is an
 * error, not a number.
 */
export async function timePulls(
  db: Database<any>,
  cookie: string,
  expected: { readonly incremental: number; readonly reset: number },
  reps: number,
): Promise<{ incremental: PullTimes; reset: PullTimes }> {
  const times = { incremental: [] as number[], reset: [] as number[] };
  const patches: Partial<Record<'incremental' | 'reset', PatchSummary>> = {};
  for (let rep = -1; rep < reps; rep++) {
    const order =
      rep % 2 === 0 ? (['incremental', 'reset'] as const) : (['reset', 'incremental'] as const);
    for (const kind of order) {
      const reply = await pullNotes(db, kind === 'incremental' ? cookie : null);
      const patch = summarise(reply);
      const want = { puts: expected[kind], dels: 0, clear: kind === 'reset' };
      const got = { puts: patch.puts, dels: patch.dels, clear: patch.clear };
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(
          `${kind} pull sent ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
        );
      }
      patches[kind] = patch;
      if (rep >= 0) times[kind].push(reply.ms);
    }
  }
  return {
    incremental: { ms: times.incremental, patch: patches.incremental! },
    reset: { ms: times.reset, patch: patches.reset! },
  };
}

/**
 * Three instrumented pulls of each kind, keeping the one with the median time, so that one
 * garbage collection does not land in the breakdown.
 */
export async function profilePulls(
  db: Database<any>,
  cookie: string,
): Promise<Record<'incremental' | 'reset', { stats: Breakdown; ms: number }>> {
  const run = async (from: string | null) => {
    const runs: Array<{ stats: Breakdown; ms: number }> = [];
    for (let i = 0; i < 3; i++) {
      const stats = new Breakdown();
      const reply = await pullNotes(instrument(db, stats), from);
      runs.push({ stats, ms: reply.ms });
    }
    return runs.sort((x, y) => x.ms - y.ms)[1]!;
  };
  return { incremental: await run(cookie), reset: await run(null) };
}
