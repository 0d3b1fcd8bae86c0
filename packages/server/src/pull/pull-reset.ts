import type { AnySchema, ColumnInfo, PatchOperation, TableInfo } from '@reprise/shared';
import { canSee, PUBLIC_SCOPE, scopesOf, type Visibility } from '../changes/visibility';
import { type DatabaseTransaction, quoteIdent } from '../db/database';
import { isTextType, outputExpr, tableSQL } from '../query/query-sql';
import { decodeRows } from '../query/row-decoder';

// Scope columns of these kinds compare in SQL by their text form, which is what
// `scopesOf` makes of their values; other kinds are filtered in JavaScript only.
const SQL_FILTERABLE = new Set<ColumnInfo['kind']>(['string', 'number', 'bigint', 'boolean']);

/**
 * A put for every row of every table in `visibility` that a user holding `granted` may
 * see, read in `tx` (so in the same snapshot as the cookie) and decoded to the in-memory
 * types `tx.mutate` records. A scope column narrows the read in SQL; a function rule reads
 * the whole table and filters here.
 */
export async function readVisibleRows(
  tx: DatabaseTransaction,
  schema: AnySchema,
  visibility: Visibility,
  granted: ReadonlySet<string>,
  partialSQL: boolean,
): Promise<PatchOperation[]> {
  const patch: PatchOperation[] = [];
  for (const [name, rule] of Object.entries(visibility as Record<string, unknown>)) {
    if (rule === undefined) continue;
    const table = schema.tableInfo.get(name);
    if (!table) throw new TypeError(`visibility names "${name}", which the schema does not have`);
    const column = typeof rule === 'string' ? table.columns.get(rule) : undefined;
    const { text, params } = selectRows(table, column, granted, partialSQL);
    const rows = decodeRows(schema, { table: name }, await tx.query(text, params));
    for (const row of rows) {
      // Also after an SQL filter: the rule in JavaScript is the one the changelog applied.
      if (canSee(scopesOf(visibility, name, row), granted)) {
        patch.push({ op: 'put', tableName: name, value: row });
      }
    }
  }
  return patch;
}

function selectRows(
  table: TableInfo,
  scopeColumn: ColumnInfo | undefined,
  granted: ReadonlySet<string>,
  partialSQL: boolean,
): { text: string; params: string[] } {
  const alias = table.sqlName;
  const columns = [...table.columns.values()]
    .map((c) => `${outputExpr(alias, c, partialSQL, false)} AS ${quoteIdent(c.key)}`)
    .join(', ');
  const order = table.primaryKey
    .map((key) => `${quoteIdent(alias)}.${quoteIdent(table.columns.get(key)!.sqlName)}`)
    .join(', ');
  let where = '';
  const params: string[] = [];
  if (scopeColumn && SQL_FILTERABLE.has(scopeColumn.kind)) {
    params.push(...new Set([...granted, PUBLIC_SCOPE]));
    const ref = `${quoteIdent(alias)}.${quoteIdent(scopeColumn.sqlName)}`;
    const value = isTextType(scopeColumn) ? ref : `${ref}::text`;
    where = ` WHERE ${value} IN (${params.map((_, i) => `$${i + 1}`).join(', ')})`;
  }
  return { text: `SELECT ${columns} FROM ${tableSQL(table)}${where} ORDER BY ${order}`, params };
}
