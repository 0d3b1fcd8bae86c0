import {
  type ClientStorage,
  createMemoryStorage,
  type MutationOutcome,
  type SettledMutation,
  type StorageWrite,
} from '@reprise/client';
import { describe, expect, it, vi } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import {
  clientIssues,
  serverIssues,
  slowStorage,
  type TestClient,
  useClients,
} from './fixtures/client';
import { lmid } from './fixtures/push';

// Every `server` promise settles exactly once, with the outcome the server recorded,
// whatever the timing of storage writes, pushes, pulls and pokes.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms`: a hang fails fast. */
async function settledWithin<T>(promise: Promise<T>, what: string, ms = 3_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('every server promise settles once', () => {
  const h = useClients(pglite);

  it('with a slow storage and a pull right after mutate, server carries the recorded outcome', async () => {
    const storage = slowStorage(30);
    const a = await h.open({ storage });
    await a.idle();
    const created = a.mutate.issue.create({ id: 'i1', title: 'One' });
    void a.pull();
    const commented = a.mutate.comment.add({ id: 'c1', issueID: 'i1', body: 'hi' });
    void a.pull();
    const refused = a.mutate.review.refuse({ id: 'r1' });
    void a.pull();

    expect(await settledWithin(created.server, 'issue.create')).toEqual({
      ok: true,
      data: undefined,
    });
    expect(await settledWithin(commented.server, 'comment.add')).toEqual({
      ok: true,
      data: { commentID: 'c1', at: new Date('2026-01-02T03:04:05.000Z') },
    });
    const outcome = await settledWithin(refused.server, 'review.refuse');
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.message).toBe('Refused');
    await a.idle();
    expect(a.pending).toBe(0);
    expect(await lmid(h.fx, a.clientID, a.clientGroupID)).toBe(3);
    expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
  });
});
