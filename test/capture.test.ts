import {
  type ChangeEvent,
  createChangeStreams,
  migrate,
  processPullRequest,
  pruneChanges,
  silentLogger,
} from '@reprise/server';
import { createPgDatabase } from '@reprise/server/pg';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import {
  ApplicationError,
  createBuilder,
  createMutatorDefiner,
  decodeRich,
  defineMutators,
  encodeRich,
  formatTimestamp,
  JSON_NULL,
  type PullResponse,
  type PushResponse,
} from '@reprise/shared';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema, type TestContext } from './fixtures/app';
import { mutators as pullMutators, visibility } from './fixtures/pull';
import { post, pushBody } from './fixtures/push';

// Capture of every committed write, whoever makes it: tx.mutate, raw SQL inside a mutator,
// server code outside any mutator, another connection. Each reaches pull and change
// streams with visibility applied, in commit order. pg-mem has no triggers: there only
// tx.mutate writes are recorded, which the last suite pins down.

const defineMutator = createMutatorDefiner<typeof schema, TestContext>();
const q = createBuilder(schema);
/** Inserts an issue with SQL on the driver's own transaction, not tx.mutate (server only). */
const createRaw = (refuse: boolean) =>
  defineMutator(z.object({ id: z.string(), title: z.string() }), async ({ tx, args, ctx }) => {
    if (tx.location !== 'server') return;
    await ctx.raw(
      tx.dbTransaction.wrappedTransaction,
      'INSERT INTO issue (id, title, owner_id) VALUES ($1, $2, $3)',
      [args.id, args.title, ctx.userID],
    );
    if (refuse) throw new ApplicationError('refused after writing');
  });
const byIDs = z.object({ id: z.string(), other: z.string() });
const mutators = {
  ...pullMutators,
  ...defineMutators({
    raw: {
      createIssue: createRaw(false),
      /** The same insert, then a refusal: the insert must roll back. */
      createThenRefuse: createRaw(true),
      /** Runs the statements it is given, in order, in the push's transaction. */
      statements: defineMutator(
        z.object({ sql: z.array(z.string()) }),
        async ({ tx, args, ctx }) => {
          if (tx.location !== 'server') return;
          for (const text of args.sql) await ctx.raw(tx.dbTransaction.wrappedTransaction, text, []);
        },
      ),
    },
    // Writes that name their mutation for the capture triggers in different ways.
    mix: {
      read: defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
        await tx.run(q.issue.where('id', args.id).one());
      }),
      /** An update and a delete that write nothing (`other` is missing), then an insert. */
      keepThenInsert: defineMutator(byIDs, async ({ tx, args, ctx }) => {
        await tx.mutate.issue.update({ id: args.other, title: 'none' });
        await tx.mutate.issue.delete({ id: args.other });
        await tx.mutate.issue.insert({ id: args.id, title: 'kept', ownerID: ctx.userID });
      }),
      /** An insert through tx.mutate, then one through raw SQL. */
      mutateThenRaw: defineMutator(byIDs, async ({ tx, args, ctx }) => {
        await tx.mutate.issue.insert({ id: args.id, title: 'mutate', ownerID: ctx.userID });
        if (tx.location !== 'server') return;
        await ctx.raw(
          tx.dbTransaction.wrappedTransaction,
          'INSERT INTO issue (id, title, owner_id) VALUES ($1, $2, $3)',
          [args.other, 'raw', ctx.userID],
        );
      }),
      /** An insert, then an update of another row, both through tx.mutate. */
      insertThenUpdate: defineMutator(byIDs, async ({ tx, args, ctx }) => {
        await tx.mutate.issue.insert({ id: args.id, title: 'new', ownerID: ctx.userID });
        await tx.mutate.issue.update({ id: args.other, title: 'updated' });
      }),
      /** A delete through raw SQL, first thing. */
      rawDelete: defineMutator(z.object({ id: z.string() }), async ({ tx, args, ctx }) => {
        if (tx.location !== 'server') return;
        await ctx.raw(tx.dbTransaction.wrappedTransaction, 'DELETE FROM issue WHERE id = $1', [
          args.id,
        ]);
      }),
    },
  }),
};

type Row = { id: string; title: string; ownerID: string };

async function push(fx: AdapterFixture, userID: string, id: number, name: string, args: unknown) {
  const body = pushBody([{ id, name, args }], {
    clientGroupID: `cg-${userID}`,
    clientID: `c-${userID}`,
  });
  const res = await post(fx, encodeRich(body), { userID, mutators });
  const response = decodeRich(res.body) as PushResponse;
  if (response.kind !== 'MutateResponse') throw new Error(JSON.stringify(response));
  expect(response.mutations[0]!.result).not.toHaveProperty('error');
}

async function pull(fx: AdapterFixture, userID: string, cookie: string | null) {
  const { status, body } = await processPullRequest({
    db: fx.db,
    schema,
    visibility,
    userID,
    scopes: [userID],
    logger: silentLogger,
    body: encodeRich({ clientGroupID: `pull-${userID}`, cookie }),
  });
  if (status !== 200) throw new Error(JSON.stringify(body));
  return decodeRich(body as Parameters<typeof decodeRich>[0]) as PullResponse;
}

/** The issues a patch leaves on top of `rows`. */
function applyPatch(rows: Map<string, Row>, response: PullResponse) {
  for (const op of response.patch) {
    if (op.op === 'clear') rows.clear();
    else if (op.tableName !== 'issue') continue;
    else if (op.op === 'put') rows.set(String(op.value.id), pick(op.value));
    else rows.delete(String(op.id.id));
  }
  return rows;
}

