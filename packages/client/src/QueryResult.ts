/**
 * What a statement returns: decoded rows, the command tag's verb, the row count and the column
 * descriptions. Rows are plain objects keyed by column name (a later column of the same name
 * wins, as in SQL's own `select *` over a join; use aliases to keep both).
 */
/** One column of a result, as the server described it (RowDescription). */
export interface FieldInfo {
  readonly name: string
  /** OID of the table the column comes from, 0 for computed columns. */
  readonly tableOid: number
  /** Attribute number within that table, 0 for computed columns. */
  readonly columnAttr: number
  readonly typeOid: number
  readonly typeSize: number
  readonly typeModifier: number
  /** 0 text, 1 binary: how the value crossed the wire. */
  readonly format: 0 | 1
}

/**
 * The result of one statement. `Row` is what the caller asserted (`pg.query<Row>`, `pg.sql<Row>`);
 * nothing checks it at run time unless you pipe the statement through `decodeRows`.
 *
 * @example
 * ```ts
 * const result = yield* pg.query<{ id: number }>("update users set seen = now() where id = $1 returning id", [7])
 * result.command // "UPDATE"
 * result.rowCount // 1
 * result.rows[0]?.id // 7
 * ```
 */
export interface QueryResult<Row = Record<string, unknown>> {
  readonly rows: ReadonlyArray<Row>
  /** The command tag's verb: "SELECT", "INSERT", "UPDATE", "BEGIN", "COMMIT", "ROLLBACK", … ("" for an empty query). */
  readonly command: string
  /** Rows returned, or affected (INSERT/UPDATE/DELETE/MERGE/COPY/…); 0 for commands without a count. */
  readonly rowCount: number
  readonly fields: ReadonlyArray<FieldInfo>
  /** The full command tag as the server sent it (e.g. "INSERT 0 1"). */
  readonly tag: string
}
