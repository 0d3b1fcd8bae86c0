import { defineWritePolicy, mapRoute, type RouteOptions, silentLogger } from '@reprise/server';
import { createSchema, createTransactionDefiner, defineMutators } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { issue, schema } from './fixtures/app';
import { declarativeMutators, hookCalls } from './fixtures/declarative';
import { count } from './fixtures/push';

// mapRoute on every adapter: validation, refusals as 4xx without SQL, response shaping,
// write policies, and Idempotency-Key (a retry and a concurrent twin apply once).

const openIssue = mapRoute({
  path: '/issues',
  method: 'POST',
  validate: (body) => {
    const errors: string[] = [];
    if (typeof body?.id !== 'string') errors.push('id is required');
    if (!body?.title?.trim()) errors.push('title is required');
    return { valid: errors.length === 0, errors };
  },
  mutator: declarativeMutators.decl.openIssue,
  response: { entity: 'issue', omit: ['ownerID'] },
});

const closeIssue = mapRoute({
  path: '/issues/:id/close',
  method: 'POST',
  mutator: declarativeMutators.decl.closeIssue,
  response: { transform: (results) => ({ closed: results.issue.open === false }) },
});

// Nevr's form: operations straight in the route, a zod validator.
const addComment = mapRoute({
  path: '/comments',
  method: 'PUT',
  validate: z.object({ id: z.string(), issueID: z.string(), body: z.string().min(1) }),
  operations: [
    { entity: 'issue', operation: 'read', where: (ctx) => ({ id: ctx.body.issueID }) },
    {
      entity: 'comment',
      operation: 'create',
      data: (ctx) => ({ id: ctx.body.id, issueID: ctx.results.issue.id, body: ctx.body.body }),
    },
  ],
  response: { entity: 'comment', pick: ['id', 'body'] },
});

