/**
 * The client was closed before the server's verdict on a mutation reached it, or a mutator
 * was called on a closed client. A mutation queued before the close is not lost: it stays
 * in storage, and the next client over it (a reload, or another tab of the group) pushes it.
 *
 * @example
 * const outcome = await call.server;
 * if (!outcome.ok && outcome.error.code === 'closed') showNote('Saved; it syncs next time.');
 */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';
  readonly code = 'closed' as const;
  /** Always undefined; here so that code reading an `ApplicationError`'s details compiles. */
  readonly details: undefined = undefined;

  constructor(message = 'The client was closed before the server answered') {
    super(message);
  }
}
