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
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Effectable,
  Exit,
  type Fiber,
  Option,
  type Scope,
  Tracer
} from "effect"
import type {
  Connection,
  EncodeFailure,
  LostInfo,
  Outcome,
  OutcomeSink,
  Prepared
} from "./internal/Connection.ts"
import {
  closedStatement,
  internalsOf,
  preparedStatement,
  type RunOn,
  statementName
} from "./internal/prepared.ts"
import { firstKeyword, statementsOf } from "./internal/sqlText.ts"
import { savepointName } from "./internal/Transaction.ts"
import { tracingOn } from "./internal/tracing.ts"
import {
  blockEffect,
  blockOpen,
  encodeFailure,
  lost as lostError,
  outcomeToExit
} from "./internal/outcome.ts"
import {
  ConnectionLost,
  type PgClientError,
  type PipelineAborted,
  StatementRejected
} from "./PgClientError.ts"
import type { FieldInfo, QueryResult } from "./QueryResult.ts"
import type { PreparedStatement, PrepareOptions } from "./PreparedStatement.ts"
import { rejectInvalid, type Statement } from "./Statement.ts"

/**
 * How a pipelined statement can fail: its own server error, PipelineAborted (skipped because an
 * earlier statement of its segment failed), or a client error (connection lost, encoding).
 */
export type HandleError = PgServerError | PipelineAborted | PgClientError

/** The result of one pipelined statement, readable any time (also after the pipeline's scope closed). */
export type Handle<Row = Record<string, unknown>> = Effect.Effect<QueryResult<Row>, HandleError>

/** Options of `pg.pipelineWith`. */
export interface PipelineOptions {
  /**
   * Bytes of written-but-unsent frames above which `execute` waits for the socket to drain.
   * Bounds memory for huge pipelines; 1 MiB keeps several socket buffers' worth in flight. Below 1
   * (or NaN) is a defect.
   */
  readonly maxPendingBytes?: number
}

/**
 * An open pipeline (`yield* pg.pipeline` in a scope): `execute` queues a statement and returns its
 * Handle at once; `sync` ends a segment (one implicit transaction) and fails with its first
 * unread error; `flush` asks the server for what it has. The scope's end syncs and drains.
 *
 * @example
 * ```ts
 * yield* Effect.scoped(Effect.gen(function* () {
 *   const p = yield* pg.pipeline
 *   const a = yield* p.execute(pg.sql`insert into t values (${1})`)
 *   const b = yield* p.execute(pg.sql`select count(*) from t`)
 *   yield* p.sync
 *   return [yield* a, yield* b]
 * }))
 * ```
 */
