// pokes/: the poke hub, one per process, and the reader that works out which scopes a
// commit touched.

import type { AnySchema } from '@reprise/shared';
import {
  type ChangeNotice,
  type ChangeWatcher,
  createChangeWatcher,
} from '../changes/change-watcher';
import { PUBLIC_SCOPE, type Visibility } from '../changes/visibility';
import type { Database } from '../db/database';
import { DEFAULT_ENGINE_SCHEMA, engineTables } from '../db/engine-tables';
import { consoleLogger, type Logger } from '../db/logger';
import { createScopeReader, type ScopeReader, type TouchedScopes } from './poke-scopes';

// Pokes tell a client "pull now": a Server-Sent Events stream that says `poke` whenever a
// committed change touches one of its scopes. The hub hears commits once per process (see
// change-watcher.ts) and fans them out to its connections.

export interface PokeHubOptions {
  readonly db: Database<any>;
  /**
   * The app's schema and visibility rules, as for pull: each commit then pokes only the
   * connections whose scopes its rows are (or were) in. Without them every commit pokes
   * every connection, which is safe (a poke carries no data) but makes everyone pull.
   */
  readonly schema?: AnySchema;
  readonly visibility?: Visibility<any>;
  /** Where the engine's own tables live (default `reprise`). */
  readonly engineSchema?: string;
  /** How often to look for commits where the database has no `LISTEN` (default 1000 ms). */
  readonly pollIntervalMs?: number;
  /**
   * How often to look for commits all the same where it has (default 10,000 ms): for a
   * commit whose process stopped before announcing it.
   */
  readonly listeningPollIntervalMs?: number;
  /** How often an idle connection gets a comment line, so proxies keep it open (default 25 s). */
  readonly heartbeatMs?: number;
  readonly logger?: Logger;
}

export interface PokeRequestOptions {
  readonly request: Request;
  /** The client group on the other end, for logs. */
  readonly clientGroupID?: string | undefined;
  /** The scopes the app grants this user, as for pull; `PUBLIC_SCOPE` is always included. */
  readonly scopes: readonly string[];
}

export interface PokeHub {
  /** Opens a poke stream: `event: ready` once listening, then `event: poke` on each change. */
  handlePokeRequest(options: PokeRequestOptions): Promise<Response>;
  /** How many poke streams are open. */
  readonly connections: number;
  /** Ends every poke stream and stops listening; call it before closing the database. */
  close(): Promise<void>;
}

/** Bursts of commits give one poke per connection per this many ms. */
const COALESCE_MS = 50;
const DEFAULT_HEARTBEAT_MS = 25_000;

const encoder = new TextEncoder();
const READY = encoder.encode('event: ready\ndata: {}\n\n');
const POKE = encoder.encode('event: poke\ndata: {}\n\n');
const HEARTBEAT = encoder.encode(': heartbeat\n\n');

interface Connection {
  readonly scopes: ReadonlySet<string>;
  readonly clientGroupID: string | undefined;
  poke: boolean;
  heartbeat: boolean;
  lastPokeAt: number;
  closed: boolean;
  /** Resolves the pull waiting for something to send. */
  wake: (() => void) | undefined;
  end(): void;
}

function wake(connection: Connection) {
  const resolve = connection.wake;
  connection.wake = undefined;
  resolve?.();
}

function concerns(touched: TouchedScopes, connection: Connection): boolean {
  if ('all' in touched) return true;
  for (const scope of connection.scopes) if (touched.scopes.has(scope)) return true;
  return false;
}

/**
 * Creates the process's poke hub. Serve its `handlePokeRequest` from an authenticated route
 * that works out the user's scopes; clients pull when they receive `poke`.
 *
 * @example
 * const pokes = createPokeHub({db});
 * app.get('/poke', (c) =>
 *   pokes.handlePokeRequest({request: c.req.raw, scopes: [c.get('userID')]}),
 * );
 */
