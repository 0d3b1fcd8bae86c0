import {
  createEntityContext,
  handleCrudRequest,
  handleMutateRequest,
  mapRoute,
  migrate,
  type RouteOptions,
  silentLogger,
  WriteForbiddenError,
} from '@reprise/server';
import { createMutatorDefiner, createTransactionDefiner, defineMutators } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import {
  createOwnedTables,
  ownedPolicy,
  ownedSchema,
  resetOwnedTables,
} from './fixtures/owned-app';
import { pushBody } from './fixtures/push';

// Cross-user writes on every write path, as the outside harness tries them: bob
// edits, deletes and re-parents ana's rows, forges her as an owner, moves his rows into her
// scope and takes hers over, through named mutators (key and where forms), the CRUD
// endpoint (PowerSync and Prisma IDB bodies), the `_crud.*` mutations client.crud sends,
// the entity API, mapRoute (Nevr's operations and a defineTransaction) and a
// defineTransaction pushed as a named mutator. Each attempt must be refused as
// `forbidden` and ana's data must not change; bob's own write on each path applies.

const defineMutator = createMutatorDefiner<typeof ownedSchema, unknown>();
const defineTransaction = createTransactionDefiner<typeof ownedSchema, unknown>();

const noteEdit = z.object({ id: z.string(), body: z.string() });
const noteNew = z.object({ id: z.string(), taskID: z.string(), body: z.string() });
const byID = z.object({ id: z.string() });
const byTask = z.object({ taskID: z.string(), body: z.string() });
const taskMove = z.object({ id: z.string(), projectID: z.string() });
const projectRow = z.object({ id: z.string(), ownerID: z.string(), name: z.string() });

/** Declarative transactions that check nothing themselves: only the policy stands guard. */
const declarative = {
  editNote: defineTransaction(noteEdit).update('note', {
    where: (ctx) => ({ id: ctx.body.id }),
    data: (ctx) => ({ body: ctx.body.body }),
  }),
  deleteNote: defineTransaction(byID).delete('note', { where: (ctx) => ({ id: ctx.body.id }) }),
  addNote: defineTransaction(noteNew).create('note', { data: (ctx) => ctx.body }),
  newProject: defineTransaction(projectRow).create('project', { data: (ctx) => ctx.body }),
  moveTask: defineTransaction(taskMove).update('task', {
    where: (ctx) => ({ id: ctx.body.id }),
    data: (ctx) => ({ projectID: ctx.body.projectID }),
  }),
  giveProject: defineTransaction(z.object({ id: z.string(), ownerID: z.string() })).update(
    'project',
    { where: (ctx) => ({ id: ctx.body.id }), data: (ctx) => ({ ownerID: ctx.body.ownerID }) },
  ),
};

/** Named mutators that forgot their checks, with `tx.mutate`'s key, where and upsert forms. */
const mutators = defineMutators({
  note: {
    edit: defineMutator(noteEdit, ({ tx, args }) => tx.mutate.note.update(args)),
    editWhere: defineMutator(byTask, ({ tx, args }) =>
      tx.mutate.note.update({ taskID: args.taskID }, { body: args.body }),
    ),
    removeWhere: defineMutator(z.object({ taskID: z.string() }), ({ tx, args }) =>
      tx.mutate.note.delete({ taskID: args.taskID }),
    ),
    add: defineMutator(noteNew, ({ tx, args }) => tx.mutate.note.insert(args)),
  },
  task: {
    move: defineMutator(taskMove, ({ tx, args }) => tx.mutate.task.update(args)),
    moveWhere: defineMutator(taskMove, ({ tx, args }) =>
      tx.mutate.task.update({ id: args.id }, { projectID: args.projectID }),
    ),
    rename: defineMutator(z.object({ id: z.string(), title: z.string() }), async ({ tx, args }) => {
      await tx.mutate.task.update(args);
    }),
  },
  project: {
    create: defineMutator(projectRow, ({ tx, args }) => tx.mutate.project.insert(args)),
    upsert: defineMutator(projectRow, ({ tx, args }) => tx.mutate.project.upsert(args)),
  },
  decl: declarative,
});

