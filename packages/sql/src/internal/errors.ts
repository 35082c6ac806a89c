/**
 * pgline's typed failures as effect/sql's `SqlError`: the reason effect/sql code matches on
 * (UniqueViolation with its constraint, ConstraintError, SqlSyntaxError, …) chosen from the
 * SQLSTATE, and pgline's error kept whole as the reason's `cause`, so a caller can match either
 * the portable reason or the exact class (`UndefinedTable`, `PipelineAborted`, `ConnectionLost`
 * with `mayHaveRun`, …). It does not retry or log.
 */
import { isPgServerError, type PgServerError } from "@pgline/client"
import {
  AuthenticationError,
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  DeadlockError,
  LockTimeoutError,
  SerializationError,
  SqlError,
  type SqlErrorReason,
  SqlSyntaxError,
  StatementTimeoutError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"

interface Props {
  readonly cause: unknown
  readonly message: string
  readonly operation: string
}

/** The effect/sql reason for a server error, by SQLSTATE (class first, then the exact codes). */
const serverReason = (error: PgServerError, props: Props): SqlErrorReason => {
  const code = error.code
  switch (code) {
    case "23505": {
      const constraint = (error as { constraint?: string }).constraint
      return new UniqueViolation({ ...props, constraint: constraint?.trim() ? constraint : "unknown" })
    }
    case "42501":
      return new AuthorizationError(props)
    case "40P01":
      return new DeadlockError(props)
    case "40001":
      return new SerializationError(props)
    case "55P03":
      return new LockTimeoutError(props)
    case "57014":
      // query_canceled: statement_timeout, or a cancel request.
      return new StatementTimeoutError(props)
    // The server is going away (admin_shutdown, crash_shutdown, cannot_connect_now): the
    // statement's connection is gone, a retry on a new one may succeed.
    case "57P01":
    case "57P02":
    case "57P03":
      return new ConnectionError(props)
  }
  switch (code.slice(0, 2)) {
    case "08":
      return new ConnectionError(props)
    case "28":
      return new AuthenticationError(props)
    case "42":
      return new SqlSyntaxError(props)
    case "23":
      return new ConstraintError(props)
  }
  return new UnknownError(props)
}

/** The effect/sql reason for one of pgline's failures (server or client side). */
export const reasonOf = (error: unknown, operation: string): SqlErrorReason => {
  const message =
    typeof error === "object" &&
    error !== null &&
    typeof (error as { message?: unknown }).message === "string"
      ? (error as { message: string }).message
      : String(error)
  const props: Props = { cause: error, message, operation }
  if (isPgServerError(error)) return serverReason(error, props)
  const tag = (error as { _tag?: string } | null)?._tag
  switch (tag) {
    case "PgConnectError":
      return (error as { reason?: string }).reason === "Authentication"
        ? new AuthenticationError(props)
        : new ConnectionError(props)
    case "ConnectionLost":
    case "AcquireTimeout":
    case "ProtocolFailure":
      return new ConnectionError(props)
    case "ScriptFailed": {
      // The reason of the statement that failed; the cause stays the ScriptFailed (index, results).
      const inner = (error as { error: unknown }).error
      return isPgServerError(inner) ? serverReason(inner, props) : new UnknownError(props)
    }
    case "PipelineAborted":
    case "ParameterError":
    case "ResultDecodeError":
    case "StatementRejected":
      return new UnknownError(props)
  }
  return new UnknownError(props)
}

/** pgline's failure as a SqlError; a SqlError passes through unchanged. */
export const toSqlError = (error: unknown, operation: string): SqlError =>
  error instanceof SqlError ? error : new SqlError({ reason: reasonOf(error, operation) })
