/**
 * Streams over one connection held for their length: rows of a query read in chunks from a
 * portal, and COPY in both directions. The caller brings the connection (leased, reserved, or a
 * transaction's) and holds it with `hold`; nothing else is written to it meanwhile.
 *
 * Back-pressure, chosen per direction:
 * - rows: the statement runs as a portal read `chunkSize` rows at a time (Execute with a row limit,
 *   then Flush); the next chunk is asked for while the consumer works on the current one, so at most
 *   two chunks are held, undecoded, and handed over 64 decoded rows at a time. Stopping early sends
 *   Sync, which closes the portal: the server never produces the rows nobody reads.
 * - COPY TO: the server sends without asking, so the socket stops being read while more than
 *   HIGH_WATER bytes wait for the consumer (TCP then stops the server). Stopping early cancels the
 *   COPY and drains what is already on the way.
 * - COPY FROM: each chunk of the source is written as CopyData once fewer than HIGH_WATER bytes wait
 *   for the socket. The source's failure or the fiber's interruption sends CopyFail, so nothing is
 *   inserted and the connection stays usable; the server's error stops the source at once.
 *
 * Inside a transaction block a cancel would abort the block, so stopping early there never cancels
 * (only an interruption does, as for a statement): a row stream lets its chunk in flight finish,
 * a COPY TO is read to its end and dropped.
 */
import type { DataRow, ErrorFields } from "@pgline/codec"
import { fromErrorFields } from "@pgline/transport"
import { Cause, Effect, Exit, type Scope, Stream } from "effect"
import { ResultDecodeError, StatementRejected } from "../PgClientError.ts"
import type { FieldInfo } from "../QueryResult.ts"
import type { Connection, Outcome, OutcomeSink, StatementStep } from "./Connection.ts"
import { encodeFailure, lost, outcomeToExit } from "./outcome.ts"
import type { RunError } from "./run.ts"
import { diagnoseRow, type RowDecoder } from "./rowDecoder.ts"
import { CopyStep, type SimpleEnd } from "./simple.ts"

/** Bytes waiting (for the consumer of COPY TO, for the socket in COPY FROM) before pushing back. */
const HIGH_WATER = 1024 * 1024
const LOW_WATER = 256 * 1024
/** COPY FROM chunks above this are sent as several CopyData messages. */
const PIECE = 256 * 1024

const streamOpen = () =>
  new StatementRejected({
    reason: "StreamOpen",
    message:
      "this fiber is reading a stream on the connection: a statement issued while consuming it on the same connection would wait for the stream for good; run it after the stream, or on another connection"
  })

/**
 * Holds `conn` for the scope: statements of other fibers wait until it ends, and the holder's own
 * fiber is told (StreamOpen) instead of waiting on itself. Waiting for it can be interrupted.
 */
export const hold = (conn: Connection, owner: object): Effect.Effect<void, StatementRejected, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<void, StatementRejected>((resume) => {
      // A second stream or COPY of the fiber already holding it (one opened while consuming a
      // stream) would queue behind its own hold for good: refused like a statement would be.
      if (conn.isHolder(owner)) return resume(Effect.fail(conn.exclusiveRefusal?.() ?? streamOpen()))
      const cancel = conn.acquire(
        true,
        owner,
        () => resume(Effect.void),
        () => false,
        streamOpen
      )
      return cancel === undefined ? undefined : Effect.sync(cancel)
    }),
    () => Effect.sync(() => conn.release(owner)),
    { interruptible: true }
  )

// ---------------------------------------------------------------------------------------------
// Rows

/**
 * Rows of one Execute kept as the parser gave them, decoded only when the consumer pulls them: the
 * bytes stay in the socket's chunks (never reused), the column offsets and lengths in typed arrays.
 * Decoded rows then live only while the consumer works on them; decoded ahead of time, a chunk
 * waiting for a consumer that allocates per row (an Effect per row) outlived young-generation
 * collections and was promoted: a 1,000,000-row stream grew the heap by ~120 MiB that way, against
 * ~1 MiB decoding 64 rows at a time on demand (measured in a fresh process, chunkSize 1000).
 */
