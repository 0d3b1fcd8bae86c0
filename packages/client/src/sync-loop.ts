import type { MutationResult } from '@reprise/shared';
import { backoffDelay } from './backoff';
import type { LocalState } from './local-state';
import { readPokes } from './poke-reader';
import type { QueuedMutation } from './storage';
import {
  type PushReply,
  requestHeaders,
  sendPull,
  sendPush,
  type Transport,
  toOutcome,
} from './sync-requests';
import type { AuthOption, AuthState, MutationOutcome } from './types';

// The network half of a client: pushes the queue in id order, pulls after pushes, on
// pokes and on an interval, and backs off when the server is unreachable. What one
// request's answer means is sync-requests.ts's business; this file decides what to do next.

export interface SyncHost {
  readonly state: LocalState;
  /**
   * Reports the server's verdict on a mutation of this client or of one it adopted. It may
   * be called more than once for a mutation (a push's answer, then the pull confirming
   * it); the host reports the first.
   */
  settle(clientID: string, id: number, outcome: MutationOutcome, name?: string): void;
  /** The view, online or auth state changed. */
  changed(): void;
}

export interface SyncOptions extends Transport {
  auth: AuthOption | undefined;
  readonly maxBatchSize: number;
  readonly backoff: { baseMs: number; maxMs: number };
  readonly pullIntervalMs: number;
  readonly poke: boolean;
  readonly onAuthError: ((status: number) => void) | undefined;
}

type Step = 'done' | 'again' | 'retry' | 'stop' | 'resync';

/** How many results of other clients of the group a client keeps, in case it adopts them. */
const REMEMBERED_RESULTS = 1000;

export class SyncLoop {
  online = true;
  forcedOffline = false;
  /** Aborts the poke stream: set while it runs. */
  private pokes: AbortController | undefined;
  authState: AuthState = 'ok';
  pushing = false;
  pulling: Promise<void> | undefined;
  retrying = false;
  /** Set once a pull's answer has been applied: the view holds the server's rows. */
  synced = false;
  private pushAgain = false;
  /** The pull that callers arriving during a running pull wait for (see pull()). */
  private queuedPull: Promise<void> | undefined;
  /** The last id pushed and acknowledged, per client (this one and adopted ones). */
  private readonly pushedThrough = new Map<string, number>();
  /** Failures in a row of each half; the backoff follows the worse of the two. */
  private readonly failures = { push: 0, pull: 0 };
  private batchSize: number;
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private interval: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /**
   * Results that pulls carried for other live clients of the group, by `clientID/id`: if
   * such a client closes before its own pull, this client adopts the mutation, finds it
   * confirmed, and reports this result.
   */
  private readonly othersResults = new Map<string, MutationResult>();

  constructor(
    private readonly host: SyncHost,
    private readonly options: SyncOptions,
  ) {
    this.batchSize = options.maxBatchSize;
  }

  start(): void {
    if (this.options.pullIntervalMs > 0) {
      this.interval = setInterval(() => void this.pull(), this.options.pullIntervalMs);
    }
    this.startPokes();
    void this.pull();
    this.schedulePush();
  }

  /**
   * Listens for pokes (each one pulls) while the client may send: a client held offline
   * keeps no connection to the server open.
   */
  private startPokes(): void {
    const { poke } = this.options.endpoints;
    if (!poke || !this.options.poke || this.pokes || this.closed || this.forcedOffline) return;
    const pokes = new AbortController();
    this.pokes = pokes;
    void readPokes({
      url: `${poke}${poke.includes('?') ? '&' : '?'}clientGroupID=${this.host.state.clientGroupID}`,
      fetch: this.options.fetch,
      headers: () => requestHeaders(this.options.auth),
      signal: pokes.signal,
      onPoke: () => void this.pull(),
      retryDelay: (attempt) => backoffDelay(attempt, this.options.backoff),
    });
  }

  close(): void {
    this.closed = true;
    this.pokes?.abort();
    clearTimeout(this.pushTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.interval);
  }

  /** The queued mutations not sent (or sent and not acknowledged): adopted ones first. */
  private unpushed(): QueuedMutation[] {
    const unpushed: QueuedMutation[] = [];
    for (const { clientID, confirmed, pending } of this.host.state.queues()) {
      const from = Math.max(this.pushedThrough.get(clientID) ?? 0, confirmed);
      for (const mutation of pending) if (mutation.id > from) unpushed.push({ clientID, mutation });
    }
    return unpushed;
  }

  hasUnpushed(): boolean {
    return this.unpushed().length > 0;
  }

  private canSend(): boolean {
    return !this.closed && !this.forcedOffline && this.authState === 'ok';
  }

  private setOnline(online: boolean) {
    if (this.online === online) return;
    this.online = online;
    this.host.changed();
  }