const pick = (row: Record<string, unknown>): Row => ({
  id: String(row.id),
  title: String(row.title),
  ownerID: String(row.ownerID),
});

async function tableRows(fx: AdapterFixture, owner?: string) {
  const rows = await fx.query<{ id: string; title: string; owner_id: string }>(
    `SELECT id, title, owner_id FROM issue${owner ? ' WHERE owner_id = $1' : ''} ORDER BY id`,
    owner ? [owner] : [],
  );
  return new Map(rows.map((r) => [r.id, { id: r.id, title: r.title, ownerID: r.owner_id }]));
}

/** The changelog's changes as readers order them (commit, then write): key and action. */
function changesInOrder(fx: AdapterFixture) {
  return fx.query<{ key: string; action: string }>(
    `SELECT "key"->>'id' AS "key", "action" FROM reprise.changes ORDER BY "seq", "id"`,
  );
}

const sorted = (rows: Map<string, Row>) =>
  [...rows.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

async function nextEvent(stream: { next(): Promise<IteratorResult<ChangeEvent, undefined>> }) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no event within 5 s')), 5000);
  });
  try {
    const result = await Promise.race([stream.next(), timeout]);
    if (result.done) throw new Error('the stream ended');
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** A transaction that writes now and commits when `commit` is called. */
function heldTransaction(fx: AdapterFixture, statements: string[]) {
  let commit!: () => void;
  const gate = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let written!: () => void;
  const wrote = new Promise<void>((resolve) => {
    written = resolve;
  });
  const done = fx.db.transaction(
    async (tx) => {
      for (const text of statements) await tx.query(text);
      written();
      await gate;
    },
    { isolation: 'read committed' },
  );
  return {
    wrote,
    commit: () => {
      commit();
      return done;
    },
  };
}

/**
 * Checks what a transaction that inserted 400 issues and then updated `p0001` left: its
 * changes stored in several parts, only the last numbered, all 401 read back in write
 * order, and a pull from `cookie` equal to the table.
 */
async function expectStoredInParts(fx: AdapterFixture, cookie: string) {
  const [stored] = await fx.query<{ parts: number; numbered: number; n: number }>(
    `SELECT count(*)::int AS "parts", count("seq")::int AS "numbered",
            sum(json_array_length("changes"::json))::int AS "n"
     FROM reprise."txChanges"`,
  );
  expect(stored!.parts).toBeGreaterThan(1);
  expect(stored).toMatchObject({ numbered: 1, n: 401 });
  const written = await fx.query<{ row: string }>(
    `SELECT "key"->>'id' AS "row" FROM reprise.changes ORDER BY "seq", "id"`,
  );
  expect(written.at(-1)?.row).toBe('p0001');
  const after = applyPatch(new Map(), await pull(fx, 'ana', cookie));
  expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
  expect(after.get('p0001')?.title).toBe('last');
}

/**
 * Gives the app a deferred trigger of its own (a row of `late_kick` inserts an issue of the
 * same id as its transaction commits, after its captured changes were stored), has `write`
 * insert an issue and then a `late_kick` row in one transaction, and checks that both
 * writes reach the changelog and a pull, in write order.
 */
async function expectLateWriteCaptured(
  fx: AdapterFixture,
  write: (early: string, kick: string) => Promise<unknown>,
) {
  await fx.query('CREATE TABLE late_kick (id TEXT PRIMARY KEY)');
  await fx.query(`CREATE FUNCTION late_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO issue (id, title, owner_id) VALUES (NEW.id, 'late', 'ana');
      RETURN NULL;
    END $$`);
  await fx.query(`CREATE CONSTRAINT TRIGGER late_write AFTER INSERT ON late_kick
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION late_write()`);
  try {
    const start = await pull(fx, 'ana', null);
    await write(
      `INSERT INTO issue (id, title, owner_id) VALUES ('e1', 'early', 'ana')`,
      `INSERT INTO late_kick (id) VALUES ('l1')`,
    );
    expect(sorted(await tableRows(fx))).toEqual([
      { id: 'e1', title: 'early', ownerID: 'ana' },
      { id: 'l1', title: 'late', ownerID: 'ana' },
    ]);
    const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
    expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
    expect((await changesInOrder(fx)).map((c) => c.key)).toEqual(['e1', 'l1']);
  } finally {
    await fx.query('DROP TABLE late_kick');
    await fx.query('DROP FUNCTION late_write()');
  }
}

/** A small deterministic generator, so a failing mix can be replayed. */
function random(seed: number) {
  let state = seed >>> 0;
  return (n: number) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('pg-mem'))) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`capture: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      return () => fx.close();
    });
    beforeEach(() => fx.reset());

    it('raw SQL inside a mutator is captured, with the mutation as its origin', async () => {
      const before = await pull(fx, 'ana', null);
      await push(fx, 'ana', 1, 'raw.createIssue', { id: 'r1', title: 'raw' });
      const changes = await fx.query(
        `SELECT "table", "action", "clientGroupID", "clientID", "mutationID"::int AS "mutationID"
         FROM reprise.changes`,
      );
      expect(changes).toEqual([
        {
          table: 'issue',
          action: 'create',
          clientGroupID: 'cg-ana',
          clientID: 'c-ana',
          mutationID: 1,
        },
      ]);
      const after = await pull(fx, 'ana', before.cookie as string);
      expect(sorted(applyPatch(new Map(), after))).toEqual([
        { id: 'r1', title: 'raw', ownerID: 'ana' },
      ]);
    });

    it('each mutation of a push is the origin of its own writes, across clients and after a refusal', async () => {
      // Client IDs with a quote and a backslash: the origin may travel as SQL literals.
      const [c1, c2] = ["c-ana'1", 'c-ana\\2'];
      const body = pushBody(
        [
          { id: 1, clientID: c1, name: 'raw.createIssue', args: { id: 'm1', title: 'one' } },
          { id: 1, clientID: c2, name: 'raw.createIssue', args: { id: 'm2', title: 'two' } },
          { id: 2, clientID: c1, name: 'raw.createThenRefuse', args: { id: 'm3', title: 'x' } },
          { id: 3, clientID: c1, name: 'raw.createIssue', args: { id: 'm4', title: 'four' } },
          { id: 2, clientID: c2, name: 'raw.createIssue', args: { id: 'm5', title: 'five' } },
        ],
        { clientGroupID: "cg-ana'" },
      );
      const res = await post(fx, encodeRich(body), { userID: 'ana', mutators });
      expect(res.status).toBe(200);
      const changes = await fx.query<Record<string, unknown>>(
        `SELECT "key"->>'id' AS "id", "clientGroupID", "clientID", "mutationID"::int AS "mutationID"
         FROM reprise.changes ORDER BY "id"`,
      );
      const origin = (id: string, clientID: string, mutationID: number) => ({
        id,
        clientGroupID: "cg-ana'",
        clientID,
        mutationID,
      });
      expect(changes).toEqual([
        origin('m1', c1, 1),
        origin('m2', c2, 1),
        origin('m4', c1, 3),
        origin('m5', c2, 2),
      ]);
    });

    it('every write names its own mutation: tx.mutate, raw SQL, after reads and writes that wrote nothing', async () => {
      const body = pushBody(
        [
          { id: 1, name: 'raw.createIssue', args: { id: 'm1', title: 'one' } },
          { id: 2, name: 'mix.read', args: { id: 'm1' } },
          { id: 3, name: 'mix.keepThenInsert', args: { id: 'm3', other: 'missing' } },
          { id: 4, name: 'mix.mutateThenRaw', args: { id: 'm4a', other: 'm4b' } },
          { id: 5, name: 'mix.insertThenUpdate', args: { id: 'm5', other: 'm4a' } },
          { id: 6, name: 'mix.rawDelete', args: { id: 'm4b' } },
        ],
        { clientGroupID: 'cg-ana', clientID: 'c-ana' },
      );
      const res = await post(fx, encodeRich(body), { userID: 'ana', mutators });
      const response = decodeRich(res.body) as PushResponse;
      expect(response.kind === 'MutateResponse' && response.mutations.map((m) => m.result)).toEqual(
        [{}, {}, {}, {}, {}, {}],
      );
      const changes = await fx.query<Record<string, unknown>>(
        `SELECT c."key"->>'id' AS "id", "action", "clientID", "mutationID"::int AS "mutationID"
         FROM reprise.changes AS c ORDER BY c."id"`,
      );
      const change = (id: string, action: string, mutationID: number) => ({
        id,
        action,
        clientID: 'c-ana',
        mutationID,
      });
      expect(changes).toEqual([
        change('m1', 'create', 1),
        change('m3', 'create', 3),
        change('m4a', 'create', 4),
        change('m4b', 'create', 4),
        change('m5', 'create', 5),
        change('m4a', 'update', 5),
        change('m4b', 'delete', 6),
      ]);
    });

    it('server code outside any mutator and another connection are captured, with no origin', async () => {
      const start = await pull(fx, 'ana', null);
      await fx.db.transaction(
        (tx) => tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('s1', 'server', 'ana')`),
        { isolation: 'read committed' },
      );
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('o1', 'outside', 'ana')`);
      await fx.query(`UPDATE issue SET title = 'edited' WHERE id = 's1'`);
      if (adapter.connect) {
        const elsewhere = await adapter.connect(fx);
        try {
          await elsewhere.query(
            `INSERT INTO issue (id, title, owner_id) VALUES ('e1', 'elsewhere', 'ana')`,
          );
        } finally {
          await elsewhere.close();
        }
      }
      const origins = await fx.query<{ clientID: string | null; mutationID: unknown }>(
        `SELECT DISTINCT "clientID", "mutationID" FROM reprise.changes`,
      );
      expect(origins).toEqual([{ clientID: null, mutationID: null }]);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
      expect(after.get('s1')?.title).toBe('edited');
    });

    it("stores each transaction's changes once as it commits, numbered; a first write rolled back with its savepoint takes its change along", async () => {
      const start = await pull(fx, 'ana', null);
      await fx.db.transaction(
        async (tx) => {
          // A first statement of several rows queues the commit trigger once per row.
          await tx.query(
            `INSERT INTO issue (id, title, owner_id) VALUES ('a1', 'one', 'ana'), ('a2', 'two', 'ana')`,
          );
          await tx.query(`UPDATE issue SET title = 'two!' WHERE id = 'a2'`);
        },
        { isolation: 'read committed' },
      );
      await fx.db.transaction(
        async (tx) => {
          // The first write, rolled back with its savepoint, takes its change and its
          // queued commit trigger with it.
          await tx
            .savepoint(async (inner) => {
              await inner.query(
                `INSERT INTO issue (id, title, owner_id) VALUES ('b0', 'gone', 'ana')`,
              );
              throw new Error('roll back');
            })
            .catch(() => undefined);
          await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('b1', 'kept', 'ana')`);
        },
        { isolation: 'read committed' },
      );
      const stored = await fx.query<{ part: number; numbered: boolean; n: number }>(
        `SELECT "part", "seq" IS NOT NULL AS "numbered", json_array_length("changes"::json) AS "n"
         FROM reprise."txChanges" ORDER BY "seq"`,
      );
      expect(stored).toEqual([
        { part: 0, numbered: true, n: 3 },
        { part: 0, numbered: true, n: 1 },
      ]);
      expect(await changesInOrder(fx)).toEqual([
        { key: 'a1', action: 'create' },
        { key: 'a2', action: 'create' },
        { key: 'a2', action: 'update' },
        { key: 'b1', action: 'create' },
      ]);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
      expect(after.get('a2')?.title).toBe('two!');
    });

    it('a transaction that writes many rows stores its changes in parts, numbered by the last, read back whole and in order', async () => {
      const start = await pull(fx, 'ana', null);
      await fx.db.transaction(
        async (tx) => {
          await tx.query(
            `INSERT INTO issue (id, title, owner_id)
             SELECT 'p' || lpad(i::text, 4, '0'), repeat('x', 200), 'ana' FROM generate_series(1, 400) AS i`,
          );
          await tx.query(`UPDATE issue SET title = 'last' WHERE id = 'p0001'`);
        },
        { isolation: 'read committed' },
      );
      await expectStoredInParts(fx, start.cookie as string);
    });

    it('a transaction that loses its captured changes (RESET ALL) fails instead of committing writes no reader would see', async () => {
      for (const after of ['write again', 'stop']) {
        const attempt = fx.db.transaction(
          async (tx) => {
            await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('r1', 'one', 'ana')`);
            await tx.query('RESET ALL');
            if (after === 'write again') {
              await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('r2', 'two', 'ana')`);
            }
          },
          { isolation: 'read committed' },
        );
        await expect(attempt).rejects.toThrow(/lost the changes this transaction wrote/);
        expect((await tableRows(fx)).size).toBe(0);
      }
      expect(await fx.query('SELECT 1 FROM reprise."txChanges"')).toEqual([]);
    });

    it('RESET ALL after a first captured delete or update fails the commit too, and keeps the row', async () => {
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('k1', 'kept', 'ana')`);
      const stored = await fx.query('SELECT 1 FROM reprise."txChanges"');
      // The commit trigger checks the row of the first write: OLD for a delete, NEW otherwise.
      for (const first of [
        `DELETE FROM issue WHERE id = 'k1'`,
        `UPDATE issue SET title = 'changed' WHERE id = 'k1'`,
      ]) {
        const attempt = fx.db.transaction(
          async (tx) => {
            await tx.query(first);
            await tx.query('RESET ALL');
          },
          { isolation: 'read committed' },
        );
        await expect(attempt).rejects.toThrow(/lost the changes this transaction wrote/);
        expect((await tableRows(fx)).get('k1')?.title).toBe('kept');
      }
      expect(await fx.query('SELECT 1 FROM reprise."txChanges"')).toEqual(stored);
    });

    it('a transaction queues the commit trigger once, whatever it writes, and pruning clears what queued it', async () => {
      const pending = async () =>
        (await fx.query<{ n: number }>('SELECT count(*)::int AS "n" FROM reprise."txPending"'))[0]!
          .n;
      const before = await pending();
      await fx.db.transaction(
        async (tx) => {
          await tx.query(
            `INSERT INTO issue (id, title, owner_id) VALUES ('q1', 'one', 'ana'), ('q2', 'two', 'ana')`,
          );
          await tx.query(`UPDATE issue SET title = 'changed' WHERE id = 'q1'`);
          await tx.query(`DELETE FROM issue WHERE id = 'q2'`);
        },
        { isolation: 'read committed' },
      );
      expect(await pending()).toBe(before + 1);
      const [stored] = await fx.query<{ rows: number; n: number }>(
        `SELECT count(*)::int AS "rows", sum(json_array_length("changes"::json))::int AS "n"
         FROM reprise."txChanges"`,
      );
      expect(stored).toEqual({ rows: 1, n: 4 });
      await pruneChanges({ db: fx.db });
      expect(await pending()).toBe(0);
      expect((await fx.query('SELECT 1 FROM reprise."txChanges"')).length).toBe(1);
    });

    it("a write the app's own deferred trigger makes after the changes were stored is captured too", async () => {
      // A deferred trigger queued after the first captured write runs after the commit
      // trigger has stored the buffer, and writes again: that change must not be left behind.
      await expectLateWriteCaptured(fx, (early, kick) =>
        fx.db.transaction(
          async (tx) => {
            await tx.query(early);
            await tx.query(kick);
          },
          { isolation: 'read committed' },
        ),
      );
    });

    it('SET CONSTRAINTS ALL IMMEDIATE stores each change as it is made, all of them, in order', async () => {
      const start = await pull(fx, 'ana', null);
      await fx.db.transaction(
        async (tx) => {
          await tx.query('SET CONSTRAINTS ALL IMMEDIATE');
          await tx.query(
            `INSERT INTO issue (id, title, owner_id) SELECT 'i' || i, 'one', 'ana' FROM generate_series(1, 3) AS i`,
          );
          await tx.query(`UPDATE issue SET title = 'two' WHERE id = 'i1'`);
        },
        { isolation: 'read committed' },
      );
      expect(await changesInOrder(fx)).toEqual([
        { key: 'i1', action: 'create' },
        { key: 'i2', action: 'create' },
        { key: 'i3', action: 'create' },
        { key: 'i1', action: 'update' },
      ]);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
    });

    it("a push's changes are stored as it commits, one numbered row in write order; where the driver sends statements with COMMIT, without queueing the commit trigger", async () => {
      // Where statements go out with COMMIT or in its query, the engine stores the changes.
      const storesItself = await fx.db.transaction(
        async (tx) => tx.queryAtCommit !== undefined || tx.commitWith !== undefined,
        {
          isolation: 'read committed',
        },
      );
      const pending = async () =>
        (await fx.query<{ n: number }>('SELECT count(*)::int AS "n" FROM reprise."txPending"'))[0]!
          .n;
      const before = await pending();
      const start = await pull(fx, 'ana', null);
      await push(fx, 'ana', 1, 'raw.statements', {
        sql: [
          `INSERT INTO issue (id, title, owner_id) VALUES ('s1', 'one', 'ana')`,
          `UPDATE issue SET title = 'one!' WHERE id = 's1'`,
          `INSERT INTO issue (id, title, owner_id) VALUES ('s2', 'two', 'ana')`,
        ],
      });
      expect(await pending()).toBe(storesItself ? before : before + 1);
      expect(
        await fx.query(
          `SELECT "part", "seq" IS NOT NULL AS "numbered", json_array_length("changes"::json) AS "n"
           FROM reprise."txChanges"`,
        ),
      ).toEqual([{ part: 0, numbered: true, n: 3 }]);
      expect(await changesInOrder(fx)).toEqual([
        { key: 's1', action: 'create' },
        { key: 's1', action: 'update' },
        { key: 's2', action: 'create' },
      ]);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect(sorted(after)).toEqual(sorted(await tableRows(fx)));
      // A push that writes nothing stores nothing.
      await push(fx, 'ana', 2, 'raw.statements', { sql: ['SELECT 1'] });
      expect((await fx.query('SELECT 1 FROM reprise."txChanges"')).length).toBe(1);
    });

    it('a push that writes many rows stores them in parts, the last numbered, all read back in order', async () => {
      const start = await pull(fx, 'ana', null);
      await push(fx, 'ana', 1, 'raw.statements', {
        sql: [
          `INSERT INTO issue (id, title, owner_id)
           SELECT 'p' || lpad(i::text, 4, '0'), repeat('x', 200), 'ana' FROM generate_series(1, 400) AS i`,
          `UPDATE issue SET title = 'last' WHERE id = 'p0001'`,
        ],
      });
      await expectStoredInParts(fx, start.cookie as string);
    });

    it('a push whose mutator loses the captured changes (RESET ALL) commits none of its writes', async () => {
      const body = pushBody(
        [
          {
            id: 1,
            name: 'raw.statements',
            args: {
              sql: [
                `INSERT INTO issue (id, title, owner_id) VALUES ('r1', 'one', 'ana')`,
                'RESET ALL',
              ],
            },
          },
        ],
        { clientGroupID: 'cg-ana', clientID: 'c-ana' },
      );
      const res = await post(fx, encodeRich(body), { userID: 'ana', mutators });
      // The push fails as its COMMIT would have: nothing applied, the client pushes again.
      expect(res.status).toBe(503);
      expect(JSON.stringify(res.body)).toMatch(/lost the changes this transaction wrote/);
      expect((await tableRows(fx)).size).toBe(0);
      expect(await fx.query('SELECT 1 FROM reprise."txChanges"')).toEqual([]);
    });

    it("a push whose write queues the app's own deferred trigger captures that trigger's write too", async () => {
      await expectLateWriteCaptured(fx, (early, kick) =>
        push(fx, 'ana', 1, 'raw.statements', { sql: [early, kick] }),
      );
    });

    it('migrating from engine schema 8 moves the commit trigger off the captured tables', async () => {
      // Schema 8's layout: a deferred commit trigger on each captured table, no txPending.
      await fx.query(`CREATE FUNCTION reprise.old_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NULL; END $$`);
      await fx.query(`CREATE CONSTRAINT TRIGGER reprise_capture_commit AFTER INSERT OR UPDATE OR DELETE
        ON issue DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reprise.old_commit()`);
      await fx.query('DROP TABLE reprise."txPending"');
      await fx.query('DELETE FROM reprise.migrations WHERE "version" = 9');
      expect((await migrate(fx.db, { capture: schema })).applied).toEqual([9]);
      const triggers = await fx.query<{ table: string; trigger: string }>(
        `SELECT c.relname AS "table", g.tgname AS "trigger"
         FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         WHERE g.tgname LIKE 'reprise_capture%' AND c.relname IN ('issue', 'txPending')
         ORDER BY 1, 2`,
      );
      expect(triggers).toEqual([
        { table: 'issue', trigger: 'reprise_capture' },
        { table: 'txPending', trigger: 'reprise_capture_commit' },
      ]);
      expect(await fx.query(`SELECT to_regprocedure('reprise.old_commit()') AS "f"`)).toEqual([
        { f: null },
      ]);
      const start = await pull(fx, 'ana', null);
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('u1', 'upgraded', 'ana')`);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect([...after.keys()]).toEqual(['u1']);
    });

    it('a write under an origin setting that is not JSON fails, and the changelog stays readable', async () => {
      const start = await pull(fx, 'ana', null);
      const attempt = fx.db.transaction(
        async (tx) => {
          await tx.query(`SELECT set_config('reprise.origin', '["g", broken', true)`);
          await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('o1', 'one', 'ana')`);
        },
        { isolation: 'read committed' },
      );
      await expect(attempt).rejects.toThrow(/json/i);
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('o2', 'two', 'ana')`);
      const after = applyPatch(new Map(), await pull(fx, 'ana', start.cookie as string));
      expect([...after.keys()]).toEqual(['o2']);
    });

    it("a raw write of ana's row reaches ana and never bob, by pull and by a scoped read", async () => {
      const ana = await pull(fx, 'ana', null);
      const bob = await pull(fx, 'bob', null);
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('a1', 'secret', 'ana')`);
      await fx.query(`UPDATE issue SET title = 'still secret' WHERE id = 'a1'`);
      const bobNext = await pull(fx, 'bob', bob.cookie as string);
      expect(bobNext.patch).toEqual([]);
      expect((await pull(fx, 'bob', null)).patch).toEqual([{ op: 'clear' }]);
      const anaNext = await pull(fx, 'ana', ana.cookie as string);
      expect(sorted(applyPatch(new Map(), anaNext))).toEqual([
        { id: 'a1', title: 'still secret', ownerID: 'ana' },
      ]);
      // Moved to bob: ana gets a del, bob the row, both by raw SQL.
      await fx.query(`UPDATE issue SET owner_id = 'bob' WHERE id = 'a1'`);
      expect((await pull(fx, 'ana', anaNext.cookie as string)).patch).toEqual([
        { op: 'del', tableName: 'issue', id: { id: 'a1' } },
      ]);
      expect(
        sorted(applyPatch(new Map(), await pull(fx, 'bob', bobNext.cookie as string))),
      ).toEqual([{ id: 'a1', title: 'still secret', ownerID: 'bob' }]);
    });

    it("a stream scoped to bob never shows him ana's raw writes; rows moving in and out come as creates and deletes", async () => {
      await using streams = createChangeStreams({
        db: fx.db,
        schema,
        visibility,
        logger: silentLogger,
      });
      const bob = await streams.subscribe({ table: 'issue', scopes: ['bob'] });
      const ana = await streams.subscribe({ table: 'issue', scopes: ['ana'] });
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('s1', 'secret', 'ana')`);
      await fx.query(`UPDATE issue SET title = 'still secret' WHERE id = 's1'`);
      await fx.query(`UPDATE issue SET owner_id = 'bob' WHERE id = 's1'`);
      await fx.query(`DELETE FROM issue WHERE id = 's1'`);
      const seen = (e: ChangeEvent) =>
        `${e.action} ${String((e.action === 'create' ? e.created : e.action === 'update' ? e.after : e.deleted).title)}`;
      const bobs = [await nextEvent(bob), await nextEvent(bob)].map(seen);
      expect(bobs).toEqual(['create still secret', 'delete still secret']);
      const anas = [];
      for (let i = 0; i < 3; i++) anas.push(seen(await nextEvent(ana)));
      expect(anas).toEqual(['create secret', 'update still secret', 'delete still secret']);
      await expect(
        streams.subscribe({ table: 'issue', scopes: 'bob' as unknown as string[] }),
      ).rejects.toThrow(/scopes/);
    });

    it('update events carry both rows, delete events the whole row; a key change is a delete and a create', async () => {
      await using streams = createChangeStreams({ db: fx.db, schema, logger: silentLogger });
      const stream = await streams.subscribe({ table: 'issue' });
      await fx.query(
        `INSERT INTO issue (id, title, owner_id, views) VALUES ('k1', 'one', 'ana', 9007199254740993)`,
      );
      await fx.query(`UPDATE issue SET title = 'two' WHERE id = 'k1'`);
      await fx.query(`UPDATE issue SET id = 'k2' WHERE id = 'k1'`);
      await fx.query(`DELETE FROM issue WHERE id = 'k2'`);
      const events = [];
      for (let i = 0; i < 5; i++) events.push(await nextEvent(stream));
      const full = { ownerID: 'ana', open: true, labels: null, createdAt: null };
      const big = 9007199254740993n;
      expect(events.map(({ id: _, ...event }) => event)).toEqual([
        {
          table: 'issue',
          action: 'create',
          created: { ...full, id: 'k1', title: 'one', views: big },
        },
        {
          table: 'issue',
          action: 'update',
          before: { ...full, id: 'k1', title: 'one', views: big },
          after: { ...full, id: 'k1', title: 'two', views: big },
        },
        {
          table: 'issue',
          action: 'delete',
          deleted: { ...full, id: 'k1', title: 'two', views: big },
        },
        {
          table: 'issue',
          action: 'create',
          created: { ...full, id: 'k2', title: 'two', views: big },
        },
        {
          table: 'issue',
          action: 'delete',
          deleted: { ...full, id: 'k2', title: 'two', views: big },
        },
      ]);
      expect(new Set(events.map((e) => e.id)).size).toBe(5);
      expect(events.every((e) => typeof e.id === 'string')).toBe(true);
    });

    it('a captured row decodes exactly as a reset reads it: microseconds, infinity, int8, JSON null', async () => {
      const start = await pull(fx, 'ana', null);
      await fx.query(
        `INSERT INTO issue (id, title, owner_id, labels, created_at, views) VALUES
           ('t1', 'micro', 'ana', 'null'::jsonb, '2026-01-02 03:04:05.123456+00', 9007199254740993),
           ('t2', 'inf', 'ana', NULL, 'infinity', NULL),
           ('t3', 'bc', 'ana', '["a"]', '0044-03-15 10:00:00.5+00 BC', -1)`,
      );
      const puts = (response: PullResponse) =>
        response.patch
          .flatMap((op) => (op.op === 'put' && op.tableName === 'issue' ? [op.value] : []))
          .sort((a, b) => String(a.id).localeCompare(String(b.id)));
      const incremental = puts(await pull(fx, 'ana', start.cookie as string));
      const reset = puts(await pull(fx, 'ana', null));
      expect(incremental).toHaveLength(3);
      expect(incremental).toEqual(reset);
      expect(incremental.map((row) => formatTimestamp(row.createdAt as Date))).toEqual([
        '2026-01-02T03:04:05.123456Z',
        'infinity',
        formatTimestamp(reset[2]!.createdAt as Date),
      ]);
      expect(incremental[0]!.labels).toBe(JSON_NULL);
      expect(incremental[1]!.labels).toBeNull();
      expect(incremental[0]!.views).toBe(9007199254740993n);
    });

    it("takes Pulse's update filter: {after: {...}}", async () => {
      await using streams = createChangeStreams({ db: fx.db, schema, logger: silentLogger });
      const stream = await streams.subscribe({
        table: 'issue',
        update: { after: { title: { startsWith: 'bug' } } },
      });
      await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('p1', 'x', 'ana')`);
      await fx.query(`UPDATE issue SET title = 'feature' WHERE id = 'p1'`);
      await fx.query(`UPDATE issue SET title = 'bug: crash' WHERE id = 'p1'`);
      const event = await nextEvent(stream);
      expect(event).toMatchObject({
        action: 'update',
        before: { title: 'feature' },
        after: { title: 'bug: crash' },
      });
    });

    it.skipIf(!adapter.concurrent)(
      'a stream delivers in commit order: a transaction that started early and committed late comes last',
      async () => {
        await using streams = createChangeStreams({ db: fx.db, schema, logger: silentLogger });
        const stream = await streams.stream({ name: 'order', table: 'issue' });
        // Early: takes its changelog ids first, commits last. Its writes keep their order.
        const early = heldTransaction(fx, [
          `INSERT INTO issue (id, title, owner_id) VALUES ('e1', 'early', 'ana')`,
          `UPDATE issue SET title = 'early, edited' WHERE id = 'e1'`,
          `INSERT INTO issue (id, title, owner_id) VALUES ('e2', 'early', 'ana')`,
        ]);
        await early.wrote;
        await push(fx, 'ana', 1, 'issue.create', { id: 'l1', title: 'late' });
        await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('l2', 'late', 'ana')`);
        await early.commit();
        // Read only now, after both committed: the order must still be the commits'.
        const events = [];
        for (let i = 0; i < 5; i++) events.push(await nextEvent(stream));
        expect(
          events.map(
            (e) =>
              `${e.action} ${e.action === 'delete' ? '' : (e.action === 'create' ? e.created : e.after).id}`,
          ),
        ).toEqual(['create l1', 'create l2', 'create e1', 'update e1', 'create e2']);
        const ids = events.map((e) => Number(e.id));
        expect(ids[2]).toBeLessThan(ids[0]!); // the early transaction's ids are lower
        await stream.stop();
      },
    );

    it.skipIf(!adapter.concurrent)(
      'a random mix of engine and raw writes, late commits included, ends the same by every reader',
      async () => {
        const seed = Number(process.env.CAPTURE_SEED ?? 20261203);
        const rand = random(seed);
        const users = ['ana', 'bob', 'cy'];
        const ids = ['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7'];
        await using streams = createChangeStreams({ db: fx.db, schema, logger: silentLogger });
        const stream = await streams.stream({ name: 'mix', table: 'issue' });
        const starts = new Map<string, string>();
        for (const user of users) starts.set(user, (await pull(fx, user, null)).cookie as string);
        const next = new Map(users.map((u) => [u, 1]));
        const held: { commit: () => Promise<unknown> }[] = [];
        let written = 0;
        for (let step = 0; step < 40; step++) {
          const user = users[rand(users.length)]!;
          const id = ids[rand(ids.length)]!;
          const choice = rand(6);
          const exists = (await fx.query(`SELECT 1 FROM issue WHERE id = $1`, [id])).length > 0;
          if (choice === 0 && held.length < 2 && !exists) {
            const late = heldTransaction(fx, [
              `INSERT INTO issue (id, title, owner_id) VALUES ('${id}-late${step}', 'held', '${user}')`,
            ]);
            await late.wrote;
            held.push(late);
            written++;
          } else if (choice === 1 && held.length) {
            await held.shift()!.commit();
          } else if (choice === 2 && !exists) {
            const n = next.get(user)!;
            next.set(user, n + 1);
            await push(fx, user, n, 'issue.create', { id, title: `by ${user}` });
            written++;
          } else if (choice === 3 && exists) {
            await fx.query(`UPDATE issue SET title = $2, owner_id = $3 WHERE id = $1`, [
              id,
              `raw ${step}`,
              user,
            ]);
            written++;
          } else if (choice === 4 && exists) {
            await fx.query(`DELETE FROM issue WHERE id = $1`, [id]);
            written++;
          } else if (!exists) {
            await fx.query(`INSERT INTO issue (id, title, owner_id) VALUES ($1, 'raw', $2)`, [
              id,
              user,
            ]);
            written++;
          }
        }
        for (const late of held) await late.commit();
        expect(written).toBeGreaterThan(10);

        const final = await tableRows(fx);
        for (const user of users) {
          const own = await tableRows(fx, user);
          expect(sorted(applyPatch(new Map(), await pull(fx, user, null)))).toEqual(sorted(own));
          const incremental = applyPatch(new Map(), await pull(fx, user, starts.get(user)!));
          expect(sorted(incremental)).toEqual(sorted(own));
        }
        // The stream, replayed from the start, ends at the table's state.
        const replayed = new Map<string, Row>();
        const total = Number(
          (await fx.query<{ n: string }>(`SELECT count(*)::text AS n FROM reprise.changes`))[0]!.n,
        );
        for (let i = 0; i < total; i++) {
          const event = await nextEvent(stream);
          if (event.action === 'delete') replayed.delete(String(event.deleted.id));
          else {
            const row = event.action === 'create' ? event.created : event.after;
            replayed.set(String(row.id), pick(row));
          }
        }
        expect(sorted(replayed)).toEqual(sorted(final));
        await stream.stop();
      },
    );
  });
}

