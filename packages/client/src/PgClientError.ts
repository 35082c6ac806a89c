/**
 * Client-side errors of @pgline/client, and the `PgClientError` union of every failure that does
 * not come from the server: connect, connection lost, protocol violation (re-exported from the
 * transport), a parameter that cannot be encoded, a result value that cannot be decoded, a
 * statement refused before it was sent. `PipelineAborted` is in Pipeline.ts's vocabulary but
 * lives here so every module can name it.
 */
import { ConnectionLost, PgConnectError, type PgServerError, ProtocolFailure } from "@pgline/transport"
import { Data, Schema } from "effect"
import type { QueryResult } from "./QueryResult.ts"

export { ConnectionLost, PgConnectError, ProtocolFailure }

/**
 * A parameter value could not be encoded for its type; nothing of the statement ran (one bound by
 * name before its statement's description is refused when the description arrives: the server is
 * made to refuse its Bind, so the rest of its segment fails too).
 */
export class ParameterError extends Schema.TaggedError<ParameterError>()("ParameterError", {
  message: Schema.String,
  /** 0-based index of the offending parameter. */
  index: Schema.Number
}) {}

/** A column value could not be decoded; the statement did run. */
export class ResultDecodeError extends Schema.TaggedError<ResultDecodeError>()("ResultDecodeError", {
  message: Schema.String,
  column: Schema.String,
  typeOid: Schema.Number
}) {}

/** The statement was refused before anything was sent (e.g. a NUL byte in its text, COPY in a pipeline). */
export class StatementRejected extends Schema.TaggedError<StatementRejected>()("StatementRejected", {
  message: Schema.String,
  reason: Schema.Literals([
    "InvalidText",
    "CopyInPipeline",
    "MultipleStatements",
    "PortalInPipeline",
    "PipelineClosed",
    "TransactionRolledBack",
    "PipelineOpen",
    "TransactionControl",
    "CopyInQuery",
    "TransactionEnded",
    "Released",
    "ParametersInScript",
    "NotCopy",
    "InvalidCopyData",
    "StreamOpen",
    /** A named prepared statement asked of the shared pool (it lives on one connection). */
    "SharedConnection",
    /** A named prepared statement used after its close. */
    "Closed",
    /**
     * Bound or described by name in a pipeline segment after the one preparing it, whose Parse
     * then failed or was skipped: the statement does not exist, so nothing ran.
     */
    "PrepareFailed"
  ])
}) {}

/**
 * The server skipped this pipelined statement because an earlier statement of the same segment
 * failed. `index` is that statement's position in the segment, `failedTag` its error class.
 */
export class PipelineAborted extends Schema.TaggedError<PipelineAborted>()("PipelineAborted", {
  message: Schema.String,
  index: Schema.Number,
  failedTag: Schema.String,
  failedCode: Schema.String
}) {}

/**
 * No connection became available within the pool's `acquireTimeout`: every connection was leased
 * (reserve, transactions, pipelines) or none could be opened. Nothing was sent.
 */
export class AcquireTimeout extends Schema.TaggedError<AcquireTimeout>()("AcquireTimeout", {
  message: Schema.String,
  /** The timeout that fired, in milliseconds. */
  timeout: Schema.Number,
  /** The pool's `max`. */
  max: Schema.Number
}) {}

/**
 * A statement of a script (`pg.script`) failed. `index` is its 0-based position among the
 * script's statements, `error` the server's typed error (match it with `error._tag`), `results`
 * what the statements before it returned. What the server rolled back follows its rules for a
 * multi-statement string: without transaction control in the script, nothing of it is kept.
 */
export class ScriptFailed extends Data.TaggedError("ScriptFailed")<{
  readonly message: string
  readonly index: number
  readonly error: PgServerError
  readonly results: ReadonlyArray<QueryResult>
}> {}

/**
 * Every failure that does not come from the server, as one union: match it with
 * `Effect.catchTag("ConnectionLost", …)` and the like. Server errors are `PgServerError`.
 *
 * @example
 * ```ts
 * const retried = pg.query("select 1").pipe(
 *   Effect.catchTag("ConnectionLost", (e) => (e.mayHaveRun ? Effect.fail(e) : pg.query("select 1")))
 * )
 * ```
 */
export type PgClientError =
  | PgConnectError
  | ConnectionLost
  | ProtocolFailure
  | ParameterError
  | ResultDecodeError
  | StatementRejected
  | AcquireTimeout
