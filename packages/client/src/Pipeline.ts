/**
 * Pipeline: many statements written before one Sync, results read back in order, so a batch costs
 * one round trip. A pipeline is a scoped resource: `execute` queues a statement and returns a
 * handle at once; `sync` places a sync point and waits for it; `flush` asks the server to send
 * what it has; closing the scope syncs and drains (also on interruption: then a CancelRequest goes
 * first), so the connection is clean afterwards.
 *
 * The server's semantics are the specification: statements between two Syncs form one implicit
 * transaction; after an error the server skips the rest of the segment, and each skipped
 * statement's handle fails with PipelineAborted naming the one that failed. COPY, several
 * statements in one text and anything needing an open portal are refused at queue time.
 */
import type { ErrorFields, TransactionStatus } from "@pgline/codec"
import { fromErrorFields, type PgServerError } from "@pgline/transport"
import { Context, Effect, Effectable, Exit, Option, type Scope, type Tracer } from "effect"
import type { Connection, Outcome, OutcomeSink } from "./internal/Connection.ts"
import { firstKeyword, statementsOf } from "./internal/sqlText.ts"
import { encodeFailure, outcomeToExit } from "./internal/outcome.ts"
import {
  ConnectionLost,
  type PgClientError,
  type PipelineAborted,
  StatementRejected
} from "./PgClientError.ts"
import type { QueryResult } from "./QueryResult.ts"
import type { Statement } from "./Statement.ts"

export type HandleError = PgServerError | PipelineAborted | PgClientError

/** The result of one pipelined statement, readable any time (also after the pipeline's scope closed). */
export type Handle<Row = Record<string, unknown>> = Effect.Effect<QueryResult<Row>, HandleError>

export interface PipelineOptions {
  /**
   * Bytes of written-but-unsent frames above which `execute` waits for the socket to drain.
   * Bounds memory for huge pipelines; 1 MiB keeps several socket buffers' worth in flight.
   */
  readonly maxPendingBytes?: number
}

export interface Pipeline {
  /** Queues a statement; returns its handle without waiting. */
  readonly execute: <Row = Record<string, unknown>>(
    statement: Statement<Row> | string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<Handle<Row>, PgClientError>
  /** Queues the same statement once per parameter row; the handle gives the summed row count. */
  readonly executeMany: (
    text: string,
    rows: Iterable<ReadonlyArray<unknown>>
  ) => Effect.Effect<
    Effect.Effect<{ readonly rowCount: number; readonly statements: number }, HandleError>,
    PgClientError
  >
  /**
   * A sync point: ends the segment and waits for it. Fails with the segment's first server error
   * when that statement's handle has not been read, else succeeds with the transaction status.
   */
  readonly sync: Effect.Effect<TransactionStatus, PgServerError | PgClientError>
  /** Asks the server to send the results it has so far, without ending the segment. */
  readonly flush: Effect.Effect<void>
  /** Statements queued since the pipeline opened. */
  readonly queued: () => number
}

/** Wall-clock nanoseconds with microsecond resolution, for span start and end times. */
const nowNanos = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n

const childSpan = (tracer: Tracer.Tracer, parent: Tracer.Span, name: string): Tracer.Span =>
  tracer.span({
    name,
    parent: Option.some(parent),
    annotations: Context.empty(),
    links: [],
    startTime: nowNanos(),
    kind: "client",
    root: false,
    sampled: parent.sampled
  })

/** Ends a statement's span with its outcome; failures carry the SQLSTATE (or the client error's tag). */
const endStatementSpan = (span: Tracer.Span, outcome: Outcome): void => {
  switch (outcome._tag) {
    case "Done":
      span.attribute("db.response.returned_rows", outcome.result.rows.length)
      span.end(nowNanos(), Exit.void)
      return
    case "ServerError":
      span.attribute("db.response.status_code", outcome.fields.code)
      span.end(nowNanos(), Exit.fail(outcome.fields.code))
      return
    case "Aborted":
      span.attribute("pgline.aborted_by", outcome.culprit.fields.code)
      span.end(nowNanos(), Exit.fail("PipelineAborted"))
      return
    default:
      span.end(nowNanos(), Exit.fail(outcome._tag))
  }
}

/**
 * One pipelined statement: the engine's sink for its outcome and, as an Effect, its handle. One
 * object per statement, nothing built until somebody reads it (a million-statement pipeline
 * whose handles are dropped costs only these).
 */
class HandleState extends Effectable.Class<QueryResult<any>, HandleError> implements OutcomeSink {
  outcome: Outcome | undefined = undefined
  read = false
  /** Whether a Sync or Flush has been queued after this statement (else awaiting it would hang). */
  released = false
  waiters: Array<() => void> | undefined = undefined
  span: Tracer.Span | undefined = undefined
  private readonly flushFor: (state: HandleState) => void
  constructor(flushFor: (state: HandleState) => void) {
    super()
    this.flushFor = flushFor
  }
  settle(outcome: Outcome): void {
    this.outcome = outcome
    if (this.span !== undefined) endStatementSpan(this.span, outcome)
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) for (const w of waiters) w()
  }
  asEffect(): Effect.Effect<QueryResult<any>, HandleError> {
    return Effect.suspend(() => {
      this.read = true
      if (this.outcome !== undefined) return outcomeToExit(this.outcome, undefined, undefined)
      // Nobody asked the server for this result yet: ask now instead of waiting forever.
      if (!this.released) this.flushFor(this)
      return Effect.flatMap(
        Effect.callback<void>((resume) => {
          if (this.outcome !== undefined) return resume(Effect.void)
          if (this.waiters === undefined) this.waiters = []
          this.waiters.push(() => resume(Effect.void))
        }),
        () => outcomeToExit(this.outcome, undefined, undefined)
      )
    })
  }
}

