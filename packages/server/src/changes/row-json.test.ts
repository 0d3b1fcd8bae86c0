import { PGlite } from '@electric-sql/pglite';
import { createSchema } from '@reprise/shared';
import { boolean, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStoredRow, encodeStoredRow, rowSQL } from './row-json';

// The capture triggers build a row's JSON text in SQL with rowSQL; pg-mem's engine-side
// recording builds it with encodeStoredRow. A table wider than one json_build_object call
// (40 columns) is built from several calls joined into one object.

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
const schema = createSchema({ tables: { wide } });
const info = schema.tableInfo.get('wide')!;
const columns = [...info.columns.values()];

describe('rowSQL', () => {
  let pglite: PGlite;
  beforeAll(async () => {
    pglite = new PGlite();
    const defs = columns.map(
      (c) =>
        `"${c.sqlName}" ${c.key === 'id' || c.key === 'note' ? 'TEXT' : c.key === 'done' ? 'BOOLEAN' : c.key === 'createdAt' ? 'TIMESTAMPTZ(6)' : 'INTEGER'}`,
    );
    await pglite.exec(`CREATE TABLE wide (${defs.join(', ')})`);
  }, 60_000);
  afterAll(() => pglite.close());

  it('writes a row wider than one json_build_object call as one object, as encodeStoredRow does', async () => {
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
    expect(rowSQL('w', columns)).toContain("left(substr(json_build_object('id'");
    // Both forms read back as the same row (a timestamp's offset is written +00:00 or Z).
    const read = decodeStoredRow(info, JSON.parse(stored!.row));
    expect(Object.keys(read)).toHaveLength(columns.length);
    expect(read).toEqual(decodeStoredRow(info, encodeStoredRow(columns, row)));
    expect(read).toMatchObject({ id: 'w "1"', n44: 305, done: true, note: null });
  });
});