class RawBatch {
  readonly bytes: Array<Uint8Array> = []
  offsets: Int32Array
  lengths: Int32Array
  readonly columns: number
  count = 0
  read = 0

  /** Room for `capacity` rows (the chunk size) at most: the arrays start small and double. */
  private readonly capacity: number

  constructor(capacity: number, columns: number) {
    this.capacity = capacity
    this.columns = columns
    const rows = Math.min(capacity, 256)
    this.offsets = new Int32Array(rows * columns)
    this.lengths = new Int32Array(rows * columns)
  }

  push(m: DataRow): void {
    const n = this.columns
    const at = this.count * n
    if (at + n > this.offsets.length) {
      const rows = Math.min(this.capacity, Math.max(1, this.count) * 2)
      const offsets = new Int32Array(rows * n)
      const lengths = new Int32Array(rows * n)
      offsets.set(this.offsets)
      lengths.set(this.lengths)
      this.offsets = offsets
      this.lengths = lengths
    }
    for (let i = 0; i < n; i++) {
      this.offsets[at + i] = m.offsets[i]!
      this.lengths[at + i] = m.lengths[i]!
    }
    this.bytes.push(m.bytes)
    this.count++
  }
}

/**
 * The pull side both streams share: `pull` answers at once when `next` has something (or the end),
 * else waits until `wake`.
 */
abstract class Pullable<A> {
  private waiter: (() => void) | undefined

  /** What the consumer gets now: a chunk, the end (Cause.Done), a failure; undefined: nothing yet. */
  protected abstract next(): Effect.Effect<ReadonlyArray<A>, RunError | Cause.Done> | undefined

  protected wake(): void {
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      w()
    }
  }

  protected get waiting(): boolean {
    return this.waiter !== undefined
  }

  readonly pull = Effect.callback<any, RunError | Cause.Done>((resume) => {
    const now = this.next()
    if (now !== undefined) return resume(now)
    this.waiter = () => {
      const later = this.next()
      if (later !== undefined) resume(later)
    }
    return Effect.sync(() => {
      this.waiter = undefined
    })
  })
}

/** Rows handed to the consumer per pull: few enough to die young while it works on them. */
const SLICE = 64

class Cursor extends Pullable<Record<string, unknown>> {
  private readonly conn: Connection
  private readonly chunkSize: number
  private readonly owner: object
  private readonly text: string
  private readonly values: ReadonlyArray<unknown>
  /** Outside a transaction block when the stream began: a stale cached statement may be sent again. */
  private readonly idleAtStart: boolean
  /** Batches complete (their Execute answered) and not yet read to the end; the head is being read. */
  private batches: Array<RawBatch> = []
  private current: RawBatch | undefined
  private columns = -1
  private step: StatementStep | undefined
  private decoding: { readonly decodeRow: RowDecoder; readonly fields: ReadonlyArray<FieldInfo> } | undefined
  private readonly scratchOffsets: Array<number> = []
  private readonly scratchLengths: Array<number> = []
  /** An Execute is waiting for its rows. */
  private inFlight = false
  /** The portal is done (completed, failed, or the connection lost): no more Executes. */
  private complete = false
  /** The first failure (a row that cannot be decoded, the server's error): no row after it is handed over. */
  private failure: RunError | undefined
  /** Some answer to an Execute came (a row, or the portal suspended): the statement has run. */
  private answered = false
  /** The statement failed as a stale cached one: it is prepared afresh once its Sync is answered. */
  private retrying = false
  private retried = false
  private syncQueued = false
  private synced = false
  private closing = false
  private onSynced: (() => void) | undefined

  constructor(
    conn: Connection,
    chunkSize: number,
    owner: object,
    text: string,
    values: ReadonlyArray<unknown>
  ) {
    super()
    this.conn = conn
    this.chunkSize = chunkSize
    this.owner = owner
    this.text = text
    this.values = values
    this.idleAtStart = conn.transactionStatus === "I"
  }

