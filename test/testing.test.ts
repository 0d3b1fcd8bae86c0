import { defineWritePolicy } from '@reprise/server';
import {
  createTestDatabase,
  type TestDatabase,
  type TestEngine,
  type TestMutationOutcome,
} from '@reprise/server/testing';
import {
  ApplicationError,
  createBuilder,
  createMutatorDefiner,
  createSchema,
  defineMutators,
} from '@reprise/shared';
import { boolean, pgTable, text } from 'drizzle-orm/pg-core';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

// An app as small as an app's own mutator tests would use, run on each in-memory engine.

const issue = pgTable('issue', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  ownerID: text('owner_id').notNull(),
  open: boolean('open').notNull().default(true),
});
const schema = createSchema({ tables: { issue } });
const q = createBuilder(schema);
const APP_DDL = [
  `CREATE TABLE issue (id TEXT PRIMARY KEY, title TEXT NOT NULL, owner_id TEXT NOT NULL,
     open BOOLEAN NOT NULL DEFAULT true)`,
];

const defineMutator = createMutatorDefiner<typeof schema, { userID: string }>();
const mutators = defineMutators({
  issue: {
    create: defineMutator(
      z.object({ id: z.string(), title: z.string().min(1) }),
      async ({ tx, args, ctx }) => {
        await tx.mutate.issue.insert({ id: args.id, title: args.title, ownerID: ctx.userID });
        return { mutationID: tx.mutationID, at: new Date('2026-01-02T03:04:05.000Z') };
      },
    ),
    /** Writes first and checks after, so a refusal must roll the write back. */
    close: defineMutator(z.object({ id: z.string() }), async ({ tx, args, ctx }) => {
      await tx.mutate.issue.update({ id: args.id, open: false });
      const row = await tx.run(q.issue.where('id', args.id).one());
      if (row?.ownerID !== ctx.userID) {
        throw new ApplicationError('Only the owner can close an issue', {
          details: { issueID: args.id },
        });
      }
    }),
  },
});

const as = (userID: string, clientID?: string) => ({
  userID,
  context: { userID },
  ...(clientID === undefined ? {} : { clientID }),
});
const ana = as('ana');
const bob = as('bob');

describe.each<TestEngine>(['pglite', 'pg-mem'])('createTestDatabase on %s', (engine) => {
  let t: TestDatabase<typeof schema, typeof mutators>;
  beforeEach(async () => {
    t = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
  });
  afterEach(async () => {
    await t.close();
  });

  it('returns the mutator data and keeps its writes', async () => {
    const outcome = await t.mutate(mutators.issue.create({ id: 'i1', title: 'First' }), ana);
    expect(outcome).toEqual({
      ok: true,
      data: { mutationID: 1, at: new Date('2026-01-02T03:04:05.000Z') },
    });
    expect(await t.run(q.issue.where('id', 'i1').one())).toEqual({
      id: 'i1',
      title: 'First',
      ownerID: 'ana',
      open: true,
    });
  });

  it('returns an ApplicationError with message and details, and rolls its writes back', async () => {
    await t.mutate(mutators.issue.create({ id: 'i1', title: 'First' }), ana);
    const outcome = await t.mutate(mutators.issue.close({ id: 'i1' }), bob);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(ApplicationError);
    expect(outcome.error.message).toBe('Only the owner can close an issue');
    expect(outcome.error.details).toEqual({ issueID: 'i1' });
    expect(await t.sql('SELECT open FROM issue WHERE id = $1', ['i1'])).toEqual([{ open: true }]);
  });

  it('returns a validation failure without running the mutator', async () => {
    const outcome = await t.mutate(mutators.issue.create({ id: 'i1', title: '' }), ana);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.message).toMatch(/^Invalid arguments for issue\.create: title: /);
    expect(outcome.error.details).toMatchObject({ issues: [{ path: ['title'] }] });
    expect(await t.sql('SELECT id FROM issue')).toEqual([]);
  });

  it('returns an unknown mutator as a refusal', async () => {
    // @ts-expect-error: there is no issue.archive
    const outcome = await t.mutate({ name: 'issue.archive', args: { id: 'i1' } }, ana);
    expect(outcome).toMatchObject({
      ok: false,
      error: { message: 'Unknown mutator "issue.archive"' },
    });
  });

  it('numbers mutations per client, refusals included, and bumps the LMID', async () => {
    const ids = [];
    for (const [id, who] of [
      ['i1', ana],
      ['i1', ana], // a duplicate key: refused, yet it uses id 2
      ['i2', ana],
      ['i3', as('ana', 'tab2')],
    ] as const) {
      const outcome = await t.mutate(mutators.issue.create({ id, title: 'x' }), who);
      ids.push(outcome.ok ? outcome.data.mutationID : 'refused');
    }
    expect(ids).toEqual([1, 'refused', 3, 1]);
    const clients = await t.sql<{ clientID: string; lastMutationID: string | number }>(
      `SELECT "clientID", "lastMutationID" FROM reprise.clients ORDER BY "clientID"`,
    );
    expect(clients.map((c) => [c.clientID, Number(c.lastMutationID)])).toEqual([
      ['tab2', 1],
      ['test-client', 3],
    ]);
  });

  it('applies concurrent calls in call order', async () => {
    const outcomes = await Promise.all(
      ['i1', 'i2', 'i3'].map((id) => t.mutate(mutators.issue.create({ id, title: id }), ana)),
    );
    expect(outcomes.map((o) => o.ok && o.data.mutationID)).toEqual([1, 2, 3]);
  });

  it('runs queries and SQL against the database', async () => {
    await t.mutate(mutators.issue.create({ id: 'i1', title: 'Open' }), ana);
    await t.mutate(mutators.issue.create({ id: 'i2', title: 'Closed' }), ana);
    await t.mutate(mutators.issue.close({ id: 'i2' }), ana);
    const open = await t.run(q.issue.where('open', true));
    expect(open.map((row) => row.title)).toEqual(['Open']);
    const rows = await t.sql<{ n: string | number }>(
      'SELECT count(*) AS n FROM issue WHERE owner_id = $1',
      ['ana'],
    );
    expect(Number(rows[0]?.n)).toBe(2);
  });

  it('throws when the whole push fails', async () => {
    await t.sql('DROP TABLE reprise.clients');
    await expect(t.mutate(mutators.issue.create({ id: 'i1', title: 'x' }), ana)).rejects.toThrow(
      /push of issue\.create \(client test-client, id 1\) failed with database/,
    );
  });
});