export interface Pipeline {
  /**
   * Queues a statement; returns its handle without waiting. A PreparedStatement (prepared on this
   * pipeline's connection) is bound by its name.
   */
  readonly execute: <Row = Record<string, unknown>>(
    statement: Statement<Row> | PreparedStatement | string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<Handle<Row>, PgClientError>
  /**
   * Queues Bind + Execute of the statement prepared on this connection under `name` (libpq's
   * PQsendQueryPrepared, psql's \\bind_named), also one whose Parse is earlier in this segment and
   * not answered yet. A name pgline did not prepare fails with StatementRejected `Closed`.
   */
  readonly executePrepared: <Row = Record<string, unknown>>(
    name: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<Handle<Row>, PgClientError>
  /**
   * Queues Parse under a name + Describe (libpq's PQsendPrepare, psql's \parse); the handle gives
   * the PreparedStatement once the server has described it. Statements after it in the segment may
   * execute it already (values other than strings and nulls wait for the description, with what
   * is queued after it, so they are encoded for the statement's parameter types).
   */
  readonly prepare: (
    text: string,
    options?: PrepareOptions
  ) => Effect.Effect<Effect.Effect<PreparedStatement, HandleError>, PgClientError>
  /** Queues a Describe of a named statement (PQsendDescribePrepared): its handle gives the fresh description. */
  readonly describe: (
    statement: PreparedStatement
  ) => Effect.Effect<Effect.Effect<PreparedStatement, HandleError>, PgClientError>
  /** Queues a Describe of a portal (a cursor the session declared): its handle gives the result fields. */
  readonly describePortal: (
    name: string
  ) => Effect.Effect<Effect.Effect<ReadonlyArray<FieldInfo>, HandleError>, PgClientError>
  /** Queues a Close of a named statement (PQsendClosePrepared, psql's \close_prepared). */
  readonly close: (
    statement: PreparedStatement | string
  ) => Effect.Effect<Effect.Effect<void, HandleError>, PgClientError>
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
  /**
   * A sync point queued without waiting (libpq's PQsendPipelineSync, psql's \\syncpipeline): the
   * segment ends now, the returned effect waits for its answer as `sync` would.
   */
  readonly sendSync: Effect.Effect<
    Effect.Effect<TransactionStatus, PgServerError | PgClientError>,
    PgClientError
  >
  /** Asks the server to send the results it has so far, without ending the segment. */
  readonly flush: Effect.Effect<void>
  /** Statements queued since the pipeline opened. */
  readonly queued: () => number
}

/** What a Sync's ReadyForQuery tells a pipeline: the status, a lost connection, the segment it ended. */
interface SyncAnswer {
  readonly status: TransactionStatus | undefined
  readonly lost: LostInfo | undefined
  readonly ended: Segment
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

/** What a sync point reports: the segment's first unread failure, a lost connection, or the status. */
const answerOf = ({
  status,
  lost,
  ended
}: SyncAnswer): Effect.Effect<TransactionStatus, PgServerError | PgClientError> => {
  if (lost !== undefined) return Effect.fail(lostError(lost.message, lost.mayHaveRun, lost.protocol))
  // The segment's first failure, unless its handle was read (then its reader has it).
  const first = ended.firstFailure
  if (first !== undefined && !first.read) {
    if (first.failure !== undefined) return Effect.fail(fromErrorFields(first.failure))
    if (first.refused !== undefined) return Effect.fail(encodeFailure(first.refused))
  }
  if (ended.syncError !== undefined) return Effect.fail(fromErrorFields(ended.syncError))
  if (ended.rolledBack !== undefined) return Effect.fail(ended.rolledBack)
  return Effect.succeed(status ?? "I")
}

/** What a pipeline shares with its handles. */
interface Shared {
  /** Incremented by every Flush or Sync queued: a handle queued before it has been "released". */
  epoch: number
  /** Queues a Flush (reading a result nobody asked the server for would otherwise wait forever). */
  readonly flush: () => void
}

/**
 * One segment's bookkeeping, in constant space whatever its length (a million-statement segment
 * keeps no list of its handles): how many statements it has and how many are unsettled, the
 * first failure, and the error its Sync reported at the implicit COMMIT, if any.
 */
class Segment {
  size = 0
  unsettled = 0
  firstFailure: Readable | undefined = undefined
  syncError: ErrorFields | undefined = undefined
  /** Set when the pipeline made the server fail the segment (see abortSegment): nothing of it stands. */
  rolledBack: StatementRejected | undefined = undefined
  span: Tracer.Span | undefined = undefined
}

/** Something whose failure the segment's sync reports unless it was read. */
interface Readable {
  read: boolean
  readonly failure: ErrorFields | undefined
  /** Refused by the client after it was queued (a held Bind's value: see Connection.holdBind). */
  readonly refused: EncodeFailure | undefined
}

/** An outcome that failed its segment: the server's error, or the client's refusal of a held Bind. */
const failsSegment = (outcome: Outcome): boolean =>
  outcome._tag === "ServerError" || outcome._tag === "Refused"

/** Waits for `isDone`, asking the server for results first when nobody has yet. */
const awaitSettled = (
  shared: Shared,
  epoch: number,
  isDone: () => boolean,
  addWaiter: (resume: () => void) => void
): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (isDone()) return Effect.void
    if (epoch === shared.epoch) shared.flush()
    return Effect.callback<void>((resume) => {
      if (isDone()) return resume(Effect.void)
      addWaiter(() => resume(Effect.void))
    })
  })

/**
 * One pipelined statement: the engine's sink for its outcome and, as an Effect, its handle. One
 * object per statement, nothing built until somebody reads it, and nothing of it kept by the
 * pipeline once settled (a million-statement pipeline whose handles are dropped stays small).
 */
class HandleState extends Effectable.Class<QueryResult<any>, HandleError> implements OutcomeSink, Readable {
  outcome: Outcome | undefined = undefined
  read = false
  waiters: Array<() => void> | undefined = undefined
  span: Tracer.Span | undefined = undefined
  readonly epoch: number
  private readonly shared: Shared
  private readonly segment: Segment
  constructor(shared: Shared, segment: Segment) {
    super()
    this.shared = shared
    this.segment = segment
    this.epoch = shared.epoch
  }
  get failure(): ErrorFields | undefined {
    return this.outcome?._tag === "ServerError" ? this.outcome.fields : undefined
  }
  get refused(): EncodeFailure | undefined {
    return this.outcome?._tag === "Refused" ? this.outcome.failure : undefined
  }
  /** Settled with a result that stands (its segment's implicit COMMIT did not fail). */
  succeeded(): this is { readonly outcome: Extract<Outcome, { _tag: "Done" }> } {
    return (
      this.outcome?._tag === "Done" &&
      this.segment.syncError === undefined &&
      this.segment.rolledBack === undefined
    )
  }
  settle(outcome: Outcome): void {
    this.outcome = outcome
    const segment = this.segment
    segment.unsettled--
    if (failsSegment(outcome) && segment.firstFailure === undefined) segment.firstFailure = this
    if (this.span !== undefined) endStatementSpan(this.span, outcome)
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) for (const w of waiters) w()
  }
  /** The outcome as the caller sees it: success turns into the segment's commit failure, if any. */
  private result(): Effect.Effect<QueryResult<any>, HandleError> {
    const outcome = this.outcome
    const syncError = this.segment.syncError
    if (outcome?._tag === "Done" && syncError !== undefined) return Effect.fail(fromErrorFields(syncError))
    if (outcome?._tag === "Done" && this.segment.rolledBack !== undefined)
      return Effect.fail(this.segment.rolledBack)
    return outcomeToExit(outcome, undefined, undefined)
  }
  asEffect(): Effect.Effect<QueryResult<any>, HandleError> {
    return Effect.suspend(() => {
      this.read = true
      if (this.outcome !== undefined) return this.result()
      return Effect.flatMap(
        awaitSettled(
          this.shared,
          this.epoch,
          () => this.outcome !== undefined,
          (w) => {
            if (this.waiters === undefined) this.waiters = []
            this.waiters.push(w)
          }
        ),
        () => this.result()
      )
    })
  }
}

/** The sink of every statement an `executeMany` queued: sums as they settle, keeps the first failure. */
class ManySink implements OutcomeSink, Readable {
  read = false
  remaining = 0
  statements = 0
  rowCount = 0
  firstFailure: Outcome | undefined = undefined
  waiters: Array<() => void> | undefined = undefined
  /** The segments its statements went in (one, unless a sync came between executeMany's rows). */
  readonly segments: Array<Segment> = []
  span: Tracer.Span | undefined = undefined
  get failure(): ErrorFields | undefined {
    return this.firstFailure?._tag === "ServerError" ? this.firstFailure.fields : undefined
  }
  get refused(): EncodeFailure | undefined {
    return this.firstFailure?._tag === "Refused" ? this.firstFailure.failure : undefined
  }
  /**
   * The sink of a statement queued in `segment` (the segment may change only between executeMany
   * calls); one per segment, shared by its statements. Counts the statement.
   */
  sinkFor(segment: Segment): OutcomeSink {
    this.remaining++
    this.statements++
    segment.unsettled++
    segment.size++
    if (this.lastSegment === segment && this.lastSink !== undefined) return this.lastSink
    this.segments.push(segment)
    const many = this
    const sink: OutcomeSink = {
      settle(outcome: Outcome) {
        segment.unsettled--
        if (failsSegment(outcome) && segment.firstFailure === undefined) segment.firstFailure = many
        many.settle(outcome)
      }
    }
    this.lastSegment = segment
    this.lastSink = sink
    return sink
  }
  private lastSegment: Segment | undefined = undefined
  private lastSink: OutcomeSink | undefined = undefined
  settle(outcome: Outcome): void {
    if (outcome._tag === "Done") this.rowCount += outcome.result.rowCount
    else if (
      this.firstFailure === undefined ||
      (this.firstFailure._tag === "Aborted" && failsSegment(outcome))
    )
      this.firstFailure = outcome
    this.remaining--
    if (this.remaining === 0) {
      if (this.span !== undefined) {
        this.span.attribute("pgline.statements", this.statements)
        this.span.end(
          nowNanos(),
          this.firstFailure === undefined ? Exit.void : Exit.fail(this.firstFailure._tag)
        )
      }
      const waiters = this.waiters
      this.waiters = undefined
      if (waiters !== undefined) for (const w of waiters) w()
    }
  }
}

