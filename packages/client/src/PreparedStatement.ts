/**
 * Prepared statements as values (`pg.prepare`): a statement the server parsed under a name on one
 * connection, with its description (parameter types, result fields), executable by name with
 * parameters until it is closed, from the connection's statements or inside a pipeline on it. What
 * libpq's PQprepare / PQdescribePrepared / PQsendQueryPrepared and psql's \parse, \bind_named and
 * \close_prepared do.
 *
 * pgline already prepares and caches every statement text on each connection by itself; a named
 * statement is for what needs the name (psql scripts, SQL-level EXECUTE of a statement prepared by
 * the protocol, a description before the first execution). It does not outlive its connection's
 * lease: the pool closes the named statements of a connection before another lease gets it.
 */
import type { PgServerError } from "@pgline/transport"
import type { Effect } from "effect"
import type { PgClientError } from "./PgClientError.ts"
import type { FieldInfo, QueryResult } from "./QueryResult.ts"

/** Options of `prepare`: the statement's name on the server (a fresh `pgline_named_N` otherwise). */
export interface PrepareOptions {
  readonly name?: string
}

/**
 * A statement prepared under a name on one connection, as the server described it when prepared
 * (or when `describe` last ran).
 *
 * @example
 * ```ts
 * const stmt = yield* conn.prepare("insert into t (id, name) values ($1, $2) returning id", { name: "ins" })
 * stmt.parameterTypes // [23, 25]: int4, text
 * yield* stmt.execute([1, "a"])
 * yield* stmt.close
 * ```
 */
export interface PreparedStatement {
  /** The name the server knows it by. */
  readonly name: string
  readonly text: string
  /** The parameters' type OIDs, as the server inferred or was told them. */
  readonly parameterTypes: ReadonlyArray<number>
  /** The result's columns ([] when the statement returns no rows). */
  readonly fields: ReadonlyArray<FieldInfo>
  /**
   * Bind + Execute by name with `params`, one round trip. Fails with StatementRejected `Closed`
   * once the statement was closed, `Released` after its connection's lease ended.
   */
  readonly execute: <Row = Record<string, unknown>>(
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<QueryResult<Row>, PgServerError | PgClientError>
  /** Describe it again (after DDL its result may differ): a fresh PreparedStatement. */
  readonly describe: Effect.Effect<PreparedStatement, PgServerError | PgClientError>
  /** Close it on the server; the name is free again. */
  readonly close: Effect.Effect<void, PgServerError | PgClientError>
}
