// query/: `tx.run(query)` on the server. The compiler turns a query AST into one
// parameterised SQL statement (conditions and SQL helpers in their own files), and the row
// decoder turns Postgres's answers into the client store's values.

import type { AnySchema, Query, QueryResult } from '@reprise/shared';
import type { DatabaseTransaction } from '../db/database';
import { type CompileOptions, compileQuery } from './query-compiler';
import { decodeRows } from './row-decoder';

/**
 * Runs a query inside an open transaction and returns its rows in their in-memory types:
 * an array, or for `one()` the first row or `undefined`. The query is checked against the
 * schema first, so a hand-built or wire AST with an unknown name fails with a `QueryError`
 * rather than an SQL error. On pg-mem, pass `{partialSQL: db.capabilities.partialSQL}`.
 *
 * @example
 * const open = await db.transaction(
 *   (tx) => runQuery(tx, schema, q.issue.where('open', true).orderBy('createdAt', 'desc')),
 *   {isolation: 'read committed'},
 * );
 */
export async function runQuery<Q extends Query<any, any, any, any>>(
  dbTransaction: Pick<DatabaseTransaction, 'query'>,
  schema: AnySchema,
  query: Q,
  options: CompileOptions = {},
): Promise<QueryResult<Q>> {
  // compileQuery checks the AST before anything reaches the database.
  const { text, params } = compileQuery(schema, query.ast, options);
  const rows = decodeRows(schema, query.ast, await dbTransaction.query(text, params));
  return (query.single ? rows[0] : rows) as QueryResult<Q>;
}
