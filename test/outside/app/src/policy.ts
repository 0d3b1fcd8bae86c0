// src/policy.ts: who may write which rows, checked on every write the server makes
import { defineWritePolicy } from '@reprise/server';
import { schema } from './schema.js';

export const writePolicy = defineWritePolicy(schema, {
  issue: { owner: 'ownerID' }, // ownerID must be one of the request's scope keys
  comment: { parent: 'issue', via: 'issueID' }, // owned through its issue (chains to any depth)
}); // a table left out takes no writes; 'unrestricted' or {allow: (row, ctx) => …} for others
