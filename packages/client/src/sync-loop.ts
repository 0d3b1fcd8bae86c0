import {
  ApplicationError,
  decodeRich,
  encodeRich,
  isEnvelope,
  type JSONValue,
  type MutationResult,
  PULL_VERSION,
  PUSH_VERSION,
  type PushRequest,
  pullResponseSchema,
  pushResponseSchema,
} from '@reprise/shared';
import { backoffDelay } from './backoff';
import type { LocalState } from './local-state';
import { readPokes } from './poke-reader';
import type { PendingMutation } from './storage';
import type { AuthOption, AuthState, MutationOutcome } from './types';

// The network half of a client: pushes the queue in id order, pulls after pushes, on
// pokes and on an interval, and backs off when the server is unreachable.

export interface Endpoints {
  readonly mutate: string;
  readonly pull: string;
  readonly poke?: string | undefined;
}

export interface SyncHost {
  readonly state: LocalState;
  /** Reports the server's verdict on one of this client's mutations. */
  settle(id: number, outcome: MutationOutcome): void;
  /** A pull confirmed these mutations (settle those not settled yet as successes). */
  confirmed(mutations: readonly PendingMutation[]): void;
  /** The view, online or auth state changed. */
  changed(): void;
}

export interface SyncOptions {
  readonly endpoints: Endpoints;
  readonly fetch: typeof fetch;
  auth: AuthOption | undefined;
  readonly maxBatchSize: number;
  readonly backoff: { baseMs: number; maxMs: number };
  readonly pullIntervalMs: number;
  readonly poke: boolean;
  readonly onAuthError: ((status: number) => void) | undefined;
}

type Step = 'done' | 'again' | 'retry' | 'stop' | 'resync';

function toOutcome(result: MutationResult): MutationOutcome | undefined {
  if (!('error' in result)) return { ok: true, data: result.data };
  if (result.error === 'alreadyProcessed') return undefined;
  return {
    ok: false,
    error: new ApplicationError(result.message ?? 'The server refused the mutation', {
      details: result.details as JSONValue,
    }),
  };
}

async function readJSON(response: Response): Promise<unknown> {
  const body: unknown = await response.json();
  return isEnvelope(body) ? decodeRich(body) : body;
}

export class SyncLoop {
  online = true;
  forcedOffline = false;
  authState: AuthState = 'ok';
  pushing = false;
  pulling: Promise<void> | undefined;
  retrying = false;
  private pushAgain = false;
  private pullAgain = false;
  private pushedThrough: number;
  private attempts = 0;
  private batchSize: number;
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private interval: ReturnType<typeof setInterval> | undefined;
  private readonly abort = new AbortController();
  private closed = false;

  constructor(
    private readonly host: SyncHost,
    private readonly options: SyncOptions,
  ) {
    this.pushedThrough = host.state.lastMutationID;
    this.batchSize = options.maxBatchSize;
  }

  start(): void {
    if (this.options.pullIntervalMs > 0) {
      this.interval = setInterval(() => void this.pull(), this.options.pullIntervalMs);
    }
    const { poke } = this.options.endpoints;
    if (poke && this.options.poke) {
      void readPokes({
        url: `${poke}${poke.includes('?') ? '&' : '?'}clientGroupID=${this.host.state.clientGroupID}`,
        fetch: this.options.fetch,
        headers: () => this.headers(),
        signal: this.abort.signal,
        onPoke: () => void this.pull(),
        retryDelay: (attempt) => backoffDelay(attempt, this.options.backoff),
      });
    }
    void this.pull();
    this.schedulePush();
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
    clearTimeout(this.pushTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.interval);
  }

  /** True when some queued mutation has not been sent (or was sent and not acknowledged). */
  hasUnpushed(): boolean {
    const from = Math.max(this.pushedThrough, this.host.state.lastMutationID);
    return this.host.state.pending.some((m) => m.id > from);
  }

  private canSend(): boolean {
    return !this.closed && !this.forcedOffline && this.authState === 'ok';
  }