/**
 * Verdicts per statement text. Lexing on every execute cost 550 ms per 80,000 upserts (7 µs each,
 * a third of the client's time); texts repeat, so the verdict is kept, for a bounded number of texts.
 */
const verdicts = new Map<string, StatementRejected | null>()
const VERDICT_CACHE_SIZE = 1024

export const rejectText = (text: string): StatementRejected | undefined => {
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

/**
 * What a pipeline is made of, apart from holding its connection: its state, its statement API, the
 * token of its steps on the connection (for interrupting only its own statements), the steps
 * `transactionIn` queues without an Effect, and what its end does.
 */
interface Core {
  readonly pipeline: Pipeline
  readonly token: object
  /** No segment open and no Sync in flight (statements of other fibers may run in between). */
  readonly idle: () => boolean
  /** Queues one statement without parameters now: its handle, or why it was refused (no back-pressure wait). */
  readonly queueNow: (text: string) => HandleState | PgClientError
  /** The pipeline's span (set after the connection is held, when a tracing backend is installed). */
  readonly setSpan: (span: Tracer.Span) => void
  /**
   * The end of the pipeline: sync what is unsynced, then wait for every outstanding Sync (drain);
   * after a failure with statements in flight, cancel them first. Never fails.
   */
  readonly close: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
  /** `close`, done at once when nothing is unsynced or in flight (the usual end): undefined then. */
  readonly closeNow: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void> | undefined
  /** Ends the segment with a Sync now; `done` gets the answer. */
  readonly queueSyncNow: (done: (answer: SyncAnswer) => void) => void
}

/** PipelineOptions, and what the client knows of the pipeline's connection. */
export interface OpenOptions extends PipelineOptions {
  /**
   * The connection was leased from the pool for this pipeline alone. Statements of other fibers
   * may wait for it (the pool sends them to a pipeline's connection when every connection is
   * leased), so a transaction block the pipeline leaves open is rolled back before the pipeline
   * lets go: granted at once, they would land inside the block and be rolled back with it by the
   * pool's clean-up after telling their callers they succeeded.
   */
  readonly leased?: boolean
}

/** Each pipeline's core (its token and the steps transactionIn queues directly). */
const cores = new WeakMap<Pipeline, Core>()

const pipelineOpen = () =>
  new StatementRejected({
    reason: "PipelineOpen",
    message: "this fiber already has a pipeline open on the connection"
  })

const connectionGone = (conn: Connection) =>
  new ConnectionLost({ message: conn.closeMessage, mayHaveRun: false })

/**
 * Holds `conn` for `owner`'s pipeline: statements of other fibers wait while it has a segment in
 * flight, so they cannot land inside its segments. The wait can be interrupted.
 */
const acquireFor = (conn: Connection, owner: object, idle: () => boolean): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const cancelWait = conn.acquire(true, owner, () => resume(Effect.void), idle)
    if (cancelWait !== undefined) return Effect.sync(cancelWait)
  })

/** Opens a pipeline on a connection; the scope's end syncs and drains it. */
export const make = (
  conn: Connection,
  options: OpenOptions = {}
): Effect.Effect<Pipeline, PgClientError, Scope.Scope> =>
  Effect.gen(function* () {
    if (conn.isClosed) return yield* connectionGone(conn)
    const owner = yield* Effect.fiber
    if (conn.isHolder(owner)) return yield* pipelineOpen()
    const core = open(conn, owner, options)
    yield* acquireFor(conn, owner, core.idle)
    yield* Effect.addFinalizer(() => Effect.sync(() => conn.release(owner)))
    if (conn.isClosed) return yield* connectionGone(conn)
    // Tracing: a span for the pipeline (its scope), one per segment (first statement to its
    // sync's answer) and one per statement (queued to settled), with the SQLSTATE on failure.
    // Without a tracing backend (Effect's in-memory native tracer) nobody can see a span, so none is
    // made: six spans per pipelined transaction were a fifth of its client CPU.
    if (tracingOn(owner)) core.setSpan(yield* Effect.makeSpanScoped("pgline.pipeline", { kind: "client" }))
    yield* Effect.addFinalizer((exit) => core.close(exit))
    return core.pipeline
  })