const json = (url: string, body: unknown, init: RequestInit = {}) =>
  new Request(`http://app.test${url}`, {
    method: 'POST',
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

for (const kind of ADAPTERS) {
  const title = kind.unavailable ? `${kind.name} [skipped: ${kind.unavailable}]` : kind.name;
  describe.skipIf(kind.unavailable !== undefined)(`mapRoute: ${title}`, () => {
    let fx: AdapterFixture;
    let options: RouteOptions;
    beforeAll(async () => {
      fx = await kind.create();
      options = {
        db: fx.db,
        schema,
        userID: 'alice',
        context: { userID: 'alice', raw: fx.raw },
        logger: silentLogger,
      };
    });
    afterAll(() => fx?.close());
    beforeEach(async () => {
      await fx.reset();
      hookCalls.length = 0;
    });

    it('answers 400 {errors} when validate refuses, and writes nothing', async () => {
      const res = await openIssue(json('/issues', { title: ' ' }), options);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ errors: ['id is required', 'title is required'] });
      const zod = await addComment(json('/comments', { id: 'c1' }, { method: 'PUT' }), options);
      expect(zod.status).toBe(400);
      expect((await zod.json()).errors).toEqual([
        'issueID: Invalid input: expected string, received undefined',
        'body: Invalid input: expected string, received undefined',
      ]);
      expect(await count(fx, 'issue')).toBe(0);
      expect(hookCalls).toEqual([]);
    });

    it('answers 400 naming the column when the body it passes on names no column', async () => {
      // Nevr's form without a validator: the body goes to the write as it came.
      const passOn = mapRoute({
        path: '/raw-issues',
        method: 'POST',
        operations: [{ entity: 'issue', operation: 'create', data: (ctx) => ctx.body }],
      });
      const res = await passOn(
        json('/raw-issues', { id: 'i1', title: 'T', ownerID: 'alice', colour: 'red' }),
        options,
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: 'issue.insert: "colour" is not a column of issue',
      });
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('runs the transaction and answers the entity, omitting what it says', async () => {
      const res = await openIssue(json('/api/issues', { id: 'i1', title: 'Printer' }), options);
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toEqual({
        id: 'i1',
        title: 'Printer',
        open: true,
        labels: null,
        createdAt: null,
        views: null,
      });
      expect(hookCalls).toEqual([{ hook: 'success', value: 'PRINTER' }]);
      const comment = await addComment(
        json('/comments', { id: 'c1', issueID: 'i1', body: 'Hot' }, { method: 'PUT' }),
        options,
      );
      expect(await comment.json()).toEqual({ id: 'c1', body: 'Hot' });
      const closed = await closeIssue(json('/issues/i1/close', {}), options);
      expect(await closed.json()).toEqual({ closed: true });
    });

    it('answers an ApplicationError as 4xx with its message and details, and a constraint as 409 without SQL', async () => {
      const missing = await closeIssue(json('/issues/nope/close', {}), options);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({
        error: 'read issue: no row matches {"id":"nope"}',
        details: { reason: 'notFound', table: 'issue', where: { id: 'nope' } },
      });
      await openIssue(json('/issues', { id: 'i1', title: 'Printer' }), options);
      const bob = { ...options, userID: 'bob', context: { userID: 'bob', raw: fx.raw } };
      const refused = await closeIssue(json('/issues/i1/close', {}), bob);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({
        error: 'Only the owner may close it',
        details: { reason: 'owner' },
      });
      // The same id again: the insert hits the primary key (the transaction's own insert).
      const duplicate = await openIssue(json('/issues', { id: 'i1', title: 'Again' }), options);
      expect([400, 409]).toContain(duplicate.status);
      const text = await duplicate.text();
      expect(text).not.toMatch(/INSERT|SELECT|"issue" \(/);
      expect(await count(fx, 'issue')).toBe(1);
      expect(hookCalls.filter((c) => c.hook === 'error')).toHaveLength(1);
    });

    it('checks the write policy on every write', async () => {
      const policy = defineWritePolicy(schema, {
        issue: { owner: 'ownerID' },
        comment: { parent: 'issue', via: 'issueID' },
      });
      const guarded = { ...options, writePolicy: policy, scopeKey: 'someone-else' };
      const res = await openIssue(json('/issues', { id: 'i1', title: 'Printer' }), guarded);
      expect(res.status).toBe(403);
      expect((await res.json()).error).toMatch(/^forbidden: insert of issue/);
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('applies a call with an Idempotency-Key once and replays its answer', async () => {
      const call = () =>
        openIssue(
          json('/issues', { id: 'i1', title: 'Printer' }, { headers: { 'idempotency-key': 'k1' } }),
          options,
        );
      const first = await call();
      const firstBody = await first.text();
      expect(first.status).toBe(200);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      const again = await call();
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await again.text()).toBe(firstBody);
      expect(await count(fx, 'issue')).toBe(1);
      expect(hookCalls).toEqual([{ hook: 'success', value: 'PRINTER' }]);

      const other = await openIssue(
        json('/issues', { id: 'i2', title: 'Other' }, { headers: { 'idempotency-key': 'k1' } }),
        options,
      );
      expect(other.status).toBe(422);
      expect(await count(fx, 'issue')).toBe(1);
      // Keys belong to a user: bob's k1 is his own.
      const bob = { ...options, userID: 'bob', context: { userID: 'bob', raw: fx.raw } };
      const bobs = await openIssue(
        json('/issues', { id: 'i3', title: 'Bob' }, { headers: { 'idempotency-key': 'k1' } }),
        bob,
      );
      expect(bobs.status).toBe(200);
    });

    it('replays a refusal under the same key, and rolls back its writes', async () => {
      const call = () =>
        closeIssue(
          json('/issues/nope/close', {}, { headers: { 'idempotency-key': 'k2' } }),
          options,
        );
      const first = await call();
      expect(first.status).toBe(404);
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('nope', 'late', 'alice')`);
      const again = await call();
      expect(again.status).toBe(404);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await fx.query('SELECT open FROM issue')).toEqual([{ open: true }]);
      expect(hookCalls.map((c) => c.hook)).toEqual([]); // closeIssue has no hooks
    });

    it('applies two concurrent calls with the same key once, and both get the first answer', async () => {
      const call = () =>
        openIssue(
          json('/issues', { id: 'i1', title: 'Twin' }, { headers: { 'idempotency-key': 'k3' } }),
          options,
        );
      const answers = await Promise.all([call(), call(), call()]);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      const bodies = await Promise.all(answers.map((r) => r.text()));
      expect(new Set(bodies).size).toBe(1);
      expect(answers.filter((r) => r.headers.get('idempotent-replayed')).length).toBe(2);
      expect(await count(fx, 'issue')).toBe(1);
      expect(hookCalls).toEqual([{ hook: 'success', value: 'TWIN' }]);
    });

    it('refuses a wrong method, another path, and a body that is not JSON', async () => {
      const get = await openIssue(new Request('http://app.test/issues'), options);
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      expect((await openIssue(json('/other', {}), options)).status).toBe(404);
      const bad = await openIssue(json('/issues', '{"id":'), options);
      expect(bad.status).toBe(400);
      const form = await openIssue(
        new Request('http://app.test/issues', { method: 'POST', body: 'id=1' }),
        options,
      );
      expect(form.status).toBe(415);
    });
  });
}

// The fixture's issue table again, with its owner column never leaving the server.
const hiddenSchema = createSchema({
  tables: { issue },
  fields: { issue: { ownerID: { returned: false } } },
});
const defineHidden = createTransactionDefiner<typeof hiddenSchema, { userID: string }>();
const hiddenMutators = defineMutators({
  openIssue: defineHidden(z.object({ id: z.string() }))
    .create('issue', {
      data: (ctx) => ({ id: ctx.body.id, title: 'Secret owner', ownerID: ctx.context.userID }),
    })
    .list('issue', { as: 'all' }),
});

describe.each(ADAPTERS.filter((a) => !a.unavailable).slice(0, 2))(
  'mapRoute and returned: false: $name',
  (kind) => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await kind.create();
    });
    afterAll(() => fx?.close());

    it('never answers a returned: false column, whatever the response asks for', async () => {
      const options = {
        db: fx.db,
        schema: hiddenSchema,
        userID: 'alice',
        context: { userID: 'alice' },
        logger: silentLogger,
      };
      const routes = [
        mapRoute({
          path: '/a',
          method: 'POST',
          mutator: hiddenMutators.openIssue,
          response: { entity: 'issue' },
        }),
        mapRoute({
          path: '/b',
          method: 'POST',
          mutator: hiddenMutators.openIssue,
          response: { entity: 'all' },
        }),
        mapRoute({ path: '/c', method: 'POST', mutator: hiddenMutators.openIssue }),
        mapRoute({
          path: '/d',
          method: 'POST',
          mutator: hiddenMutators.openIssue,
          response: { entity: 'issue', pick: ['id', 'ownerID'] },
        }),
      ];
      for (const [i, route] of routes.entries()) {
        const res = await route(json(route.path, { id: `i${i}` }), options);
        expect(res.status).toBe(200);
        const text = await res.text();
        expect(text).toContain(`"i${i}"`);
        expect(text).not.toMatch(/ownerID|owner_id|alice/);
      }
      expect(await fx.query('SELECT DISTINCT owner_id FROM issue')).toEqual([
        { owner_id: 'alice' },
      ]);
    });
  },
);
