import type { AnySchema } from '@reprise/shared';
import type { ChangeWatcher } from '../changes/change-watcher';
import type { Change } from '../changes/changelog';
import { type Database, isTransientError } from '../db/database';
import type { EngineTables } from '../db/engine-tables';
import type { Logger } from '../db/logger';
import { type Batch, readBatch, readBatchRest } from './stream-batch';
import { ChangeStreamError, type StreamPosition, saveLease } from './stream-lease';

// The engine of `stream()` and `subscribe()`: an async iterator over matching changes that
// reads a batch when it runs dry and otherwise waits for the watcher to hear a commit.
//
// Acknowledgement: asking for the next event acknowledges the one before (a `for await`
// loop asks once its body is done with an event); `ack()` does so explicitly and also
// stores the position. A named stream stores its position with every lease renewal and when
// it stops, so after a crash at most the events since the last store come again.

export interface Durable {
  readonly name: string;
  readonly owner: string;
  readonly leaseMs: number;
}

export interface IteratorConfig<E> {
  readonly db: Database;
  readonly tables: EngineTables;
  /** Decodes the rows of the tables it knows. */
  readonly schema: AnySchema | undefined;
  readonly watcher: ChangeWatcher;
  readonly logger: Logger;
  readonly start: StreamPosition;
  readonly match: (change: Change) => boolean;
  readonly toEvent: (change: Change) => E;
  /** Named streams: where the position is stored, under a lease. */
  readonly durable?: Durable | undefined;
  /** When the changes after the position were pruned: fail (streams) or jump to now. */
  readonly onExpired: 'fail' | 'skip';
  readonly onStop: () => void;
}

export interface ChangeIterator<E> {
  next(): Promise<IteratorResult<E, undefined>>;
  /** Acknowledges every event handed out so far and, for a named stream, stores it. */
  ack(): Promise<void>;
  stop(): Promise<void>;
}

const RETRY_MS = [100, 250, 500, 1000, 2000, 5000];
const DONE: IteratorResult<never, undefined> = { done: true, value: undefined };

export function openChangeIterator<E>(config: IteratorConfig<E>): ChangeIterator<E> {
  const { db, tables, watcher, logger, durable } = config;
  let acked: StreamPosition = config.start;
  // `index`: the next change to look at; `last`: the last one that matches.
  let batch: (Batch & { index: number; last: number }) | undefined;
  let delivered: Change | undefined;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  let failure: Error | undefined;
  let wakeUp: (() => void) | undefined;
  let renewal: ReturnType<typeof setInterval> | undefined;
  // One next() at a time, and one write of the stream's row at a time.
  let reading: Promise<unknown> = Promise.resolve();
  let saving: Promise<unknown> = Promise.resolve();

  const wake = () => {
    const resolve = wakeUp;
    wakeUp = undefined;
    resolve?.();
  };
  const unsubscribe = watcher.subscribe(wake);

  /** Marks the event handed out last as done, moving the position past it. */
  const acknowledge = () => {
    const change = delivered;
    if (!change || !batch) return;
    delivered = undefined;
    if (batch.index > batch.last) acked = { cursor: batch.until };
    else if (batch.from.kind === 'id') acked = { cursor: { kind: 'id', id: change.id } };
    else acked = { cursor: batch.from, batch: { until: batch.until, afterID: change.id } };
  };

  const save = (leaseMs: number | null) => {
    if (!durable) return Promise.resolve();
    const position = acked;
    const run = saving.then(() =>
      saveLease(db, tables, durable.name, durable.owner, position, leaseMs),
    );
    saving = run.catch(() => undefined);
    return run;
  };

  const fail = (error: Error) => {
    failure ??= error;
    wake();
  };

  if (durable) {
    renewal = setInterval(
      () => {
        save(durable.leaseMs).catch((error: unknown) => {
          if (error instanceof ChangeStreamError) fail(error);
          else logger.warn({ event: 'stream.renew', stream: durable.name, error });
        });
      },
      Math.max(10, Math.floor(durable.leaseMs / 3)),
    );
    renewal.unref?.();
  }

  const read = async (): Promise<Batch> => {
    const { cursor, batch: half } = acked;
    if (half && cursor.kind === 'snapshot' && half.until.kind === 'snapshot') {
      return readBatchRest(db, tables, cursor, half.until, half.afterID, config.schema);
    }
    return readBatch(db, tables, cursor, config.schema);
  };

  /** Waits for a commit after `generation`, a stop, or a failure. */
  const settle = (generation: number, ms?: number) =>
    new Promise<void>((resolve) => {
      if (stopped || failure || (ms === undefined && watcher.generation > generation)) {
        return resolve();
      }
      const timer = ms === undefined ? undefined : setTimeout(() => wake(), ms);
      wakeUp = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });

  const pull = async (): Promise<IteratorResult<E, undefined>> => {
    acknowledge();
    for (let attempt = 0; ; ) {
      if (stopped) return DONE;
      if (failure) throw failure;
      if (batch) {
        while (batch.index < batch.changes.length) {
          const change = batch.changes[batch.index++]!;
          if (!config.match(change)) continue;
          delivered = change;
          return { done: false, value: config.toEvent(change) };
        }
        acked = { cursor: batch.until };
        batch = undefined;
      }
      const generation = watcher.generation;
      // A resumed half batch ends at an old snapshot: more may follow at once.
      const resumed = acked.batch !== undefined;
      let next: Batch;
      try {
        next = await read();
        attempt = 0;
      } catch (error) {
        if (stopped || !isTransientError(error)) throw error;
        logger.warn({ event: 'stream.read', stream: durable?.name, error });
        await settle(generation, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
        continue;
      }
      if (next.expired) {
        if (config.onExpired === 'fail') {
          throw new ChangeStreamError(
            'expired',
            `Change stream${durable ? ` "${durable.name}"` : ''} fell behind: changes it had not read were pruned`,
          );
        }
        acked = { cursor: next.until };
        continue;
      }
      const last = next.changes.findLastIndex(config.match);
      if (last >= 0) {
        batch = { ...next, index: 0, last };
        continue;
      }
      acked = { cursor: next.until };
      if (!resumed) await settle(generation);
    }
  };

  const stop = () => {
    if (stopping) return stopping;
    stopped = true;
    if (renewal) clearInterval(renewal);
    unsubscribe();
    wake();
    config.onStop();
    stopping = (async () => {
      // Let a read in flight finish before the lease (and perhaps the database) goes.
      await reading.catch(() => undefined);
      const lost = failure instanceof ChangeStreamError && failure.code === 'leaseLost';
      if (durable && !lost) {
        await save(null).catch((error: unknown) =>
          logger.warn({ event: 'stream.release', stream: durable.name, error }),
        );
      }
    })();
    return stopping;
  };

  return {
    next() {
      const pulled = reading.then(pull);
      reading = pulled.catch(() => undefined);
      return pulled.catch(async (error: unknown) => {
        // A stream that cannot go on lets go of its lease rather than sit on it.
        fail(error as Error);
        await stop();
        throw error;
      });
    },
    async ack() {
      if (failure) throw failure;
      acknowledge();
      await save(durable?.leaseMs ?? null);
    },
    stop,
  };
}