/** A pipeline's state and statement API on `conn` (not yet held), owned by the fiber `owner`. */
const open = (conn: Connection, owner: Fiber.Fiber<unknown, unknown>, options: OpenOptions): Core => {
  // The pipeline's steps on the connection, for cancelling only what is its own.
  const token = {}
  const leased = options.leased === true
  const maxPending = options.maxPendingBytes ?? 1024 * 1024
  const tracer = owner.getRef(Tracer.Tracer)
  let pipelineSpan: Tracer.Span | undefined
  let open = true
  let count = 0
  let segment = new Segment()
  let syncsInFlight = 0
  /** Syncs this pipeline queued: none yet means its segment began where the connection was when opened. */
  let syncsQueued = 0
  /**
   * Whether the connection was known idle, outside a block, when the pipeline queued its first
   * statement: nothing of another caller's in flight (a BEGIN still unanswered would leave the
   * status unknown). Undefined until then.
   */
  let idleAtOpen: boolean | undefined
  const noteFirst = (): void => {
    if (idleAtOpen === undefined) idleAtOpen = conn.engine.pending === 0 && conn.transactionStatus === "I"
  }
  let drained: Array<() => void> = []
  const shared: Shared = {
    epoch: 0,
    flush: () => {
      conn.queueFlush()
      shared.epoch++
    }
  }
  const idle = () => segment.size === 0 && syncsInFlight === 0

  const backpressure = Effect.callback<void>((resume) => {
    conn.whenBelow(maxPending, () => resume(Effect.void))
  })

  const closed = () =>
    new StatementRejected({ reason: "PipelineClosed", message: "the pipeline's scope has closed" })

  const segmentSpan = (parent: Tracer.Span): Tracer.Span => {
    if (segment.span === undefined) segment.span = childSpan(tracer, parent, "pgline.pipeline.segment")
    return segment.span
  }

  const queue = (text: string, params: ReadonlyArray<unknown>): Effect.Effect<HandleState, PgClientError> =>
    queueWith(text, (state) => conn.queueStatement(text, params, state, token))

  /** Queues one step that `write` writes (with `state` as its sink) now: its handle, or why not. */
  const queueNowWith = (
    text: string,
    write: (state: HandleState) => EncodeFailure | StatementRejected | undefined
  ): HandleState | PgClientError => {
    if (!open) return closed()
    // Nothing more is buffered for a connection that is gone.
    if (conn.isClosed) return connectionGone(conn)
    const rejected = rejectText(text)
    if (rejected !== undefined) return rejected
    noteFirst()
    const state = new HandleState(shared, segment)
    segment.size++
    segment.unsettled++
    const written = write(state)
    if (written !== undefined) {
      segment.size--
      segment.unsettled--
      return written instanceof StatementRejected ? written : encodeFailure(written)
    }
    if (pipelineSpan !== undefined) {
      state.span = childSpan(tracer, segmentSpan(pipelineSpan), "pgline.statement")
      state.span.attribute("db.query.text", text)
      // Already settled (skipped: the segment failed before it was queued).
      if (state.outcome !== undefined) endStatementSpan(state.span, state.outcome)
    }
    count++
    return state
  }

  /** Queues one step that `write` writes (with `state` as its sink): a statement, or a named statement's Parse, Describe or Close. */
  const queueWith = (
    text: string,
    write: (state: HandleState) => EncodeFailure | StatementRejected | undefined
  ): Effect.Effect<HandleState, PgClientError> =>
    Effect.suspend(() => {
      const state = queueNowWith(text, write)
      if (!(state instanceof HandleState)) return Effect.fail(state)
      return conn.pendingBytes > maxPending ? Effect.as(backpressure, state) : Effect.succeed(state)
    })

  /** The pipeline's connection, for what a named statement prepared here does outside it. */
  const onConn: RunOn = (f) => f(conn)

  /** The record of a statement prepared on this pipeline's connection and still open, or why not. */
  const recordOf = (statement: PreparedStatement): Prepared | StatementRejected => {
    const named = internalsOf(statement)
    if (named === undefined || named.conn !== conn)
      return new StatementRejected({
        reason: "InvalidText",
        message: "this prepared statement belongs to another connection"
      })
    return conn.namedStatement(named.prepared.name) === named.prepared
      ? named.prepared
      : closedStatement(statement.name)
  }

  /** Binds a statement prepared under a name (on this connection) inside the segment. */
  const executeNamed = (statement: PreparedStatement, params: ReadonlyArray<unknown>) =>
    queueWith(statement.text, (state) => {
      const prepared = recordOf(statement)
      if (prepared instanceof StatementRejected) return prepared
      return conn.queueStatement(statement.text, params, state, token, 0, prepared)
    })

  // Checked and traced as the prepared statement's text, not its name.
  const executePrepared = <Row>(name: string, params?: ReadonlyArray<unknown>) =>
    Effect.suspend(() => {
      const prepared = conn.namedStatement(name)
      if (prepared === undefined)
        return Effect.fail(
          new StatementRejected({
            reason: "Closed",
            message: `no statement is prepared under ${JSON.stringify(name)} on this connection (by pg.prepare or p.prepare)`
          })
        )
      return Effect.map(
        queueWith(prepared.text, (state) =>
          conn.queueStatement(prepared.text, params ?? [], state, token, 0, prepared)
        ),
        (state) => state as unknown as Handle<Row>
      )
    })

  const prepare = (text: string, options: PrepareOptions = {}) => {
    const name = statementName(options.name)
    if (typeof name !== "string") return Effect.fail(name)
    let prepared: Prepared | undefined
    return Effect.map(
      queueWith(text, (state) => {
        const queued = conn.queueParse(name, text, state, token)
        if ("failure" in queued) return queued.failure
        prepared = queued.prepared
        return undefined
      }),
      (state) =>
        Effect.map(state as unknown as Handle, () =>
          preparedStatement(prepared!, conn, onConn)
        ) as Effect.Effect<PreparedStatement, HandleError>
    )
  }

  const describe = (statement: PreparedStatement) => {
    let prepared: Prepared | undefined
    return Effect.map(
      queueWith(statement.text, (state) => {
        const record = recordOf(statement)
        if (record instanceof StatementRejected) return record
        prepared = record
        conn.queueDescribeNamed(record, state, token)
        return undefined
      }),
      (state) =>
        Effect.map(state as unknown as Handle, () =>
          preparedStatement(prepared!, conn, onConn)
        ) as Effect.Effect<PreparedStatement, HandleError>
    )
  }

  const describePortal = (name: string) =>
    Effect.map(
      queueWith(name, (state) => conn.queueDescribePortal(name, state, token)),
      (state) =>
        Effect.map(state as unknown as Handle, (r) => r.fields) as Effect.Effect<
          ReadonlyArray<FieldInfo>,
          HandleError
        >
    )

  const close = (statement: PreparedStatement | string) => {
    const name = typeof statement === "string" ? statement : statement.name
    return Effect.map(
      queueWith("", (state) => {
        conn.queueCloseNamed(name, state, token)
        return undefined
      }),
      (state) => Effect.asVoid(state as unknown as Handle) as Effect.Effect<void, HandleError>
    )
  }

  const execute = <Row>(
    statement: Statement<Row> | PreparedStatement | string,
    params?: ReadonlyArray<unknown>
  ) => {
    // A handle is its HandleState (an Effect of the result): no mapping step.
    if (typeof statement !== "string" && internalsOf(statement) !== undefined)
      return executeNamed(statement as PreparedStatement, params ?? []) as unknown as Effect.Effect<
        Handle<Row>,
        PgClientError
      >
    const plain = statement as Statement<Row> | string
    const rejected = typeof plain === "string" ? undefined : rejectInvalid(plain)
    if (rejected !== undefined) return Effect.fail(rejected)
    return (typeof plain === "string"
      ? queue(plain, params ?? [])
      : queue(plain.text, plain.values)) as unknown as Effect.Effect<Handle<Row>, PgClientError>
  }

  const executeMany = (text: string, rows: Iterable<ReadonlyArray<unknown>>) =>
    Effect.suspend(() => {
      if (!open) return Effect.fail(closed())
      if (conn.isClosed) return Effect.fail<PgClientError>(connectionGone(conn))
      const rejected = rejectText(text)
      if (rejected !== undefined) return Effect.fail(rejected)
      const many = new ManySink()
      if (pipelineSpan !== undefined) {
        many.span = childSpan(tracer, segmentSpan(pipelineSpan), "pgline.statements")
        many.span.attribute("db.query.text", text)
      }
      const epoch = shared.epoch
      // An array is read by index (an iterator allocates a result object per row).
      const array = Array.isArray(rows) ? (rows as ReadonlyArray<ReadonlyArray<unknown>>) : undefined
      const iterator = array === undefined ? rows[Symbol.iterator]() : undefined
      let index = 0
      // A tight loop per row, leaving it only to wait for the socket: no Effect per statement.
      const loop = (): Effect.Effect<void, PgClientError> => {
        for (;;) {
          let row: ReadonlyArray<unknown>
          if (array !== undefined) {
            if (index >= array.length) return Effect.void
            row = array[index++]!
          } else {
            const next = iterator!.next()
            if (next.done === true) return Effect.void
            row = next.value
          }
          noteFirst()
          const sink = many.sinkFor(segment)
          const failure = conn.queueStatement(text, row, sink, token)
          if (failure !== undefined) {
            // Nothing of this row was sent: undo its count; the rows before it stand.
            many.remaining--
            many.statements--
            segment.unsettled--
            segment.size--
            if (many.remaining === 0) many.settle({ _tag: "Done", result: emptyResult })
            return Effect.fail(encodeFailure(failure))
          }
          count++
          if (conn.pendingBytes > maxPending) return Effect.flatMap(backpressure, loop)
        }
      }
      const summary = Effect.suspend(() => {
        many.read = true
        return Effect.flatMap(
          awaitSettled(
            shared,
            epoch,
            () => many.remaining === 0,
            (w) => {
              if (many.waiters === undefined) many.waiters = []
              many.waiters.push(w)
            }
          ),
          (): Effect.Effect<{ readonly rowCount: number; readonly statements: number }, HandleError> =>
            many.firstFailure !== undefined
              ? (outcomeToExit(many.firstFailure, undefined, undefined) as Effect.Effect<never, HandleError>)
              : many.segments.find((s) => s.rolledBack !== undefined) !== undefined
                ? Effect.fail(many.segments.find((s) => s.rolledBack !== undefined)!.rolledBack!)
                : Effect.succeed({ rowCount: many.rowCount, statements: many.statements })
        )
      })
      return Effect.as(loop(), summary)
    })

  /** Queues a Sync; resolves with its outcome once ReadyForQuery arrives. */
  /** Ends the segment with a Sync now; `done` gets the answer. */
  const queueSyncNow = (done: (answer: SyncAnswer) => void): void => {
    const ended = segment
    segment = new Segment()
    shared.epoch++
    syncsInFlight++
    syncsQueued++
    conn.queueSync((status, error, lost) => {
      // The segment's implicit COMMIT failed at the Sync (a deferred constraint): every
      // statement of it was rolled back, so none of their handles may report success.
      if (error !== undefined && ended.firstFailure === undefined) ended.syncError = error
      const span = ended.span
      if (span !== undefined) {
        // The statement abortSegment queued is nobody's: not counted, and the segment's outcome is
        // the rollback, unless a statement of the caller's failed first.
        const aborted = ended.rolledBack !== undefined
        span.attribute("pgline.statements", aborted ? ended.size - 1 : ended.size)
        const first = ended.firstFailure instanceof AbortState ? undefined : ended.firstFailure
        const code =
          first?.failure?.code ?? ended.syncError?.code ?? (aborted ? "TransactionRolledBack" : undefined)
        span.end(
          nowNanos(),
          code !== undefined ? Exit.fail(code) : lost !== undefined ? Exit.fail("ConnectionLost") : Exit.void
        )
      }
      syncsInFlight--
      if (syncsInFlight === 0) {
        const d = drained
        drained = []
        for (const f of d) f()
      }
      done({ status, lost, ended })
      // Between segments and outside a transaction block, waiting statements of other
      // fibers may run (each with its own Sync, so they cannot split a segment).
      if (segment.size === 0 && syncsInFlight === 0) conn.pulse()
    }, token)
  }

  const queueSync = () =>
    Effect.callback<SyncAnswer>((resume) => queueSyncNow((a) => resume(Effect.succeed(a))))

  const sendSync: Effect.Effect<
    Effect.Effect<TransactionStatus, PgServerError | PgClientError>,
    PgClientError
  > = Effect.suspend(() => {
    if (!open) return Effect.fail(closed())
    if (conn.isClosed) return Effect.fail<PgClientError>(connectionGone(conn))
    const answer = Deferred.makeUnsafe<SyncAnswer>()
    queueSyncNow((a) => Deferred.doneUnsafe(answer, Effect.succeed(a)))
    return Effect.succeed(Effect.flatMap(Deferred.await(answer), answerOf))
  })

  const sync: Effect.Effect<TransactionStatus, PgServerError | PgClientError> = Effect.suspend(() =>
    // Nothing queued since the last sync and nothing in flight: nothing to wait for, no round trip.
    segment.size === 0 && syncsInFlight === 0 && !conn.isClosed
      ? Effect.succeed(conn.transactionStatus)
      : Effect.flatMap(queueSync(), answerOf)
  )

  const flush = Effect.sync(() => shared.flush())

  // Closing: sync what is unsynced, then wait for every outstanding Sync (drain). Interrupted:
  // cancel first so a long statement does not hold the scope open.
  const end = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      open = false
      if (conn.isClosed) return Effect.void
      // Interrupted (or failed) with statements in flight: they are cancelled, bounded by the
      // connection's cancelGrace (then the connection is closed and the drain ends).
      const interrupt =
        exit._tag === "Failure" && (syncsInFlight > 0 || segment.unsettled > 0)
          ? conn.interrupt(token)
          : undefined
      // Failed or interrupted before its last segment was synced: that segment must not commit.
      // Begun outside a transaction block (always so on a pipeline's own lease; elsewhere when the
      // Sync before it answered idle), its statements form the implicit transaction the Sync
      // would commit; an error before the Sync rolls it back instead, and a block the segment
      // began is rolled back after. Inside a block begun before the pipeline (withTransaction, a
      // begin on reserve) the statements are the block's, left to its owner.
      let undoBlock = leased
      const decide: Effect.Effect<void> =
        exit._tag === "Failure" && segment.size > 0
          ? Effect.map(abandon, (aborted) => {
              if (aborted) undoBlock = true
            })
          : Effect.void
      // A scope cannot fail on close: an error nobody read is logged, never dropped silently
      // (`withPipeline` syncs before closing, so its caller gets it as a failure instead).
      const finalSync =
        segment.size > 0
          ? Effect.flatMap(Effect.andThen(decide, queueSync()), ({ ended, lost }) => {
              const unreadFirst = ended.firstFailure?.read === false ? ended.firstFailure : undefined
              const refused = unreadFirst?.refused
              if (refused !== undefined && lost === undefined)
                return Effect.logWarning(
                  `pgline: a pipeline closed with an error nobody read: ${encodeFailure(refused)._tag}: ${refused.message}`
                )
              const unread = unreadFirst?.failure ?? ended.syncError
              // The cancel this end sent is not news to anyone.
              if (
                unread === undefined ||
                lost !== undefined ||
                (interrupt !== undefined && unread.code === "57014")
              )
                return Effect.void
              return Effect.logWarning(
                `pgline: a pipeline closed with an error nobody read: ${fromErrorFields(unread)._tag}: ${unread.message}`
              ).pipe(Effect.annotateLogs({ sqlstate: unread.code }))
            })
          : Effect.void
      const drain = awaitSyncs
      // A failed block whose statements have all answered waits only for the Sync: bounded (the
      // connection is closed after cancelGrace), so a server that stopped answering cannot hold
      // the end for good. Statements still running are cancelled instead (above), just as bounded.
      const synced = Effect.andThen(finalSync, drain)
      const settled = Effect.ensuring(
        exit._tag === "Failure" && interrupt === undefined ? conn.bounded(synced) : synced,
        Effect.sync(() => interrupt?.done())
      )
      // Bounded as the pool's clean-up is: a server that does not answer closes the connection.
      return Effect.andThen(
        settled,
        Effect.suspend(() => (undoBlock ? conn.bounded(rollbackLeftOpen) : Effect.void))
      )
    })

  /**
   * The body that queued the open segment failed: makes the server fail the segment when it was
   * begun outside a transaction block (see `end`), waiting for the Syncs in flight when the status
   * before it depends on their answer. Whether it did.
   */
  const abandon: Effect.Effect<boolean> = Effect.suspend(() => {
    if (segment.size === 0 || conn.isClosed) return Effect.succeed(false)
    if (leased) return Effect.succeed(abortSegment())
    // Its first segment began where the connection was when the pipeline took it.
    if (syncsQueued === 0) return Effect.succeed(idleAtOpen === true && abortSegment())
    if (syncsInFlight === 0) return Effect.succeed(conn.transactionStatus === "I" && abortSegment())
    // The status before the segment is the answer of the last Sync still in flight; nothing of
    // the segment's end is written yet, so the failing statement can still go first.
    return Effect.andThen(
      awaitSyncs,
      Effect.sync(() => !conn.isClosed && conn.transactionStatus === "I" && abortSegment())
    )
  })

  /** Waits until every Sync queued so far is answered (or the connection is gone). */
  const awaitSyncs = Effect.callback<void>((resume) => {
    if (syncsInFlight === 0 || conn.isClosed) return resume(Effect.void)
    drained.push(() => resume(Effect.void))
  })

  /**
   * Fails the open segment on the server, so its Sync rolls back what it ran: a statement that
   * cannot be parsed, whatever the session holds, on the unnamed statement; its error is nobody's
   * to read. The statements of the segment that had answered then fail when read (their work was
   * undone), and so does a sync of the segment.
   */
  const abortSegment = (): boolean => {
    if (segment.rolledBack !== undefined) return true
    const state = new AbortState(shared, segment)
    state.read = true
    segment.size++
    segment.unsettled++
    if (conn.queueStatement(ABORT_TEXT, [], state, token) !== undefined) {
      segment.size--
      segment.unsettled--
      return false
    }
    segment.rolledBack = new StatementRejected({
      reason: "TransactionRolledBack",
      message:
        "rolled back: the pipeline's body failed or was interrupted before this segment was synced, so nothing of the segment was committed"
    })
    return true
  }

  /** See OpenOptions.leased: ROLLBACK, as the connection's holder, of a block left open. */
  const rollbackLeftOpen = Effect.callback<void>((resume) => {
    if (conn.isClosed || conn.transactionStatus === "I") return resume(Effect.void)
    const refused = conn.queueStatement("rollback", [], { settle: () => {} }, token)
    if (refused !== undefined) return resume(Effect.void)
    // However it ends: a block still open (the connection lost) is the pool's to clean up.
    conn.queueSync(() => resume(Effect.void), token)
  })

  const pipeline: Pipeline = {
    sendSync,
    execute,
    executePrepared,
    executeMany,
    prepare,
    describe,
    describePortal,
    close,
    sync,
    flush,
    queued: () => count
  }
  const core: Core = {
    pipeline,
    token,
    idle,
    queueNow: (text) => queueNowWith(text, (state) => conn.queueStatement(text, [], state, token)),
    setSpan: (span) => {
      pipelineSpan = span
    },
    close: end,
    closeNow: (exit) => {
      if (
        segment.size > 0 ||
        syncsInFlight > 0 ||
        (leased && conn.transactionStatus !== "I" && !conn.isClosed)
      )
        return end(exit)
      open = false
      return undefined
    },
    queueSyncNow
  }
  cores.set(pipeline, core)
  return core
}