/**
 * Verdicts per statement text. Lexing on every execute cost 550 ms per 80,000 upserts (7 µs each,
 * a third of the client's time); texts repeat, so the verdict is kept, for a bounded number of texts.
 */
const verdicts = new Map<string, StatementRejected | null>()
const VERDICT_CACHE_SIZE = 1024

const rejectText = (text: string): StatementRejected | undefined => {
  const cached = verdicts.get(text)
  if (cached !== undefined) return cached ?? undefined
  const verdict = lexVerdict(text)
  if (verdicts.size >= VERDICT_CACHE_SIZE) verdicts.clear()
  verdicts.set(text, verdict ?? null)
  return verdict
}

const lexVerdict = (text: string): StatementRejected | undefined => {
  const statements = statementsOf(text)
  if (statements.length > 1) {
    return new StatementRejected({
      reason: "MultipleStatements",
      message: `a pipelined statement must be one statement; this text holds ${statements.length}`
    })
  }
  const keyword = firstKeyword(statements[0] ?? "")
  if (keyword === "COPY") {
    return new StatementRejected({ reason: "CopyInPipeline", message: "COPY cannot run inside a pipeline" })
  }
  if (keyword === "FETCH" || keyword === "MOVE") {
    return new StatementRejected({
      reason: "PortalInPipeline",
      message: `${keyword} reads an open portal, which a pipeline cannot keep`
    })
  }
  return undefined
}

