import { PGlite } from '@electric-sql/pglite';
import { createSchema } from '@reprise/shared';
import { boolean, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStoredRow, encodeStoredRow, rowSQL } from './row-json';

// The capture triggers build a row's JSON text in SQL with rowSQL; pg-mem's engine-side
// recording builds it with encodeStoredRow. The columns stored as text go into one
// json_object call, booleans and timestamps into json_build_object calls of at most 40
// columns each, all joined into one object.

const extra = Object.fromEntries(
  Array.from({ length: 45 }, (_, i) => [`n${i}`, integer(`n_${i}`).notNull()]),
);
const wide = pgTable('wide', {
  id: text('id').primaryKey(),
  ...extra,
  done: boolean('done').notNull(),
  createdAt: timestamp('created_at', { precision: 6, withTimezone: true }).notNull(),
  note: text('note'),
});
const flags = pgTable('flags', {
  id: text('id').primaryKey(),
  ...Object.fromEntries(Array.from({ length: 42 }, (_, i) => [`f${i}`, boolean(`f_${i}`)])),
});
const schema = createSchema({ tables: { wide, flags } });
const info = schema.tableInfo.get('wide')!;
const columns = [...info.columns.values()];
const flagsInfo = schema.tableInfo.get('flags')!;
const flagColumns = [...flagsInfo.columns.values()];

describe('rowSQL', () => {
  let pglite: PGlite;
  beforeAll(async () => {
    pglite = new PGlite();
    const defs = columns.map(
      (c) =>
        `"${c.sqlName}" ${c.key === 'id' || c.key === 'note' ? 'TEXT' : c.key === 'done' ? 'BOOLEAN' : c.key === 'createdAt' ? 'TIMESTAMPTZ(6)' : 'INTEGER'}`,
    );
    await pglite.exec(`CREATE TABLE wide (${defs.join(', ')})`);
    const flagDefs = flagColumns.map(
      (c) => `"${c.sqlName}" ${c.key === 'id' ? 'TEXT' : 'BOOLEAN'}`,
    );
    await pglite.exec(`CREATE TABLE flags (${flagDefs.join(', ')})`);
  }, 60_000);
  afterAll(() => pglite.close());

  it('writes a row of text, boolean and timestamp columns as one object, as encodeStoredRow does', async () => {
    const row: Record<string, unknown> = {
      id: 'w "1"',
      done: true,
      createdAt: new Date('2026-12-04T10:11:12.345Z'),
      note: null,
    };
    for (let i = 0; i < 45; i++) row[`n${i}`] = i * 7 - 3;
    const names = columns.map((c) => `"${c.sqlName}"`).join(', ');
    const values = columns.map((_, i) => `$${i + 1}`).join(', ');
    await pglite.query(
      `INSERT INTO wide (${names}) VALUES (${values})`,
      columns.map((c) => row[c.key]),
    );
    const [stored] = (
      await pglite.query<{ row: string }>(`SELECT ${rowSQL('w', columns)} AS "row" FROM wide AS w`)
    ).rows;
    expect(rowSQL('w', columns)).toContain("left(substr(json_object(ARRAY['id'");
    // Both forms read back as the same row (a timestamp's offset is written +00:00 or Z).
    const read = decodeStoredRow(info, JSON.parse(stored!.row));
    expect(Object.keys(read)).toHaveLength(columns.length);
    expect(read).toEqual(decodeStoredRow(info, encodeStoredRow(columns, row)));
    expect(read).toMatchObject({ id: 'w "1"', n44: 305, done: true, note: null });
  });

  it('writes more booleans than one json_build_object call takes as one object', async () => {
    const row: Record<string, unknown> = { id: 'f1' };
    for (let i = 0; i < 42; i++) row[`f${i}`] = i % 3 === 0 ? null : i % 2 === 0;
    const names = flagColumns.map((c) => `"${c.sqlName}"`).join(', ');
    const values = flagColumns.map((_, i) => `$${i + 1}`).join(', ');
    await pglite.query(
      `INSERT INTO flags (${names}) VALUES (${values})`,
      flagColumns.map((c) => row[c.key]),
    );
    const sql = rowSQL('r', flagColumns);
    expect(sql.match(/json_build_object\(/g)).toHaveLength(2);
    const [stored] = (await pglite.query<{ row: string }>(`SELECT ${sql} AS "row" FROM flags AS r`))
      .rows;
    const parsed = JSON.parse(stored!.row) as Record<string, unknown>;
    expect(parsed).toMatchObject({ id: 'f1', f0: null, f1: false, f2: true, f41: false });
    expect(decodeStoredRow(flagsInfo, parsed)).toEqual(
      decodeStoredRow(flagsInfo, encodeStoredRow(flagColumns, row)),
    );
  });
});