/** Bob's attempts on ana's rows by named mutators, then one write of his own. */
const NAMED_CALLS = [
  { name: 'note.edit', args: { id: 'n1', body: 'bob' } },
  { name: 'note.editWhere', args: { taskID: 't1', body: 'bob' } },
  { name: 'note.removeWhere', args: { taskID: 't1' } },
  { name: 'note.add', args: { id: 'n9', taskID: 't1', body: 'bob' } },
  { name: 'project.create', args: { id: 'p9', ownerID: 'ana', name: 'forged' } },
  { name: 'task.move', args: { id: 't2', projectID: 'p1' } },
  { name: 'task.moveWhere', args: { id: 't2', projectID: 'p1' } },
  { name: 'project.upsert', args: { id: 'p1', ownerID: 'bob', name: 'taken' } },
  { name: 'project.upsert', args: { id: 'p2', ownerID: 'ana', name: 'given' } },
  { name: 'decl.editNote', args: { id: 'n1', body: 'bob' } },
  { name: 'decl.deleteNote', args: { id: 'n1' } },
  { name: 'decl.addNote', args: { id: 'n9', taskID: 't1', body: 'bob' } },
  { name: 'decl.newProject', args: { id: 'p9', ownerID: 'ana', name: 'forged' } },
  { name: 'decl.moveTask', args: { id: 't2', projectID: 'p1' } },
  { name: 'decl.giveProject', args: { id: 'p2', ownerID: 'ana' } },
  { name: 'task.rename', args: { id: 't2', title: 'pushed' } },
];

/** ana owns p1 → t1 → n1; bob owns p2 → t2. */
const ZERO = { shards: ['zero_0'] };