/** Opens a pipeline on a connection; the scope's end syncs and drains it. */
export const make = (
  conn: Connection,
  options: PipelineOptions = {}
): Effect.Effect<Pipeline, PgClientError, Scope.Scope> =>
  Effect.gen(function* () {
    if (conn.isClosed) return yield* new ConnectionLost({ message: conn.closeMessage, mayHaveRun: false })
    // The pipeline holds the connection for its scope: statements of other fibers wait, so they
    // cannot land inside its segments (and split its implicit transaction).
    const owner = yield* Effect.fiber
    if (conn.exclusiveHolder === owner) {
      return yield* new StatementRejected({
        reason: "PipelineOpen",
        message: "this fiber already has a pipeline open on the connection"
      })
    }
    // Set below once the pipeline's state exists; until then it is idle.
    let idle = () => true
    yield* Effect.callback<void>((resume) => {
      const cancelWait = conn.acquire(
        true,
        owner,
        () => resume(Effect.void),
        () => idle()
      )
      if (cancelWait !== undefined) return Effect.sync(cancelWait)
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => conn.release(owner)))
    if (conn.isClosed) return yield* new ConnectionLost({ message: conn.closeMessage, mayHaveRun: false })
    const maxPending = options.maxPendingBytes ?? 1024 * 1024
    // Tracing: a span for the pipeline (its scope), one per segment (first statement to its
    // sync's answer) and one per statement (queued to settled), with the SQLSTATE on failure.
    const tracer = yield* Effect.tracer
    const pipelineSpan = yield* Effect.makeSpanScoped("pgline.pipeline", { kind: "client" })
    let segmentSpan: Tracer.Span | undefined
    let open = true
    let count = 0
    /** Handles of the current segment not yet followed by a Sync or Flush. */
    let unreleased: Array<HandleState> = []
    /** Handles of the current segment, to find the first error at sync. */
    let segment: Array<HandleState> = []
    let syncsInFlight = 0
    let drained: Array<() => void> = []

    const release = () => {
      for (const h of unreleased) h.released = true
      unreleased = []
    }
    idle = () => segment.length === 0 && syncsInFlight === 0

    const backpressure = Effect.callback<void>((resume) => {
      conn.session.wire.whenBelow(maxPending, () => resume(Effect.void))
    })

    const flushFor = (state: HandleState) => {
      if (state.released) return
      conn.queueFlush()
      release()
    }

    const queue = (text: string, params: ReadonlyArray<unknown>): Effect.Effect<HandleState, PgClientError> =>
      Effect.suspend(() => {
        if (!open) {
          return Effect.fail(
            new StatementRejected({ reason: "PipelineClosed", message: "the pipeline's scope has closed" })
          )
        }
        const rejected = rejectText(text)
        if (rejected !== undefined) return Effect.fail(rejected)
        const state = new HandleState(flushFor)
        const failure = conn.queueStatement(text, params, state)
        if (failure !== undefined) return Effect.fail(encodeFailure(failure))
        if (segmentSpan === undefined)
          segmentSpan = childSpan(tracer, pipelineSpan, "pgline.pipeline.segment")
        state.span = childSpan(tracer, segmentSpan, "pgline.statement")
        state.span.attribute("db.query.text", text)
        // Already settled (skipped: the segment failed before it was queued).
        if (state.outcome !== undefined) endStatementSpan(state.span, state.outcome)
        count++
        unreleased.push(state)
        segment.push(state)
        const wire = conn.session.wire
        return wire.pendingBytes > maxPending ? Effect.as(backpressure, state) : Effect.succeed(state)
      })

    const execute = <Row>(statement: Statement<Row> | string, params?: ReadonlyArray<unknown>) =>
      Effect.map(
        typeof statement === "string"
          ? queue(statement, params ?? [])
          : queue(statement.text, statement.values),
        (state) => state as unknown as Handle<Row>
      )

    const executeMany = (text: string, rows: Iterable<ReadonlyArray<unknown>>) =>
      Effect.gen(function* () {
        const states: Array<HandleState> = []
        for (const row of rows) states.push(yield* queue(text, row))
        return Effect.gen(function* () {
          let rowCount = 0
          for (const s of states) rowCount += (yield* s.asEffect()).rowCount
          return { rowCount, statements: states.length }
        })
      })

    /** Queues a Sync; resolves with its outcome once ReadyForQuery arrives. */
    const queueSync = () => {
      release()
      const handles = segment
      segment = []
      const span = segmentSpan
      segmentSpan = undefined
      span?.attribute("pgline.statements", handles.length)
      syncsInFlight++
      return Effect.callback<{
        status: TransactionStatus | undefined
        error: ErrorFields | undefined
        lost: { message: string; mayHaveRun: boolean } | undefined
        handles: Array<HandleState>
      }>((resume) => {
        conn.queueSync((status, error, lost) => {
          if (error !== undefined && !handles.some((h) => h.outcome?._tag === "ServerError")) {
            // The segment's implicit COMMIT failed at the Sync (a deferred constraint): every
            // statement of it was rolled back, so none of their handles may report success.
            for (const h of handles)
              if (h.outcome?._tag === "Done") h.outcome = { _tag: "ServerError", fields: error }
          }
          if (span !== undefined) {
            const failed = handles.find((h) => h.outcome?._tag === "ServerError")?.outcome
            span.end(
              nowNanos(),
              failed?._tag === "ServerError"
                ? Exit.fail(failed.fields.code)
                : lost !== undefined
                  ? Exit.fail("ConnectionLost")
                  : Exit.void
            )
          }
          syncsInFlight--
          if (syncsInFlight === 0) {
            const d = drained
            drained = []
            for (const f of d) f()
          }
          resume(Effect.succeed({ status, error, lost, handles }))
          // Between segments and outside a transaction block, waiting statements of other
          // fibers may run (each with its own Sync, so they cannot split a segment).
          if (segment.length === 0 && syncsInFlight === 0) conn.pulse()
        })
      })
    }

    const sync: Effect.Effect<TransactionStatus, PgServerError | PgClientError> = Effect.suspend(() =>
      Effect.flatMap(
        queueSync(),
        ({
          status,
          error,
          lost,
          handles
        }): Effect.Effect<TransactionStatus, PgServerError | PgClientError> => {
          if (lost !== undefined)
            return Effect.fail(new ConnectionLost({ message: lost.message, mayHaveRun: lost.mayHaveRun }))
          // The segment's first failure, unless its handle was read (then its reader has it).
          for (const h of handles) {
            const o = h.outcome
            if (o?._tag === "ServerError") {
              if (!h.read) return Effect.fail(fromErrorFields(o.fields))
              break
            }
          }
          if (error !== undefined) return Effect.fail(fromErrorFields(error))
          return Effect.succeed(status ?? "I")
        }
      )
    )

    const flush = Effect.sync(() => {
      conn.queueFlush()
      release()
    })

    // Closing: sync what is unsynced, then wait for every outstanding Sync (drain). Interrupted:
    // cancel first so a long statement does not hold the scope open.
    yield* Effect.addFinalizer((exit) =>
      Effect.suspend(() => {
        open = false
        if (conn.isClosed) return Effect.void
        // Anything still running (in this segment, or a sync being awaited) is cancelled.
        const cancel =
          exit._tag === "Failure" && (syncsInFlight > 0 || segment.some((h) => h.outcome === undefined))
            ? Effect.promise(() => conn.session.cancel())
            : Effect.void
        const finalSync = segment.length > 0 ? Effect.asVoid(queueSync()) : Effect.void
        const drain = Effect.callback<void>((resume) => {
          if (syncsInFlight === 0 || conn.isClosed) return resume(Effect.void)
          drained.push(() => resume(Effect.void))
        })
        return Effect.andThen(Effect.andThen(cancel, finalSync), drain)
      })
    )

    const pipeline: Pipeline = {
      execute,
      executeMany,
      sync,
      flush,
      queued: () => count
    }
    return pipeline
  })