describe.each<TestEngine>(['pglite', 'pg-mem'])('createTestDatabase setup on %s', (engine) => {
  it('runs ddl given as one string of several statements', async () => {
    const ddl = `${APP_DDL[0]};
      CREATE TABLE label (id TEXT PRIMARY KEY, name TEXT NOT NULL);
      INSERT INTO label (id, name) VALUES ('l1', 'bug');`;
    await using t = await createTestDatabase({ schema, mutators, ddl, engine });
    expect(await t.sql('SELECT id, name FROM label')).toEqual([{ id: 'l1', name: 'bug' }]);
    expect(await t.mutate(mutators.issue.create({ id: 'i1', title: 'x' }), ana)).toMatchObject({
      ok: true,
    });
  });

  it('starts every database from the setup alone, not from what an earlier one wrote', async () => {
    const first = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
    await first.mutate(mutators.issue.create({ id: 'i1', title: 'x' }), ana);
    await using second = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
    await first.close();
    expect(await second.run(q.issue)).toEqual([]);
    // The engine's tables start empty too: the same client's first id is 1 again.
    expect(await second.mutate(mutators.issue.create({ id: 'i2', title: 'y' }), ana)).toEqual({
      ok: true,
      data: { mutationID: 1, at: new Date('2026-01-02T03:04:05.000Z') },
    });
  });

  it('gives a closed database to the next test only once it is back to the setup', async () => {
    const ddl = `${APP_DDL[0]};
      CREATE TABLE label (id TEXT PRIMARY KEY, name TEXT NOT NULL);
      INSERT INTO label (id, name) VALUES ('l1', 'bug');`;
    const setup = { schema, mutators, ddl, engine };
    // A session setting a test left behind must not reach the next test (pg-mem has none).
    const appName = async (t: TestDatabase<typeof schema, typeof mutators>) =>
      engine === 'pglite'
        ? (await t.sql<{ application_name: string }>('SHOW application_name'))[0]?.application_name
        : '';
    // Each database opens after the one before it closed: on PGlite, that one reset.
    let setupName: string | undefined;
    {
      await using t = await createTestDatabase(setup);
      setupName = await appName(t);
      await t.mutate(mutators.issue.create({ id: 'i1', title: 'x' }), ana);
      if (engine === 'pglite') await t.sql(`SET application_name = 'left behind'`);
    }
    {
      await using t = await createTestDatabase(setup);
      expect(await t.run(q.issue)).toEqual([]);
      expect(await appName(t)).toBe(setupName);
      // A row the setup wrote, changed, and a table of the test's own.
      await t.sql(`UPDATE label SET name = 'feature'`);
      await t.sql('CREATE TABLE scratch (id TEXT)');
    }
    await using t = await createTestDatabase(setup);
    expect(await t.sql('SELECT id, name FROM label')).toEqual([{ id: 'l1', name: 'bug' }]);
    await expect(t.sql('SELECT * FROM scratch')).rejects.toThrow(/scratch/);
    expect(await t.mutate(mutators.issue.create({ id: 'i2', title: 'y' }), ana)).toEqual({
      ok: true,
      data: { mutationID: 1, at: new Date('2026-01-02T03:04:05.000Z') },
    });
  });

  it('reports a failing ddl, and keeps nothing of it', async () => {
    const ddl = 'CREATE TABLE broken (id TEXT PRIMARY KEY); CREATE TABLE broken (id TEXT);';
    await expect(createTestDatabase({ schema, mutators, ddl, engine })).rejects.toThrow(/broken/);
    await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
    await expect(t.sql('SELECT * FROM broken')).rejects.toThrow(/broken/);
  }, 90_000); // a PGlite whose setup fails is never a template: this one runs initdb
});