const SEED = [
  `INSERT INTO project VALUES ('p1', 'ana', 'A'), ('p2', 'bob', 'B')`,
  `INSERT INTO task (id, project_id, title) VALUES ('t1', 'p1', 'T1'), ('t2', 'p2', 'T2')`,
  `INSERT INTO note VALUES ('n1', 't1', 'ana wrote this')`,
];

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`cross-user writes: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await createOwnedTables(fx.db);
      await migrate(fx.db, { capture: ownedSchema, zero: ZERO });
    });
    beforeEach(async () => {
      await fx.reset();
      await resetOwnedTables(fx.db);
      await fx.query('DELETE FROM zero_0.clients');
      await fx.query('DELETE FROM zero_0.mutations');
      for (const statement of SEED) await fx.query(statement);
    });
    afterAll(async () => {
      await fx.close();
    });

    /** Every owned row, as one comparable value. */
    const state = async () =>
      JSON.stringify([
        await fx.query('SELECT * FROM project ORDER BY id'),
        await fx.query('SELECT id, project_id, title FROM task ORDER BY id'),
        await fx.query('SELECT * FROM note ORDER BY id'),
      ]);
    /** The state once bob renamed his own task t2 to `title`: the one write that may apply. */
    async function expectOnly(title: string) {
      const expected = JSON.stringify([
        [
          { id: 'p1', owner_id: 'ana', name: 'A' },
          { id: 'p2', owner_id: 'bob', name: 'B' },
        ],
        [
          { id: 't1', project_id: 'p1', title: 'T1' },
          { id: 't2', project_id: 'p2', title },
        ],
        [{ id: 'n1', task_id: 't1', body: 'ana wrote this' }],
      ]);
      expect(await state()).toBe(expected);
    }

    /** Pushes NAMED_CALLS as bob; `zero` sends them as zero-cache would, to Zero mode. */
    async function pushNamed(zero: boolean) {
      const response = await handleMutateRequest({
        db: fx.db,
        schema: ownedSchema,
        mutators,
        writePolicy: ownedPolicy,
        userID: 'bob',
        logger: silentLogger,
        ...(zero ? { zero: ZERO } : {}),
        request: new Request(`http://localhost/mutate${zero ? '?schema=zero_0&appID=zero' : ''}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(
            pushBody(
              NAMED_CALLS.map((c, i) => ({ id: i + 1, ...c })),
              { clientGroupID: 'g-bob' },
            ),
          ),
        }),
      });
      expect(response.status).toBe(200);
      const results = ((await response.json()) as any).mutations.map((m: any) => m.result);
      expect(results.slice(0, -1).map((r: any) => r.details?.reason ?? r)).toEqual(
        Array(NAMED_CALLS.length - 1).fill('forbidden'),
      );
      expect(results.at(-1)).toEqual({});
    }

    it('named mutators: tx.mutate by key, by where and by upsert, and a pushed defineTransaction', async () => {
      await pushNamed(false);
      await expectOnly('pushed');
    });

    it('named mutators in Zero mode, as zero-cache forwards them', async () => {
      await pushNamed(true);
      const shard = await fx.query<{ lastMutationID: string | number }>(
        'SELECT "lastMutationID" FROM zero_0.clients',
      );
      expect(shard.map((row) => Number(row.lastMutationID))).toEqual([NAMED_CALLS.length]);
      await expectOnly('pushed');
    });

    it('the CRUD endpoint: PowerSync uploads and Prisma IDB events', async () => {
      const send = async (body: unknown) => {
        const response = await handleCrudRequest({
          db: fx.db,
          schema: ownedSchema,
          writePolicy: ownedPolicy,
          userID: 'bob',
          logger: silentLogger,
          request: new Request('http://localhost/upload', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
        });
        expect(response.status).toBe(200);
        const reply = (await response.json()) as any;
        return (Array.isArray(reply) ? reply : reply.results) as any[];
      };
      const batch = await send({
        clientID: 'ps-bob',
        batch: [
          { op_id: 1, op: 'PATCH', table: 'note', id: 'n1', data: { body: 'bob' } },
          { op_id: 2, op: 'PUT', table: 'note', id: 'n1', data: { task_id: 't1', body: 'bob' } },
          { op_id: 3, op: 'DELETE', table: 'note', id: 'n1' },
          { op_id: 4, op: 'PUT', table: 'note', id: 'n9', data: { task_id: 't1', body: 'bob' } },
          { op_id: 5, op: 'PUT', table: 'project', id: 'p9', data: { owner_id: 'ana', name: 'f' } },
          { op_id: 6, op: 'PATCH', table: 'task', id: 't2', data: { project_id: 'p1' } },
          { op_id: 7, op: 'PATCH', table: 'project', id: 'p2', data: { owner_id: 'ana' } },
          { op_id: 8, op: 'PUT', table: 'project', id: 'p1', data: { owner_id: 'bob', name: 'x' } },
          { op_id: 9, op: 'PATCH', table: 'task', id: 't2', data: { title: 'uploaded' } },
        ],
      });
      expect(batch.map((r) => r.reason ?? r.status)).toEqual([
        ...Array(8).fill('forbidden'),
        'applied',
      ]);
      const event = (id: string, entityType: string, operation: string, payload: object) => ({
        id,
        entityType,
        operation,
        payload,
      });
      const events = await send({
        clientId: 'idb-bob',
        events: [
          event('e1', 'note', 'update', { id: 'n1', body: 'bob' }),
          event('e2', 'note', 'update', { id: 'n1', taskID: 't1', body: 'bob' }),
          event('e3', 'note', 'delete', { id: 'n1' }),
          event('e4', 'note', 'create', { id: 'n9', taskID: 't1', body: 'bob' }),
          event('e5', 'project', 'create', { id: 'p9', ownerID: 'ana', name: 'f' }),
          event('e6', 'task', 'update', { id: 't2', projectID: 'p1' }),
          event('e7', 'project', 'update', { id: 'p2', ownerID: 'ana' }),
          event('e8', 'project', 'update', { id: 'p1', ownerID: 'bob', name: 'x' }),
          event('e9', 'project', 'create', { id: 'p1', ownerID: 'bob', name: 'x' }),
        ],
      });
      // e9 is a plain insert of an existing key: a conflict, not a takeover.
      expect(events.map((r) => r.error?.type ?? r.status)).toEqual([
        ...Array(8).fill('SCOPE_VIOLATION'),
        'UNKNOWN_ERROR',
      ]);
      await expectOnly('uploaded');
    });

    it('client.crud’s _crud.* mutations, with crud: true', async () => {
      const calls = [
        { name: '_crud.patch', args: { table: 'note', id: 'n1', changes: { body: 'bob' } } },
        { name: '_crud.put', args: { table: 'note', row: { id: 'n1', taskID: 't1', body: 'b' } } },
        { name: '_crud.delete', args: { table: 'note', id: 'n1' } },
        { name: '_crud.put', args: { table: 'note', row: { id: 'n9', taskID: 't1', body: 'b' } } },
        {
          name: '_crud.put',
          args: { table: 'project', row: { id: 'p9', ownerID: 'ana', name: 'f' } },
        },
        { name: '_crud.patch', args: { table: 'task', id: 't2', changes: { projectID: 'p1' } } },
        { name: '_crud.patch', args: { table: 'project', id: 'p2', changes: { ownerID: 'ana' } } },
        {
          name: '_crud.put',
          args: { table: 'project', row: { id: 'p1', ownerID: 'bob', name: 'x' } },
        },
        { name: '_crud.patch', args: { table: 'task', id: 't2', changes: { title: 'crud' } } },
      ];
      const response = await handleMutateRequest({
        db: fx.db,
        schema: ownedSchema,
        mutators: defineMutators({}),
        writePolicy: ownedPolicy,
        crud: true,
        userID: 'bob',
        logger: silentLogger,
        request: new Request('http://localhost/mutate', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(
            pushBody(
              calls.map((c, i) => ({ id: i + 1, ...c })),
              { clientGroupID: 'g-bob-crud' },
            ),
          ),
        }),
      });
      const results = ((await response.json()) as any).mutations.map((m: any) => m.result);
      expect(results.map((r: any) => r.details?.reason ?? r)).toEqual([
        ...Array(8).fill('forbidden'),
        {},
      ]);
      await expectOnly('crud');
    });

    it('the entity API, for a given user', async () => {
      const bob = createEntityContext({
        db: fx.db,
        schema: ownedSchema,
        writePolicy: ownedPolicy,
        userID: 'bob',
      });
      const attempts: Array<() => Promise<unknown>> = [
        () => bob.note.update({ id: 'n1' }, { body: 'bob' }),
        () => bob.note.update({ taskID: 't1' }, { body: 'bob' }),
        () => bob.note.delete({ id: 'n1' }),
        () => bob.note.delete({ taskID: 't1' }),
        () => bob.note.create({ id: 'n9', taskID: 't1', body: 'bob' }),
        () => bob.project.create({ id: 'p9', ownerID: 'ana', name: 'forged' }),
        () => bob.task.update({ id: 't2' }, { projectID: 'p1' }),
        () => bob.project.update({ id: 'p2' }, { ownerID: 'ana' }),
        () =>
          bob.transaction(async (e) => {
            await e.task.update({ id: 't2' }, { title: 'rolled back' });
            await e.project.update({ ownerID: 'ana' }, { name: 'mine' });
          }),
      ];
      for (const attempt of attempts) await expect(attempt()).rejects.toThrow(WriteForbiddenError);
      expect(await bob.task.update({ id: 't2' }, { title: 'entity' })).toHaveLength(1);
      await expectOnly('entity');
    });

    it('mapRoute: Nevr’s operations and a defineTransaction', async () => {
      const options: RouteOptions = {
        db: fx.db,
        schema: ownedSchema,
        writePolicy: ownedPolicy,
        userID: 'bob',
        logger: silentLogger,
      };
      const routes = {
        editNote: mapRoute({
          path: '/notes/:id',
          method: 'PATCH',
          operations: {
            entity: 'note',
            operation: 'update',
            where: (ctx: any) => ({ id: ctx.body.id }),
            data: (ctx: any) => ({ body: ctx.body.body }),
          },
        }),
        deleteNote: mapRoute({
          path: '/notes/:id',
          method: 'DELETE',
          mutator: declarative.deleteNote,
        }),
        addNote: mapRoute({ path: '/notes', method: 'POST', mutator: declarative.addNote }),
        newProject: mapRoute({
          path: '/projects',
          method: 'POST',
          mutator: declarative.newProject,
        }),
        moveTask: mapRoute({
          path: '/tasks/:id/move',
          method: 'POST',
          operations: {
            entity: 'task',
            operation: 'update',
            where: (ctx: any) => ({ id: ctx.body.id }),
            data: (ctx: any) => ({ projectID: ctx.body.projectID }),
          },
        }),
        giveProject: mapRoute({
          path: '/projects/:id/give',
          method: 'POST',
          mutator: declarative.giveProject,
        }),
        renameTask: mapRoute({
          path: '/tasks/:id',
          method: 'PATCH',
          mutator: mutators.task.rename,
        }),
      };
      const call = async (
        route: (request: Request, options: RouteOptions) => Promise<Response>,
        method: string,
        path: string,
        body?: unknown,
      ) => {
        const response = await route(
          new Request(`http://app.test${path}`, {
            method,
            headers: { 'content-type': 'application/json' },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          }),
          options,
        );
        return { status: response.status, body: (await response.json()) as any };
      };
      const refused = [
        await call(routes.editNote, 'PATCH', '/notes/n1', { body: 'bob' }),
        await call(routes.deleteNote, 'DELETE', '/notes/n1'),
        await call(routes.addNote, 'POST', '/notes', { id: 'n9', taskID: 't1', body: 'bob' }),
        await call(routes.newProject, 'POST', '/projects', {
          id: 'p9',
          ownerID: 'ana',
          name: 'forged',
        }),
        await call(routes.moveTask, 'POST', '/tasks/t2/move', { projectID: 'p1' }),
        await call(routes.giveProject, 'POST', '/projects/p2/give', { ownerID: 'ana' }),
      ];
      expect(refused.map((r) => [r.status, r.body.details?.reason])).toEqual(
        Array(refused.length).fill([403, 'forbidden']),
      );
      const renamed = await call(routes.renameTask, 'PATCH', '/tasks/t2', { title: 'routed' });
      expect(renamed.status).toBe(200);
      await expectOnly('routed');
    });
  });
}
