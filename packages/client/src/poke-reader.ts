// Reads the server's poke stream (Server-Sent Events) over fetch, so it can carry an
// Authorization header, which EventSource cannot. It reconnects with backoff; a 404 or
// a body that is not a stream means the server has no pokes, and interval pulls remain.
// Every stream opens with `event: ready`, which counts as a poke: commits made while the
// client was not listening (before it connected, or while it reconnected) poked no one.

export interface PokeReaderOptions {
  readonly url: string;
  readonly fetch: typeof fetch;
  headers(): Promise<Record<string, string>>;
  readonly signal: AbortSignal;
  onPoke(): void;
  retryDelay(attempt: number): number;
}

/**
 * Calls `onPoke` for every `event: poke` and every (re)connection's `event: ready`, until
 * `signal` aborts.
 *
 * @example
 * void readPokes({url, fetch, headers: async () => ({}), signal, onPoke: pull, retryDelay: () => 1000});
 */
export async function readPokes(options: PokeReaderOptions): Promise<void> {
  const decoder = new TextDecoder();
  for (let attempt = 0; !options.signal.aborted; attempt++) {
    try {
      const response = await options.fetch(options.url, {
        headers: { ...(await options.headers()), accept: 'text/event-stream' },
        signal: options.signal,
      });
      if (response.status === 404 || response.status === 405 || !response.body) return;
      if (response.ok) {
        attempt = 0;
        let buffer = '';
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const lines = message.split('\n');
            if (lines.includes('event: poke') || lines.includes('event: ready')) options.onPoke();
            end = buffer.indexOf('\n\n');
          }
        }
      }
    } catch {
      // A dropped connection: reconnect below.
    }
    if (options.signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, options.retryDelay(attempt)));
  }
}
