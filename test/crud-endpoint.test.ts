import {
  type CrudOptions,
  defineVisibility,
  handleCrudRequest,
  handlePullRequest,
  silentLogger,
} from '@reprise/server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  createOwnedTables,
  ownedPolicy,
  ownedSchema,
  resetOwnedTables,
} from './fixtures/owned-app';

// The CRUD endpoint: PowerSync uploads and Prisma IDB outbox pushes, checked by the write
// policy and the schema, applied in order and once each, on every adapter.

type Options = Partial<CrudOptions> & { method?: string; contentType?: string };

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`CRUD endpoint: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await createOwnedTables(fx.db);
    });
    beforeEach(async () => {
      await fx.reset();
      await resetOwnedTables(fx.db);
    });
    afterAll(async () => {
      await fx.close();
    });

    async function send(userID: string, body: unknown, options: Options = {}) {
      const response = await handleCrudRequest({
        db: fx.db,
        schema: ownedSchema,
        writePolicy: ownedPolicy,
        logger: silentLogger,
        userID,
        ...options,
        request: new Request('http://localhost/upload', {
          method: options.method ?? 'POST',
          headers: { 'content-type': options.contentType ?? 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
      });
      return { status: response.status, body: (await response.json()) as any };
    }
    const statuses = (body: any) =>
      (Array.isArray(body) ? body : body.results).map((r: any) => r.status);
    const rows = (table: string) =>
      fx.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY id`);

    /** ana owns p1 → t1 → n1; bob owns p2 → t2. */
    async function seed() {
      const ana = await send('ana', {
        batch: [
          { op: 'PUT', table: 'project', id: 'p1', data: { owner_id: 'ana', name: 'A' } },
          { op: 'PUT', table: 'task', id: 't1', data: { project_id: 'p1', title: 'T1' } },
          { op: 'PUT', table: 'note', id: 'n1', data: { task_id: 't1', body: 'ana wrote this' } },
        ],
      });
      const bob = await send('bob', {
        events: [
          {
            id: 'e-p2',
            entityType: 'project',
            operation: 'create',
            payload: { id: 'p2', ownerID: 'bob', name: 'B' },
          },
          {
            id: 'e-t2',
            entityType: 'task',
            operation: 'create',
            payload: { id: 't2', projectID: 'p2', title: 'T2' },
          },
        ],
      });
      expect([...statuses(ana.body), ...statuses(bob.body)]).toEqual(Array(5).fill('applied'));
    }

    it('applies a PowerSync batch: PUT, PATCH and DELETE, values read as PowerSync stores them', async () => {
      await seed();
      const { status, body } = await send('ana', {
        clientID: 'ps1',
        batch: [
          {
            op_id: 1,
            op: 'PUT',
            type: 'task', // CrudEntry.toJSON() names the table `type`
            id: 't3',
            data: {
              project_id: 'p1',
              title: 'new',
              done: 1,
              points: 3,
              tags: '["a","b"]',
              due_at: '2026-05-06T07:08:09.000Z',
            },
          },
          { op_id: 2, op: 'PATCH', table: 'task', id: 't1', data: { title: 'renamed', done: 0 } },
          { op_id: 3, op: 'DELETE', table: 'note', id: 'n1' },
          { op_id: 4, op: 'PATCH', table: 'task', id: 'missing', data: { title: 'x' } },
        ],
      });
      expect(status).toBe(200);
      expect(body.results).toEqual([
        { op_id: 1, op: 'PUT', table: 'task', id: 't3', status: 'applied' },
        { op_id: 2, op: 'PATCH', table: 'task', id: 't1', status: 'applied' },
        { op_id: 3, op: 'DELETE', table: 'note', id: 'n1', status: 'applied' },
        { op_id: 4, op: 'PATCH', table: 'task', id: 'missing', status: 'applied' },
      ]);
      const tasks = await rows('task');
      expect(tasks.map((t) => [t.id, t.title, t.done])).toEqual([
        ['t1', 'renamed', false],
        ['t2', 'T2', false],
        ['t3', 'new', true],
      ]);
      const t3 = tasks[2]!;
      expect(t3.tags).toEqual(['a', 'b']);
      expect(Number(t3.points)).toBe(3);
      expect(new Date(t3.due_at as string).toISOString()).toBe('2026-05-06T07:08:09.000Z');
      expect(await rows('note')).toEqual([]);
    });

    it('applies Prisma IDB outbox events and answers with its PushResult shape', async () => {
      await seed();
      const { status, body } = await send('bob', {
        clientId: 'idb1',
        events: [
          {
            id: 'e1',
            entityType: 'note',
            operation: 'create',
            payload: { id: 'n2', taskID: 't2', body: 'b' },
            createdAt: '2026-01-01',
            tries: 0,
          },
          {
            id: 'e2',
            entityType: 'note',
            operation: 'update',
            payload: { id: 'n2', taskID: 't2', body: 'b2' },
          },
          { id: 'e3', entityType: 'task', operation: 'update', payload: { id: 't2', done: true } },
          { id: 'e4', entityType: 'project', operation: 'delete', payload: { id: 'p-gone' } },
        ],
      });
      expect(status).toBe(200);
      expect(body).toEqual(
        ['e1', 'e2', 'e3', 'e4'].map((id) => ({
          id,
          status: 'applied',
          appliedChangelogId: null,
          error: null,
        })),
      );
      expect((await rows('note')).find((n) => n.id === 'n2')?.body).toBe('b2');
      expect((await rows('task')).find((t) => t.id === 't2')?.done).toBe(true);
    });

    it('refuses writes through a two-level chain into another user’s data', async () => {
      await seed();
      const { body } = await send('bob', {
        events: [
          {
            id: 'x1',
            entityType: 'note',
            operation: 'create',
            payload: { id: 'n9', taskID: 't1', body: 'bob' },
          },
          {
            id: 'x2',
            entityType: 'note',
            operation: 'update',
            payload: { id: 'n1', taskID: 't1', body: 'bob' },
          },
          { id: 'x3', entityType: 'note', operation: 'delete', payload: { id: 'n1' } },
        ],
      });
      expect(body.map((r: any) => r.error?.type)).toEqual(Array(3).fill('SCOPE_VIOLATION'));
      expect(body[0].error.message).toMatch(/^forbidden: insert of note \{"id":"n9"\}/);
      expect((await rows('note')).map((n) => [n.id, n.body])).toEqual([['n1', 'ana wrote this']]);
    });

    it('refuses a forged ownerID on insert, and an update moving a row to another owner', async () => {
      await seed();
      const { body } = await send('bob', {
        batch: [
          { op: 'PUT', table: 'project', id: 'p9', data: { owner_id: 'ana', name: 'forged' } },
          { op: 'PATCH', table: 'project', id: 'p2', data: { owner_id: 'ana' } },
          { op: 'PATCH', table: 'task', id: 't2', data: { project_id: 'p1' } },
          { op: 'PUT', table: 'project', id: 'p1', data: { owner_id: 'bob', name: 'taken' } },
        ],
      });
      expect(body.results.map((r: any) => [r.status, r.reason])).toEqual(
        Array(4).fill(['refused', 'forbidden']),
      );
      expect(body.results[1].message).toContain('the new values are out of scope');
      expect((await rows('project')).map((p) => [p.id, p.owner_id, p.name])).toEqual([
        ['p1', 'ana', 'A'],
        ['p2', 'bob', 'B'],
      ]);
      expect((await rows('task')).map((t) => t.project_id)).toEqual(['p1', 'p2']);
    });

    it('tenant scope keys: a function of the event, as Prisma IDB’s scopeKey', async () => {
      const memberOf = new Set(['org1']);
      const scopeKey = (op: { data: Readonly<Record<string, unknown>> }) => {
        const tenant = String(op.data.tenantID);
        return memberOf.has(tenant) ? tenant : [];
      };
      const { body } = await send(
        'ana',
        {
          events: [
            {
              id: 'd1',
              entityType: 'doc',
              operation: 'create',
              payload: { id: 'd1', tenantID: 'org1', title: 'ok' },
            },
            {
              id: 'd2',
              entityType: 'doc',
              operation: 'create',
              payload: { id: 'd2', tenantID: 'org2', title: 'no' },
            },
            {
              id: 'd3',
              entityType: 'doc',
              operation: 'update',
              payload: { id: 'd1', tenantID: 'org2', title: 'moved' },
            },
          ],
        },
        { scopeKey },
      );
      expect(body.map((r: any) => r.status)).toEqual(['applied', 'refused', 'refused']);
      expect((await rows('doc')).map((d) => [d.id, d.tenant_id, d.title])).toEqual([
        ['d1', 'org1', 'ok'],
      ]);
    });

    it('applies a resent operation once, by PowerSync op_id and by event id', async () => {
      await seed();
      const first = {
        clientID: 'ps1',
        batch: [{ op_id: 7, op: 'PATCH', table: 'task', id: 't1', data: { title: 'first' } }],
      };
      expect(statuses((await send('ana', first)).body)).toEqual(['applied']);
      const later = {
        clientID: 'ps1',
        batch: [{ op_id: 8, op: 'PATCH', table: 'task', id: 't1', data: { title: 'second' } }],
      };
      expect(statuses((await send('ana', later)).body)).toEqual(['applied']);
      // The first upload again (its answer was lost): it must not undo the second.
      expect(statuses((await send('ana', first)).body)).toEqual(['alreadyProcessed']);
      expect((await rows('task')).find((t) => t.id === 't1')?.title).toBe('second');

      const event = {
        id: 'ev-1',
        entityType: 'note',
        operation: 'create',
        payload: { id: 'n5', taskID: 't2', body: 'once' },
      };
      expect((await send('bob', { events: [event] })).body[0].status).toBe('applied');
      const again = (await send('bob', { events: [event, event] })).body;
      expect(again).toEqual([
        { id: 'ev-1', status: 'alreadyProcessed', appliedChangelogId: null, error: null },
        { id: 'ev-1', status: 'alreadyProcessed', appliedChangelogId: null, error: null },
      ]);
      // A refused operation is not retried by a resend either.
      const refused = {
        clientID: 'ps2',
        batch: [{ op_id: 1, op: 'DELETE', table: 'note', id: 'n1' }],
      };
      expect(statuses((await send('bob', refused)).body)).toEqual(['refused']);
      expect(statuses((await send('bob', refused)).body)).toEqual(['alreadyProcessed']);
      const receipts = await fx.query<{ status: string }>(
        `SELECT "status" FROM reprise."crudReceipts" WHERE "clientID" = 'ps2'`,
      );
      expect(receipts.map((r) => r.status)).toEqual(['refused']);
      // Receipts are per user: another user's op_id 7 of client ps1 is new.
      const bobs = {
        clientID: 'ps1',
        batch: [{ op_id: 7, op: 'PATCH', table: 'task', id: 't2', data: { title: 'bob7' } }],
      };
      expect(statuses((await send('bob', bobs)).body)).toEqual(['applied']);
    });

    it('applies a mixed batch in order: refusals name the column or the reason, the rest apply', async () => {
      await seed();
      const { status, body } = await send('ana', {
        batch: [
          { op: 'PUT', table: 'task', id: 't5', data: { project_id: 'p1', title: 'ok' } },
          { op: 'PATCH', table: 'task', id: 't5', data: { colour: 'red' } },
          { op: 'PATCH', table: 'task', id: 't5', data: { points: 'many' } },
          { op: 'PUT', table: 'task', id: 't6', data: { project_id: 'p1' } },
          { op: 'PATCH', table: 'task', id: 't5', data: { id: 't7' } },
          { op: 'PUT', table: 'nope', id: 'x', data: {} },
          { op: 'PATCH', table: 'task', id: 't5', data: { title: null } },
          { op: 'PUT', table: 'note', id: 'n7', data: { task_id: 't5', body: 'sees t5' } },
          { op: 'DELETE', table: 'task', id: 't2' },
          { op: 'PATCH', table: 'task', id: 't5', data: { points: 2.5 } },
        ],
      });
      expect(status).toBe(200);
      const summary = body.results.map((r: any) => [r.status, r.reason, r.message]);
      expect(summary).toEqual([
        ['applied', undefined, undefined],
        ['refused', 'invalid', 'task: "colour" is not a column of task'],
        ['refused', 'invalid', 'task: "points" must be a number, not "many"'],
        ['refused', 'invalid', 'task: missing non-null column "title"'],
        ['refused', 'invalid', 'task: the primary key "id" cannot change'],
        ['refused', 'unknownTable', 'Unknown table "nope"'],
        ['refused', 'invalid', 'task: "title" cannot be null'],
        ['applied', undefined, undefined],
        ['refused', 'forbidden', expect.stringContaining('forbidden: delete of task {"id":"t2"}')],
        ['refused', 'invalid', 'task: "points" must be an integer, not 2.5'],
      ]);
      expect((await rows('task')).map((t) => t.id)).toEqual(['t1', 't2', 't5']);
      expect((await rows('note')).map((n) => n.id)).toEqual(['n1', 'n7']);
    });

    it('refuses an outbox event whose payload misses a non-null column or changes its key', async () => {
      await seed();
      const { body } = await send('ana', {
        events: [
          {
            id: 'a',
            entityType: 'task',
            operation: 'create',
            payload: { id: 't8', projectID: 'p1' },
          },
          {
            id: 'b',
            entityType: 'task',
            operation: 'update',
            payload: { id: 't1', title: 'x' },
            entityKeyPath: ['t0'],
          },
          { id: 'c', entityType: 'task', operation: 'update', payload: { title: 'no key' } },
          { id: 'd', entityType: 'Nope', operation: 'create', payload: { id: 'x' } },
        ],
      });
      expect(body.map((r: any) => [r.error.type, r.error.message])).toEqual([
        ['RECORD_VALIDATION_FAILURE', 'task: missing non-null column "title"'],
        ['RECORD_VALIDATION_FAILURE', 'task: the primary key "id" cannot change'],
        ['RECORD_VALIDATION_FAILURE', 'task: the payload has no primary key "id"'],
        ['INVALID_MODEL', 'Unknown table "Nope"'],
      ]);
    });

    it('runs customValidation inside the transaction: it may query and sees earlier operations', async () => {
      await seed();
      const seen: number[] = [];
      const customValidation = async (op: any, ctx: any) => {
        if (op.table !== 'note') return null;
        const [row] = await ctx.query('SELECT count(*)::int AS n FROM note WHERE task_id = $1', [
          op.data.task_id ?? op.data.taskID,
        ]);
        seen.push(Number(row.n));
        return Number(row.n) >= 2 ? { errorMessage: 'A task holds at most two notes' } : undefined;
      };
      const { body } = await send(
        'ana',
        {
          batch: [
            { op: 'PUT', table: 'note', id: 'n2', data: { task_id: 't1', body: 'second' } },
            { op: 'PUT', table: 'note', id: 'n3', data: { task_id: 't1', body: 'third' } },
          ],
        },
        { customValidation },
      );
      expect(seen).toEqual([1, 2]);
      expect(body.results.map((r: any) => [r.status, r.reason, r.message])).toEqual([
        ['applied', undefined, undefined],
        ['refused', 'custom', 'A task holds at most two notes'],
      ]);
    });

    it('records applied writes in the changelog, and only those', async () => {
      await seed();
      // The changelog: a view of "txChanges" where there are triggers (migrate.ts, step 8).
      await fx.query(
        `DELETE FROM ${fx.db.capabilities.partialSQL ? 'reprise.changes' : 'reprise."txChanges"'}`,
      );
      await send('ana', {
        batch: [
          { op: 'PATCH', table: 'task', id: 't1', data: { title: 'logged' } },
          { op: 'DELETE', table: 'task', id: 't2' },
        ],
      });
      const changes = await fx.query<{ table: string; action: string }>(
        'SELECT "table", "action" FROM reprise.changes ORDER BY id',
      );
      expect(changes).toEqual([{ table: 'task', action: 'update' }]);
    });

    it('CRUD writes reach the owner’s pull, and only the owner’s', async () => {
      const visibility = defineVisibility(ownedSchema, { project: 'ownerID' });
      const pullAs = async (userID: string, cookie: string | null) => {
        const response = await handlePullRequest({
          db: fx.db,
          schema: ownedSchema,
          visibility,
          userID,
          scopes: [userID],
          logger: silentLogger,
          request: new Request('http://localhost/pull', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ clientGroupID: `pull-${userID}`, cookie }),
          }),
        });
        return (await response.json()) as any;
      };
      const anaStart = await pullAs('ana', null);
      const bobStart = await pullAs('bob', null);
      const put = { op: 'PUT', table: 'project', id: 'p7', data: { owner_id: 'ana', name: 'P7' } };
      expect(statuses((await send('ana', { batch: [put] })).body)).toEqual(['applied']);
      const ana = await pullAs('ana', anaStart.cookie);
      expect(ana.patch.filter((op: any) => op.op === 'put')).toEqual([
        { op: 'put', tableName: 'project', value: { id: 'p7', ownerID: 'ana', name: 'P7' } },
      ]);
      const bob = await pullAs('bob', bobStart.cookie);
      expect(bob.patch).toEqual([]);
    });

    it('answers 413 past the limit (100 by default, configurable) and applies nothing', async () => {
      const op = (i: number) => ({ op: 'PUT', table: 'audit', id: `a${i}`, data: { what: 'x' } });
      const big = await send('ana', { batch: Array.from({ length: 101 }, (_, i) => op(i)) });
      expect(big.status).toBe(413);
      expect(big.body.error).toBe('The body carries 101 operations; at most 100 are accepted');
      const events = Array.from({ length: 3 }, (_, i) => ({
        id: `e${i}`,
        entityType: 'audit',
        operation: 'create',
        payload: { id: `a${i}`, what: 'x' },
      }));
      expect((await send('ana', { events }, { maxOperations: 2 })).status).toBe(413);
      expect(await rows('audit')).toEqual([]);
      const hundred = await send('ana', { batch: Array.from({ length: 100 }, (_, i) => op(i)) });
      expect(hundred.status).toBe(200);
      expect(await rows('audit')).toHaveLength(100);
    });

    it('answers 400 naming what is wrong for a body of neither shape, and 405 / 415', async () => {
      const bad = async (body: unknown) => {
        const res = await send('ana', body);
        expect(res.status).toBe(400);
        return res.body.error as string;
      };
      expect(await bad({ type: 'crud', ops: [] })).toBe(
        'The body must be a PowerSync upload {batch: [...]} or a Prisma IDB push {events: [...]}; it has neither "batch" nor "events"',
      );
      expect(await bad({ batch: [], events: [] })).toContain('both "batch" and "events"');
      expect(await bad({ batch: [{ op: 'UPSERT', table: 't', id: '1' }] })).toMatch(
        /^Bad PowerSync upload: batch\.0\.op: /,
      );
      expect(await bad({ batch: [{ op: 'PUT', id: '1' }] })).toBe(
        'Bad PowerSync upload: batch.0: no "table"',
      );
      expect(await bad({ batch: [{ op_id: 1, op: 'PUT', table: 'audit', id: '1' }] })).toContain(
        'needs the "clientID"',
      );
      expect(
        await bad({ events: [{ id: 'e', entityType: 'audit', operation: 'create' }] }),
      ).toMatch(/^Bad outbox push: events\.0\.payload: /);
      expect(await bad('[1,')).toMatch(/^Body is not valid JSON/);
      expect((await send('ana', { batch: [] }, { method: 'PUT' })).status).toBe(200);
      const res = await handleCrudRequest({
        db: fx.db,
        schema: ownedSchema,
        writePolicy: ownedPolicy,
        request: new Request('http://localhost/upload'),
      });
      expect(res.status).toBe(405);
      expect((await send('ana', { batch: [] }, { contentType: 'text/plain' })).status).toBe(415);
    });

    it('answers 400 for a client or event id too long to keep a receipt of, not a 503 to resend forever', async () => {
      // Random, so that Postgres cannot compress it under the index's row size limit.
      const long = Array.from({ length: 4000 }, () =>
        String.fromCharCode(33 + Math.floor(Math.random() * 90)),
      ).join('');
      const op = { op_id: 1, op: 'PUT', table: 'audit', id: 'a1', data: { what: 'x' } };
      const upload = await send('ana', { clientID: long, batch: [op] });
      expect(upload.status).toBe(400);
      expect(upload.body.error).toMatch(/^Bad PowerSync upload: clientID: /);
      const event = { entityType: 'audit', operation: 'create', payload: { id: 'a1', what: 'x' } };
      const push = await send('ana', { events: [{ id: long, ...event }] });
      expect(push.status).toBe(400);
      expect(push.body.error).toMatch(/^Bad outbox push: events\.0\.id: /);
      const client = await send('ana', { clientId: long, events: [{ id: 'e1', ...event }] });
      expect(client.status).toBe(400);
      expect(client.body.error).toMatch(/^Bad outbox push: clientId: /);
      expect(await rows('audit')).toEqual([]);
      // At the limit, both are kept.
      const id = 'i'.repeat(256);
      expect(statuses((await send('ana', { clientID: id, batch: [op] })).body)).toEqual([
        'applied',
      ]);
      const atLimit = await send('ana', {
        clientId: id,
        events: [{ id, ...event, payload: { id: 'a2', what: 'x' } }],
      });
      expect(statuses(atLimit.body)).toEqual(['applied']);
    });

    it('answers 503 when the database keeps failing, and applies once when a retry succeeds', async () => {
      let failures = 0;
      const flaky = (times: number) => ({
        ...fx.db,
        name: fx.db.name,
        capabilities: fx.db.capabilities,
        query: fx.db.query.bind(fx.db),
        transaction: async (fn: any, options: any) =>
          fx.db.transaction(async (tx) => {
            const result = await fn(tx);
            if (failures++ < times) {
              throw Object.assign(new Error('could not serialize access'), { code: '40001' });
            }
            return result;
          }, options),
      });
      const body = {
        clientID: 'c',
        batch: [{ op_id: 1, op: 'PUT', table: 'audit', id: 'a1', data: { what: 'x' } }],
      };
      const down = await send('ana', body, {
        db: flaky(1000),
        retry: { budgetMs: 200, baseDelayMs: 1, maxDelayMs: 5 },
      });
      expect(down.status).toBe(503);
      expect(down.body.error).toMatch(/^Database error; send the batch again/);
      expect(down.body.error).not.toMatch(/INSERT|SELECT/);
      expect(await rows('audit')).toEqual([]);
      failures = 0;
      const flakyOnce = await send('ana', body, { db: flaky(1) });
      expect(flakyOnce.status).toBe(200);
      expect(statuses(flakyOnce.body)).toEqual(['applied']);
      expect(await rows('audit')).toHaveLength(1);
    });

    it.skipIf(!adapter.concurrent)(
      'two concurrent sends of the same batch apply each operation once',
      async () => {
        await seed();
        const other = await adapter.connect!(fx);
        try {
          const body = {
            events: Array.from({ length: 5 }, (_, i) => ({
              id: `c${i}`,
              entityType: 'note',
              operation: 'create',
              payload: { id: `cn${i}`, taskID: 't1', body: `n${i}` },
            })),
          };
          const [a, b] = await Promise.all([
            send('ana', body),
            send('ana', body, { db: other.db }),
          ]);
          expect([a.status, b.status]).toEqual([200, 200]);
          for (let i = 0; i < 5; i++) {
            expect([a.body[i].status, b.body[i].status].sort()).toEqual([
              'alreadyProcessed',
              'applied',
            ]);
          }
          expect(await rows('note')).toHaveLength(6);
        } finally {
          await other.close();
        }
      },
    );
  });
}
