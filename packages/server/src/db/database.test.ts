import { ApplicationError } from '@reprise/shared';
import { describe, expect, it } from 'vitest';
import {
  DatabaseError,
  isConnectionLost,
  isTransientError,
  publicDatabaseReason,
  timeoutError,
  toDatabaseError,
  withDeadline,
} from './database';

const withCode = (message: string, code?: string) =>
  code === undefined ? new Error(message) : Object.assign(new Error(message), { code });

describe('isTransientError', () => {
  // What each driver reports when the connection is gone or the server gives up on the
  // transaction: the transaction must run again, never become the mutation's result.
  const transient: Array<[string, Error]> = [
    [
      'pg: not queryable after a connection error',
      withCode('Client has encountered a connection error and is not queryable'),
    ],
    ['pg: closed client', withCode('Client was closed and is not queryable')],
    ['pg: connection terminated', withCode('Connection terminated unexpectedly')],
    ['socket reset', withCode('read ECONNRESET', 'ECONNRESET')],
    ['socket write after end', withCode('This socket has been ended by the other party', 'EPIPE')],
    ['postgres.js closed', withCode('write CONNECTION_CLOSED 127.0.0.1:5432', 'CONNECTION_CLOSED')],
    ['postgres.js destroyed', withCode('write CONNECTION_DESTROYED', 'CONNECTION_DESTROYED')],
    ['postgres.js ended', withCode('write CONNECTION_ENDED', 'CONNECTION_ENDED')],
    ['postgres.js connect timeout', withCode('write CONNECT_TIMEOUT', 'CONNECT_TIMEOUT')],
    [
      'admin shutdown 57P01',
      withCode('terminating connection due to administrator command', '57P01'),
    ],
    ['crash shutdown 57P02', withCode('terminating connection because of crash', '57P02')],
    ['cannot connect now 57P03', withCode('the database system is starting up', '57P03')],
    ['statement timeout 57014', withCode('canceling statement due to statement timeout', '57014')],
    ['connection failure 08006', withCode('connection failure', '08006')],
    ['serialization failure 40001', withCode('could not serialize access', '40001')],
    ['deadlock 40P01', withCode('deadlock detected', '40P01')],
    ['too many connections 53300', withCode('sorry, too many clients already', '53300')],
    ['out of memory 53200', withCode('out of memory', '53200')],
    ['lock not available 55P03', withCode('could not obtain lock', '55P03')],
    ['system error 58000', withCode('could not read block', '58000')],
    [
      'no code, only the server farewell',
      withCode('terminating connection due to idle-in-transaction timeout'),
    ],
  ];
  for (const [title, error] of transient) {
    it(`${title} is transient, bare, wrapped by the adapter and wrapped by app code`, () => {
      expect(isTransientError(error)).toBe(true);
      expect(toDatabaseError(error, 'SELECT 1').transient).toBe(true);
      expect(isTransientError(new Error('save failed', { cause: error }))).toBe(true);
      expect(
        isTransientError(new ApplicationError('refused', { cause: toDatabaseError(error) })),
      ).toBe(true);
    });
  }

  const permanent: Array<[string, Error]> = [
    ['unique violation 23505', withCode('duplicate key value', '23505')],
    ['not null violation 23502', withCode('null value in column', '23502')],
    ['bad text 22021', withCode('invalid byte sequence for encoding "UTF8": 0x00', '22021')],
    ['syntax error 42601', withCode('syntax error at or near', '42601')],
    ['deferred constraint at commit 40002', withCode('violates deferred constraint', '40002')],
    ['protocol violation 08P01', withCode('protocol violation', '08P01')],
    ['an app TypeError', new TypeError('Cannot read properties of undefined')],
  ];
  for (const [title, error] of permanent) {
    it(`${title} is not transient`, () => {
      expect(isTransientError(error)).toBe(false);
      expect(toDatabaseError(error).transient).toBe(false);
    });
  }
});

describe('withDeadline', () => {
  it('rejects with a transient timeout when the work does not settle in time', async () => {
    const never = new Promise<never>(() => {});
    const error = await withDeadline(never, 20, 'a statement').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ sqlState: 'REPRISE_TIMEOUT', transient: true });
    expect((error as Error).message).toBe('The database did not answer a statement within 20 ms');
  });

  it('settles as the work does when it is in time, and ignores a late rejection', async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000, 'x')).resolves.toBe(7);
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 30));
    await expect(withDeadline(late, 5, 'x')).rejects.toMatchObject({ sqlState: 'REPRISE_TIMEOUT' });
    await new Promise((resolve) => setTimeout(resolve, 40)); // an unhandled rejection would fail the run
  });
});