describe('createTestDatabase', () => {
  it('closes with await using, and closing twice is harmless', async () => {
    let closed: TestDatabase<typeof schema, typeof mutators>;
    {
      await using t = await createTestDatabase({ schema, mutators, ddl: APP_DDL });
      closed = t;
    }
    await expect(closed.sql('SELECT 1')).rejects.toThrow();
    await closed.close();
  });

  it.each<TestEngine>(['pglite', 'pg-mem'])(
    'refuses queries and pushes once closed, on %s',
    async (engine) => {
      const t = await createTestDatabase({ schema, mutators, ddl: APP_DDL, engine });
      await t.close();
      await expect(t.sql('SELECT 1')).rejects.toThrow(/closed/);
      await expect(t.mutate(mutators.issue.create({ id: 'i1', title: 'x' }), ana)).rejects.toThrow(
        /closed/,
      );
    },
  );

  it('refuses an unknown engine', async () => {
    // @ts-expect-error: not an engine
    await expect(createTestDatabase({ schema, mutators, engine: 'sqlite' })).rejects.toThrow(
      /unknown engine "sqlite"/,
    );
  });

  it('types outcomes and rows from the values passed', () => {
    const check = async (t: TestDatabase<typeof schema, typeof mutators>) => {
      const created = await t.mutate(mutators.issue.create({ id: 'i1', title: 'x' }));
      expectTypeOf(created).toEqualTypeOf<TestMutationOutcome<{ mutationID: number; at: Date }>>();
      expectTypeOf(await t.mutate(mutators.issue.close({ id: 'i1' }))).toEqualTypeOf<
        TestMutationOutcome<void>
      >();
      expectTypeOf(await t.run(q.issue.where('id', 'i1').one())).toEqualTypeOf<
        { id: string; title: string; ownerID: string; open: boolean } | undefined
      >();
      // @ts-expect-error: title must be a string
      await t.mutate(mutators.issue.create({ id: 'i1', title: 1 }));
      const other = createSchema({ tables: { label: pgTable('label', { id: text('id') }) } });
      // @ts-expect-error: a query over another schema
      await t.run(createBuilder(other).label);
    };
    expectTypeOf(check).toBeFunction();
  });
});

describe.each<TestEngine>(['pglite', 'pg-mem'])(
  'createTestDatabase with a write policy on %s',
  (engine) => {
    it('checks tx.mutate writes against the policy, as the push handler does', async () => {
      const writePolicy = defineWritePolicy(schema, { issue: { owner: 'ownerID' } });
      await using t = await createTestDatabase({
        schema,
        mutators,
        ddl: APP_DDL,
        engine,
        writePolicy,
      });
      expect((await t.mutate(mutators.issue.create({ id: 'i1', title: 'First' }), ana)).ok).toBe(
        true,
      );
      const outcome = await t.mutate(mutators.issue.close({ id: 'i1' }), bob);
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      // The policy refuses the write before the mutator's own (late) check runs.
      expect(outcome.error.message).toBe(
        'forbidden: update of issue {"id":"i1"}: issue.ownerID is not one of your scope keys',
      );
      expect(outcome.error.details).toEqual({
        reason: 'forbidden',
        table: 'issue',
        key: { id: 'i1' },
      });
    });
  },
);
