// src/upload.ts: the endpoint PowerSync's uploadData and Prisma IDB's sync worker post to
import { type Database, handleCrudRequest } from '@reprise/server';
import { writePolicy } from './policy.js';
import { schema } from './schema.js';

export function upload(db: Database, request: Request, userID: string): Promise<Response> {
  return handleCrudRequest({
    db,
    schema,
    writePolicy, // checked on every operation; the scope key is userID unless `scopeKey` says
    request,
    userID,
    tables: { Issue: 'issue', Comment: 'comment' }, // Prisma model names → schema tables
    // Runs in the operation's transaction, before it writes; a message refuses it.
    customValidation: async (op, { query }) => {
      if (op.table !== 'Comment' || op.op !== 'create') return;
      const [open] = await query('SELECT open FROM issue WHERE id = $1', [op.data.issueID]);
      return open?.open === false ? 'This issue is closed' : undefined;
    },
  });
}
