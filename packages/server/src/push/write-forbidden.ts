import { ApplicationError, type JSONValue, toPlainJSON } from '@reprise/shared';

/**
 * A write the write policy refused. It is an `ApplicationError`, so the mutation (or the
 * CRUD operation) rolls back and is answered `{error: 'app', message, details}` with
 * `details.reason === 'forbidden'`; the queue goes on. The message names the table, the
 * row's key and why, never another user's values.
 *
 * @example
 * try { await tx.mutate.issue.update({id: 'i1', ownerID: 'bob'}); }
 * catch (e) { if (e instanceof WriteForbiddenError) e.table; } // 'issue'
 */
export class WriteForbiddenError extends ApplicationError {
  override readonly name = 'WriteForbiddenError';
  readonly reason = 'forbidden' as const;
  readonly table: string;
  readonly key: Record<string, unknown>;

  constructor(
    table: string,
    key: Record<string, unknown>,
    action: 'insert' | 'update' | 'delete',
    why: string,
  ) {
    const plainKey = toPlainJSON(key) as JSONValue;
    super(`forbidden: ${action} of ${table} ${JSON.stringify(plainKey)}: ${why}`, {
      details: { reason: 'forbidden', table, key: plainKey },
    });
    this.table = table;
    this.key = key;
  }
}
