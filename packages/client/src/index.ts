/**
 * @pgline/client: the public API. `PgClient` (a Layer holding a pool of connections), statements with the `sql`
 * template, pipelines, `decodeRows`, and the client's errors as tagged classes. The server's errors
 * are one class per SQLSTATE; the `PgServerError` union, `isPgServerError`, `isClass` and
 * `SqlStateClass` are here, the classes themselves in the `@pgline/client/errors` entry point.
 *
 * @example
 * ```ts
 * import { PgClient } from "@pgline/client"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const pg = yield* PgClient
 *   const { rows } = yield* pg.sql<{ n: number }>`select ${41}::int + 1 as n`
 *   return rows[0]!.n // 42
 * }).pipe(Effect.provide(PgClient.layer("postgres://app@localhost/app")))
 * ```
 */
export * from "./PgClient.ts"
export * from "./PgClientError.ts"
// Pipelines are opened through PgClient (pg.pipeline, withPipeline, …); only their types are public.
export type { Handle, HandleError, Pipeline, PipelineOptions, Results } from "./Pipeline.ts"
export type { PreparedStatement, PrepareOptions } from "./PreparedStatement.ts"
export type { FieldInfo, QueryResult } from "./QueryResult.ts"
export { Fragment, Statement, type SqlTag } from "./Statement.ts"
export {
  isClass,
  isPgServerError,
  PgConfig,
  type PgServerError,
  SqlStateClass
} from "@pgline/transport"
export { decodeRows, RowSchemaError } from "./decodeRows.ts"