  /** Coalesces every call made in the same tick into one push. */
  schedulePush(): void {
    if (this.pushTimer !== undefined || this.retryTimer !== undefined) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      void this.push();
    }, 0);
  }

  // Each half counts its own failures, so pulls that succeed do not reset the backoff of
  // pushes the server keeps refusing with a 5xx (that would retry them every baseMs).
  private scheduleRetry(half: 'push' | 'pull') {
    this.failures[half]++;
    if (this.retryTimer !== undefined || this.closed) return;
    const attempt = Math.max(this.failures.push, this.failures.pull) - 1;
    const delay = backoffDelay(attempt, this.options.backoff);
    this.retrying = true;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retrying = false;
      void this.push();
      void this.pull();
    }, delay);
    this.host.changed();
  }

  private failed(status: number): Step {
    if (status === 401 || status === 403) {
      // A push and a pull refused together are one auth error, reported once.
      if (this.authState === 'unauthorized') return 'stop';
      this.authState = 'unauthorized';
      this.options.onAuthError?.(status);
      this.host.changed();
      return 'stop';
    }
    this.setOnline(status < 500);
    return status >= 500 || status === 429 ? 'retry' : 'stop';
  }

  async push(): Promise<void> {
    if (this.pushing) {
      this.pushAgain = true;
      return;
    }
    if (!this.canSend()) return;
    this.pushing = true;
    let sent = false;
    let oooInARow = 0;
    try {
      for (;;) {
        const batch = this.unpushed().slice(0, this.batchSize);
        if (batch.length === 0 || !this.canSend()) break;
        const reply = await sendPush(this.options, this.host.state.clientGroupID, batch);
        const step = this.step(reply, batch);
        if (step === 'retry') return this.scheduleRetry('push');
        // Batches that went through before the refusal still need a pull to confirm them.
        if (step === 'stop') break;
        if (step === 'resync') {
          // The server expects an earlier id: learn what it has, then push from there.
          if (++oooInARow > 3) return this.scheduleRetry('push');
          this.pushedThrough.clear();
          await this.pull();
        }
        sent = true;
      }
    } finally {
      this.pushing = false;
      if (this.pushAgain) {
        this.pushAgain = false;
        this.schedulePush();
      }
      this.host.changed();
    }
    if (sent) await this.pull();
  }

  /** What the push loop does after `reply` to `batch`. */
  private step(reply: PushReply, batch: readonly QueuedMutation[]): Step {
    const size = batch.length;
    switch (reply.kind) {
      case 'unreachable':
        this.setOnline(false);
        return 'retry';
      case 'tooLarge':
        if (size === 1) return this.failed(413);
        this.batchSize = Math.max(1, Math.floor(size / 2));
        return 'again';
      case 'outOfOrder':
        return 'resync';
      case 'failed':
        return this.failed(reply.status);
    }
    this.setOnline(true);
    this.failures.push = 0;
    for (const { id, result } of reply.mutations) {
      const sent = batch.find((m) => m.clientID === id.clientID && m.mutation.id === id.id);
      if (!sent) continue;
      this.pushedThrough.set(
        id.clientID,
        Math.max(this.pushedThrough.get(id.clientID) ?? 0, id.id),
      );
      const outcome = toOutcome(result);
      if (outcome) this.host.settle(id.clientID, id.id, outcome, sent.mutation.name);
    }
    return 'done';
  }

  /**
   * Pulls now. A call while a pull runs waits for one more pull after it, which every such
   * call shares: the running pull may have read before the caller's call, and a caller of
   * `pull()` must see everything that committed before it called.
   */
  pull(): Promise<void> {
    if (!this.pulling) return this.startPull();
    this.queuedPull ??= this.pulling.then(() => {
      this.queuedPull = undefined;
      // Another caller may have started a pull meanwhile; it too began after our callers.
      return this.pulling ?? this.startPull();
    });
    return this.queuedPull;
  }

  private startPull(): Promise<void> {
    if (!this.canSend()) return Promise.resolve();
    // pullOnce reports what it can before anything throws; an unexpected throw is a
    // failed pull, retried, never an unhandled rejection of a `void this.pull()`.
    this.pulling = this.pullOnce()
      .catch(() => this.scheduleRetry('pull'))
      .finally(() => {
        this.pulling = undefined;
        this.host.changed();
      });
    return this.pulling;
  }

  private async pullOnce(): Promise<void> {
    const { state } = this.host;
    const reply = await sendPull(this.options, state);
    if (reply.kind === 'unreachable') {
      this.setOnline(false);
      return this.scheduleRetry('pull');
    }
    if (reply.kind === 'failed') {
      if (this.failed(reply.status) === 'retry') this.scheduleRetry('pull');
      return;
    }
    this.setOnline(true);
    this.failures.pull = 0;
    const pulled = reply.response;
    const confirmed = await state.applyPull(
      pulled.cookie,
      pulled.patch,
      pulled.lastMutationIDChanges,
    );
    this.synced = true;
    const results = new Map<string, MutationResult>();
    for (const { id, result } of pulled.mutationResults) {
      const key = `${id.clientID}/${id.id}`;
      results.set(key, result);
      if (id.clientID === state.clientID) continue;
      this.othersResults.delete(key);
      this.othersResults.set(key, result);
      if (this.othersResults.size > REMEMBERED_RESULTS) {
        this.othersResults.delete(this.othersResults.keys().next().value as string);
      }
    }
    // Each mutation this pull confirmed settles with its stored result; one without a
    // result succeeded with no data (or its result was pruned: see pruneChanges). Results
    // for anything else are old news (a reset carries them all) or other clients' own.
    for (const { clientID, mutation } of confirmed) {
      const key = `${clientID}/${mutation.id}`;
      const result = results.get(key) ?? this.othersResults.get(key);
      this.othersResults.delete(key);
      const outcome = (result && toOutcome(result)) ?? { ok: true, data: undefined };
      this.host.settle(clientID, mutation.id, outcome, mutation.name);
    }
    // Mutations queued by an earlier session, adopted, or left unsent (a resync) go out now.
    if (this.hasUnpushed()) this.schedulePush();
  }

  setAuth(auth: AuthOption | undefined): void {
    this.options.auth = auth;
    this.authState = 'ok';
    this.schedulePush();
    void this.pull();
  }

  setForcedOffline(offline: boolean): void {
    this.forcedOffline = offline;
    this.host.changed();
    if (offline) {
      this.pokes?.abort();
      this.pokes = undefined;
    } else {
      this.startPokes();
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.retrying = false;
      this.failures.push = 0;
      this.failures.pull = 0;
      this.schedulePush();
      void this.pull();
    }
  }
}