  private async headers(): Promise<Record<string, string>> {
    const { auth } = this.options;
    const value = typeof auth === 'function' ? await auth() : auth;
    return value === undefined
      ? { 'content-type': 'application/json' }
      : { 'content-type': 'application/json', authorization: value };
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

  private scheduleRetry() {
    if (this.retryTimer !== undefined || this.closed) return;
    const delay = backoffDelay(this.attempts++, this.options.backoff);
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
        const from = Math.max(this.pushedThrough, this.host.state.lastMutationID);
        const batch = this.host.state.pending.filter((m) => m.id > from).slice(0, this.batchSize);
        if (batch.length === 0 || !this.canSend()) break;
        const step = await this.send(batch);
        if (step === 'retry') return this.scheduleRetry();
        if (step === 'stop') return;
        if (step === 'resync') {
          // The server expects an earlier id: learn what it has, then push from there.
          if (++oooInARow > 3) return this.scheduleRetry();
          this.pushedThrough = 0;
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

  private async send(batch: readonly PendingMutation[]): Promise<Step> {
    const { state } = this.host;
    const request: PushRequest = {
      clientGroupID: state.clientGroupID,
      pushVersion: PUSH_VERSION,
      timestamp: Date.now(),
      requestID: globalThis.crypto.randomUUID(),
      mutations: batch.map((m) => ({
        type: 'custom' as const,
        id: m.id,
        clientID: state.clientID,
        name: m.name,
        args: [m.args],
        timestamp: m.timestamp,
      })),
    };
    let response: Response;
    try {
      response = await this.options.fetch(this.options.endpoints.mutate, {
        method: 'POST',
        headers: await this.headers(),
        body: JSON.stringify(encodeRich(request)),
      });
    } catch {
      this.setOnline(false);
      return 'retry';
    }
    if (response.status === 413 && batch.length > 1) {
      this.batchSize = Math.max(1, Math.floor(batch.length / 2));
      return 'again';
    }
    let parsed: ReturnType<typeof pushResponseSchema.safeParse>;
    try {
      parsed = pushResponseSchema.safeParse(await readJSON(response));
    } catch {
      return this.failed(response.status >= 400 ? response.status : 502);
    }
    if (!response.ok && !(parsed.success && parsed.data.kind === 'PushFailed')) {
      return this.failed(response.status);
    }
    if (!parsed.success) return this.failed(502);
    const body = parsed.data;
    if (body.kind === 'PushFailed') {
      if (body.reason === 'oooMutation') return 'resync';
      return this.failed(response.status === 200 ? 500 : response.status);
    }
    this.setOnline(true);
    this.attempts = 0;
    for (const { id, result } of body.mutations) {
      if (id.clientID !== state.clientID) continue;
      this.pushedThrough = Math.max(this.pushedThrough, id.id);
      const outcome = toOutcome(result);
      if (outcome) this.host.settle(id.id, outcome);
    }
    return 'done';
  }

  /** Pulls now; calls while a pull runs coalesce into one more pull after it. */
  pull(): Promise<void> {
    if (this.pulling) {
      this.pullAgain = true;
      return this.pulling;
    }
    if (!this.canSend()) return Promise.resolve();
    this.pulling = this.pullOnce().finally(() => {
      this.pulling = undefined;
      if (this.pullAgain) {
        this.pullAgain = false;
        void this.pull();
      }
      this.host.changed();
    });
    return this.pulling;
  }

  private async pullOnce(): Promise<void> {
    const { state } = this.host;
    let response: Response;
    try {
      response = await this.options.fetch(this.options.endpoints.pull, {
        method: 'POST',
        headers: await this.headers(),
        body: JSON.stringify(
          encodeRich({
            clientGroupID: state.clientGroupID,
            cookie: state.cookie,
            pullVersion: PULL_VERSION,
          }),
        ),
      });
    } catch {
      this.setOnline(false);
      return this.scheduleRetry();
    }
    let parsed: ReturnType<typeof pullResponseSchema.safeParse> | undefined;
    try {
      if (response.ok) parsed = pullResponseSchema.safeParse(await readJSON(response));
    } catch {}
    if (!parsed?.success) {
      if (this.failed(response.ok ? 502 : response.status) === 'retry') this.scheduleRetry();
      return;
    }
    this.setOnline(true);
    this.attempts = 0;
    const pulled = parsed.data;
    const dropped = await state.applyPull(
      pulled.cookie,
      pulled.patch,
      pulled.lastMutationIDChanges,
    );
    for (const { id, result } of pulled.mutationResults) {
      const outcome = id.clientID === state.clientID ? toOutcome(result) : undefined;
      if (outcome) this.host.settle(id.id, outcome);
    }
    this.host.confirmed(dropped);
    // Mutations queued by an earlier session or left unsent (a resync) go out now.
    if (state.pending.some((m) => m.id > this.pushedThrough)) this.schedulePush();
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
    if (!offline) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.retrying = false;
      this.attempts = 0;
      this.schedulePush();
      void this.pull();
    }
  }
}
