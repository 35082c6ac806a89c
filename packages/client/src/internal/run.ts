/**
 * Running statements on one connection outside any pipeline scope: a single statement, or a batch
 * that goes out as one segment (N statements, one Sync: one round trip, one implicit
 * transaction). Each call writes its frames and its Sync in the same tick, so calls from
 * concurrent fibers share round trips (implicit pipelining) without sharing their errors.
 *
 * Interrupting a call that is running sends a CancelRequest and waits until the server has
 * answered its Sync, so the connection is usable again afterwards. Which connection to use is the
 * caller's business (the pool, a reserved connection, a transaction); nothing here retries a
 * statement that may have run.
 */
import type { ErrorFields, TransactionStatus } from "@pgline/codec"
import type { ConnectionLost, PgServerError } from "@pgline/transport"
import { Effect } from "effect"
import { fromErrorFields } from "@pgline/transport"
import {
  type PgClientError,
  type PipelineAborted,
  ResultDecodeError,
  ScriptFailed,
  StatementRejected
} from "../PgClientError.ts"
import type { QueryResult } from "../QueryResult.ts"
import type { Connection, LostInfo, Outcome, Prepared } from "./Connection.ts"
import { encodeFailure, lost, lostUnsent, outcomeToExit } from "./outcome.ts"
import { type ScriptOutcome, ScriptStep } from "./simple.ts"

export type RunError = PgServerError | PgClientError

/**
 * A cached statement the server refused as out of date before it ran (Outcome's `stale`): safe to
 * prepare and send again. The same SQLSTATEs from the statement's execution never are (a function
 * it called may have done something a retry would do twice).
 */
const isStalePlan = (outcome: Outcome | undefined): boolean =>
  outcome?._tag === "ServerError" && outcome.stale === true

const pipelineOpen = () =>
  new StatementRejected({
    reason: "PipelineOpen",
    message:
      "this fiber's pipeline has statements in flight on the connection: run the statement in the pipeline, or after its sync"
  })

/** A statement of a batch: text with $n placeholders and its values. */
export interface Bound {
  readonly text: string
  readonly values: ReadonlyArray<unknown>
  /** Rows as arrays of values instead of objects. */
  readonly arrays?: boolean
  /** false: the unnamed statement, not cached (`query`'s `prepare` option); undefined: the layer's. */
  readonly prepare?: boolean | undefined
}

type SyncInfo = {
  readonly status: TransactionStatus | undefined
  readonly error: ErrorFields | undefined
  readonly lost: LostInfo | undefined
}

/**
 * Writes what `write` queues when the connection may take it (at once, unless another fiber's
 * pipeline holds it). `write` gets a fresh owner for its steps and `complete`, which its last step
 * must call once answered (or lost) before the caller resumes; it returns a refusal instead when
 * it wrote nothing. Returns the interruption handler: cancel what runs and wait for its end, or
 * stop waiting for the connection.
 */
const submit = (
  conn: Connection,
  fiber: object,
  write: (owner: object, complete: () => void) => RunError | undefined,
  fail: (error: RunError) => void,
  after: (() => void) | undefined
): Effect.Effect<void> | undefined => {
  if (conn.isHolder(fiber) && !conn.holderIdle) {
    // It would split the open segment, and waiting for our own pipeline would never end.
    fail(conn.exclusiveRefusal?.() ?? pipelineOpen())
    return undefined
  }
  let started = false
  let finished = false
  let onFinished: (() => void) | undefined
  // This call's steps, so an interruption cancels only while they are what the server runs.
  const owner = {}
  const complete = () => {
    finished = true
    onFinished?.()
    // The pool first: waiters get the connection before this caller, resumed after this, can
    // come straight back for it (without this, a classic pool served the same callers in a loop).
    after?.()
  }
  const start = () => {
    started = true
    if (conn.isClosed) {
      finished = true
      fail(lost(conn.closeMessage, false))
      return
    }
    const refused = write(owner, complete)
    if (refused !== undefined) {
      finished = true
      fail(refused)
    }
  }
  const own = conn.isHolder(fiber)
  // Waits only while another fiber's pipeline holds the connection; the owner of an idle pipeline
  // may run statements between its segments.
  let cancelWait: (() => void) | undefined
  if (own) start()
  else cancelWait = conn.acquire(false, fiber, start)
  // Interrupted: stop waiting for the connection, or have the running statement cancelled (bounded
  // by the connection's cancelGrace, after which the connection is closed) and wait for its end.
  return Effect.callback<void>((resume) => {
    if (!started) {
      cancelWait?.()
      return resume(Effect.void)
    }
    if (finished) return resume(Effect.void)
    const interrupt = conn.interrupt(owner)
    onFinished = () => {
      interrupt.done()
      resume(Effect.void)
    }
  })
}