const emptyResult: QueryResult = { rows: [], command: "", rowCount: 0, fields: [], tag: "" }

/** A text no session can parse (42601 at its first word): see abortSegment. */
const ABORT_TEXT = "pgline: the pipeline failed before this segment was synced, so it is rolled back"

/** The abort's sink: on the unnamed statement, so nothing is prepared or cached for it. */
class AbortState extends HandleState {
  readonly prepare = false
}

/** Every result of a struct or tuple of statements, in one round trip. */
export type Results<T> = {
  -readonly [K in keyof T]: T[K] extends Statement<infer R> ? QueryResult<R> : never
}

/**
 * Runs a struct or tuple of statements in one segment of an open pipeline (one round trip, ending
 * with a sync) and returns their results in the same shape; fails with the first statement's error.
 */
export const allIn = <const T extends Record<string, Statement<any>> | ReadonlyArray<Statement<any>>>(
  p: Pipeline,
  statements: T
): Effect.Effect<Results<T>, PgServerError | PipelineAborted | PgClientError> =>
  Effect.gen(function* () {
    const keys = Object.keys(statements) as Array<keyof T & string>
    const handles: Array<Handle<any>> = []
    for (const k of keys) handles.push(yield* p.execute((statements as Record<string, Statement<any>>)[k]!))
    yield* Effect.exit(p.sync)
    return yield* shape(statements, keys, handles)
  })

