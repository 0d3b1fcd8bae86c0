// kysely.mjs
import { createKyselyDatabase } from '@reprise/server/kysely';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
// Mutators get Kysely's own Transaction: tx.dbTransaction.wrappedTransaction.selectFrom(...)
export const db = createKyselyDatabase(kysely, { pool });
export const end = () => pool.end();