  /** Ends the batch being filled: it joins the batches waiting for the consumer. */
  private seal(): void {
    const batch = this.current
    this.current = undefined
    if (batch !== undefined && batch.count > 0) this.batches.push(batch)
  }

  private readonly sink: OutcomeSink = {
    rawRow: (m) => {
      this.answered = true
      // After a failure (a row that could not be decoded) the rows of a chunk still on the way
      // are dropped: the consumer gets the rows before the bad one, then the error, none after.
      if (this.closing || this.failure !== undefined) return
      let batch = this.current
      if (batch === undefined) {
        if (this.columns < 0) this.columns = m.columnCount
        batch = this.current = new RawBatch(this.chunkSize, this.columns)
      }
      batch.push(m)
    },
    suspended: () => {
      this.answered = true
      this.inFlight = false
      this.seal()
      if (this.closing) return
      this.request()
      this.wake()
    },
    settle: (outcome: Outcome) => {
      this.inFlight = false
      this.seal()
      // A cached statement gone stale (DDL, DEALLOCATE) works again only when prepared afresh, as
      // pg.query does: only before any row, and outside a transaction block (where the error
      // aborted the block). The failure stays, for the consumer, if the retry cannot be sent.
      this.retrying =
        !this.retried &&
        !this.closing &&
        !this.answered &&
        this.idleAtStart &&
        this.failure === undefined &&
        outcome._tag === "ServerError" &&
        outcome.stale === true
      if (!this.retrying) this.complete = true
      if (outcome._tag !== "Done") {
        const exit = outcomeToExit(outcome, undefined, undefined)
        if (Exit.isFailure(exit as Exit.Exit<unknown, RunError>)) {
          const e = Cause.findErrorOption((exit as Exit.Failure<unknown, RunError>).cause)
          // A decode failure of an earlier row comes first.
          if (e._tag === "Some") this.failure ??= e.value
        }
      }
      if (outcome._tag === "Lost") {
        this.synced = true
        this.onSynced?.()
      } else this.sync()
      if (!this.retrying) this.wake()
    }
  }

  /** Sends the statement with its first row limit. */
  start(): RunError | undefined {
    if (this.conn.isClosed) return lost(this.conn.closeMessage, false)
    const failure = this.conn.queueStatement(this.text, this.values, this.sink, this.owner, this.chunkSize)
    if (failure !== undefined) return encodeFailure(failure)
    this.step = this.conn.takePortalStep()
    this.conn.queueFlush()
    this.inFlight = true
    return undefined
  }

  /** Asks for the next chunk once the consumer reads the last one that arrived. */
  private request(): void {
    if (this.inFlight || this.complete || this.closing || this.batches.length > 1 || this.step === undefined)
      return
    if (this.batches.length === 1 && this.batches[0]!.read === 0) return
    if (this.conn.isClosed) {
      // Lost while no Execute was waiting to hear of it: the rows already here, then the failure.
      this.complete = true
      this.failure ??= lost(this.conn.closeMessage, true, this.conn.protocolFailureReason)
      this.wake()
      return
    }
    this.inFlight = true
    this.step = this.conn.queueExecute(this.step, this.sink, this.chunkSize, this.owner)
  }

  private sync(): void {
    if (this.syncQueued || this.conn.isClosed) {
      if (!this.syncQueued) {
        this.synced = true
        this.onSynced?.()
      }
      return
    }
    this.syncQueued = true
    this.conn.queueSync((_status, error, lostInfo) => {
      if (this.retrying) {
        this.retrying = false
        if (!this.closing && error === undefined && lostInfo === undefined && this.restart()) return
      }
      if (this.failure === undefined && !this.closing) {
        if (error !== undefined) this.failure = fromErrorFields(error)
        else if (lostInfo !== undefined) this.failure = lost(lostInfo.message, true, lostInfo.protocol)
      }
      this.synced = true
      this.complete = true
      this.onSynced?.()
      this.wake()
    }, this.owner)
  }

