import { migrate } from '@reprise/server';
import { ApplicationError, createMutatorDefiner, defineMutators } from '@reprise/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema, type TestContext } from './fixtures/app';
import { mutators, pull } from './fixtures/pull';
import { count, lmid, post, pushBody } from './fixtures/push';

// Zero mode on every adapter: what zero-cache and Zero's client see. The answers are Zero
// 1.9's (zero-server's process-mutations.ts in rocicorp/mono); the shard tables' layout is
// zero-cache's (change-source/pg/schema/shard.ts). Real-server adapters are skipped (and
// say why in the suite name) when DATABASE_URL is not set.

const ZERO = { shards: ['zero_0'] };
const defineMutator = createMutatorDefiner<typeof schema, TestContext>();
const URL_ZERO = 'http://localhost/mutate?schema=zero_0&appID=zero';

// zero-cache's own DDL for a shard's tables, Zero 1.9, copied verbatim.
const ZERO_CACHE_DDL = (schema: string) => [
  `CREATE SCHEMA ${schema}`,
  `CREATE TABLE ${schema}."clients" (
    "clientGroupID"  TEXT NOT NULL,
    "clientID"       TEXT NOT NULL,
    "lastMutationID" BIGINT NOT NULL,
    "userID"         TEXT,
    PRIMARY KEY("clientGroupID", "clientID")
  );`,
  `CREATE TABLE ${schema}."mutations" (
    "clientGroupID"  TEXT NOT NULL,
    "clientID"       TEXT NOT NULL,
    "mutationID"     BIGINT NOT NULL,
    "result"         JSON NOT NULL,
    PRIMARY KEY("clientGroupID", "clientID", "mutationID")
  );`,
];

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  const pgMem = adapter.name.startsWith('pg-mem');
  describe.skipIf(adapter.unavailable !== undefined)(`zero mode: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await migrate(fx.db, { capture: schema, zero: ZERO });
    });
    beforeEach(async () => {
      await fx.reset();
      await fx.query('DELETE FROM zero_0.clients');
      await fx.query('DELETE FROM zero_0.mutations');
    });
    afterAll(async () => {
      await fx.close();
    });

    const create = (id: number, issueID = `i${id}`) => ({
      id,
      name: 'issue.create',
      args: { id: issueID, title: `Issue ${issueID}` },
    });
    const refuse = (id: number) => ({ id, name: 'issue.createThenRefuse', args: { id: `r${id}` } });
    const cleanup = (upTo: number, clientID = 'c1') => ({
      id: 0,
      name: '_zero_cleanupResults',
      args: { clientGroupID: 'cg1', clientID, upToMutationID: upTo },
    });
    const zpost = (body: unknown, options: Parameters<typeof post>[2] = {}) =>
      post(fx, body, { zero: ZERO, url: URL_ZERO, mutators, ...options });
    const shardClients = () =>
      fx.query<{ clientGroupID: string; clientID: string; lastMutationID: string; userID: null }>(
        `SELECT "clientGroupID", "clientID", "lastMutationID", "userID" FROM zero_0.clients ORDER BY "clientID"`,
      );
    const shardResults = async () =>
      (
        await fx.query<{ clientID: string; mutationID: string; result: unknown }>(
          `SELECT "clientID", "mutationID", "result" FROM zero_0.mutations ORDER BY "clientID", "mutationID"`,
        )
      ).map((row) => ({
        clientID: row.clientID,
        mutationID: Number(row.mutationID),
        result: typeof row.result === 'string' ? JSON.parse(row.result) : row.result,
      }));

    it("keeps the LMID in the shard's clients table, not the engine's, with userID null as Zero leaves it", async () => {
      const res = await zpost(pushBody([create(1), create(2)]));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        kind: 'MutateResponse',
        userID: 'alice',
        mutations: [
          { id: { clientID: 'c1', id: 1 }, result: {} },
          { id: { clientID: 'c1', id: 2 }, result: {} },
        ],
      });
      expect(
        (await shardClients()).map((r) => ({ ...r, lastMutationID: Number(r.lastMutationID) })),
      ).toEqual([{ clientGroupID: 'cg1', clientID: 'c1', lastMutationID: 2, userID: null }]);
      expect(await lmid(fx)).toBeUndefined();
      expect(await count(fx, 'issue')).toBe(2);
    });

    it("stores an app error in the shard's mutations table as Zero does, and the push goes on", async () => {
      const res = await zpost(pushBody([create(1), refuse(2), create(3)]));
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        {},
        { error: 'app', message: 'Refused on purpose', details: { id: 'r2' } },
        {},
      ]);
      expect(await shardResults()).toEqual([
        {
          clientID: 'c1',
          mutationID: 2,
          result: { error: 'app', message: 'Refused on purpose', details: { id: 'r2' } },
        },
      ]);
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(3);
      expect(await count(fx, 'issue')).toBe(2);
    });

    it('a refusal before any write, first in its push, is stored as one after a write is', async () => {
      // One transaction for the first client, a rollback and a second one for the other.
      const refuseAtOnce = defineMutators({
        zt: {
          refuse: defineMutator(z.object({ id: z.string() }), async ({ args }) => {
            throw new ApplicationError('Refused on purpose', { details: { id: args.id } });
          }),
        },
      });
      const withRefusal = { ...mutators, ...refuseAtOnce };
      const early = await zpost(
        pushBody([{ id: 1, name: 'zt.refuse', args: { id: 'r1' } }, create(2)], {
          clientID: 'c1',
        }),
        { mutators: withRefusal },
      );
      const late = await zpost(
        pushBody(
          [{ id: 1, name: 'issue.createThenRefuse', args: { id: 'r1' } }, create(2, 'i2b')],
          {
            clientID: 'c2',
          },
        ),
        { mutators: withRefusal },
      );
      const answers = (res: typeof early) => res.body.mutations.map((m: any) => m.result);
      expect(answers(early)).toEqual(answers(late));
      const [c1, c2] = [
        (await shardResults()).filter((r) => r.clientID === 'c1'),
        (await shardResults()).filter((r) => r.clientID === 'c2'),
      ];
      expect(c1).toEqual([
        {
          clientID: 'c1',
          mutationID: 1,
          result: { error: 'app', message: 'Refused on purpose', details: { id: 'r1' } },
        },
      ]);
      expect(c2).toEqual(c1.map((r) => ({ ...r, clientID: 'c2' })));
      expect((await shardClients()).map((r) => Number(r.lastMutationID))).toEqual([2, 2]);
      expect(await count(fx, 'issue')).toBe(2);
    });

    it('_zero_cleanupResults with id 0 deletes results up to its id, leaves the LMID, is no gap and gets no answer', async () => {
      await zpost(pushBody([refuse(1), refuse(2), refuse(3)]));
      const res = await zpost(pushBody([cleanup(2), create(4)]));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        kind: 'MutateResponse',
        userID: 'alice',
        mutations: [{ id: { clientID: 'c1', id: 4 }, result: {} }],
      });
      expect((await shardResults()).map((r) => r.mutationID)).toEqual([3]);
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(4);
    });

    it('_zero_cleanupResults in its bulk form deletes all results of the named clients', async () => {
      await zpost(pushBody([refuse(1), { ...refuse(1), clientID: 'c2' }]));
      const bulk = {
        id: 0,
        name: '_zero_cleanupResults',
        args: { type: 'bulk', clientGroupID: 'cg1', clientIDs: ['c2'] },
      };
      const res = await zpost(pushBody([bulk]));
      expect(res.body).toEqual({ kind: 'MutateResponse', userID: 'alice', mutations: [] });
      expect((await shardResults()).map((r) => r.clientID)).toEqual(['c1']);
    });

    it('missing schema or appID is a parse failure with HTTP 200, and nothing is applied', async () => {
      for (const url of [
        'http://localhost/mutate',
        'http://localhost/mutate?schema=zero_0',
        'http://localhost/mutate?appID=zero',
      ]) {
        const res = await zpost(pushBody([create(1)]), { url });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({
          kind: 'PushFailed',
          origin: 'server',
          reason: 'parse',
          mutationIDs: [{ clientID: 'c1', id: 1 }],
        });
        expect(res.body.message).toMatch(/schema|appID/);
      }
      expect(await count(fx, 'issue')).toBe(0);
      expect(await shardClients()).toEqual([]);
    });

    it('a shard the server does not keep is a database failure with HTTP 200; a cleanup before it is skipped', async () => {
      const url = 'http://localhost/mutate?schema=zero_9&appID=zero';
      const res = await zpost(pushBody([cleanup(5), create(1), create(2)]), { url });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'database',
        mutationIDs: [
          { clientID: 'c1', id: 1 },
          { clientID: 'c1', id: 2 },
        ],
      });
      expect(res.body.message).toContain('zero_9');
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('an unsupported push version is answered with HTTP 200', async () => {
      const res = await zpost({ ...pushBody([create(1)]), pushVersion: 2 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'unsupportedPushVersion',
        message: 'Unsupported push version: 2',
        mutationIDs: [{ clientID: 'c1', id: 1 }],
      });
    });

    it('a body that is not a push, or not JSON, is a parse failure with HTTP 200', async () => {
      const bad = await zpost({ clientGroupID: 'cg1' });
      expect(bad.status).toBe(200);
      expect(bad.body).toMatchObject({ kind: 'PushFailed', reason: 'parse', mutationIDs: [] });
      const notJSON = await zpost(undefined, { rawBody: '{' });
      expect(notJSON.status).toBe(200);
      expect(notJSON.body).toMatchObject({ kind: 'PushFailed', reason: 'parse' });
    });

    it('ids 0 and -1 of a new client are alreadyProcessed with Zero details, and leave no client row', async () => {
      const res = await zpost(pushBody([create(0), create(-1)]));
      expect(res.status).toBe(200);
      expect(res.body.mutations).toEqual([
        {
          id: { clientID: 'c1', id: 0 },
          result: {
            error: 'alreadyProcessed',
            details: 'Ignoring mutation from c1 with ID 0 as it was already processed. Expected: 1',
          },
        },
        {
          id: { clientID: 'c1', id: -1 },
          result: {
            error: 'alreadyProcessed',
            details:
              'Ignoring mutation from c1 with ID -1 as it was already processed. Expected: 1',
          },
        },
      ]);
      expect(await shardClients()).toEqual([]);
      expect(await count(fx, 'issue')).toBe(0);
    });

    it('id 1.5 is out of order for a new client and already processed after id 1, as Zero compares', async () => {
      const first = await zpost(pushBody([create(1.5)]));
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'oooMutation',
        message: 'Client c1 sent mutation ID 1.5 but expected 1',
        mutationIDs: [{ clientID: 'c1', id: 1.5 }],
      });
      expect(await shardClients()).toEqual([]);
      const after = await zpost(pushBody([create(1), create(1.5), create(2)]));
      expect(after.body.mutations.map((m: any) => m.result.error ?? 'ok')).toEqual([
        'ok',
        'alreadyProcessed',
        'ok',
      ]);
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(2);
    });

    it('an empty or unknown mutator name is an app error that uses up its id', async () => {
      const res = await zpost(
        pushBody([
          { id: 1, name: '' },
          { id: 2, name: 'no.such' },
        ]),
      );
      expect(res.status).toBe(200);
      expect(res.body.mutations.map((m: any) => m.result)).toEqual([
        { error: 'app', message: 'Unknown mutator ""' },
        { error: 'app', message: 'Unknown mutator "no.such"' },
      ]);
      expect((await shardResults()).map((r) => r.mutationID)).toEqual([1, 2]);
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(2);
    });

    it('a legacy crud mutation fails the push as internal with HTTP 200, after the ones before it', async () => {
      const body = pushBody([create(1), create(3)]);
      const crud = {
        type: 'crud',
        id: 2,
        clientID: 'c1',
        name: '_zero_crud',
        args: [
          {
            ops: [
              {
                op: 'insert',
                tableName: 'issue',
                primaryKey: ['id'],
                value: { id: 'x', title: 'x' },
              },
            ],
          },
        ],
        timestamp: 1,
      };
      const [first, third] = body.mutations;
      const res = await zpost({ ...body, mutations: [first, crud, third] });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'internal',
        message: 'Expected custom mutation',
        mutationIDs: [
          { clientID: 'c1', id: 2 },
          { clientID: 'c1', id: 3 },
        ],
      });
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(1);
      expect(await count(fx, 'issue')).toBe(1);
    });

    it('an id gap is oooMutation with HTTP 200, listing the unprocessed ids; the ones before commit', async () => {
      const res = await zpost(pushBody([create(1), create(3), create(4)]));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        kind: 'PushFailed',
        reason: 'oooMutation',
        message: 'Client c1 sent mutation ID 3 but expected 2',
        mutationIDs: [
          { clientID: 'c1', id: 3 },
          { clientID: 'c1', id: 4 },
        ],
      });
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(1);
    });

    it('a resent push gets alreadyProcessed and changes nothing', async () => {
      await zpost(pushBody([create(1)]));
      await fx.query(`UPDATE issue SET title = 'edited' WHERE id = 'i1'`);
      const res = await zpost(pushBody([create(1)]));
      expect(res.body.mutations[0].result.error).toBe('alreadyProcessed');
      const rows = await fx.query<{ title: string }>(`SELECT title FROM issue WHERE id = 'i1'`);
      expect(rows[0]!.title).toBe('edited');
    });

    it('a client group stays bound to its first user: another user gets PushFailed with HTTP 200', async () => {
      await zpost(pushBody([create(1)]));
      const res = await zpost(pushBody([create(2)]), { userID: 'bob' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'internal' });
      expect(res.body.message).toContain('belongs to another user');
      expect(Number((await shardClients())[0]!.lastMutationID)).toBe(1);
    });

    it('too many mutations is a parse failure with HTTP 200; maxMutations: Infinity removes the cap', async () => {
      const many = pushBody([create(1), create(2), create(3)]);
      const res = await zpost(many, { maxMutations: 2 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ kind: 'PushFailed', reason: 'parse' });
      expect(res.body.mutationIDs).toHaveLength(3);
      const ok = await zpost(many, { maxMutations: Number.POSITIVE_INFINITY });
      expect(ok.body.mutations).toHaveLength(3);
    });

    it('writes reach the changelog with their origin, and pull sends the shard LMIDs', async () => {
      await zpost(pushBody([create(1), create(2)], { clientGroupID: 'alice-cg' }));
      const changes = await fx.query<{ table: string; clientID: string; mutationID: string }>(
        `SELECT "table", "clientID", "mutationID" FROM reprise.changes ORDER BY "id"`,
      );
      expect(changes.map((c) => [c.table, c.clientID, Number(c.mutationID)])).toEqual([
        ['issue', 'c1', 1],
        ['issue', 'c1', 2],
      ]);
      const res = await pull(fx, null, { zero: ZERO, rich: true });
      expect(res.status).toBe(200);
      expect(res.body.lastMutationIDChanges).toEqual({ c1: 2 });
      expect(res.body.patch.filter((op: any) => op.op === 'put')).toHaveLength(2);
      const without = await pull(fx, null, { rich: true });
      expect(without.body.lastMutationIDChanges).toEqual({});
    });

    it('migrate with the zero option again leaves the shard tables and their rows alone', async () => {
      await zpost(pushBody([refuse(1)]));
      const again = await migrate(fx.db, { zero: ZERO });
      expect(again.applied).toEqual([]);
      expect(await shardResults()).toHaveLength(1);
      expect(await shardClients()).toHaveLength(1);
    });

    it.skipIf(pgMem)(
      "creates the shard tables with zero-cache's own column layout, types and keys",
      async () => {
        const exec = async (statements: string[]) => {
          for (const s of statements) await fx.query(s);
        };
        await fx.query('DROP SCHEMA IF EXISTS zeroref_0 CASCADE');
        await exec(ZERO_CACHE_DDL('zeroref_0'));
        const layout = (schema: string) =>
          fx.query(
            `SELECT c.table_name, c.column_name, c.ordinal_position, c.data_type, c.is_nullable,
                    (SELECT array_to_string(array_agg(k.column_name::text ORDER BY k.ordinal_position), ',')
                       FROM information_schema.key_column_usage k
                       JOIN information_schema.table_constraints tc
                         ON tc.constraint_name = k.constraint_name AND tc.table_schema = k.table_schema
                      WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema
                        AND k.table_name = c.table_name) AS pk
               FROM information_schema.columns c
              WHERE c.table_schema = $1
              ORDER BY c.table_name, c.ordinal_position`,
            [schema],
          );
        const ours = await layout('zero_0');
        expect(ours.length).toBe(8);
        expect(ours).toEqual(await layout('zeroref_0'));
        await fx.query('DROP SCHEMA zeroref_0 CASCADE');
      },
    );

    it.skipIf(pgMem)(
      'zero-cache reads LMIDs and results as its replicated rows carry them: bigint and JSON text',
      async () => {
        await zpost(pushBody([create(1), refuse(2)]));
        // What a logical-replication reader of the shard gets: the rows' text output.
        const clients = await fx.query(
          `SELECT "clientGroupID", "clientID", "lastMutationID"::text AS lmid,
                  pg_typeof("lastMutationID")::text AS type FROM zero_0.clients`,
        );
        expect(clients).toEqual([
          { clientGroupID: 'cg1', clientID: 'c1', lmid: '2', type: 'bigint' },
        ]);
        const results = await fx.query<{ result: string; type: string }>(
          `SELECT "result"::text AS result, pg_typeof("result")::text AS type FROM zero_0.mutations`,
        );
        expect(results.map((r) => [r.type, JSON.parse(r.result)])).toEqual([
          ['json', { error: 'app', message: 'Refused on purpose', details: { id: 'r2' } }],
        ]);
      },
    );
  });
}
