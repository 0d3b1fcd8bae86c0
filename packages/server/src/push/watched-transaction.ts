import type { AnySchema, ServerTransaction } from '@reprise/shared';
import type { DatabaseTransaction } from '../db/database';
import { runQuery } from '../query/run-query';

/**
 * What a mutator has done with its transaction, so that the push processor can tell
 * whether a failure of the mutator left that transaction as it found it.
 */
export interface TransactionUse {
  /**
   * True while nothing the mutator did can have written or broken the transaction: it never
   * touched `tx.mutate`, `tx.dbTransaction.wrappedTransaction` or `tx.enqueue`, and every
   * read it sent through `tx.run` has answered, without an error (a failed statement aborts
   * a Postgres transaction).
   */
  untouched(): boolean;
  /**
   * Ends the mutation: from here on `tx.mutate`, `tx.run`, the driver's transaction and
   * `tx.enqueue` throw, so a call the mutator left behind (a timer, a promise it did not
   * await) cannot write into the transaction after its failure was judged.
   */
  end(): void;
}

/** The parts of a mutation's `ServerTransaction` that the push processor provides. */
export interface WatchedTransactionParts {
  readonly schema: AnySchema;
  readonly partialSQL: boolean;
  readonly clientID: string;
  readonly mutationID: number;
  /** `tx.mutate` as createSchemaMutate builds it over `dbTx`. */
  readonly mutate: object;
  readonly afterCommit: ServerTransaction['afterCommit'];
  readonly enqueue: ServerTransaction['enqueue'];
  /** Called as the mutator takes the driver's transaction, before it can send SQL. */
  readonly beforeRawSQL?: (() => void) | undefined;
}

/**
 * `tx.dbTransaction`: the driver's transaction, handed out by `take` on each read. A class,
 * so its getter lives on the prototype: an object literal with a getter gets a hidden class
 * of its own, which old space keeps, and with it the whole mutation the getter's closure
 * holds, past every young-generation GC (see collectJobs in job-queue.ts).
 */
class RawTransaction<W> {
  readonly #take: () => W;
  constructor(take: () => W) {
    this.#take = take;
  }
  get wrappedTransaction(): W {
    return this.#take();
  }
}

/**
 * The `ServerTransaction` a mutator runs in, over `dbTx`, and a watch on how it was used.
 * Touching `tx.mutate` or `tx.enqueue` counts as a possible write, whether or not a
 * statement went out yet (a write may be sent after a policy read, or after the mutator
 * threw), and so does touching the driver's transaction, whose use cannot be followed.
 * Reads through `tx.run` do not: a query compiles to one `SELECT` over the schema's tables
 * with built-in operators only, which takes no lock and writes nothing.
 *
 * @example
 * const {tx, use} = createWatchedTransaction(dbTx, parts);
 * try { await runMutator(mutator, {tx, args, ctx}); }
 * catch (error) { use.end(); if (use.untouched()) { ...record it in this transaction } }
 */
export function createWatchedTransaction(
  dbTx: DatabaseTransaction,
  parts: WatchedTransactionParts,
): { tx: ServerTransaction; use: TransactionUse } {
  let mayHaveWritten = false;
  let readsInFlight = 0;
  let readFailed = false;
  let ended = false;
  const touch = (what: string, writes: boolean) => {
    if (ended) {
      throw new Error(
        `${what} was used after mutation ${parts.mutationID} of client ${parts.clientID} had failed; await every call inside the mutator`,
      );
    }
    if (writes) mayHaveWritten = true;
  };
  const read = async <R>(statement: Promise<R>): Promise<R> => {
    readsInFlight++;
    try {
      return await statement;
    } catch (error) {
      readFailed = true;
      throw error;
    } finally {
      readsInFlight--;
    }
  };
  const reader: Pick<DatabaseTransaction, 'query'> = {
    query: (text, params) => read(dbTx.query(text, params)),
  };

  const mutate = new Proxy(parts.mutate, {
    get(target, prop, receiver) {
      // `then` is how `await` probes a value; it is not a table.
      if (typeof prop === 'string' && prop !== 'then') touch('tx.mutate', true);
      return Reflect.get(target, prop, receiver);
    },
  }) as ServerTransaction['mutate'];
  const tx: ServerTransaction = {
    location: 'server',
    reason: 'authoritative',
    clientID: parts.clientID,
    mutationID: parts.mutationID,
    schema: parts.schema,
    mutate,
    // Queries run in the mutation's own transaction (or savepoint), so they see its writes.
    run: (query) => {
      touch('tx.run', false);
      return runQuery(reader, parts.schema, query, { partialSQL: parts.partialSQL });
    },
    dbTransaction: new RawTransaction(() => {
      touch('tx.dbTransaction.wrappedTransaction', true);
      parts.beforeRawSQL?.();
      return dbTx.wrappedTransaction;
    }),
    afterCommit: parts.afterCommit,
    enqueue: ((...args: Parameters<ServerTransaction['enqueue']>) => {
      touch('tx.enqueue', true);
      return parts.enqueue(...args);
    }) as ServerTransaction['enqueue'],
  };
  return {
    tx,
    use: {
      untouched: () => !mayHaveWritten && readsInFlight === 0 && !readFailed,
      end: () => {
        ended = true;
      },
    },
  };
}