/**
 * Queues `statements` and one Sync (see `submit`), and calls `done` with every outcome once the
 * Sync is answered. A batch is checked whole before its first frame is written.
 */
const submitStatements = (
  conn: Connection,
  fiber: object,
  statements: ReadonlyArray<Bound>,
  fail: (error: RunError) => void,
  done: (outcomes: Array<Outcome | undefined>, sync: SyncInfo) => void,
  after: (() => void) | undefined
): Effect.Effect<void> | undefined =>
  submit(
    conn,
    fiber,
    (owner, complete) => {
      // Everything is checked before the first frame is written: the batch goes out whole or not at all.
      if (statements.length > 1) {
        for (const s of statements) {
          const failure = conn.validate(s.text, s.values)
          if (failure !== undefined) return encodeFailure(failure)
        }
      }
      const outcomes: Array<Outcome | undefined> = new Array(statements.length)
      for (let i = 0; i < statements.length; i++) {
        const failure = conn.queueStatement(
          statements[i]!.text,
          statements[i]!.values,
          {
            settle: (o) => {
              outcomes[i] = o
            },
            arrays: statements[i]!.arrays === true,
            prepare: statements[i]!.prepare
          },
          owner
        )
        // Only a lone statement gets here (a batch was validated): nothing of it was written.
        if (failure !== undefined) return encodeFailure(failure)
      }
      conn.queueSync((status, error, lostInfo) => {
        complete()
        done(outcomes, { status, error, lost: lostInfo })
      }, owner)
      return undefined
    },
    fail,
    after
  )

/** One statement with its own Sync. */
export const runStatement = (
  conn: Connection,
  text: string,
  values: ReadonlyArray<unknown>,
  after?: () => void,
  retried = false,
  arrays = false,
  prepare?: boolean
): Effect.Effect<QueryResult<any>, RunError> =>
  Effect.withFiber((fiber) =>
    runStatementOf(fiber, conn, text, values, after, retried, arrays, prepare, undefined)
  )

/**
 * `runStatement` for a caller that has its fiber at hand. `unsent`, when given, is asked first
 * when the connection was lost before the statement left the client (so it cannot have run), with
 * that ConnectionLost: the Effect it returns (another connection's attempt) takes the failure's
 * place; undefined lets the failure through.
 */
