/**
 * Converting what the engine reports for a statement (its outcome, and what its Sync reported)
 * into the Effect its caller sees, with the typed errors of the error channel.
 */
import type { ErrorFields } from "@pgline/codec"
import { ConnectionLost, fromErrorFields, type PgServerError, ProtocolFailure } from "@pgline/transport"
import { Effect } from "effect"
import {
  ParameterError,
  type PgClientError,
  PipelineAborted,
  ResultDecodeError,
  StatementRejected
} from "../PgClientError.ts"
import type { QueryResult } from "../QueryResult.ts"
import type { EncodeFailure, LostInfo, Outcome } from "./Connection.ts"

export const lost = (
  message: string,
  mayHaveRun: boolean,
  protocol?: string
): ConnectionLost | ProtocolFailure =>
  protocol === undefined
    ? new ConnectionLost({ message, mayHaveRun })
    : new ProtocolFailure({ message, mayHaveRun, reason: protocol })

/**
 * The failure of `outcomeToExit` when it is a ConnectionLost whose statement cannot have run (the
 * connection was lost before it left the client: such a statement may be sent again elsewhere);
 * undefined for any other outcome.
 */
export const lostUnsent = (
  outcome: Outcome | undefined,
  syncError: ErrorFields | undefined,
  lostInfo: LostInfo | undefined
): ConnectionLost | undefined => {
  if (outcome === undefined) {
    return syncError === undefined && lostInfo?.mayHaveRun === false && lostInfo.protocol === undefined
      ? new ConnectionLost({ message: lostInfo.message, mayHaveRun: false })
      : undefined
  }
  return outcome._tag === "Lost" && !outcome.mayHaveRun && outcome.protocol === undefined
    ? new ConnectionLost({ message: outcome.message, mayHaveRun: false })
    : undefined
}

/** Converts a statement's outcome (and what its Sync reported) into the Effect a caller sees. */
export const outcomeToExit = (
  outcome: Outcome | undefined,
  syncError: ErrorFields | undefined,
  lostInfo: LostInfo | undefined
): Effect.Effect<QueryResult<any>, PgServerError | PgClientError | PipelineAborted> => {
  if (outcome === undefined) {
    if (syncError !== undefined) return Effect.fail(fromErrorFields(syncError))
    return Effect.fail(
      lost(lostInfo?.message ?? "the connection closed", lostInfo?.mayHaveRun ?? true, lostInfo?.protocol)
    )
  }
  switch (outcome._tag) {
    case "Done":
      // The statement succeeded but its implicit transaction failed at Sync (deferred constraint).
      if (syncError !== undefined) return Effect.fail(fromErrorFields(syncError))
      if (lostInfo !== undefined) return Effect.fail(lost(lostInfo.message, true, lostInfo.protocol))
      return Effect.succeed(outcome.result)
    case "ServerError":
      return Effect.fail(fromErrorFields(outcome.fields))
    case "Aborted": {
      // A statement the client refused after queueing it has no SQLSTATE of its own.
      const refused = outcome.culprit.tag
      const failedTag = refused ?? fromErrorFields(outcome.culprit.fields)._tag
      return Effect.fail(
        new PipelineAborted({
          message: `skipped: statement ${outcome.culprit.index} of the segment failed with ${failedTag}`,
          index: outcome.culprit.index,
          failedTag,
          failedCode: refused === undefined ? outcome.culprit.fields.code : ""
        })
      )
    }
    case "Lost":
      return Effect.fail(lost(outcome.message, outcome.mayHaveRun, outcome.protocol))
    case "DecodeFailed":
      return Effect.fail(
        new ResultDecodeError({
          message: outcome.error.message,
          column: outcome.column,
          typeOid: outcome.error.oid
        })
      )
    case "Refused":
      return Effect.fail(encodeFailure(outcome.failure))
  }
}

export const encodeFailure = (failure: EncodeFailure): ParameterError | StatementRejected =>
  failure._tag === "Parameter"
    ? new ParameterError({ message: failure.message, index: failure.index })
    : new StatementRejected({ message: failure.message, reason: failure.reason ?? "InvalidText" })

/**
 * The Effect a caller's block returns, or a defect when the block throws instead of returning one
 * (so whatever was set up around it still ends, through the Effect's exit).
 */
export const blockEffect = <A, E, R>(block: () => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  try {
    return block()
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * A top-level transaction block asked for on a connection where another fiber's block is open (its
 * BEGIN maybe not answered yet): the two would share one server transaction, so it is refused.
 */
export const blockOpen = () =>
  new StatementRejected({
    reason: "TransactionControl",
    message:
      "a transaction block is already open on this connection whose BEGIN has not been answered (another fiber's withTransaction or pipelineTransaction, or this fiber's pipeline transaction before its sync): blocks on one connection run one at a time"
  })