/** Puts results back in the shape of the statements (struct or tuple). */
export const shape = <T>(
  statements: T,
  keys: ReadonlyArray<string>,
  results: ReadonlyArray<Effect.Effect<QueryResult<any>, HandleError>>
): Effect.Effect<Results<T>, HandleError> =>
  Effect.gen(function* () {
    const out: Record<string, unknown> = Array.isArray(statements)
      ? ([] as unknown as Record<string, unknown>)
      : {}
    for (let i = 0; i < keys.length; i++) out[keys[i]!] = yield* results[i]!
    return out as Results<T>
  })

/**
 * BEGIN, the statements `body` queues, COMMIT and one Sync: a transaction in one round trip
 * (plus whatever reads `body` makes mid-pipeline), on a pipeline of its own. See `transactionIn`.
 * Without spans to make, the pipeline needs no Scope: it is held and ended around the block.
 */
export const transaction = <A, E, R>(
  conn: Connection,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  options: OpenOptions = {},
  ended?: () => void
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R> =>
  around(conn, options, (core, restore) => transactionOn(conn, core, body, restore), ended)

/**
 * `body` on a pipeline of its own on `conn`, synced and drained when `body` ends (as `make` in a
 * scope of its own, with `body`'s exit as the scope's). Without spans to make it needs no Scope:
 * the pipeline is held and ended around `body`.
 */
export const use = <A, E, R>(
  conn: Connection,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  options: OpenOptions = {},
  ended?: () => void
): Effect.Effect<A, E | PgClientError, R> =>
  around(conn, options, (core, restore) => restore(body(core.pipeline)), ended)

type Restore = <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>

/**
 * Holds `conn` for a pipeline around `f` (run uninterruptibly but for what it restores), then ends
 * it; `ended` is called first thing when `f` has ended, however it ended.
 */
const around = <A, E, R>(
  conn: Connection,
  options: OpenOptions,
  f: (core: Core, restore: Restore) => Effect.Effect<A, E, R>,
  ended?: () => void
): Effect.Effect<A, E | PgClientError, R> =>
  Effect.withFiber((owner) => {
    if (tracingOn(owner))
      return Effect.scoped(
        Effect.flatMap(make(conn, options), (p) =>
          Effect.uninterruptibleMask((restore) => {
            // `ended` runs however the block ends, a throw included (the caller forgets the
            // pipeline's owner there: else the fiber stays tied to a connection the pool hands on).
            const effect = blockEffect(() => f(cores.get(p)!, restore))
            return ended === undefined ? effect : Effect.onExit(effect, () => Effect.sync(ended))
          })
        )
      )
    return Effect.uninterruptibleMask((restore) =>
      heldWithin(conn, owner, options, restore, f, undefined, ended)
    )
  })

/**
 * `f` on a pipeline of `conn` held for `owner`, built inside the caller's uninterruptible region
 * (`restore` is its mask's), without tracing. `after` runs once the pipeline has ended and `conn` is
 * released, however it ended (also when it never started): for a caller that leased `conn` and
 * gives it back (undefined: nothing more to do). `ended` is called first thing when `f` has ended.
 * Never throws: a block that throws instead of returning an Effect dies, and everything still ends.
 */
const heldWithin = <A, E, R>(
  conn: Connection,
  owner: Fiber.Fiber<unknown, unknown>,
  options: OpenOptions,
  restore: Restore,
  f: (core: Core, restore: Restore) => Effect.Effect<A, E, R>,
  after: (() => Effect.Effect<void> | undefined) | undefined,
  ended?: () => void
): Effect.Effect<A, E | PgClientError, R> => {
  const unstarted = (error: PgClientError): Effect.Effect<never, PgClientError> =>
    after === undefined ? Effect.fail(error) : Effect.onExit(Effect.fail(error), () => after() ?? Effect.void)
  if (conn.isClosed) return unstarted(connectionGone(conn))
  if (conn.isHolder(owner)) return unstarted(pipelineOpen())
  const core = open(conn, owner, options)
  const release = (): Effect.Effect<void> => {
    conn.release(owner)
    return after?.() ?? Effect.void
  }
  const end = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
    ended?.()
    const closing = core.closeNow(exit)
    return closing === undefined ? release() : Effect.ensuring(closing, Effect.suspend(release))
  }
  const run = (): Effect.Effect<A, E | PgClientError, R> =>
    Effect.onExit(
      conn.isClosed
        ? Effect.fail<PgClientError>(connectionGone(conn))
        : blockEffect<A, E | PgClientError, R>(() => f(core, restore)),
      end
    )
  // Held at once when nothing holds the connection or waits for it (the usual case: a leased one).
  if (conn.tryHold(owner, core.idle)) return run()
  const held = restore(acquireFor(conn, owner, core.idle))
  return Effect.flatMap(after === undefined ? held : Effect.onError(held, () => after() ?? Effect.void), run)
}

