import { handleCrudRequest, silentLogger } from '@reprise/server';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { createOwnedTables, ownedPolicy, ownedSchema } from './fixtures/owned-app';

// Random PowerSync uploads and outbox pushes from bob against ana's data: every answer is
// a 200 with one result per operation, a 400 or a 413 (never a 5xx), no answer carries SQL,
// and not one of ana's rows changes: cross-user writes stay at 0 whatever the body says.
// FUZZ_RUNS sets the bodies per adapter (default 100).

// As fixtures/hostile's SQL_TEXT, but the op names PUT/PATCH/DELETE are protocol words here.
const SQL_TEXT =
  /\b(?:SELECT|INSERT INTO|UPDATE \S+ SET|DELETE FROM|WHERE|RETURNING|VALUES)\b|while running|pg_snapshot|::text|"reprise"\./;

const RUNS = Math.max(10, Math.round(Number(process.env.FUZZ_RUNS ?? 200) / 2));
const SEED = Number(process.env.FUZZ_SEED ?? 20261203);

const ANA_ROWS = [
  `INSERT INTO project VALUES ('p1', 'ana', 'A')`,
  `INSERT INTO task (id, project_id, title) VALUES ('t1', 'p1', 'T1')`,
  `INSERT INTO note VALUES ('n1', 't1', 'ana wrote this')`,
  `INSERT INTO doc VALUES ('d1', 'ana', 'D')`,
  `INSERT INTO project VALUES ('p2', 'bob', 'B')`,
  `INSERT INTO task (id, project_id, title) VALUES ('t2', 'p2', 'T2')`,
];

const tables = fc.constantFrom('project', 'task', 'note', 'doc', 'audit', 'secret', 'nope', '');
const ids = fc.constantFrom('p1', 't1', 'n1', 'd1', 'p2', 't2', 'x', '', '\u0000');
const columns = fc.constantFrom(
  'id',
  'ownerID',
  'owner_id',
  'projectID',
  'project_id',
  'taskID',
  'task_id',
  'tenantID',
  'title',
  'name',
  'body',
  'done',
  'points',
  'tags',
  'due_at',
  'what',
  '__proto__',
);
const values = fc.oneof(
  ids,
  fc.constantFrom('ana', 'bob', null, 0, 1, true, 2.5, '[1]', '2026-01-01', 'x'.repeat(300)),
  fc.jsonValue({ maxDepth: 2 }),
);
const data = fc.dictionary(columns, values, { maxKeys: 4 });
const powerSyncOp = fc.record(
  {
    op: fc.oneof(fc.constantFrom('PUT', 'PATCH', 'DELETE'), fc.string({ maxLength: 3 })),
    table: tables,
    id: fc.oneof(ids, fc.integer()),
    data: fc.oneof(data, fc.constant(null)),
    op_id: fc.nat({ max: 20 }),
  },
  { requiredKeys: ['op', 'table', 'id'] },
);
const outboxEvent = fc.record(
  {
    id: fc.oneof(ids, fc.string({ maxLength: 4 })),
    entityType: tables,
    operation: fc.constantFrom('create', 'update', 'delete', 'upsert'),
    payload: data,
    entityKeyPath: fc.array(ids, { maxLength: 1 }),
  },
  { requiredKeys: ['id', 'entityType', 'operation', 'payload'] },
);
// Operations aimed at ana's rows with well-formed values, so that a missing check shows.
const aimedData = fc.dictionary(
  fc.constantFrom('owner_id', 'name', 'title', 'project_id', 'task_id', 'body', 'tenant_id'),
  fc.constantFrom('ana', 'bob', 'x', 'p1', 'p2', 't1', 't2'),
  { maxKeys: 3 },
);
const aimedTable = fc.constantFrom('project', 'task', 'note', 'doc');
const aimedID = fc.constantFrom('p1', 't1', 'n1', 'd1', 't2', 'n9');
const aimedOp = fc.record({
  op: fc.constantFrom('PUT', 'PATCH', 'DELETE'),
  table: aimedTable,
  id: aimedID,
  data: aimedData,
});
const aimedEvent = fc.record({
  id: fc.string({ maxLength: 6 }),
  entityType: aimedTable,
  operation: fc.constantFrom('create', 'update', 'delete'),
  payload: fc.tuple(aimedID, aimedData).map(([id, data]) => ({ ...data, id })),
});
const body = fc.oneof(
  fc.record({ batch: fc.array(aimedOp, { minLength: 1, maxLength: 6 }) }),
  fc.record({ events: fc.array(aimedEvent, { minLength: 1, maxLength: 6 }) }),
  fc.record({
    clientID: fc.constantFrom('c1', 'c2'),
    batch: fc.array(powerSyncOp, { maxLength: 6 }),
  }),
  fc.record({ batch: fc.array(powerSyncOp, { maxLength: 6 }) }),
  fc.record({ events: fc.array(outboxEvent, { maxLength: 6 }) }),
  fc.jsonValue({ maxDepth: 3 }),
);

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('drizzle'))) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`CRUD fuzz: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await createOwnedTables(fx.db);
      for (const statement of ANA_ROWS) await fx.query(statement);
    });
    afterAll(async () => {
      await fx.close();
    });

    const anaRows = async () =>
      JSON.stringify([
        await fx.query(`SELECT * FROM project WHERE owner_id = 'ana' ORDER BY id`),
        await fx.query(
          `SELECT t.* FROM task t JOIN project p ON p.id = t.project_id WHERE p.owner_id = 'ana' ORDER BY t.id`,
        ),
        await fx.query(
          `SELECT n.* FROM note n JOIN task t ON t.id = n.task_id JOIN project p ON p.id = t.project_id
           WHERE p.owner_id = 'ana' ORDER BY n.id`,
        ),
        await fx.query(`SELECT * FROM doc ORDER BY id`),
        await fx.query(`SELECT * FROM secret`),
      ]);

    it('never answers 5xx or SQL, and never changes another user’s rows', async () => {
      const before = await anaRows();
      await fc.assert(
        fc.asyncProperty(body, async (sent) => {
          const response = await handleCrudRequest({
            db: fx.db,
            schema: ownedSchema,
            writePolicy: ownedPolicy,
            logger: silentLogger,
            userID: 'bob',
            request: new Request('http://localhost/upload', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(sent),
            }),
          });
          const text = await response.text();
          expect([200, 400, 413]).toContain(response.status);
          expect(text).not.toMatch(SQL_TEXT);
          if (response.status === 200) {
            const reply = JSON.parse(text);
            const list =
              (sent as { batch?: unknown[]; events?: unknown[] }).batch ??
              (sent as { events: unknown[] }).events;
            expect((Array.isArray(reply) ? reply : reply.results).length).toBe(list.length);
          }
          expect(await anaRows()).toBe(before);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });
  });
}
