import { randomBytes } from 'node:crypto';
import { NOTES_DDL, notesSchema, PULLER } from './changes-app';
import { pullNotes, summarise } from './changes-pull';
import { buildNoteScript, postNotes, runNoteScript } from './changes-workload';
import { median, renderTable } from './report';
import { createPostgresTarget, resolveServerURL, type Target } from './targets';

// `npm run bench -- history`: a push and an incremental pull must cost the same whether the
// database holds a small or a large history. Two databases on one server, one with 10
// thousand notes (and their 10 thousand captured changes), one with a million, are
// measured side by side, alternating, so that the machine's noise falls on both alike.

type Progress = (message: string) => void;

/** A large history may cost at most this much more than a small one. */
export const HISTORY_RATIO = 1.2;

const session = randomBytes(3).toString('hex');
/** Owners the seeded notes are spread over; the puller is one of them. */
const OWNERS = 1000;
/** Rows written per `CALL` of the seeding procedure (each row in a transaction of its own). */
const SEED_BATCH = 50_000;

interface Sample {
  readonly push: number[];
  readonly pull: number[];
}

/**
 * Writes `rows` notes, each in a transaction of its own as an app would, so that the
 * changelog holds as many transactions (one row of `txChanges` each) as there are notes;
 * then analyzes. A procedure commits them on the server; `synchronous_commit` is off while
 * it runs, since seeding measures nothing.
 */
async function seed(target: Target, rows: number, progress: Progress) {
  const started = performance.now();
  await target.db.query(
    `CREATE PROCEDURE bench_seed(first integer, last integer, owners integer, puller text)
     LANGUAGE plpgsql AS $$
     BEGIN
       PERFORM set_config('synchronous_commit', 'off', false);
       FOR i IN first..last LOOP
         INSERT INTO note (id, "ownerID", title)
           VALUES ('history-' || i, CASE WHEN i % owners = 0 THEN puller ELSE 'owner-' || (i % owners) END, 'Note ' || i);
         COMMIT;
       END LOOP;
       PERFORM set_config('synchronous_commit',
         (SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'), false);
     END $$`,
  );
  for (let from = 0; from < rows; from += SEED_BATCH) {
    const to = Math.min(rows, from + SEED_BATCH);
    await target.db.query('CALL bench_seed($1, $2, $3, $4)', [from + 1, to, OWNERS, PULLER]);
  }
  await target.db.query('DROP PROCEDURE bench_seed');
  await target.db.query('VACUUM ANALYZE note');
  await target.db.query('VACUUM ANALYZE reprise."txChanges"');
  const count = await target.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM reprise."txChanges"',
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  progress(
    `  seeded ${rows.toLocaleString('en')} notes, ${count[0]!.n.toLocaleString('en')} changelog rows, in ${seconds} s`,
  );
}

/**
 * One round on one database: `pushes` one-mutation pushes, timed each; then as many times
 * a push followed by a pull from the previous cookie (one change to read), the pull timed.
 */
async function round(
  target: Target,
  tag: string,
  pushes: number,
  cookie: { value: string },
  into: Sample,
) {
  const script = buildNoteScript(`${tag}-p`, pushes, 1, () => 'create');
  const pushed = await runNoteScript(target.db, script, true);
  into.push.push(...pushed.latencies);
  const pulled = buildNoteScript(`${tag}-q`, pushes, 1, () => 'create');
  for (const body of pulled.bodies) {
    await postNotes(target.db, body, true);
    const reply = await pullNotes(target.db, cookie.value);
    const patch = summarise(reply);
    if (patch.clear || patch.puts < 1) {
      throw new Error(`an incremental pull read ${patch.puts} rows (reset: ${patch.clear})`);
    }
    cookie.value = patch.cookie;
    into.pull.push(reply.ms);
  }
}

const p = (values: readonly number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

/** Runs the history section on the local (or `DATABASE_URL`) server; true when it failed. */
export async function runHistoryBench(options: {
  reps: number;
  scale: number;
  progress: Progress;
}): Promise<boolean> {
  const { reps, scale, progress } = options;
  const small = 10_000;
  const large = Math.max(small * 10, Math.round(1_000_000 * scale));
  console.log(
    `\nHistory: a push and an incremental pull with ${small.toLocaleString('en')} against ${large.toLocaleString('en')} rows (median of ${reps} alternating rounds)`,
  );
  const server = await resolveServerURL();
  if (!('url' in server)) {
    console.log(`NOTICE: ${server.notice}; the history section needs a Postgres server.`);
    return false;
  }
  const targets: Target[] = [];
  try {
    for (const rows of [small, large]) {
      const target = await createPostgresTarget(server.url, NOTES_DDL, notesSchema);
      targets.push(target);
      progress(`History, ${rows.toLocaleString('en')} rows:`);
      await seed(target, rows, progress);
    }
    const cookies = await Promise.all(
      targets.map(async (t) => ({ value: summarise(await pullNotes(t.db, null)).cookie })),
    );
    const samples: Sample[] = targets.map(() => ({ push: [], pull: [] }));
    const pushes = Math.max(20, Math.round(200 * scale));
    for (let rep = 0; rep < reps; rep++) {
      // Each database goes first in turn.
      for (let k = 0; k < targets.length; k++) {
        const i = (k + rep) % targets.length;
        await round(targets[i]!, `${session}-${rep}-${i}`, pushes, cookies[i]!, samples[i]!);
      }
      progress(`  history round ${rep + 1}/${reps} done`);
    }
    const rows = (['push', 'pull'] as const).map((kind) => {
      const [a, b] = samples.map((s) => s[kind]);
      const ratio = median(b!) / median(a!);
      return [
        kind === 'push' ? 'push (1 mutation)' : 'incremental pull (1 change)',
        `${median(a!).toFixed(2)} / ${p(a!, 0.99).toFixed(2)}`,
        `${median(b!).toFixed(2)} / ${p(b!, 0.99).toFixed(2)}`,
        ratio.toFixed(2),
        ratio <= HISTORY_RATIO ? 'yes' : 'NO',
      ];
    });
    console.log(
      `\n${renderTable(
        [
          'what',
          `${small.toLocaleString('en')} rows: p50 / p99 ms`,
          `${large.toLocaleString('en')} rows: p50 / p99 ms`,
          'ratio of p50',
          `met (<= ${HISTORY_RATIO})?`,
        ],
        rows,
      )}`,
    );
    return false;
  } catch (error) {
    progress(`  history FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return true;
  } finally {
    for (const target of targets) await target.close();
  }
}