  /** Sends the statement again, prepared afresh (see `settle`): false when it could not be sent. */
  private restart(): boolean {
    this.retried = true
    this.conn.forgetText(this.text)
    this.syncQueued = false
    this.step = undefined
    this.decoding = undefined
    this.columns = -1
    const failure = this.start()
    this.failure = failure
    return failure === undefined
  }

  /** Decodes the next rows of the head batch (up to SLICE). */
  private decode(batch: RawBatch): Effect.Effect<ReadonlyArray<Record<string, unknown>>, RunError> {
    this.decoding ??= this.step?.rowDecoding()
    const decoding = this.decoding
    if (decoding === undefined) return Effect.succeed([])
    const n = batch.columns
    const end = Math.min(batch.count, batch.read + SLICE)
    const rows: Array<Record<string, unknown>> = new Array(end - batch.read)
    const offsets = this.scratchOffsets
    const lengths = this.scratchLengths
    if (offsets.length !== n) offsets.length = n
    if (lengths.length !== n) lengths.length = n
    for (let r = batch.read, k = 0; r < end; r++, k++) {
      const base = r * n
      for (let i = 0; i < n; i++) {
        offsets[i] = batch.offsets[base + i]!
        lengths[i] = batch.lengths[base + i]!
      }
      const bytes = batch.bytes[r]!
      try {
        rows[k] = decoding.decodeRow(bytes, offsets, lengths)
      } catch (error) {
        // The rows before it are handed over first; the next pull fails (and the scope's end
        // closes the portal).
        this.complete = true
        this.batches = []
        this.current = undefined
        const found = diagnoseRow(this.conn.registry, decoding.fields, bytes, offsets, lengths)
        this.failure =
          found === undefined
            ? new ResultDecodeError({ message: String(error), column: "", typeOid: 0 })
            : new ResultDecodeError({
                message: found.error.message,
                column: found.column,
                typeOid: found.error.oid
              })
        return k > 0 ? Effect.succeed(rows.slice(0, k)) : Effect.fail(this.failure)
      }
      // Dropped as soon as decoded: the socket chunk is released once its last row is read.
      batch.bytes[r] = EMPTY
    }
    batch.read = end
    if (end === batch.count) {
      this.batches.shift()
      this.request()
    } else if (batch.read === end && this.batches.length === 1) this.request()
    return Effect.succeed(rows)
  }

  protected next(): Effect.Effect<ReadonlyArray<Record<string, unknown>>, RunError | Cause.Done> | undefined {
    const batch = this.batches[0]
    if (batch !== undefined) return this.decode(batch)
    if (this.complete) return this.failure !== undefined ? Effect.fail(this.failure) : Cause.done()
    return undefined
  }

  /**
   * Ends the portal (stopped early, failed, or interrupted): Sync, then wait for its answer. A chunk
   * still in flight is let finish; if it has not within 50 ms (the query is still producing its
   * first rows), it is cancelled, bounded by the connection's cancelGrace. Inside a transaction
   * block the cancel would abort the block, so a stream stopped early there waits for the chunk
   * (at most chunkSize rows, dropped); only an interruption cancels it, as it does a statement.
   */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const mayCancel =
      this.conn.transactionStatus === "I" || (Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause))
    return Effect.callback<void>((resume) => {
      this.closing = true
      this.batches = []
      this.current = undefined
      if (this.synced || this.conn.isClosed) return resume(Effect.void)
      let interrupt: { readonly done: () => void } | undefined
      let timer: ReturnType<typeof setTimeout> | undefined
      this.onSynced = () => {
        clearTimeout(timer)
        interrupt?.done()
        resume(Effect.void)
      }
      if (this.inFlight && mayCancel)
        timer = setTimeout(() => {
          if (!this.synced) interrupt = this.conn.interrupt(this.owner)
        }, 50)
      this.sync()
    })
  }
}

const EMPTY = new Uint8Array(0)

