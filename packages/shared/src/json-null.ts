// A json or jsonb column can hold SQL NULL or the JSON value `null`, and Postgres tells them
// apart (`IS NULL` matches only SQL NULL). In a row, SQL NULL is `null`, as in every other
// column; the JSON `null` is `JSON_NULL`, so the client can tell them apart too.

/** The class of `JSON_NULL`; there is no other instance. */
class JSONNull {
  /** `JSON.stringify` writes it as `null`, so writing it stores the JSON value null. */
  toJSON(): null {
    return null;
  }

  toString(): string {
    return 'null';
  }
}

/**
 * The JSON value `null` in a json or jsonb column, as distinct from SQL NULL (`null`).
 * Rows read from the database hold it; write it to store a JSON null. `IS NULL` does not
 * match it, on either side.
 *
 * @example
 * await tx.mutate.doc.update({id, body: JSON_NULL}); // body = 'null'::jsonb
 * row.body === JSON_NULL; // the column holds JSON null, not SQL NULL
 */
export const JSON_NULL: unknown = Object.freeze(new JSONNull());

/**
 * True for `JSON_NULL`.
 *
 * @example
 * isJSONNull(JSON_NULL); // true
 * isJSONNull(null); // false: that is SQL NULL
 */
export function isJSONNull(value: unknown): boolean {
  return value === JSON_NULL;
}
