/**
 * @pgline/sql: effect/sql's `SqlClient` on pgline, a drop-in for @effect/sql-pg whose statements
 * are pipelined. `PgSql.layer(options)` provides `SqlClient` and pgline's `PgClient` over one pool;
 * `PgSqlMigrator` runs effect/sql's Migrator, with migrations as SQL scripts if you like.
 *
 * @example
 * ```ts
 * import { PgSql } from "@pgline/sql"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql/SqlClient"
 *
 * const program = Effect.gen(function* () {
 *   const sql = yield* SqlClient
 *   return yield* sql<{ n: number }>`select ${41}::int + 1 as n` // [{ n: 42 }]
 * }).pipe(Effect.provide(PgSql.layer("postgres://app@localhost/app")))
 * ```
 */
export * as PgSql from "./PgSql.ts"
export * as PgSqlMigrator from "./PgSqlMigrator.ts"