/** The rows of one statement as a stream read `chunkSize` rows at a time; `conn` must be held. */
export const rowStream = (
  conn: Connection,
  text: string,
  values: ReadonlyArray<unknown>,
  chunkSize: number,
  owner: object
): Effect.Effect<Stream.Stream<any, RunError>, RunError, Scope.Scope> =>
  Effect.suspend((): Effect.Effect<Stream.Stream<any, RunError>, RunError, Scope.Scope> => {
    const cursor = new Cursor(conn, chunkSize, owner, text, values)
    const failure = cursor.start()
    if (failure !== undefined) return Effect.fail(failure)
    return Effect.as(
      Effect.addFinalizer((exit) => cursor.close(exit)),
      Stream.fromPull(Effect.succeed(cursor.pull)) as Stream.Stream<any, RunError>
    )
  })

// ---------------------------------------------------------------------------------------------
// COPY

interface CopyEnd extends SimpleEnd {
  readonly tag: string | undefined
  readonly wrongKind: boolean
}

/** The refusal of a text that is not one COPY in the direction asked for. */
export const notCopy = (direction: "in" | "out") =>
  new StatementRejected({
    reason: "NotCopy",
    message:
      direction === "in"
        ? "copyFrom needs exactly one COPY … FROM STDIN statement"
        : "copyTo needs exactly one COPY … TO STDOUT statement"
  })

/** The outcome of a COPY command once its ReadyForQuery (or the connection's loss) arrived. */
const endExit = (
  conn: Connection,
  direction: "in" | "out",
  end: CopyEnd
): Effect.Effect<number, RunError> => {
  if (end.error !== undefined) return Effect.fail(fromErrorFields(end.error))
  if (end.lost !== undefined)
    return Effect.fail(lost(end.lost.message, end.lost.mayHaveRun, conn.protocolFailureReason))
  if (end.wrongKind) return Effect.fail(notCopy(direction))
  const tag = end.tag ?? ""
  const space = tag.lastIndexOf(" ")
  return Effect.succeed(space < 0 ? 0 : Number(tag.slice(space + 1)) || 0)
}

/** The feeding stops: the server failed or ended the COPY. */
class Stop {
  readonly _tag = "Stop"
}
const stop = new Stop()

/** Tracks one COPY command: copy mode began, the server failed it, the command ended. */
class CopyState {
  started = false
  serverFailed: ErrorFields | undefined
  end: CopyEnd | undefined
  /** Set when the feeder gave up before copy mode began: fail the copy as soon as it does. */
  abandoned = false
  /**
   * A high surrogate that ended the last string chunk: its low half is the next chunk's first
   * character (a pair split between chunks), so it is sent with that chunk.
   */
  highSurrogate = ""
  private waiters: Array<() => void> = []
  readonly conn: Connection

  constructor(conn: Connection) {
    this.conn = conn
  }

  readonly events = {
    started: () => {
      this.started = true
      if (this.abandoned) this.conn.failCopyIn(false, "the COPY was interrupted")
      this.wake()
    },
    data: (_bytes: Uint8Array) => {},
    failed: (fields: ErrorFields) => {
      this.serverFailed ??= fields
      this.wake()
    },
    ended: (end: CopyEnd) => {
      this.end = end
      this.wake()
    }
  }

  wake(): void {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w()
  }

  /**
   * Fails with `stop` once the server failed or ended the COPY: raced against the feeding, so a
   * server error ends the copy even while the source waits for its next chunk. Interrupted (the
   * feeding ended first), it only stops waiting.
   */
  readonly serverStopped: Effect.Effect<never, Stop> = Effect.callback<never, Stop>((resume) => {
    const check = () => {
      if (this.serverFailed !== undefined || this.end !== undefined) resume(Effect.fail(stop))
      else this.waiters.push(check)
    }
    check()
    return Effect.sync(() => {
      const i = this.waiters.indexOf(check)
      if (i >= 0) this.waiters.splice(i, 1)
    })
  })

