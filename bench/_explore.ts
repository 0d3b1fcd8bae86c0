import { handleMutateRequest, processMutateRequest, silentLogger, type Database } from '@reprise/server';
import { pushRequestSchema } from '@reprise/shared';
import { mutators, schema } from './app';
import { buildScripts } from './pushes';

const tx: any = { query: async (t: string) => (t.startsWith('SELECT "userID"') ? [{ userID: 'u' }] : t.includes('RETURNING') ? [{ lastMutationID: 0 }] : []), savepoint: (fn: any) => fn(tx), wrappedTransaction: null };
const db: Database = { name: 'noop', capabilities: { advisoryLocks: false }, transaction: (fn: any) => fn(tx), query: tx.query };
for (const perPush of [1, 50]) {
  const N = perPush === 1 ? 20000 : 1000;
  for (const round of [0, 1]) {
    const [s] = buildScripts(`n${perPush}${round}`, 1, N, perPush);
    let t0 = performance.now();
    for (const p of s!.pushes) { const r = await handleMutateRequest({ db, schema, mutators, userID: 'u', logger: silentLogger, request: new Request('http://x/mutate', { method: 'POST', body: p.body }) }); await r.text(); }
    const h = ((performance.now() - t0) / N) * 1000;
    t0 = performance.now();
    for (const p of s!.pushes) await processMutateRequest({ db, schema, mutators, userID: 'u', logger: silentLogger, body: JSON.parse(p.body) });
    const pr = ((performance.now() - t0) / N) * 1000;
    t0 = performance.now();
    for (const p of s!.pushes) pushRequestSchema.parse(JSON.parse(p.body));
    const z = ((performance.now() - t0) / N) * 1000;
    if (round) console.log(`perPush ${perPush}: handle ${h.toFixed(0)}µs/push, process ${pr.toFixed(0)}µs/push, zod push parse ${z.toFixed(0)}µs/push`);
  }
}
