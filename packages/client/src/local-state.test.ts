import {
  ApplicationError,
  createBuilder,
  createMutatorDefiner,
  createSchema,
  defineMutators,
  flattenMutators,
  type MemoryStore,
  type PatchOperation,
  runMutator,
} from '@reprise/shared';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createClientTransaction } from './client-transaction';
import { LocalState } from './local-state';
import { createMemoryStorage } from './storage';

// The view is the snapshot with the pending queue replayed. A pull patches the snapshot in
// place and brings back only the rows where the view may differ from it: these tests hold
// that to what rebuilding the view from a copy of the snapshot gives.

const item = pgTable('item', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  n: integer('n').notNull(),
});
const schema = createSchema({ tables: { item } });
const q = createBuilder(schema);
const defineMutator = createMutatorDefiner<typeof schema>();

/** Lets a test hold a replay of `item.slow` half way. */
let slowGate: Promise<void> = Promise.resolve();

const byID = z.object({ id: z.string() });

const mutators = defineMutators({
  item: {
    create: defineMutator(byID, async ({ tx, args }) => {
      await tx.mutate.item.insert({ id: args.id, title: `new ${args.id}`, n: 0 });
    }),
    put: defineMutator(z.object({ id: z.string(), title: z.string() }), async ({ tx, args }) => {
      await tx.mutate.item.upsert({ id: args.id, title: args.title, n: 0 });
    }),
    /** Reads the row through a query, so its replay depends on what the pull changed. */
    bump: defineMutator(byID, async ({ tx, args }) => {
      const row = await tx.run(q.item.where('id', args.id).one());
      if (!row) throw new ApplicationError(`no item ${args.id}`);
      await tx.mutate.item.update({ id: args.id, n: row.n + 1 });
    }),
    remove: defineMutator(byID, async ({ tx, args }) => {
      await tx.mutate.item.delete({ id: args.id });
    }),
    /** Renames every row, after waiting for `slowGate`. */
    slow: defineMutator(async ({ tx }) => {
      await slowGate;
      for (const row of await tx.run(q.item)) {
        await tx.mutate.item.update({ id: row.id, title: 'slow' });
      }
    }),
    /** Renames `a` if there is a row `flag`: a write the pull's rows alone decide on. */
    flagged: defineMutator(async ({ tx }) => {
      if (await tx.run(q.item.where('id', 'flag').one())) {
        await tx.mutate.item.update({ id: 'a', title: 'flagged' });
      }
    }),
    /** Waits for `slowGate`, then writes its own row. */
    late: defineMutator(async ({ tx }) => {
      await slowGate;
      await tx.mutate.item.upsert({ id: 'late', title: 'L', n: 0 });
    }),
    /** Renames every row after waiting for `slowGate`, then throws if there is an `x`. */
    doomed: defineMutator(async ({ tx }) => {
      await slowGate;
      const all = await tx.run(q.item);
      for (const row of all) await tx.mutate.item.update({ id: row.id, title: 'doomed' });
      if (all.some((row) => row.id === 'x')) throw new ApplicationError('x is there');
    }),
  },
});
const byName = flattenMutators(mutators);

async function openState(): Promise<LocalState> {
  return LocalState.open({
    schema,
    mutators,
    storage: createMemoryStorage(),
    userID: 'u1',
    context: undefined,
  });
}

const rows = (store: MemoryStore) =>
  [...store.scan('item')].sort((a, b) => String(a.id).localeCompare(String(b.id)));

/** The view as a rebase from a copy of the snapshot builds it. */
async function rebuilt(state: LocalState): Promise<MemoryStore> {
  const view = state.snapshot.clone();
  for (const queue of state.queues()) {
    for (const mutation of queue.pending) {
      const draft = view.fork();
      const tx = createClientTransaction(schema, draft, {
        clientID: queue.clientID,
        mutationID: mutation.id,
        reason: 'rebase',
      });
      try {
        await runMutator(byName.get(mutation.name)!, { tx, args: mutation.args, ctx: undefined });
        draft.commit();
      } catch {
        // left out, as the client does
      }
    }
  }
  return view;
}

const titles = (store: MemoryStore) => rows(store).map((r) => `${r.id}:${r.title}`);

/** Closes `slowGate`; the function returned opens it. */
function holdSlow(): () => void {
  let open!: () => void;
  slowGate = new Promise((resolve) => {
    open = resolve;
  });
  return open;
}