const LEASED: OpenOptions = { leased: true }

/**
 * `transaction` on `conn`, which the caller leased and gives back with `after` (see heldWithin),
 * from inside the caller's uninterruptible region.
 */
export const transactionWithin = <A, E, R>(
  conn: Connection,
  owner: Fiber.Fiber<unknown, unknown>,
  restore: Restore,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  after: () => Effect.Effect<void> | undefined,
  ended?: () => void
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R> =>
  heldWithin(
    conn,
    owner,
    LEASED,
    restore,
    (core, restore) => transactionOn(conn, core, body, restore),
    after,
    ended
  )

/** `use` the same way (see transactionWithin). */
export const useWithin = <A, E, R>(
  conn: Connection,
  owner: Fiber.Fiber<unknown, unknown>,
  restore: Restore,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  after: () => Effect.Effect<void> | undefined,
  ended?: () => void
): Effect.Effect<A, E | PgClientError, R> =>
  heldWithin(conn, owner, LEASED, restore, (core, restore) => restore(body(core.pipeline)), after, ended)

/**
 * A transaction on an open pipeline whose segment is empty. On a connection outside a transaction
 * block it is BEGIN … COMMIT; inside one (withTransaction, a block the user began) it is a
 * savepoint, so it never commits or ends an enclosing transaction. When `body` fails, dies or is
 * interrupted, ROLLBACK (or ROLLBACK TO SAVEPOINT) is queued instead of COMMIT. Fails with the
 * first error in order: BEGIN, the body's statements (read by the body or not), COMMIT; a COMMIT
 * answered with ROLLBACK fails with TransactionRolledBack. Either way the block is closed when it
 * returns: a failed block the server left open is rolled back before.
 */
export const transactionIn = <A, E, R>(
  conn: Connection,
  p: Pipeline,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R> =>
  Effect.uninterruptibleMask((restore) => transactionOn(conn, cores.get(p)!, body, restore))

/**
 * transactionIn's steps, run uninterruptibly but for `body` (run under `restore`). BEGIN, COMMIT
 * (or the undo) and the Sync are queued directly, and a block whose every step succeeded is read
 * off the settled handles; anything else takes the general path (`finishTransaction`).
 */
const transactionOn = <A, E, R>(
  conn: Connection,
  core: Core,
  body: (pipeline: Pipeline) => Effect.Effect<A, E, R>,
  restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R> => {
  const p = core.pipeline
  const savepoint = conn.transactionStatus === "I" ? undefined : savepointName()
  if (savepoint === undefined && conn.blocks > 0) return Effect.fail(blockOpen())
  const begin = core.queueNow(savepoint === undefined ? "begin" : `savepoint ${savepoint}`)
  if (!(begin instanceof HandleState)) return Effect.fail(begin)
  // While the body runs, nothing of it may end the block (see Connection.blocks). A body that
  // throws instead of returning an Effect dies, and the block is undone as for any failure.
  conn.blocks++
  return Effect.flatMap(Effect.exit(restore(blockEffect(() => body(p)))), (value) => {
    conn.blocks--
    let end: HandleState | undefined
    let interrupt: { readonly done: () => void } | undefined
    if (Exit.isSuccess(value)) {
      const queued = core.queueNow(savepoint === undefined ? "commit" : `release savepoint ${savepoint}`)
      if (!(queued instanceof HandleState)) return Effect.fail(queued)
      end = queued
    } else {
      // Interrupted: stop what runs now rather than wait for it (the undo is skipped after the
      // cancelled statement's error and queued again below).
      if (Cause.hasInterrupts(value.cause) && !conn.isClosed && conn.engine.pending > 0)
        interrupt = conn.interrupt(core.token)
      const undone = queueUndoNow(core, savepoint)
      if (undone !== undefined) return Effect.fail(undone)
    }
    // The Sync is queued here (the segment holds BEGIN at least), and its answer read directly.
    const answered = Effect.callback<SyncAnswer>((resume) =>
      core.queueSyncNow((a) => resume(Effect.succeed(a)))
    )
    return Effect.flatMap(answered, (answer) => {
      interrupt?.done()
      // Every step succeeded (the common case): the answer is on the settled handles.
      if (
        answer.lost === undefined &&
        answer.ended.firstFailure === undefined &&
        answer.ended.syncError === undefined &&
        value._tag === "Success" &&
        begin.succeeded() &&
        end?.succeeded()
      ) {
        return savepoint === undefined && end.outcome.result.command !== "COMMIT"
          ? Effect.fail(rolledBack())
          : value
      }
      return Effect.flatMap(Effect.exit(answerOf(answer)), (synced) => {
        // A statement failed: the server skipped the rest of the segment (COMMIT or the undo too)
        // and left the block failed. Roll it back so the connection (or the enclosing block) can go on.
        const failedBlock =
          savepoint === undefined ? conn.transactionStatus !== "I" : conn.transactionStatus === "E"
        const finish = finishTransaction(begin, value, synced, end, savepoint)
        if (!failedBlock || conn.isClosed) return finish
        const undone = queueUndoNow(core, savepoint)
        if (undone !== undefined) return Effect.fail(undone)
        return Effect.andThen(Effect.ignore(p.sync), finish)
      })
    })
  })
}

const rolledBack = () =>
  new StatementRejected({
    reason: "TransactionRolledBack",
    message: "the transaction was rolled back"
  })

/** The block's outcome when a step did not succeed: the first error in order (BEGIN, body, sync, COMMIT). */
const finishTransaction = <A, E>(
  begin: HandleState,
  value: Exit.Exit<A, E>,
  synced: Exit.Exit<TransactionStatus, PgServerError | PgClientError>,
  end: HandleState | undefined,
  savepoint: string | undefined
): Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError> =>
  Effect.gen(function* () {
    const begun = yield* Effect.exit(begin)
    if (begun._tag === "Failure") return yield* Effect.failCause(begun.cause)
    if (value._tag === "Failure") return yield* Effect.failCause(value.cause)
    // A statement the body queued but did not read: the sync reports it (COMMIT was only skipped).
    if (synced._tag === "Failure") return yield* Effect.failCause(synced.cause)
    const committed = yield* Effect.exit(end!)
    if (committed._tag === "Failure") return yield* Effect.failCause(committed.cause)
    if (savepoint === undefined && committed.value.command !== "COMMIT")
      return yield* Effect.fail(rolledBack())
    return value.value
  })

/** Queues what undoes the transaction now: ROLLBACK, or ROLLBACK TO and RELEASE of the savepoint. */
const queueUndoNow = (core: Core, savepoint: string | undefined): PgClientError | undefined => {
  if (savepoint === undefined) {
    const rollback = core.queueNow("rollback")
    return rollback instanceof HandleState ? undefined : rollback
  }
  const back = core.queueNow(`rollback to savepoint ${savepoint}`)
  if (!(back instanceof HandleState)) return back
  const release = core.queueNow(`release savepoint ${savepoint}`)
  return release instanceof HandleState ? undefined : release
}