export const runStatementOf = (
  fiber: object,
  conn: Connection,
  text: string,
  values: ReadonlyArray<unknown>,
  after: (() => void) | undefined,
  retried: boolean,
  arrays: boolean,
  prepare: boolean | undefined,
  unsent: ((error: ConnectionLost) => Effect.Effect<QueryResult<any>, RunError> | undefined) | undefined
): Effect.Effect<QueryResult<any>, RunError> =>
  Effect.callback<QueryResult<any>, RunError>((resume) => {
    const wasIdle = conn.transactionStatus === "I"
    return submitStatements(
      conn,
      fiber,
      [{ text, values, arrays, prepare }],
      (error) => {
        const instead =
          unsent !== undefined && error._tag === "ConnectionLost" && !error.mayHaveRun
            ? unsent(error)
            : undefined
        resume(instead ?? Effect.fail(error))
      },
      ([outcome], sync) => {
        // A cached statement gone stale (DDL, DEALLOCATE) works again only when prepared afresh;
        // safe to redo outside a transaction block, where nothing else was affected.
        if (!retried && wasIdle && isStalePlan(outcome)) {
          conn.forgetText(text)
          resume(runStatementOf(fiber, conn, text, values, after, true, arrays, prepare, unsent))
          return
        }
        const loss = unsent === undefined ? undefined : lostUnsent(outcome, sync.error, sync.lost)
        const instead = loss === undefined ? undefined : unsent!(loss)
        // A lone statement is never skipped (it is the whole segment), so Aborted cannot occur.
        resume(
          instead ??
            (outcomeToExit(outcome, sync.error, sync.lost) as Effect.Effect<QueryResult<any>, RunError>)
        )
      },
      retried ? undefined : after
    )
  })

/**
 * Statements in one segment: one round trip, one implicit transaction (the server rolls all of
 * them back when one fails). Fails with the first failure in order, which is the statement that
 * failed (the ones after it are skipped and report PipelineAborted).
 */
export const runSegment = (
  conn: Connection,
  statements: ReadonlyArray<Bound>,
  after?: () => void
): Effect.Effect<Array<QueryResult<any>>, RunError | PipelineAborted> =>
  Effect.withFiber((fiber) =>
    Effect.callback<Array<QueryResult<any>>, RunError | PipelineAborted>((resume) =>
      submitStatements(
        conn,
        fiber,
        statements,
        (error) => resume(Effect.fail(error)),
        (outcomes, sync) => {
          const results: Array<QueryResult<any>> = []
          for (const outcome of outcomes) {
            const exit = outcomeToExit(outcome, sync.error, sync.lost)
            if (outcome?._tag !== "Done" || sync.error !== undefined || sync.lost !== undefined) {
              resume(exit as Effect.Effect<never, RunError | PipelineAborted>)
              return
            }
            results.push(outcome.result)
          }
          resume(Effect.succeed(results))
        },
        after
      )
    )
  )

/** Queues a Sync and waits for its ReadyForQuery: everything sent before it has been answered. */
export const settle = (conn: Connection): Effect.Effect<TransactionStatus | undefined> =>
  Effect.callback<TransactionStatus | undefined>((resume) => {
    if (conn.isClosed) return resume(Effect.succeed(undefined))
    conn.queueSync((status) => resume(Effect.succeed(status)))
  })

/**
 * A script: the text as one simple-query message (several statements, no parameters), one
 * QueryResult per statement. Fails with ScriptFailed naming the statement that failed.
 */
export const runScript = (
  conn: Connection,
  text: string,
  after?: () => void
): Effect.Effect<Array<QueryResult<any>>, RunError | ScriptFailed> =>
  Effect.withFiber((fiber) =>
    Effect.callback<Array<QueryResult<any>>, RunError | ScriptFailed>((resume) =>
      submit(
        conn,
        fiber,
        (owner, complete) => {
          const step = new ScriptStep(conn, (outcome) => {
            complete()
            resume(scriptExit(conn, outcome))
          })
          step.owner = owner
          const failure = conn.queueQuery(text, step)
          if (failure !== undefined) return encodeFailure(failure)
          return undefined
        },
        (error) => resume(Effect.fail(error)),
        after
      )
    )
  )