const mutate = (state: LocalState, name: string, args: unknown) =>
  state.mutate(name, args, () => {}).catch(() => undefined);

describe('LocalState rebase', () => {
  it('gives the view a full rebuild would, through any mutates and pulls (property)', async () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    const action = fc.oneof(
      fc.record({
        kind: fc.constant('mutate' as const),
        name: fc.constantFrom('item.create', 'item.put', 'item.bump', 'item.remove'),
        id,
        title: fc.constantFrom('x', 'y'),
      }),
      fc.record({
        kind: fc.constant('pull' as const),
        clear: fc.boolean(),
        ops: fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('put' as const), id, title: fc.constantFrom('s', 't') }),
            fc.record({ op: fc.constant('del' as const), id }),
          ),
          { maxLength: 4 },
        ),
        confirm: fc.nat({ max: 4 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(action, { maxLength: 25 }), async (actions) => {
        const state = await openState();
        /** The server's rows, as the pulls so far left them. */
        const server = new Map<string, { id: string; title: string; n: number }>();
        let cookie = 0;
        for (const a of actions) {
          if (a.kind === 'mutate') {
            await mutate(state, a.name, { id: a.id, title: a.title });
          } else {
            const patch: PatchOperation[] = [];
            if (a.clear) {
              server.clear();
              patch.push({ op: 'clear' });
            }
            for (const op of a.ops) {
              if (op.op === 'put') {
                const row = { id: op.id, title: op.title, n: cookie };
                server.set(op.id, row);
                patch.push({ op: 'put', tableName: 'item', value: row });
              } else {
                server.delete(op.id);
                patch.push({ op: 'del', tableName: 'item', id: { id: op.id } });
              }
            }
            const lmid = Math.min(
              state.lastMutationID + a.confirm,
              state.pending.at(-1)?.id ?? state.lastMutationID,
            );
            await state.applyPull(`c${++cookie}`, patch, { [state.clientID]: lmid });
          }
          expect(rows(state.snapshot)).toEqual(
            [...server.values()].sort((x, y) => x.id.localeCompare(y.id)),
          );
          expect(rows(state.view)).toEqual(rows(await rebuilt(state)));
        }
        await state.close();
      }),
      { numRuns: 150 },
    );
  });

  it('a query during a pull sees the view before it, not half of the rebase', async () => {
    const state = await openState();
    await state.applyPull(
      'c1',
      [{ op: 'put', tableName: 'item', value: { id: 'a', title: 'A', n: 0 } }],
      {},
    );
    await mutate(state, 'item.create', { id: 'b' });
    await mutate(state, 'item.slow', {});
    const open = holdSlow();
    const pull = state.applyPull(
      'c2',
      [{ op: 'put', tableName: 'item', value: { id: 'x', title: 'X', n: 0 } }],
      { [state.clientID]: 1 }, // b is confirmed, but the server did not write it
    );
    await new Promise((resolve) => setTimeout(resolve, 5)); // the replay of slow now waits
    const during = titles(state.view);
    open();
    await pull;
    expect(during).toEqual(['a:slow', 'b:slow']);
    expect(rows(state.view).map((r) => `${r.id}:${r.title}`)).toEqual(['a:slow', 'x:slow']);
    expect(rows(state.snapshot).map((r) => `${r.id}:${r.title}`)).toEqual(['a:A', 'x:X']);
    await state.close();
  });

  it('a pull with a row it cannot key changes neither the snapshot nor the view', async () => {
    const state = await openState();
    await state.applyPull(
      'c1',
      [{ op: 'put', tableName: 'item', value: { id: 'a', title: 'A', n: 0 } }],
      {},
    );
    await mutate(state, 'item.create', { id: 'b' });
    const bad: PatchOperation[] = [
      { op: 'put', tableName: 'item', value: { id: 'a', title: 'changed', n: 1 } },
      { op: 'put', tableName: 'item', value: { title: 'no key', n: 1 } },
    ];
    await expect(state.applyPull('c2', bad, { [state.clientID]: 1 })).rejects.toThrow(
      /primary key/,
    );
    expect(rows(state.snapshot).map((r) => r.title)).toEqual(['A']);
    expect(rows(state.view).map((r) => r.id)).toEqual(['a', 'b']);
    expect(state.cookie).toBe('c1');
    // The next good pull still brings the view in line.
    await state.applyPull('c3', [{ op: 'del', tableName: 'item', id: { id: 'a' } }], {});
    expect(rows(state.view).map((r) => r.id)).toEqual(['b']);
    await state.close();
  });

  it('a replay that throws after writing is left out, and readers see the view before the pull until the rebase ends', async () => {
    const state = await openState();
    await state.applyPull(
      'c1',
      [{ op: 'put', tableName: 'item', value: { id: 'a', title: 'A', n: 0 } }],
      {},
    );
    await mutate(state, 'item.create', { id: 'b' });
    await mutate(state, 'item.doomed', {});
    expect(titles(state.view)).toEqual(['a:doomed', 'b:doomed']);
    const open = holdSlow();
    const pull = state.applyPull(
      'c2',
      [{ op: 'put', tableName: 'item', value: { id: 'x', title: 'X', n: 0 } }],
      {},
    );
    await new Promise((resolve) => setTimeout(resolve, 5)); // the replay of doomed now waits
    const during = {
      titles: titles(state.view),
      x: state.view.get('item', { id: 'x' }),
      size: state.view.size('item'),
    };
    open();
    await pull;
    expect(during).toEqual({ titles: ['a:doomed', 'b:doomed'], x: undefined, size: 2 });
    expect(titles(state.view)).toEqual(['a:A', 'b:new b', 'x:X']);
    expect(rows(state.view)).toEqual(rows(await rebuilt(state)));
    await state.close();
  });

  it('a row a replay writes that neither the pull nor the queue touched before stays hidden until the rebase ends', async () => {
    const state = await openState();
    await state.applyPull(
      'c1',
      [{ op: 'put', tableName: 'item', value: { id: 'a', title: 'A', n: 0 } }],
      {},
    );
    await mutate(state, 'item.flagged', {}); // no flag yet: writes nothing
    await mutate(state, 'item.late', {});
    expect(titles(state.view)).toEqual(['a:A', 'late:L']);
    const open = holdSlow();
    const pull = state.applyPull(
      'c2',
      [{ op: 'put', tableName: 'item', value: { id: 'flag', title: 'F', n: 0 } }],
      {},
    );
    await new Promise((resolve) => setTimeout(resolve, 5)); // flagged ran, late waits
    const during = titles(state.view);
    open();
    await pull;
    expect(during).toEqual(['a:A', 'late:L']);
    expect(titles(state.view)).toEqual(['a:flagged', 'flag:F', 'late:L']);
    expect(rows(state.view)).toEqual(rows(await rebuilt(state)));
    await state.close();
  });

  it('a rebase that fails half way puts back the view from before the pull', async () => {
    const state = await openState();
    await state.applyPull(
      'c1',
      [
        { op: 'put', tableName: 'item', value: { id: 'a', title: 'A', n: 0 } },
        { op: 'put', tableName: 'item', value: { id: 'b', title: 'B', n: 0 } },
      ],
      {},
    );
    await mutate(state, 'item.create', { id: 'c' });
    await mutate(state, 'item.put', { id: 'a', title: 'mine' });
    const before = titles(state.view);
    expect(before).toEqual(['a:mine', 'b:B', 'c:new c']);
    // The rebase brings c back to the snapshot (deletes it), then fails on a.
    const get = state.snapshot.get.bind(state.snapshot);
    const fault = vi.spyOn(state.snapshot, 'get').mockImplementation((table, key) => {
      if (key.id === 'a') throw new Error('injected fault');
      return get(table, key);
    });
    const patch: PatchOperation[] = [
      { op: 'put', tableName: 'item', value: { id: 'b', title: 'B2', n: 0 } },
    ];
    await expect(state.applyPull('c2', patch, {})).rejects.toThrow('injected fault');
    expect(fault).toHaveBeenCalled();
    fault.mockRestore();
    expect(titles(state.view)).toEqual(before);
    // The next pull's rebase brings the view in line, the failed pull's row included.
    await state.applyPull(
      'c3',
      [{ op: 'put', tableName: 'item', value: { id: 'd', title: 'D', n: 0 } }],
      {},
    );
    expect(titles(state.view)).toEqual(['a:mine', 'b:B2', 'c:new c', 'd:D']);
    expect(rows(state.view)).toEqual(rows(await rebuilt(state)));
    await state.close();
  });
});
