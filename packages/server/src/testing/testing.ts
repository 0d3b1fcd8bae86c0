// testing/: `createTestDatabase`, for unit-testing mutators on PGlite or pg-mem through
// the production push path.

import {
  type AnyMutators,
  type AnySchema,
  ApplicationError,
  decodeRich,
  encodeRich,
  type JSONValue,
  type MutationRequest,
  PUSH_VERSION,
  type PushRequest,
  pushResponseSchema,
} from '@reprise/shared';
import { migrate } from '../changes/migrate';
import { silentLogger } from '../db/logger';
import { createJobQueue } from '../jobs/job-queue';
import { processMutateRequest } from '../push/handle-mutate-request';
import { runQuery } from '../query/run-query';
import { openTestEngine } from './testing-engine';
import type {
  TestDatabase,
  TestDatabaseOptions,
  TestMutateOptions,
  TestMutationOutcome,
} from './testing-types';

export type { TestEngine } from './testing-engine';
export type {
  TestDatabase,
  TestDatabaseOptions,
  TestMutateOptions,
  TestMutationOutcome,
} from './testing-types';

const DEFAULT_CLIENT_ID = 'test-client';

/**
 * A fresh in-memory database (PGlite or pg-mem) for unit-testing mutators without a
 * server: the engine's tables are migrated, `ddl` is run, and `mutate` goes through the
 * same push path as production (transaction, validation, LMID bump, error results). On
 * PGlite the first database of each `ddl` in a process is built and kept as a template;
 * later ones are copies of it, which takes a fraction of a fresh start, and a closed one is
 * reset to that template (rows, sequences, settings, listeners) and reused by the next,
 * unless its tables, functions or template rows were changed, in which case it is closed.
 *
 * @example
 * await using t = await createTestDatabase({schema, mutators, ddl: APP_DDL});
 * const ana = {userID: 'ana', context: {userID: 'ana'}};
 * const result = await t.mutate(mutators.issue.create({id: 'i1', title: 'x'}), ana);
 * expect(result).toEqual({ok: true, data: undefined});
 * expect(await t.run(q.issue.where('id', 'i1').one())).toMatchObject({title: 'x'});
 */
export async function createTestDatabase<S extends AnySchema, M extends AnyMutators>(
  options: TestDatabaseOptions<S, M>,
): Promise<TestDatabase<S, M>> {
  const ddl = typeof options.ddl === 'string' ? [options.ddl] : (options.ddl ?? []);
  const engine = await openTestEngine(options.engine ?? 'pglite', {
    key: JSON.stringify(ddl),
    async run(db, exec) {
      await migrate(db);
      for (const text of ddl) await exec(text);
      // The app's tables exist now: capture their writes, as a production database would.
      if (ddl.length > 0) await migrate(db, { capture: options.schema });
    },
  });
  const { db } = engine;
  const jobs = createJobQueue({
    db,
    jobs: options.jobs ?? [],
    engine: 'in-process',
    logger: options.logger ?? silentLogger,
  });

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= engine.close();
    return closed;
  };
  // Pushes take turns so that ids reach the engine in the order they were handed out.
  let turn: Promise<unknown> = Promise.resolve();
  const lastIDs = new Map<string, number>();

  async function push(request: MutationRequest, as: TestMutateOptions) {
    if (closed) throw new Error('createTestDatabase: this test database is closed');
    const userID = as.userID ?? options.userID;
    const clientID = as.clientID ?? DEFAULT_CLIENT_ID;
    // One client group per user, as one user's browser would have: a group belongs to the
    // first user that pushes to it, so users must not share one.
    const clientGroupID = userID === undefined ? 'test-group' : `test-group:${userID}`;
    const key = JSON.stringify([clientGroupID, clientID]);
    const id = (lastIDs.get(key) ?? 0) + 1;
    const now = Date.now();
    const body: PushRequest = {
      clientGroupID,
      pushVersion: PUSH_VERSION,
      timestamp: now,
      requestID: `test-${clientID}-${id}`,
      mutations: [
        { type: 'custom', id, clientID, name: request.name, args: [request.args], timestamp: now },
      ],
    };
    let logged: unknown;
    const logger = options.logger ?? silentLogger;
    const reply = await processMutateRequest({
      db,
      schema: options.schema,
      mutators: options.mutators,
      context: 'context' in as ? as.context : options.context,
      userID,
      ...(options.writePolicy ? { writePolicy: options.writePolicy } : {}),
      ...(options.scopeKey === undefined ? {} : { scopeKey: options.scopeKey }),
      jobs,
      logger: {
        ...logger,
        warn: (entry) => {
          logged = entry.error;
          logger.warn(entry);
        },
        error: (entry) => {
          logged = entry.error;
          logger.error(entry);
        },
      },
      // Through JSON and superjson both ways, as the client sends it and reads the answer.
      body: JSON.parse(JSON.stringify(encodeRich(body))),
    });
    const response = pushResponseSchema.parse(decodeRich(JSON.parse(JSON.stringify(reply.body))));
    if (response.kind === 'PushFailed') {
      throw new Error(
        `createTestDatabase: the push of ${request.name} (client ${clientID}, id ${id}) failed ` +
          `with ${response.reason}: ${response.message}`,
        { cause: logged ?? response },
      );
    }
    lastIDs.set(key, id);
    const result = response.mutations[0]?.result;
    if (result === undefined || ('error' in result && result.error === 'alreadyProcessed')) {
      // Only if something else pushed as this client, e.g. raw SQL on the engine's tables.
      throw new Error(
        `createTestDatabase: ${request.name} (client ${clientID}, id ${id}) was not applied: ` +
          'the engine had already processed that id',
      );
    }
    if (!('error' in result)) return { ok: true as const, data: result.data };
    const error = new ApplicationError(
      result.message ?? 'The server refused the mutation',
      result.details === undefined ? {} : { details: result.details as JSONValue },
    );
    return { ok: false as const, error };
  }

  return {
    db,
    mutate(request, as = {}) {
      const outcome = turn.then(() => push(request, as));
      turn = outcome.catch(() => undefined);
      return outcome as Promise<TestMutationOutcome<never>>;
    },
    run: (query) => runQuery(db, options.schema, query, { partialSQL: db.capabilities.partialSQL }),
    sql: (text, params) => db.query(text, params),
    // Behind the pushes so far, as a worker would find their jobs committed.
    runJobs: () => turn.then(() => jobs.runPending()),
    jobs,
    close,
    [Symbol.asyncDispose]: close,
  };
}
