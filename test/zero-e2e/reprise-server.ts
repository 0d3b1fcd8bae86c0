// Reprise's /mutate in Zero mode, as zero-cache's --mutate-url (see run.sh). The app is one
// table and one mutator that refuses titles asking to be refused.
//
// LOSE_ANSWERS=n: the first n pushes carrying issue.create are applied, then answered 503
// as if the answer were lost on the way, so zero-cache must send them again.
import http from 'node:http';
import { handleMutateRequest, migrate, silentLogger } from '@reprise/server';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import {
  ApplicationError,
  createMutatorDefiner,
  createSchema,
  defineMutators,
} from '@reprise/shared';
import { pgTable, text } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { z } from 'zod';

const issue = pgTable('issue', { id: text('id').primaryKey(), title: text('title').notNull() });
const schema = createSchema({ tables: { issue } });
const defineMutator = createMutatorDefiner<typeof schema>();
const mutators = defineMutators({
  issue: {
    create: defineMutator(z.object({ id: z.string(), title: z.string() }), async ({ tx, args }) => {
      if (args.title === 'refuse me') {
        throw new ApplicationError('Titles may not ask to be refused', {
          details: { id: args.id },
        });
      }
      await tx.mutate.issue.insert(args);
    }),
  },
});

const zero = { shards: ['zero_0'] };
const db = createPostgresJsDatabase(postgres(process.env.DB!, { onnotice: () => {} }));
await migrate(db, { capture: schema, zero });

let lose = Number(process.env.LOSE_ANSWERS ?? 0);
http
  .createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    const request = new Request(`http://localhost${req.url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const response = await handleMutateRequest({
      db,
      schema,
      mutators,
      request,
      userID: 'alice',
      zero,
      // zero-cache sends queued pushes together, with no cap.
      maxMutations: Number.POSITIVE_INFINITY,
      logger: silentLogger,
    });
    const answer = await response.text();
    console.log(`push ${req.url} ${body.slice(0, 300)}\n  -> ${response.status} ${answer}`);
    if (lose > 0 && body.includes('issue.create')) {
      lose--;
      console.log('  -> answer lost on purpose: 503');
      res.writeHead(503).end('lost');
      return;
    }
    res.writeHead(response.status, { 'content-type': 'application/json' }).end(answer);
  })
  .listen(Number(process.env.PORT ?? 4850), () => console.log('reprise listening'));
