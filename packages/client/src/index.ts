/**
 * @pgline/client: the public API. `PgClient` (a Layer holding a pool of connections), statements with the `sql`
 * template, pipelines, and every error as a tagged class (server SQLSTATE classes re-exported from
 * @pgline/transport).
 */
export * from "./PgClient.ts"
export * from "./PgClientError.ts"
// Pipelines are opened through PgClient (pg.pipeline, withPipeline, …); only their types are public.
export type {
  Handle,
  HandleError,
  Pipeline,
  Pipeline as PipelineApi,
  PipelineOptions,
  Results
} from "./Pipeline.ts"
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
