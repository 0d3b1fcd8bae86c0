import {
  ChangeStreamError,
  type ChangeStreams,
  type CreateEvent,
  createChangeStreams,
  type DeleteEvent,
  silentLogger,
  type UpdateEvent,
} from '@reprise/server';
import { decodeRich, encodeRich, type PushResponse, type RowOf } from '@reprise/shared';
import { afterEach, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { post, pushBody } from './fixtures/push';

// Change streams on every adapter: live subscriptions, durable named streams across restarts
// (a new createChangeStreams instance is a restart), acknowledgement, filters and the lease.
// Real-server adapters are skipped, saying why in the suite name, without DATABASE_URL.

type Schema = typeof schema;
type IssueRow = RowOf<Schema, 'issue'>;

/** Pushes mutations as `userID` in one push, numbered after the client's earlier ones. */
function pusher(fx: () => AdapterFixture) {
  const next = new Map<string, number>();
  return async (userID: string, ...mutations: { name: string; args: unknown }[]) => {
    const clientID = `client-${userID}`;
    const first = next.get(clientID) ?? 1;
    next.set(clientID, first + mutations.length);
    const body = pushBody(
      mutations.map((m, i) => ({ id: first + i, ...m })),
      { clientGroupID: `group-${userID}`, clientID },
    );
    // As superjson, so that dates arrive as dates.
    const res = await post(fx(), encodeRich(body), { userID });
    expect(res.status).toBe(200);
    const response = decodeRich(res.body) as PushResponse;
    expect(response.kind).toBe('MutateResponse');
    if (response.kind !== 'MutateResponse') return;
    for (const m of response.mutations) expect(m.result).not.toHaveProperty('error');
  };
}

const create = (id: string, title = `title ${id}`) => ({
  name: 'issue.create',
  args: { id, title },
});
const rename = (id: string, title: string) => ({ name: 'issue.rename', args: { id, title } });
const remove = (id: string) => ({ name: 'issue.remove', args: { id } });

/** Resolves to the next event, or throws if none comes within `ms`. */
async function nextEvent<E>(stream: { next(): Promise<IteratorResult<E, undefined>> }, ms = 5000) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([stream.next(), timeout]);
    if (result.done) throw new Error('the stream ended');
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** True when no event arrives within `ms`; the pending next() ends when the stream stops. */
async function staysQuiet(
  stream: { next(): Promise<IteratorResult<unknown, undefined>> },
  ms = 300,
) {
  const pending = stream.next().then((result) => (result.done ? 'done' : 'event'));
  const quiet = new Promise<'quiet'>((resolve) => setTimeout(() => resolve('quiet'), ms));
  return (await Promise.race([pending, quiet])) === 'quiet';
}

const createdIDs = (events: readonly { action: string; created?: unknown }[]) =>
  events.map((e) => (e.action === 'create' ? (e as CreateEvent<IssueRow>).created.id : e.action));

for (const adapter of ADAPTERS) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`change streams: ${title}`, () => {
    let fx: AdapterFixture;
    const instances: ChangeStreams<Schema>[] = [];
    let push = pusher(() => fx);

    /** A fresh set of change streams: a new one stands for a restarted process. */
    const open = (options: { db?: AdapterFixture['db']; leaseMs?: number } = {}) => {
      const changes = createChangeStreams({
        db: options.db ?? fx.db,
        schema,
        pollIntervalMs: 20,
        logger: silentLogger,
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      });
      instances.push(changes);
      return changes;
    };

    beforeAll(async () => {
      fx = await adapter.create();
      return () => fx.close();
    });
    beforeEach(async () => {
      push = pusher(() => fx);
      await fx.reset();
      await fx.query('DELETE FROM reprise.streams');
    });
    afterEach(async () => {
      await Promise.all(instances.splice(0).map((changes) => changes.close()));
    });

    it('subscribe receives creates, updates and deletes committed after it started', async () => {
      const subscription = await open().subscribe({ table: 'issue' });
      await push('alice', create('i1', 'first'), rename('i1', 'second'), remove('i1'));
      const events = [
        await nextEvent(subscription),
        await nextEvent(subscription),
        await nextEvent(subscription),
      ];
      const row = { id: 'i1', ownerID: 'alice', open: true, labels: null, createdAt: null };
      expect(events).toEqual([
        {
          id: expect.stringMatching(/^\d+$/),
          table: 'issue',
          action: 'create',
          created: { ...row, title: 'first', views: null },
        },
        {
          id: expect.stringMatching(/^\d+$/),
          table: 'issue',
          action: 'update',
          before: { ...row, title: 'first', views: null },
          after: { ...row, title: 'second', views: null },
        },
        {
          id: expect.stringMatching(/^\d+$/),
          table: 'issue',
          action: 'delete',
          deleted: { ...row, title: 'second', views: null },
        },
      ]);
      expect(events.map((e) => e.id)).toEqual(
        [...events.map((e) => e.id)].sort((a, b) => Number(a) - Number(b)),
      );
    });

    it('an unnamed stream starts at now: earlier changes are not delivered', async () => {
      const changes = open();
      await push('alice', create('before'));
      const stream = await changes.stream({ table: 'issue' });
      await push('alice', create('after'));
      expect(createdIDs([await nextEvent(stream)])).toEqual(['after']);
      expect(await staysQuiet(stream)).toBe(true);
    });

    it('a named stream restarted delivers every event once, in order, when each was acknowledged', async () => {
      const first = await open().stream({ name: 'indexer', table: 'issue' });
      await push('alice', create('a'), create('b'), create('c'));
      const seen = [await nextEvent(first), await nextEvent(first)];
      await first.ack(); // 'b' is done; asking for it acknowledged 'a'
      await first.stop();

      await push('alice', create('d'), create('e'));
      const second = await open().stream({ name: 'indexer', table: 'issue' });
      seen.push(await nextEvent(second), await nextEvent(second), await nextEvent(second));
      expect(createdIDs(seen)).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(seen.map((e) => e.id)).toEqual(
        [...seen.map((e) => e.id)].sort((a, b) => Number(a) - Number(b)),
      );
      expect(await staysQuiet(second)).toBe(true);
    });

    it('an event handed out but not acknowledged is delivered again after a restart', async () => {
      const first = await open().stream({ name: 'mailer', table: 'issue' });
      await push('alice', create('a'), create('b'));
      const a = await nextEvent(first);
      const b = await nextEvent(first); // acknowledges 'a' only
      await first.stop();

      const second = await open().stream({ name: 'mailer', table: 'issue' });
      const again = await nextEvent(second);
      expect(createdIDs([a, b, again])).toEqual(['a', 'b', 'b']);
      expect(again.id).toBe(b.id);
      expect(await staysQuiet(second)).toBe(true);
    });

    it.skipIf(!adapter.concurrent)(
      'a change that commits late with a lower id is delivered after the batch it missed, across a restart',
      async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        let holding!: () => void;
        const held = new Promise<void>((resolve) => {
          holding = resolve;
        });
        const stream = await open().stream({ name: 'late', table: 'issue' });
        // A transaction outside the engine that takes a changelog id first and commits last.
        const late = fx.db.transaction(
          async (tx) => {
            await tx.query(`INSERT INTO issue (id, title, owner_id) VALUES ('late', 'late', 'x')`);
            holding();
            await gate;
          },
          { isolation: 'read committed' },
        );
        await held;
        await push('alice', create('a'), create('b'));
        const a = await nextEvent(stream);
        await nextEvent(stream); // acknowledges 'a'; 'b' is handed out
        await stream.stop();
        release();
        await late;

        const resumed = await open().stream({ name: 'late', table: 'issue' });
        const events = [await nextEvent(resumed), await nextEvent(resumed)];
        expect(createdIDs(events)).toEqual(['b', 'late']);
        expect(Number(events[1]!.id)).toBeLessThan(Number(a.id));
        expect(await staysQuiet(resumed)).toBe(true);
      },
    );

    it('a for-await loop acknowledges as it goes, and breaking out leaves the last event unacknowledged', async () => {
      const first = await open().stream({ name: 'loop', table: 'issue' });
      await push('alice', create('a'), create('b'), create('c'));
      const handled: string[] = [];
      for await (const event of first) {
        if (event.action === 'create') handled.push(event.created.id);
        if (handled.length === 2) break;
      }
      const second = await open().stream({ name: 'loop', table: 'issue' });
      expect(createdIDs([await nextEvent(second), await nextEvent(second)])).toEqual(['b', 'c']);
    });

    it('filters per action pick rows, and an update filter looks at the row after the update', async () => {
      const stream = await open().stream({
        table: 'issue',
        create: { title: { startsWith: 'A' } },
        update: { title: 'done' },
        delete: { ownerID: 'alice', title: { not: 'keep' } },
      });
      await push('alice', create('i1', 'Apple'), create('i2', 'Banana'));
      await push('alice', rename('i2', 'done'), rename('i1', 'nope'));
      await push('alice', { name: 'comment.add', args: { id: 'c1', issueID: 'i1', body: 'x' } });
      await push('bob', create('i3', 'Avocado'), remove('i3'));
      await push('alice', remove('i1'));
      const events = [await nextEvent(stream), await nextEvent(stream), await nextEvent(stream)];
      expect(events.map((e) => e.action)).toEqual(['create', 'update', 'create']);
      expect((events[0] as CreateEvent<IssueRow>).created.title).toBe('Apple');
      expect((events[1] as UpdateEvent<IssueRow>).after).toMatchObject({ id: 'i2', title: 'done' });
      expect((events[2] as CreateEvent<IssueRow>).created.title).toBe('Avocado');
      const deleted = (await nextEvent(stream)) as DeleteEvent<IssueRow>;
      expect(deleted).toMatchObject({ action: 'delete', deleted: { id: 'i1', title: 'nope' } });
      expect(await staysQuiet(stream)).toBe(true);
    });

    it('naming only some actions receives only those', async () => {
      const stream = await open().subscribe({ delete: {} });
      await push('alice', create('i1'), remove('i1'));
      const event = await nextEvent(stream);
      expect(event.action).toBe('delete');
      expect(await staysQuiet(stream)).toBe(true);
    });

    it('filters compare typed values: in, gte on a date, not null', async () => {
      const stream = await open().subscribe({
        table: 'issue',
        create: { id: { in: ['i2', 'i3'] }, createdAt: { gte: new Date('2026-01-01T00:00:00Z') } },
      });
      const at = (iso: string) => ({
        name: 'issue.create',
        args: { id: iso.slice(0, 2), title: 't', createdAt: new Date(iso.slice(3)) },
      });
      await push(
        'alice',
        at('i1 2026-06-01T00:00:00Z'),
        at('i2 2025-06-01T00:00:00Z'),
        at('i3 2026-06-01T00:00:00Z'),
      );
      expect(createdIDs([await nextEvent(stream)])).toEqual(['i3']);
      expect(await staysQuiet(stream)).toBe(true);
    });

    it('refuses a filter on a column the table does not have, naming its columns', async () => {
      const changes = open();
      await expect(
        // @ts-expect-error: "owner" is not a column of issue
        changes.stream({ table: 'issue', create: { owner: 'alice' } }),
      ).rejects.toThrow(/"owner" is not a column of table "issue"; its columns are id, title/);
      await expect(
        // @ts-expect-error: "startWith" is not an operator
        changes.subscribe({ table: 'issue', update: { title: { startWith: 'A' } } }),
      ).rejects.toThrow(/"startWith" is not a filter operator/);
      await expect(
        // @ts-expect-error: no such table
        changes.subscribe({ table: 'issues' }),
      ).rejects.toThrow(/unknown table "issues"/);
    });

    it('a second consumer of a name is refused while the first holds it, and let in after it stops', async () => {
      const first = await open().stream({ name: 'solo' });
      const other = adapter.connect ? await adapter.connect(fx) : undefined;
      try {
        const rival = open(other ? { db: other.db } : {});
        const refused = await rival.stream({ name: 'solo' }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refused).toBeInstanceOf(ChangeStreamError);
        expect(refused).toMatchObject({ code: 'leaseHeld' });
        await first.stop();
        const second = await rival.stream({ name: 'solo' });
        expect(second.name).toBe('solo');
        await rival.close();
      } finally {
        await other?.close();
      }
    });

    it('a consumer that dies loses the name when its lease runs out; the next resumes from its stored position', async () => {
      // The dying process's database calls start failing, as after a crash.
      let dead = false;
      const died = () => Promise.reject(new Error('the process died'));
      const db: AdapterFixture['db'] = {
        ...fx.db,
        query: (text, params) => (dead ? died() : fx.db.query(text, params)),
        transaction: (fn, options) => (dead ? died() : fx.db.transaction(fn, options)),
      };
      const dying = await open({ db, leaseMs: 600 }).stream({ name: 'crash' });
      await push('alice', create('a'), create('b'));
      await nextEvent(dying);
      await dying.ack(); // 'a' is stored
      await nextEvent(dying); // 'b' is handed out, then the process dies
      dead = true;

      const next = open({ leaseMs: 600 });
      await expect(next.stream({ name: 'crash' })).rejects.toMatchObject({ code: 'leaseHeld' });
      await new Promise((resolve) => setTimeout(resolve, 700));
      const resumed = await next.stream({ name: 'crash' });
      expect(createdIDs([await nextEvent(resumed)])).toEqual(['b']);
    });

    it('types events from the schema: the table, the row, and the actions asked for', async () => {
      const changes = open();
      const creates = await changes.subscribe({ table: 'issue', create: { open: true } });
      expectTypeOf<Awaited<ReturnType<typeof creates.next>>>().toEqualTypeOf<
        IteratorResult<CreateEvent<IssueRow, 'issue'>, undefined>
      >();
      const all = await changes.stream();
      type AnyEvent = Extract<Awaited<ReturnType<typeof all.next>>, { done?: false }>['value'];
      expectTypeOf<Extract<AnyEvent, { table: 'counter' }>['action']>().toEqualTypeOf<
        'create' | 'update' | 'delete'
      >();
      // @ts-expect-error: open is a boolean
      await changes.subscribe({ table: 'issue', create: { open: 'yes' } }).catch(() => undefined);
      await creates.stop();
      await all.stop();
    });
  });
}