describe('publicDatabaseReason', () => {
  it("gives the server's message for a SQLSTATE, without the SQL the adapter attached", () => {
    const error = toDatabaseError(
      withCode('could not serialize access', '40001'),
      'UPDATE t SET x = 1',
    );
    expect(error.message).toContain('UPDATE t');
    expect(publicDatabaseReason(error)).toBe('could not serialize access');
  });

  it('gives the timeout as the engine says it', () => {
    expect(publicDatabaseReason(timeoutError('a statement', 50, 'SELECT 1'))).toBe(
      'The database did not answer a statement within 50 ms',
    );
  });

  it("hides a socket error's text, which can name the database's host and port", () => {
    const lost = withCode('write CONNECTION_CLOSED db.internal:5432', 'CONNECTION_CLOSED');
    expect(publicDatabaseReason(toDatabaseError(lost, 'COMMIT'))).toBe(
      'the connection to the database failed',
    );
    expect(publicDatabaseReason(new Error('Connection terminated unexpectedly'))).toBe(
      'the connection to the database failed',
    );
  });
});

describe('isConnectionLost', () => {
  it('is true for a lost socket, the server ending the session and a statement with no answer', () => {
    expect(isConnectionLost(withCode('read ECONNRESET', 'ECONNRESET'))).toBe(true);
    expect(
      isConnectionLost(withCode('Client has encountered a connection error and is not queryable')),
    ).toBe(true);
    expect(
      isConnectionLost(toDatabaseError(withCode('terminating connection', '57P01'), 'SELECT 1')),
    ).toBe(true);
    expect(isConnectionLost(withCode('connection failure', '08006'))).toBe(true);
    expect(isConnectionLost(timeoutError('a statement', 10))).toBe(true);
  });

  it('is false for a transaction that failed on a healthy connection, which the pool keeps', () => {
    expect(isConnectionLost(withCode('could not serialize access', '40001'))).toBe(false);
    expect(isConnectionLost(withCode('deadlock detected', '40P01'))).toBe(false);
    expect(isConnectionLost(withCode('duplicate key value', '23505'))).toBe(false);
    expect(isConnectionLost(withCode('protocol violation', '08P01'))).toBe(false);
  });
});

describe("Prisma's errors", () => {
  // The shape Prisma 7 throws over @prisma/adapter-pg (seen against Postgres 15): a code of
  // its own, and the driver's failure as a plain object under meta.driverAdapterError.
  const prismaError = (code: string, cause: Record<string, unknown>) =>
    Object.assign(new Error(`Invalid prisma invocation (${code})`), {
      name: 'PrismaClientKnownRequestError',
      code,
      meta: { driverAdapterError: Object.assign(new Error('DriverAdapterError'), { cause }) },
    });
  const conflict = prismaError('P2034', { kind: 'TransactionWriteConflict' });
  const killed = prismaError('P2010', {
    kind: 'postgres',
    code: '57P01',
    originalCode: '57P01',
    originalMessage: 'terminating connection due to administrator command',
  });
  const duplicate = prismaError('P2002', {
    kind: 'UniqueConstraintViolation',
    originalCode: '23505',
    originalMessage: 'duplicate key value violates unique constraint "issue_pkey"',
  });

  it('classify by the SQLSTATE or kind Prisma keeps from the driver', () => {
    expect(isTransientError(conflict)).toBe(true);
    expect(isConnectionLost(conflict)).toBe(false);
    expect(isTransientError(killed)).toBe(true);
    expect(isConnectionLost(killed)).toBe(true);
    expect(isTransientError(duplicate)).toBe(false);
    expect(isTransientError(prismaError('P1017', {}))).toBe(true);
    expect(isTransientError(Object.assign(new Error('expired'), { code: 'P2028' }))).toBe(true);
  });

  it("wrap with the driver's SQLSTATE and message, not Prisma's", () => {
    const wrapped = toDatabaseError(duplicate, 'INSERT INTO issue');
    expect(wrapped.sqlState).toBe('23505');
    expect(wrapped.driverMessage).toBe(
      'duplicate key value violates unique constraint "issue_pkey"',
    );
    expect(publicDatabaseReason(duplicate)).toBe(wrapped.driverMessage);
  });

  it("wrap a failed COMMIT's DriverAdapterError, whose cause is a plain object, with its message", () => {
    // What @prisma/adapter-pg throws when a deferred trigger raises as the transaction commits.
    const atCommit = Object.assign(new Error('lost'), {
      name: 'DriverAdapterError',
      cause: { kind: 'postgres', code: 'P0001', originalCode: 'P0001', message: 'lost' },
    });
    const wrapped = toDatabaseError(atCommit, 'BEGIN/COMMIT');
    expect(wrapped.sqlState).toBe('P0001');
    expect(wrapped.driverMessage).toBe('lost');
    expect(wrapped.message).toBe('lost (while running: BEGIN/COMMIT)');
  });
});

describe('PL/pgSQL SQLSTATEs', () => {
  it("are the driver's own, not Prisma codes: RAISE EXCEPTION keeps its message", () => {
    // With a cause of its own, as an app's wrapper may give it: the chain stops at P0001.
    const raised = Object.assign(new Error('not allowed'), {
      code: 'P0001',
      cause: new Error('detail'),
    });
    const wrapped = toDatabaseError(Object.assign(new Error('wrapper'), { cause: raised }));
    expect(wrapped.sqlState).toBe('P0001');
    expect(wrapped.driverMessage).toBe('not allowed');
    expect(isTransientError(raised)).toBe(false);
  });
});