  /**
   * Waits until `ready()` holds. Interrupted, it cancels what the server runs (bounded by
   * cancelGrace) and waits for the command's end, so the connection is left clean.
   */
  until(ready: () => boolean, owner: object): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (ready()) return resume(Effect.void)
      const check = () => {
        if (ready()) resume(Effect.void)
        else this.waiters.push(check)
      }
      this.waiters.push(check)
      return this.stop(owner, "the COPY was interrupted")
    })
  }

  /**
   * Ends the copy early: CopyFail with `message` (once copy mode began) and a cancel, since a server
   * busy inside the COPY (a row lock, a slow trigger) would read the CopyFail only when done;
   * bounded by cancelGrace. Completes when the command has ended, so the connection is left clean.
   */
  stop(owner: object, message: string): Effect.Effect<void> {
    return Effect.callback<void>((stopped) => {
      this.abandoned = true
      if (this.started && this.end === undefined) this.conn.failCopyIn(false, message)
      if (this.end !== undefined) return stopped(Effect.void)
      const interrupt = this.conn.interrupt(owner)
      const atEnd = () => {
        if (this.end !== undefined) {
          interrupt.done()
          stopped(Effect.void)
        } else this.waiters.push(atEnd)
      }
      this.waiters.push(atEnd)
    })
  }
}

/** Why the feeder failed, for the CopyFail message (the server puts it in its error). */
const failMessage = (cause: Cause.Cause<unknown>): string => {
  if (Cause.hasInterrupts(cause)) return "the COPY was interrupted"
  const e = Cause.findErrorOption(cause)
  const message =
    e._tag === "Some" && typeof (e.value as { message?: unknown })?.message === "string"
      ? (e.value as { message: string }).message
      : "the source of the COPY failed"
  return `the source of the COPY failed: ${message}`.slice(0, 1000)
}

const invalidData = (message: string) => new StatementRejected({ reason: "InvalidCopyData", message })

const loneSurrogate = () =>
  invalidData("a COPY chunk holds a lone UTF-16 surrogate, which UTF-8 cannot carry")

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff

/** Writes one source chunk as CopyData, waiting while the socket is behind. */
const writeChunk = (
  conn: Connection,
  state: CopyState,
  chunk: unknown
): Effect.Effect<void, StatementRejected | Stop> => {
  if (state.serverFailed !== undefined || state.end !== undefined) return Effect.fail(stop)
  if (typeof chunk === "string") {
    let text = state.highSurrogate === "" ? chunk : state.highSurrogate + chunk
    state.highSurrogate = ""
    if (text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1))) {
      state.highSurrogate = text.slice(-1)
      text = text.slice(0, -1)
    }
    if (!text.isWellFormed()) return Effect.fail(loneSurrogate())
    for (let at = 0; at < text.length; ) {
      let end = Math.min(text.length, at + PIECE)
      // Never split a surrogate pair between two messages.
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--
      conn.writeCopyData(at === 0 && end === text.length ? text : text.slice(at, end))
      at = end
    }
  } else if (chunk instanceof Uint8Array) {
    if (state.highSurrogate !== "") return Effect.fail(loneSurrogate())
    for (let at = 0; at < chunk.length; at += PIECE)
      conn.writeCopyData(chunk.length <= PIECE ? chunk : chunk.subarray(at, at + PIECE))
  } else {
    return Effect.fail(invalidData(`a COPY chunk must be a Uint8Array or a string, got ${typeof chunk}`))
  }
  const wire = conn.session.wire
  if (wire.pendingBytes < HIGH_WATER) return Effect.void
  return Effect.callback<void>((resume) => {
    wire.whenBelow(LOW_WATER, () => resume(Effect.void))
  })
}

/**
 * COPY … FROM STDIN fed from `source`; `conn` must be held. The row count on success. The
 * source's failure or an interruption sends CopyFail (nothing is inserted) and is what fails the
 * effect; a server error (bad data, a constraint) stops reading the source.
 */
