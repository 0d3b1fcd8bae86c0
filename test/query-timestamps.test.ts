import { runQuery } from '@reprise/server';
import { createBuilder, createSchema, formatTimestamp, type Query } from '@reprise/shared';
import { date, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';

// Timestamps reach the client whole whatever the session's DateStyle: the compiler reads
// them in JSON's form, ISO 8601 always, where `::text` follows DateStyle ('SQL' writes
// 02/01/2026, which no reader takes). Every value Postgres holds: microseconds, BC years,
// the infinities, and instants past the last Date (275760-09-13) up to its own last.

const event = pgTable('q_event', {
  id: text('id').primaryKey(),
  parentID: text('parent_id'),
  at: timestamp('at', { withTimezone: true }),
  local: timestamp('local'),
  day: date('day', { mode: 'date' }),
});
const schema = createSchema({
  tables: { event },
  relationships: ({ many }) => ({
    event: { children: many('event', { sourceField: 'id', destField: 'parentID' }) },
  }),
});
const q = createBuilder(schema);

const ROWS: [string, string | null, string, string, string][] = [
  ['e1', null, '2026-01-02 03:04:05.123456+00', '2026-01-02 03:04:05.000001', '2026-01-02'],
  ['e2', 'e1', '0044-03-15 12:00:00.5+00 BC', '4714-11-24 00:00:00 BC', '4714-11-24 BC'],
  ['e3', 'e1', 'infinity', '-infinity', 'infinity'],
  ['e4', 'e1', '294276-12-31 23:59:59.999999+00', '275760-09-13 00:00:00.001', '5874897-12-31'],
];
const EXPECTED = [
  ['e1', '2026-01-02T03:04:05.123456Z', '2026-01-02T03:04:05.000001Z', '2026-01-02T00:00:00.000Z'],
  [
    'e2',
    '0044-03-15T12:00:00.500Z BC',
    '4714-11-24T00:00:00.000Z BC',
    '4714-11-24T00:00:00.000Z BC',
  ],
  ['e3', 'infinity', '-infinity', 'infinity'],
  [
    'e4',
    '294276-12-31T23:59:59.999999Z',
    '275760-09-13T00:00:00.001Z',
    '5874897-12-31T00:00:00.000Z',
  ],
];

type Row = { id: string; at: Date; local: Date; day: Date; children?: Row[] };
const texts = (rows: Row[]) =>
  rows.map((row) => [row.id, ...[row.at, row.local, row.day].map(formatTimestamp)]);

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('pg-mem'))) {
  describe.skipIf(adapter.unavailable !== undefined)(`timestamps: ${adapter.name}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
      await fx.query(`CREATE TABLE q_event (id TEXT PRIMARY KEY, parent_id TEXT,
        at TIMESTAMPTZ, local TIMESTAMP, day DATE)`);
      for (const row of ROWS) {
        await fx.query(`INSERT INTO q_event VALUES ($1, $2, $3, $4, $5)`, row);
      }
    });
    afterAll(async () => {
      await fx?.close();
    });

    /** The query's rows in a transaction whose DateStyle is `style`. */
    const read = (query: Query<any, any, any, any>, style: string) =>
      fx.db.transaction(
        async (tx) => {
          await tx.query(`SET LOCAL DateStyle = '${style}'`);
          return (await runQuery(tx, schema, query)) as Row[];
        },
        { isolation: 'read committed' },
      );

    it.for(['ISO, MDY', 'SQL, DMY', 'Postgres, MDY', 'German'])(
      'reads every timestamp whole under DateStyle %s',
      async (style) => {
        expect(texts(await read(q.event, style))).toEqual(EXPECTED);
        const [root] = await read(q.event.where('id', 'e1').related('children'), style);
        expect(texts(root!.children!)).toEqual(EXPECTED.slice(1));
      },
    );

    it('compares and pages past the last Date to the microsecond', async () => {
      const [e4] = await read(q.event.where('id', 'e4'), 'ISO, MDY');
      const same = await read(q.event.where('at', e4!.at), 'German');
      expect(same.map((row) => row.id)).toEqual(['e4']);
      const later = await read(q.event.where('at', '>', new Date(8.64e15)), 'SQL, DMY');
      expect(later.map((row) => row.id)).toEqual(['e3', 'e4']);
      const after = await read(q.event.orderBy('at', 'desc').start(e4!), 'SQL, DMY');
      expect(after.map((row) => row.id)).toEqual(['e1', 'e2']);
    });
  });
}
