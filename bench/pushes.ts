import type { PushRequest } from '@reprise/shared';

/** One push of the workload, prepared before the clock starts. */
export interface BenchPush {
  readonly clientGroupID: string;
  readonly clientID: string;
  /** The first mutation's ID; the rest follow one by one. */
  readonly firstID: number;
  /** Row IDs the push's mutations insert (or, when refused, would have), in order. */
  readonly itemIDs: readonly string[];
  /** The JSON body a client would send for `handleMutateRequest`. */
  readonly body: string;
}

/** One client's pushes, run one after another. */
export interface ClientScript {
  readonly clientGroupID: string;
  readonly clientID: string;
  readonly pushes: readonly BenchPush[];
}

/**
 * Whether the bench refuses this mutation, when its case has ApplicationErrors: every
 * tenth of each client's mutations, whose row ID therefore ends in 0.
 */
export const isRefused = (mutationID: number) => mutationID % 10 === 0;

/**
 * Builds `clients` scripts of `pushesPerClient` pushes of `perPush` mutations each. Every
 * client is alone in its own client group; `tag` keeps IDs unique across runs. With
 * `appErrors`, the mutations `isRefused` picks carry `refuse: true` in their args.
 */
export function buildScripts(
  tag: string,
  clients: number,
  pushesPerClient: number,
  perPush: number,
  appErrors = false,
): ClientScript[] {
  const scripts: ClientScript[] = [];
  for (let c = 0; c < clients; c++) {
    const clientGroupID = `${tag}-g${c}`;
    const clientID = `${tag}-c${c}`;
    const pushes: BenchPush[] = [];
    for (let p = 0; p < pushesPerClient; p++) {
      const firstID = p * perPush + 1;
      const itemIDs = Array.from({ length: perPush }, (_, i) => `${clientID}-${firstID + i}`);
      const body: PushRequest = {
        clientGroupID,
        pushVersion: 1,
        timestamp: Date.now(),
        requestID: `${clientID}-r${p}`,
        mutations: itemIDs.map((id, i) => ({
          type: 'custom' as const,
          id: firstID + i,
          clientID,
          name: 'item.create',
          args: [
            appErrors && isRefused(firstID + i)
              ? { id, title: `Item ${id}`, refuse: true }
              : { id, title: `Item ${id}` },
          ],
          timestamp: Date.now(),
        })),
      };
      pushes.push({ clientGroupID, clientID, firstID, itemIDs, body: JSON.stringify(body) });
    }
    scripts.push({ clientGroupID, clientID, pushes });
  }
  return scripts;
}
