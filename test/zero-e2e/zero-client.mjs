// The real Zero client (Node) against a real zero-cache whose --mutate-url is Reprise in
// Zero mode (run.sh starts them). It creates, refuses and (through the server's lost
// answer) resends mutations, and checks what the client sees and what the shard holds.
import assert from 'node:assert/strict';
import postgres from 'postgres';
import WebSocket from 'ws';

// Node 20 has no global WebSocket; Zero's client needs one.
globalThis.WebSocket ??= WebSocket;
const { Zero, createSchema, table, string, defineMutators, defineMutator } = await import(
  '@rocicorp/zero'
);

const issue = table('issue').columns({ id: string(), title: string() }).primaryKey('id');
const schema = createSchema({ tables: [issue] });
const mutators = defineMutators({
  issue: {
    create: defineMutator(async ({ tx, args }) => {
      await tx.mutate.issue.insert(args);
    }),
  },
});

const within = (promise, ms, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);

const z = new Zero({
  cacheURL: process.env.ZERO_CACHE_URL ?? 'http://127.0.0.1:4848',
  schema,
  mutators,
  userID: 'alice',
  kvStore: 'mem',
  logLevel: 'error',
});

const run = async (id, title) => {
  const result = await within(z.mutate(mutators.issue.create({ id, title })).server, 30_000, id);
  console.log(`${id}: server says ${JSON.stringify(result)}`);
  return result;
};

// The server's first answer is lost (LOSE_ANSWERS=1): zero-cache sends it again, Reprise
// answers alreadyProcessed, and the client still sees it confirmed.
assert.deepEqual(await run('e1', 'first'), { type: 'success' });
assert.deepEqual(await run('e-r', 'refuse me'), {
  type: 'error',
  error: { type: 'app', message: 'Titles may not ask to be refused', details: { id: 'e-r' } },
});
assert.deepEqual(await run('e2', 'second'), { type: 'success' });

const sql = postgres(process.env.DB, { onnotice: () => {} });
const clientID = z.clientID;
const [client] =
  await sql`SELECT "lastMutationID"::int AS lmid, "userID" FROM zero_0.clients WHERE "clientID" = ${clientID}`;
assert.deepEqual(client, { lmid: 3, userID: null });
const rows = await sql`SELECT id, title FROM issue WHERE id LIKE 'e%' ORDER BY id`;
assert.deepEqual(
  rows.map((r) => `${r.id}:${r.title}`),
  ['e1:first', 'e2:second'],
);
// zero-cache acknowledges the stored error with _zero_cleanupResults once the client has it.
let left = -1;
for (let i = 0; i < 50 && left !== 0; i++) {
  [{ left }] =
    await sql`SELECT count(*)::int AS left FROM zero_0.mutations WHERE "clientID" = ${clientID}`;
  if (left !== 0) await new Promise((r) => setTimeout(r, 200));
}
assert.equal(left, 0, 'zero-cache cleaned up the stored result');
console.log('zero-client: all checks passed');
await sql.end();
await z.close();
process.exit(0);
