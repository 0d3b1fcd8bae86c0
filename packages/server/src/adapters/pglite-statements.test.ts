import { PGlite } from '@electric-sql/pglite';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { emptyPGlite } from '../../../../test/fixtures/templates';
import { isTransientError, toDatabaseError } from '../db/database';
import { preparedRunner } from './pglite-statements';

describe('PGlite prepared statements', () => {
  let pglite: PGlite;
  // Each test starts from a copy of one data directory (initdb runs once per run).
  let template: Blob;
  beforeAll(async () => {
    const built = await emptyPGlite();
    await built.exec(`CREATE TABLE t (
      id TEXT PRIMARY KEY, n BIGINT, f DOUBLE PRECISION, b BOOLEAN, j JSONB, a TEXT[],
      d TIMESTAMPTZ, bytes BYTEA)`);
    template = await built.dumpDataDir('none');
    await built.close();
  });
  beforeEach(async () => {
    pglite = new PGlite({ loadDataDir: template });
    // The runner speaks the wire protocol, which does not wait for the start as query does.
    await pglite.waitReady;
  });
  afterEach(() => pglite.close());

  it('writes and reads every kind of parameter as PGlite query does', async () => {
    const run = preparedRunner(pglite);
    const insert = 'INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *';
    const row = (id: string) => [
      id,
      12345678901n,
      1.5,
      true,
      { x: [1, 'two'] },
      ['a', 'b,c', null],
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      new Uint8Array([0, 1, 255]),
    ];
    const viaRunner = await run(insert, row('runner'));
    const viaQuery = (await pglite.query<Record<string, unknown>>(insert, row('query'))).rows;
    expect(viaRunner).toEqual([{ ...viaQuery[0], id: 'runner' }]);
    expect(await run('SELECT id FROM t WHERE j = $1 ORDER BY id', [{ x: [1, 'two'] }])).toEqual([
      { id: 'query' },
      { id: 'runner' },
    ]);
  });

  it('runs each statement text prepared once, under one name per PGlite instance', async () => {
    await preparedRunner(pglite)('SELECT $1::int AS v', [1]);
    await preparedRunner(pglite)('SELECT $1::int AS v', [2]);
    const { rows } = await pglite.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = 'SELECT $1::int AS v'`,
    );
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('closes the least recently used statements past its capacity', async () => {
    const run = preparedRunner(pglite);
    await run('SELECT 0 AS v', []);
    for (let i = 1; i <= 300; i++) await run(`SELECT ${i} AS v`, []);
    expect(await run('SELECT 0 AS v', [])).toEqual([{ v: 0 }]);
    const { rows } = await pglite.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_prepared_statements',
    );
    expect(rows[0]!.n).toBeLessThanOrEqual(257);
  });

  it('fails once and then prepares afresh when a table changes under a cached plan', async () => {
    const run = preparedRunner(pglite);
    await run('INSERT INTO t (id) VALUES ($1)', ['x']);
    expect(await run('SELECT * FROM t WHERE id = $1', ['x'])).toHaveLength(1);
    await pglite.exec('ALTER TABLE t ADD COLUMN extra TEXT');
    const stale = await run('SELECT * FROM t WHERE id = $1', ['x']).catch((e: unknown) => e);
    expect(String(stale)).toMatch(/cached plan must not change result type/);
    // Transient, so the engine runs the push's transaction again rather than failing it.
    expect(isTransientError(toDatabaseError(stale))).toBe(true);
    expect(await run('SELECT * FROM t WHERE id = $1', ['x'])).toEqual([
      expect.objectContaining({ id: 'x', extra: null }),
    ]);
  });

  it('prepares again a statement deallocated behind its back', async () => {
    const run = preparedRunner(pglite);
    expect(await run('SELECT $1::text AS v', ['a'])).toEqual([{ v: 'a' }]);
    await pglite.exec('DEALLOCATE ALL');
    const gone = await run('SELECT $1::text AS v', ['b']).catch((e: unknown) => e);
    expect(String(gone)).toMatch(/does not exist/);
    expect(isTransientError(toDatabaseError(gone))).toBe(true);
    expect(await run('SELECT $1::text AS v', ['c'])).toEqual([{ v: 'c' }]);
  });

  it('reports a statement that does not parse, and leaves nothing behind', async () => {
    const run = preparedRunner(pglite);
    await expect(run('SELEC 1', [])).rejects.toThrow(/syntax error/);
    expect(await run('SELECT 1 AS v', [])).toEqual([{ v: 1 }]);
  });
});
