/**
 * @pgline/client: the public API. `PgClient` (a Layer per connection), statements with the `sql`
 * template, pipelines, and every error as a tagged class (server SQLSTATE classes re-exported from
 * @pgline/transport).
 */
export * from "./PgClient.ts"
export * from "./PgClientError.ts"
export * as Pipeline from "./Pipeline.ts"
export type { Handle, Pipeline as PipelineApi, PipelineOptions } from "./Pipeline.ts"
export type { FieldInfo, QueryResult } from "./QueryResult.ts"
export { Fragment, Statement, type SqlTag } from "./Statement.ts"
export {
  AuthenticationError,
  fromErrorFields,
  isClass,
  isPgServerError,
  PgConfig,
  type PgServerError,
  SqlStateClass
} from "@pgline/transport"
export * from "@pgline/transport/errors"
export { decodeRows, RowSchemaError } from "./decodeRows.ts"