/** Every result of a struct or tuple of statements, in one round trip. */
export type Results<T> = {
  -readonly [K in keyof T]: T[K] extends Statement<infer R> ? QueryResult<R> : never
}

/**
 * Runs a struct or tuple of statements in one pipeline segment (one round trip) and returns
 * their results in the same shape; fails with the first statement's error.
 */
export const all = <const T extends Record<string, Statement<any>> | ReadonlyArray<Statement<any>>>(
  conn: Connection,
  statements: T
): Effect.Effect<Results<T>, PgServerError | PipelineAborted | PgClientError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const p = yield* make(conn)
      const keys = Object.keys(statements) as Array<keyof T & string>
      const handles: Array<Handle<any>> = []
      for (const k of keys) handles.push(yield* p.execute((statements as Record<string, Statement<any>>)[k]!))
      yield* Effect.exit(p.sync)
      const out: Record<string, unknown> = Array.isArray(statements)
        ? ([] as unknown as Record<string, unknown>)
        : {}
      for (let i = 0; i < keys.length; i++) out[keys[i]!] = yield* handles[i]!
      return out as Results<T>
    })
  )

/**
 * BEGIN, the statements `body` queues, COMMIT and one Sync: a transaction in one round trip
 * (plus whatever reads `body` makes mid-pipeline). Fails with the first statement error of the
 * transaction; when the block failed the server leaves it open in the failed state, so this sends
 * ROLLBACK before failing, and the connection is idle again either way.
 */
export const transaction = <A, E, R>(
  conn: Connection,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  options: PipelineOptions = {}
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R> =>
  Effect.gen(function* () {
    const outcome = yield* Effect.scoped(
      Effect.gen(function* () {
        const p = yield* make(conn, options)
        const begin = yield* p.execute("begin")
        const value = yield* Effect.exit(body(p))
        const commit = yield* p.execute("commit")
        const synced = yield* Effect.exit(p.sync)
        return { begin, value, commit, synced }
      })
    )
    // The first failure in order: BEGIN, the body's statements (read by the body or not), COMMIT.
    const begun = yield* Effect.exit(outcome.begin)
    const committed = yield* Effect.exit(outcome.commit)
    const failedBlock = conn.transactionStatus !== "I"
    if (failedBlock) yield* Effect.ignore(runSimple(conn, "rollback"))
    if (begun._tag === "Failure") return yield* Effect.failCause(begun.cause)
    if (outcome.value._tag === "Failure") return yield* Effect.failCause(outcome.value.cause)
    // A statement the body queued but did not read: the sync reports it (COMMIT was only skipped).
    if (outcome.synced._tag === "Failure") return yield* Effect.failCause(outcome.synced.cause)
    if (committed._tag === "Failure") return yield* Effect.failCause(committed.cause)
    if (committed.value.command !== "COMMIT") {
      return yield* Effect.fail(
        new StatementRejected({ reason: "TransactionRolledBack", message: "the transaction was rolled back" })
      )
    }
    return outcome.value.value
  })

/** A statement outside any pipeline, with its own Sync (used for ROLLBACK). */
const runSimple = (conn: Connection, text: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const p = yield* make(conn)
      const h = yield* p.execute(text)
      yield* Effect.exit(p.sync)
      return yield* h
    })
  )