const scriptExit = (
  conn: Connection,
  outcome: ScriptOutcome
): Effect.Effect<Array<QueryResult<any>>, RunError | ScriptFailed> => {
  if (outcome.copy)
    return Effect.fail(
      new StatementRejected({
        reason: "CopyInQuery",
        message:
          "the script holds COPY FROM STDIN or TO STDOUT, which a script cannot carry (the statements before it ran): use pg.copyFrom / pg.copyTo"
      })
    )
  if (outcome.error !== undefined) {
    const error = fromErrorFields(outcome.error)
    return Effect.fail(
      new ScriptFailed({
        message: `statement ${outcome.errorIndex} of the script failed: ${error._tag}: ${error.message}`,
        index: outcome.errorIndex,
        error,
        results: outcome.results
      })
    )
  }
  if (outcome.lost !== undefined)
    return Effect.fail(lost(outcome.lost.message, outcome.lost.mayHaveRun, conn.protocolFailureReason))
  if (outcome.decodeFailure !== undefined)
    return Effect.fail(
      new ResultDecodeError({
        message: `statement ${outcome.decodeFailure.index} of the script: ${outcome.decodeFailure.error.message}`,
        column: outcome.decodeFailure.column,
        typeOid: outcome.decodeFailure.error.oid
      })
    )
  return Effect.succeed(outcome.results as Array<QueryResult<any>>)
}

/**
 * One step written by `write` (given its sink and owner) and a Sync, as one call: the named
 * statement operations of pg.prepare (Parse + Describe, Describe, Close, Bind + Execute by name).
 */
const runOne = (
  conn: Connection,
  write: (sink: { settle: (o: Outcome) => void }, owner: object) => RunError | undefined
): Effect.Effect<QueryResult<any>, RunError> =>
  Effect.withFiber((fiber) =>
    Effect.callback<QueryResult<any>, RunError>((resume) =>
      submit(
        conn,
        fiber,
        (owner, complete) => {
          let outcome: Outcome | undefined
          const refused = write({ settle: (o) => (outcome = o) }, owner)
          if (refused !== undefined) return refused
          conn.queueSync((_status, error, lostInfo) => {
            complete()
            resume(outcomeToExit(outcome, error, lostInfo) as Effect.Effect<QueryResult<any>, RunError>)
          }, owner)
          return undefined
        },
        (error) => resume(Effect.fail(error)),
        undefined
      )
    )
  )

/** Parse under `name` + Describe + Sync: the prepared statement's record once the server has it. */
export const runPrepare = (
  conn: Connection,
  name: string,
  text: string
): Effect.Effect<Prepared, RunError> => {
  let prepared: Prepared | undefined
  return Effect.map(
    runOne(conn, (sink, owner) => {
      const queued = conn.queueParse(name, text, sink, owner)
      if ("failure" in queued) return encodeFailure(queued.failure)
      prepared = queued.prepared
      return undefined
    }),
    () => prepared!
  )
}

/** Describe of a named statement + Sync (its record updated with what the server says now). */
export const runDescribeNamed = (conn: Connection, prepared: Prepared): Effect.Effect<Prepared, RunError> =>
  Effect.as(
    runOne(conn, (sink, owner) => {
      conn.queueDescribeNamed(prepared, sink, owner)
      return undefined
    }),
    prepared
  )

/** Close of a named statement + Sync. */
export const runCloseNamed = (conn: Connection, name: string): Effect.Effect<void, RunError> =>
  Effect.asVoid(
    runOne(conn, (sink, owner) => {
      conn.queueCloseNamed(name, sink, owner)
      return undefined
    })
  )

/** Bind + Execute of a named statement with `values` + Sync. */
export const runNamed = (
  conn: Connection,
  prepared: Prepared,
  values: ReadonlyArray<unknown>
): Effect.Effect<QueryResult<any>, RunError> =>
  runOne(conn, (sink, owner) => {
    const failure = conn.queueStatement(prepared.text, values, sink, owner, 0, prepared)
    return failure === undefined ? undefined : encodeFailure(failure)
  })

/** Describe of a portal + Sync: its result fields (a cursor declared in the session). */
export const runDescribePortal = (
  conn: Connection,
  name: string
): Effect.Effect<QueryResult<any>, RunError> =>
  runOne(conn, (sink, owner) => {
    const failure = conn.queueDescribePortal(name, sink, owner)
    return failure === undefined ? undefined : encodeFailure(failure)
  })