export function createPokeHub(options: PokeHubOptions): PokeHub {
  const logger = options.logger ?? consoleLogger;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const connections = new Set<Connection>();
  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let watcher: ChangeWatcher | undefined;

  const tables = engineTables(options.engineSchema ?? DEFAULT_ENGINE_SCHEMA);
  const { schema, visibility } = options;
  const reader: ScopeReader | undefined =
    schema && visibility
      ? createScopeReader({ db: options.db, tables, schema, visibility, logger })
      : undefined;

  const poke = (touched: TouchedScopes) => {
    for (const connection of connections) {
      if (!concerns(touched, connection)) continue;
      connection.poke = true;
      wake(connection);
    }
  };
  const onNotice = (notice: ChangeNotice) => {
    if (!reader) return poke({ all: true });
    const synced = (table: string) => (visibility as Record<string, unknown>)[table] !== undefined;
    if ('tables' in notice && !notice.tables.some(synced)) return;
    void reader.read().then(poke);
  };

  const ensureWatcher = () => {
    if (!watcher) {
      watcher = createChangeWatcher({
        db: options.db,
        tables,
        logger,
        ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
        ...(options.listeningPollIntervalMs === undefined
          ? {}
          : { listeningPollIntervalMs: options.listeningPollIntervalMs }),
      });
      watcher.subscribe(onNotice);
    }
    // Listening first, then the position: a commit in between is read, not missed.
    return watcher.start().then(() => reader?.start());
  };

  const add = (connection: Connection) => {
    connections.add(connection);
    heartbeat ??= setInterval(() => {
      for (const each of connections) {
        each.heartbeat = true;
        wake(each);
      }
    }, heartbeatMs);
    heartbeat.unref?.();
  };

  const remove = (connection: Connection) => {
    connections.delete(connection);
    if (connections.size === 0 && heartbeat) {
      clearInterval(heartbeat);
      heartbeat = undefined;
    }
  };

  const unavailable = (message: string) =>
    Response.json({ error: 'unavailable', message }, { status: 503 });

  return {
    get connections() {
      return connections.size;
    },

    async handlePokeRequest({ request, clientGroupID, scopes }) {
      if (closed) return unavailable('The poke hub is closed');
      try {
        await ensureWatcher();
      } catch (error) {
        logger.error({ event: 'poke.listen', clientGroupID, error });
        return unavailable('Cannot listen for changes');
      }
      if (closed) return unavailable('The poke hub is closed');

      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const onAbort = () => connection.end();
      const connection: Connection = {
        scopes: new Set([...scopes, PUBLIC_SCOPE]),
        clientGroupID,
        poke: false,
        heartbeat: false,
        lastPokeAt: 0,
        closed: false,
        wake: undefined,
        end() {
          if (connection.closed) return;
          connection.closed = true;
          remove(connection);
          request.signal.removeEventListener('abort', onAbort);
          try {
            controller.close();
          } catch {
            // Already closed or cancelled by the reader.
          }
          wake(connection);
          logger.debug({ event: 'poke.close', clientGroupID });
        },
      };

      const body = new ReadableStream<Uint8Array>(
        {
          start(c) {
            controller = c;
            controller.enqueue(READY);
          },
          // The stream asks for more only when the client has read what it had, so a slow
          // client holds at most one pending poke, never a growing queue.
          async pull(c) {
            for (;;) {
              if (connection.closed) return;
              if (connection.poke) {
                const wait = connection.lastPokeAt + COALESCE_MS - Date.now();
                if (wait <= 0) {
                  connection.poke = false;
                  connection.heartbeat = false;
                  connection.lastPokeAt = Date.now();
                  c.enqueue(POKE);
                  return;
                }
                await new Promise<void>((resolve) => {
                  const timer = setTimeout(resolve, wait);
                  connection.wake = () => {
                    clearTimeout(timer);
                    resolve();
                  };
                });
                continue;
              }
              if (connection.heartbeat) {
                connection.heartbeat = false;
                c.enqueue(HEARTBEAT);
                return;
              }
              await new Promise<void>((resolve) => {
                connection.wake = resolve;
              });
            }
          },
          cancel() {
            connection.end();
          },
        },
        { highWaterMark: 0 },
      );

      if (request.signal.aborted) connection.end();
      else {
        request.signal.addEventListener('abort', onAbort, { once: true });
        add(connection);
        logger.debug({ event: 'poke.open', clientGroupID, scopes: scopes.length });
      }
      return new Response(body, {
        headers: {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          // nginx buffers responses unless told not to, which would hold pokes back.
          'x-accel-buffering': 'no',
        },
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const connection of [...connections]) connection.end();
      await watcher?.close();
    },
  };
}