export const copyIn = <E, R>(
  conn: Connection,
  text: string,
  source: Stream.Stream<Uint8Array | string, E, R>,
  owner: object
): Effect.Effect<number, E | RunError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const state = new CopyState(conn)
      const step = new CopyStep(conn, "in", state.events)
      step.owner = owner
      if (conn.isClosed) return yield* Effect.fail(lost(conn.closeMessage, false))
      const refused = conn.queueQuery(text, step)
      if (refused !== undefined) return yield* Effect.fail(encodeFailure(refused))
      yield* restore(state.until(() => state.started || state.end !== undefined, owner))
      if (state.end === undefined && state.started) {
        const feed = Effect.andThen(
          Stream.runForEach(source, (chunk) => writeChunk(conn, state, chunk)),
          // The source ended on the first half of a surrogate pair.
          Effect.suspend(() => (state.highSurrogate === "" ? Effect.void : Effect.fail(loneSurrogate())))
        )
        // The server's error ends the feeding at once, not when the source next produces a chunk
        // (a silent source would hold the connection for good).
        const fed = yield* Effect.exit(restore(Effect.raceFirst(conn.asDeputy(feed), state.serverStopped)))
        const stopped =
          Exit.isFailure(fed) &&
          Cause.findErrorOption(fed.cause).pipe((e) => e._tag === "Some" && e.value === stop)
        if (Exit.isSuccess(fed) || stopped) {
          if (state.end === undefined && state.serverFailed === undefined) conn.writeCopyDone()
          // The server may take long to finish (constraints, indexes): wait as for a statement.
          yield* restore(state.until(() => state.end !== undefined, owner))
        } else {
          yield* state.stop(owner, failMessage(fed.cause))
          return yield* fed as Exit.Exit<never, E | RunError>
        }
      }
      return yield* endExit(conn, "in", state.end!)
    })
  )

/** Accumulates COPY TO output into blocks, pausing the socket while the consumer is behind. */
class CopyOut extends Pullable<Uint8Array> {
  private readonly conn: Connection
  private readonly owner: object
  private blocks: Array<Uint8Array> = []
  /**
   * The socket chunk whose CopyData payloads are being packed together in place: each payload is
   * moved down over the 5-byte headers before it, so the chunk itself becomes the block handed
   * over (no copy into a buffer of our own, no allocation per chunk).
   */
  private chunk: Buffer | undefined
  /** Where the next payload goes in `chunk`. */
  private packed = 0
  /** Where the part of `chunk` not yet handed over starts (what precedes it is the consumer's). */
  private pieceStart = 0
  /** Copies of messages the parser assembled since the last hand-over, joined into one block then. */
  private loose: Array<Uint8Array> = []
  private buffered = 0
  private paused = false
  private closing = false
  end: CopyEnd | undefined
  private onEnd: (() => void) | undefined

  constructor(conn: Connection, owner: object) {
    super()
    this.conn = conn
    this.owner = owner
  }

  /**
   * CopyData handed over by the wire without a message object (see Wire.copyDataSink), in order
   * within a chunk. The wire never reads a chunk's bytes again once handed here and never reuses
   * a chunk, and a payload only moves down over bytes already parsed, so packing in place is safe.
   */
  private readonly raw = (chunk: Buffer, start: number, end: number): void => {
    if (this.closing) return
    if (chunk !== this.chunk) {
      this.seal()
      this.chunk = chunk
      this.packed = start
      this.pieceStart = start
    } else if (this.packed !== start) {
      chunk.copyWithin(this.packed, start, end)
    }
    this.packed += end - start
    this.received(end - start)
  }

  private unhook(): void {
    const wire = this.conn.session.wire
    if (wire.copyDataSink === this.raw) wire.copyDataSink = undefined
  }

  readonly events = {
    started: () => {
      this.conn.session.wire.copyDataSink = this.raw
    },
    data: (bytes: Uint8Array) => {
      if (this.closing) return
      // A message the parser assembled (the rows that came in the same read as CopyOutResponse,
      // or one cut by a read's end before the fast path took over): its bytes are the parser's,
      // so a copy; the copies made until the next hand-over become one block.
      this.sealChunk()
      this.chunk = undefined
      this.loose.push(bytes.slice())
      this.received(bytes.length)
    },
    failed: () => {
      this.unhook()
    },
    ended: (end: CopyEnd) => {
      this.unhook()
      this.end = end
      this.onEnd?.()
      this.wake()
    }
  }

