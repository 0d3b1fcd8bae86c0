import { type Database, handleMutateRequest, silentLogger } from '@reprise/server';
import type { PushRequest } from '@reprise/shared';
import { noteMutators, notesSchema, PULLER, seededNoteID, WRITER } from './changes-app';
import type { RunResult } from './workload';

/** What a mutation does: insert a new note, or update a seeded one. */
export type NoteOp = 'create' | 'rename';

/** One client's pushes, their JSON bodies built before the clock starts. */
export interface NoteScript {
  readonly tag: string;
  readonly clientGroupID: string;
  readonly clientID: string;
  readonly bodies: readonly string[];
  readonly creates: number;
  readonly renames: number;
}

/**
 * `pushes` pushes of `perPush` mutations from one new client of `tag`. `opOf(k)` picks
 * the k-th mutation's kind: a create inserts a new note of the puller, the n-th rename
 * updates the puller's seeded note n (so a run must not rename more notes than were seeded).
 */
export function buildNoteScript(
  tag: string,
  pushes: number,
  perPush: number,
  opOf: (k: number) => NoteOp,
): NoteScript {
  const clientGroupID = `${tag}-g`;
  const clientID = `${tag}-c`;
  const bodies: string[] = [];
  let creates = 0;
  let renames = 0;
  for (let p = 0; p < pushes; p++) {
    const mutations = Array.from({ length: perPush }, (_, i) => {
      const k = p * perPush + i;
      const op = opOf(k);
      const args =
        op === 'create'
          ? { id: `${tag}-${creates++}`, ownerID: PULLER, title: `Note ${k}` }
          : { id: seededNoteID(++renames), title: `${tag} ${k}` };
      return {
        type: 'custom' as const,
        id: k + 1,
        clientID,
        name: `note.${op}`,
        args: [args],
        timestamp: Date.now(),
      };
    });
    const body: PushRequest = {
      clientGroupID,
      pushVersion: 1,
      timestamp: Date.now(),
      requestID: `${clientID}-r${p}`,
      mutations,
    };
    bodies.push(JSON.stringify(body));
  }
  return { tag, clientGroupID, clientID, bodies, creates, renames };
}

/** Posts one push as the writer, with the visibility rules, and reads the reply. */
export async function postNotes(
  db: Database<any>,
  body: string,
  changelog: boolean,
): Promise<void> {
  const request = new Request('http://localhost/mutate', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const response = await handleMutateRequest({
    db,
    schema: notesSchema,
    mutators: noteMutators,
    userID: WRITER,
    logger: silentLogger,
    request,
    ...(changelog ? {} : { changelog: false }),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`push got HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
}

/** Runs a script's pushes one after another, timed, then checks what they wrote. */
export async function runNoteScript(
  db: Database<any>,
  script: NoteScript,
  changelog: boolean,
  check: Database<any> = db,
): Promise<RunResult> {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (const body of script.bodies) {
    const pushStarted = performance.now();
    await postNotes(db, body, changelog);
    latencies.push(performance.now() - pushStarted);
  }
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  await verifyScript(check, script, changelog);
  return {
    mutations: script.creates + script.renames,
    ms,
    latencies,
    nodeCpuUs: cpu.user + cpu.system,
  };
}

/** Asserts the notes, the client's LMID and the changelog rows are what the script made. */
export async function verifyScript(db: Database<any>, script: NoteScript, changelog: boolean) {
  const count = async (text: string, params: unknown[]) => {
    const [row] = await db.query<{ n: string | number }>(text, params);
    return Number(row?.n);
  };
  const total = script.creates + script.renames;
  const found = {
    creates: await count('SELECT count(*) AS n FROM note WHERE id LIKE $1', [`${script.tag}-%`]),
    renames: await count('SELECT count(*) AS n FROM note WHERE title LIKE $1', [`${script.tag} %`]),
    lmid: await count(
      'SELECT max("lastMutationID") AS n FROM reprise.clients WHERE "clientGroupID" = $1',
      [script.clientGroupID],
    ),
    changes: await count('SELECT count(*) AS n FROM reprise.changes WHERE "clientGroupID" = $1', [
      script.clientGroupID,
    ]),
  };
  const expected = {
    creates: script.creates,
    renames: script.renames,
    lmid: total,
    changes: changelog ? total : 0,
  };
  if (JSON.stringify(found) !== JSON.stringify(expected)) {
    throw new Error(
      `run ${script.tag}: found ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`,
    );
  }
}
