import {
  createBuilder,
  createMutatorDefiner,
  createSchema,
  defineMutators,
  type PatchOperation,
} from '@reprise/shared';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { LocalState } from '../packages/client/src/local-state';
import { createMemoryStorage } from '../packages/client/src/storage';

// `tsx --conditions=@reprise/source bench/replay-probe.ts [mutator pending pulls]`: the CPU
// time of a pull of one row that rebases N pending mutations, in LocalState alone, over a
// 10k-row table; the mutator writes one row (item.create) or first queries the table with a
// condition no index serves (item.count). Without arguments, a few cases in turn.

const ROWS = 10_000;
const item = pgTable('item', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  n: integer('n').notNull(),
});
const schema = createSchema({ tables: { item } });
const q = createBuilder(schema);
const defineMutator = createMutatorDefiner<typeof schema>();
const mutators = defineMutators({
  item: {
    create: defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
      await tx.mutate.item.insert({ id: args.id, title: 'new', n: 0 });
    }),
    /** Reads the table through a query (a scan of 10k rows), then writes one row. */
    count: defineMutator(z.object({ id: z.string() }), async ({ tx, args }) => {
      const big = await tx.run(q.item.where('n', '>', 5000));
      await tx.mutate.item.upsert({ id: args.id, title: `saw ${big.length}`, n: 0 });
    }),
  },
});

async function probe(name: string, pending: number, runs: number): Promise<number[]> {
  const state = await LocalState.open({
    schema,
    mutators,
    storage: createMemoryStorage(),
    userID: 'u',
    context: undefined,
  });
  const rows: PatchOperation[] = [{ op: 'clear' }];
  for (let i = 0; i < ROWS; i++) {
    rows.push({ op: 'put', tableName: 'item', value: { id: `r${i}`, title: `t${i}`, n: i } });
  }
  await state.applyPull('c0', rows, {});
  for (let i = 0; i < pending; i++) await state.mutate(name, { id: `p${i}` }, () => {});
  const times: number[] = [];
  for (let n = 0; n <= runs; n++) {
    const patch: PatchOperation[] = [
      { op: 'put', tableName: 'item', value: { id: 'r1', title: `pulled ${n}`, n: 1 } },
    ];
    // CPU time, not wall time: the machine is shared, and a pull here never waits on I/O.
    const started = process.cpuUsage();
    await state.applyPull(`c${n + 1}`, patch, {});
    const used = process.cpuUsage(started);
    if (n > 0) times.push((used.user + used.system) / 1000);
  }
  if (state.pendingCount !== pending) throw new Error('pending changed');
  await state.close();
  return times;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.floor((sorted.length - 1) * p)]!.toFixed(2);
const cases: Array<[string, number, number]> = process.argv[2]
  ? [[process.argv[2], Number(process.argv[3] ?? 1000), Number(process.argv[4] ?? 100)]]
  : [
      ['item.create', 0, 50],
      ['item.create', 1000, 50],
      ['item.count', 1, 50],
      ['item.count', 20, 20],
    ];
for (const [name, pending, runs] of cases) {
  const sorted = (await probe(name, pending, runs)).sort((a, b) => a - b);
  console.log(
    `${name.padEnd(11)} ${String(pending).padStart(5)} pending, ${runs} pulls: CPU ms p25 ${pct(sorted, 0.25)} p50 ${pct(sorted, 0.5)} min ${pct(sorted, 0)}`,
  );
}
