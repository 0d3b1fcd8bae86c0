import type { Database } from '@reprise/server';
import { buildNoteScript, type NoteOp, runNoteScript } from './changes-workload';
import { Breakdown, instrument } from './profile';
import type { RunResult } from './workload';

// Mutations per second with capture on (the trigger `migrate` installs, the default) and
// with the trigger disabled, at the engine's default isolation (serializable).

export interface ChangelogCase {
  readonly key: 'a' | 'b' | 'c';
  readonly title: string;
  readonly op: NoteOp;
  readonly perPush: number;
  readonly pushes: number;
  readonly warmupPushes: number;
}

/** `changelog`: capture on, the default; `none`: the capture trigger disabled. */
export type ChangelogMode = 'changelog' | 'none';

export interface ChangelogResult {
  readonly database: string;
  readonly bench: ChangelogCase;
  readonly runs: Record<ChangelogMode, RunResult[]>;
  readonly error?: string;
}

/**
 * The cases; `scale` shrinks or grows the mutation counts (1 ≈ 600/1500/1500). Case (c)
 * renames seeded notes, so its run must not exceed the notes seeded for the puller.
 */
export function changelogCases(scale: number): ChangelogCase[] {
  const pushes = (mutations: number, perPush: number) =>
    Math.max(2, Math.ceil((mutations * scale) / perPush));
  return [
    {
      key: 'a',
      title: '1 insert/push',
      op: 'create',
      perPush: 1,
      pushes: pushes(600, 1),
      warmupPushes: 50,
    },
    {
      key: 'b',
      title: '50 inserts/push',
      op: 'create',
      perPush: 50,
      pushes: pushes(1500, 50),
      warmupPushes: 4,
    },
    {
      key: 'c',
      title: '50 updates/push',
      op: 'rename',
      perPush: 50,
      pushes: pushes(1500, 50),
      warmupPushes: 4,
    },
  ];
}

/** Turns the note table's capture trigger on or off. */
export async function setNoteCapture(db: Database<any>, on: boolean): Promise<void> {
  await db.query(`ALTER TABLE note ${on ? 'ENABLE' : 'DISABLE'} TRIGGER "reprise_capture"`);
}

export const caseName = (bench: ChangelogCase) => `(${bench.key}) ${bench.title}`;

export class ChangelogRunner {
  private counter = 0;

  constructor(
    private readonly db: Database<any>,
    private readonly session: string,
  ) {}

  /** One run of `pushes` pushes from a new client, with or without capture. */
  async run(bench: ChangelogCase, mode: ChangelogMode, pushes: number, db = this.db) {
    const tag = `${this.session}-${mode[0]}${bench.key}${++this.counter}`;
    const script = buildNoteScript(tag, pushes, bench.perPush, () => bench.op);
    // The trigger captures where the database has triggers; pg-mem records in the engine.
    await setNoteCapture(this.db, mode === 'changelog');
    return runNoteScript(db, script, mode === 'changelog', this.db);
  }

  /** Warms up both modes, then alternates them `reps` times, swapping who goes first. */
  async measure(
    bench: ChangelogCase,
    reps: number,
    onRun: (mode: ChangelogMode, rep: number, run: RunResult) => void,
  ): Promise<Record<ChangelogMode, RunResult[]>> {
    const runs: Record<ChangelogMode, RunResult[]> = { changelog: [], none: [] };
    for (const mode of ['changelog', 'none'] as const) {
      await this.run(bench, mode, bench.warmupPushes);
    }
    for (let rep = 0; rep < reps; rep++) {
      const order: ChangelogMode[] = rep % 2 === 0 ? ['changelog', 'none'] : ['none', 'changelog'];
      for (const mode of order) {
        const run = await this.run(bench, mode, bench.pushes);
        runs[mode].push(run);
        onRun(mode, rep, run);
      }
    }
    return runs;
  }

  /**
   * Instrumented runs for the breakdown's columns: the changelog, the changelog with its
   * NOTIFY cut out by the bench, and no changelog. Each column gets three short runs taking
   * turns with the others' (half a timed run in all), so that a slow spell of the machine
   * is shared out rather than landing on one column.
   */
  async profile(bench: ChangelogCase): Promise<ProfiledRun[]> {
    const rounds = 3;
    const pushes = Math.max(2, Math.ceil(bench.pushes / (2 * rounds)));
    // The NOTIFY is cut out before the instrumentation sees the statement, so that it
    // times and names the one actually sent.
    const columns: Array<[string, ChangelogMode]> = [
      ['capture on', 'changelog'],
      ['capture off', 'none'],
    ];
    const profiled = columns.map(([label]) => ({
      label,
      stats: new Breakdown(),
      run: { mutations: 0, ms: 0, latencies: [] as number[], nodeCpuUs: 0 },
    }));
    for (let round = 0; round < rounds; round++) {
      for (const [i, [, mode]] of columns.entries()) {
        const column = profiled[i]!;
        const run = await this.run(bench, mode, pushes, instrument(this.db, column.stats));
        column.run.mutations += run.mutations;
        column.run.ms += run.ms;
        column.run.latencies.push(...run.latencies);
        column.run.nodeCpuUs += run.nodeCpuUs;
      }
    }
    return profiled;
  }
}

export interface ProfiledRun {
  readonly label: string;
  readonly stats: Breakdown;
  readonly run: RunResult;
}