const pgMem = ADAPTERS.find((a) => a.name.startsWith('pg-mem'))!;
describe('capture: pg-mem records tx.mutate writes only', () => {
  let fx: AdapterFixture;
  beforeAll(async () => {
    fx = await pgMem.create();
  });
  afterAll(() => fx.close());

  it('records a tx.mutate write and not a raw one, as the README says', async () => {
    await migrate(fx.db, { capture: schema }); // a no-op there: pg-mem has no triggers
    await push(fx, 'ana', 1, 'issue.create', { id: 'm1', title: 'engine' });
    await push(fx, 'ana', 2, 'raw.createIssue', { id: 'm2', title: 'raw' });
    const tables = await fx.query<{ key: unknown }>(`SELECT "key" FROM reprise.changes`);
    expect(tables.map((row) => JSON.stringify(row.key))).toEqual([JSON.stringify({ id: 'm1' })]);
  });
});

/**
 * A suite on the one adapter named `name`, skipped (saying why) where its server is not
 * available; `fixture()` is its fixture, reset before each test.
 */
function describeOn(name: string, title: string, tests: (fixture: () => AdapterFixture) => void) {
  const adapter = ADAPTERS.find((a) => a.name === name)!;
  const skipped = adapter.unavailable ? ` [skipped: ${adapter.unavailable}]` : '';
  describe.skipIf(adapter.unavailable !== undefined)(`${title}${skipped}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      return () => fx.close();
    });
    beforeEach(() => fx.reset());
    tests(() => fx);
  });
}

describeOn(
  'postgres.js (real server)',
  'capture: postgres.js prepares what it sends with COMMIT',
  (fixture) => {
    it('a statement without parameters sent with COMMIT is one prepared statement, not a simple query parsed anew each time', async () => {
      const fx = fixture();
      // The extended protocol takes one statement a text: two are refused, where a simple
      // query (which is what postgres.js sends by default without parameters) runs both.
      const twice = fx.db.transaction(
        async (tx) => {
          tx.queryAtCommit!(
            `INSERT INTO issue (id, title, owner_id) VALUES ('c1', 'one', 'ana'); SELECT 1`,
          );
        },
        { isolation: 'read committed' },
      );
      await expect(twice).rejects.toThrow(/multiple commands/);
      expect((await tableRows(fx)).size).toBe(0);
      await fx.db.transaction(
        async (tx) => {
          tx.queryAtCommit!(`INSERT INTO issue (id, title, owner_id) VALUES ('c1', 'one', 'ana')`);
        },
        { isolation: 'read committed' },
      );
      expect([...(await tableRows(fx)).keys()]).toEqual(['c1']);
    });
  },
);

// A server that starts on a database without the function: it asks once whether it is
// there, then keeps the commit trigger.
const FRESH_SERVERS = [
  {
    adapter: 'node-postgres pool (real server)',
    open(url: string) {
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      return { db: createPgDatabase(pool), end: () => pool.end() };
    },
  },
  {
    adapter: 'postgres.js (real server)',
    open(url: string) {
      const sql = postgres(url, { max: 2, onnotice: () => undefined });
      return { db: createPostgresJsDatabase(sql), end: () => sql.end() };
    },
  },
];

for (const server of FRESH_SERVERS) {
  describeOn(
    server.adapter,
    `capture: ${server.adapter} and the function that stores a push's changes`,
    (fixture) => {
      it('without the function that stores changes with COMMIT, a push keeps the commit trigger and loses nothing', async () => {
        const fx = fixture();
        await fx.query('DROP FUNCTION reprise.store_changes()');
        const { db, end } = server.open(fx.url!);
        try {
          const before = await pull(fx, 'ana', null);
          const body = pushBody(
            [{ id: 1, name: 'raw.createIssue', args: { id: 'o1', title: 'old schema' } }],
            { clientGroupID: 'cg-ana', clientID: 'c-ana' },
          );
          const res = await post({ ...fx, db }, encodeRich(body), { userID: 'ana', mutators });
          expect(res.status).toBe(200);
          expect(await fx.query('SELECT count(*)::int AS "n" FROM reprise."txPending"')).toEqual([
            { n: 1 },
          ]);
          const after = applyPatch(new Map(), await pull(fx, 'ana', before.cookie as string));
          expect(sorted(after)).toEqual([{ id: 'o1', title: 'old schema', ownerID: 'ana' }]);
        } finally {
          await end();
          await fx.query('DELETE FROM reprise.migrations WHERE "version" = 10');
          expect((await migrate(fx.db)).applied).toEqual([10]);
        }
      });

      it('migrate with capture replaces a store function of an older body, and the next push stores its changes with it', async () => {
        const fx = fixture();
        await fx.query(`CREATE OR REPLACE FUNCTION reprise.store_changes() RETURNS void
          LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'an older body'; END $$`);
        expect((await migrate(fx.db, { capture: schema })).applied).toEqual([]);
        const before = await pull(fx, 'ana', null);
        const pending = () => fx.query('SELECT count(*)::int AS "n" FROM reprise."txPending"');
        const pendingBefore = await pending();
        const body = pushBody(
          [{ id: 1, name: 'raw.createIssue', args: { id: 'n1', title: 'new body' } }],
          { clientGroupID: 'cg-ana', clientID: 'c-ana' },
        );
        const res = await post(fx, encodeRich(body), { userID: 'ana', mutators });
        expect(res.status).toBe(200);
        // Stored by the function: no row queued the commit trigger.
        expect(await pending()).toEqual(pendingBefore);
        const after = applyPatch(new Map(), await pull(fx, 'ana', before.cookie as string));
        expect(sorted(after)).toEqual([{ id: 'n1', title: 'new body', ownerID: 'ana' }]);
      });
    },
  );
}