  /** Counts bytes waiting for the consumer: pauses the socket above HIGH_WATER, wakes the consumer. */
  private received(length: number): void {
    this.buffered += length
    if (this.buffered >= HIGH_WATER && !this.paused) {
      this.paused = true
      this.conn.session.wire.pauseReading()
    }
    // After the socket chunk being parsed: its rows (one CopyData each) are handed over together.
    if (this.waiting && !this.wakeQueued) {
      this.wakeQueued = true
      queueMicrotask(this.wakeLater)
    }
  }

  private wakeQueued = false
  private readonly wakeLater = () => {
    this.wakeQueued = false
    this.wake()
  }

  /**
   * Hands over what the chunk holds packed beyond what was handed over before; later payloads of
   * the same chunk are packed after it, never over it.
   */
  private seal(): void {
    // Loose copies and a packed chunk are never both pending: each hands the other over first.
    if (this.loose.length > 0) {
      this.blocks.push(this.loose.length === 1 ? this.loose[0]! : Buffer.concat(this.loose))
      this.loose = []
    }
    this.sealChunk()
  }

  private sealChunk(): void {
    if (this.chunk !== undefined && this.packed > this.pieceStart) {
      this.blocks.push(this.chunk.subarray(this.pieceStart, this.packed))
      this.pieceStart = this.packed
    }
  }

  protected next(): Effect.Effect<ReadonlyArray<Uint8Array>, RunError | Cause.Done> | undefined {
    if (this.blocks.length === 0) this.seal()
    if (this.blocks.length > 0) {
      const out = this.blocks
      this.blocks = []
      this.buffered = 0
      if (this.paused) {
        this.paused = false
        this.conn.session.wire.resumeReading()
      }
      return Effect.succeed(out)
    }
    if (this.end !== undefined) return Effect.flatMap(endExit(this.conn, "out", this.end), () => Cause.done())
    return undefined
  }

  /**
   * Stopped before the end: cancel the COPY, read and drop what is on the way, wait for its end.
   * Inside a transaction block the cancel would abort the block: there the rest of the output is
   * read and dropped instead; only an interruption cancels it, as it does a statement.
   */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const mayCancel =
      this.conn.transactionStatus === "I" || (Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause))
    return Effect.callback<void>((resume) => {
      this.closing = true
      // Draining, the fast path stays: `raw` drops each payload without a message object.
      if (mayCancel) this.unhook()
      this.blocks = []
      this.chunk = undefined
      this.loose = []
      if (this.paused) {
        this.paused = false
        this.conn.session.wire.resumeReading()
      }
      if (this.end !== undefined) return resume(Effect.void)
      const interrupt = mayCancel ? this.conn.interrupt(this.owner) : undefined
      this.onEnd = () => {
        interrupt?.done()
        resume(Effect.void)
      }
    })
  }
}

/** COPY … TO STDOUT as a stream of byte blocks; `conn` must be held. */
export const copyOut = (
  conn: Connection,
  text: string,
  owner: object
): Effect.Effect<Stream.Stream<Uint8Array, RunError>, RunError, Scope.Scope> =>
  Effect.suspend((): Effect.Effect<Stream.Stream<Uint8Array, RunError>, RunError, Scope.Scope> => {
    const out = new CopyOut(conn, owner)
    const step = new CopyStep(conn, "out", out.events)
    step.owner = owner
    if (conn.isClosed) return Effect.fail(lost(conn.closeMessage, false))
    const refused = conn.queueQuery(text, step)
    if (refused !== undefined) return Effect.fail(encodeFailure(refused))
    return Effect.as(
      Effect.addFinalizer((exit) => out.close(exit)),
      Stream.fromPull(Effect.succeed(out.pull)) as Stream.Stream<Uint8Array, RunError>
    )
  })
