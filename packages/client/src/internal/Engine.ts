/**
 * Engine: the connection's protocol state machine. Callers enqueue steps in the order their
 * frames were written; the server answers in that same order, so each backend message belongs to
 * the step at the head of the queue. Steps are plain objects with callbacks (no Effect, no closure
 * per message): this is the hot path of every query and every pipelined statement.
 *
 * Server semantics it encodes (the specification, from the protocol documentation):
 * - after an ErrorResponse the server skips everything until the next Sync and sends nothing for
 *   the skipped statements: those steps are aborted here, naming the statement that failed;
 * - exactly one ReadyForQuery answers each Sync: a sync step completes on it.
 *
 * It does not encode frames (the caller does) and knows nothing about Effect.
 */
import type { BackendMessage, ErrorFields, RowDescription, TransactionStatus } from "@pgline/codec"

/** How a step ended. */
export type StepOutcome<A> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "ServerError"; readonly fields: ErrorFields }
  | { readonly _tag: "Aborted"; readonly culprit: Culprit }
  | { readonly _tag: "Lost"; readonly message: string; readonly mayHaveRun: boolean }

/** The statement whose error aborted a segment. */
export interface Culprit {
  /** Index of the failed statement within its segment (0-based), or -1 when it was the sync itself. */
  readonly index: number
  readonly fields: ErrorFields
  /**
   * The failure's tag when the client refused the statement and made the server fail it (a held
   * Bind's value: ParameterError), `fields` then being the server's error for the Bind sent instead.
   */
  readonly tag?: string | undefined
}

export interface Step {
  /** Called for every message that belongs to this step; returns true when the step is complete. */
  readonly onMessage: (m: BackendMessage) => boolean
  /** The server reported an error for this step. */
  readonly onError: (fields: ErrorFields) => void
  /** The server skipped this step because an earlier statement of the segment failed. */
  readonly onAborted: (culprit: Culprit) => void
  /** The connection was lost before the step completed. */
  readonly onLost: (message: string, mayHaveRun: boolean) => void
  /** True for a Sync step (completes on ReadyForQuery). */
  readonly isSync: boolean
  /**
   * True for a simple-query step (a Query message: a script or a COPY): it is its own Sync (one
   * ReadyForQuery ends it) and receives every message of its answer, results and copy data included.
   */
  readonly simple?: boolean
  /** Set when the client refused this step after queueing it (see Culprit.tag). */
  readonly refusedAs?: string | undefined
  /** True for steps the driver adds on its own (closing an evicted statement): not counted in segment indexes. */
  readonly internal?: boolean
  /** Position within the segment, for PipelineAborted; set by the engine. */
  segmentIndex: number
  /** Wire byte offset of this step's first frame byte, to tell whether it may have reached the server. */
  startOffset: number
  /**
   * Who queued it (one call of a statement, or a pipeline): a CancelRequest is sent for an owner
   * only while its steps are the head and the tail of the queue (see Connection.interrupt).
   */
  readonly owner?: object | undefined
}

export interface EngineHooks {
  readonly onNotice: (fields: ErrorFields) => void
  readonly onNotification: (processId: number, channel: string, payload: string) => void
  readonly onParameterStatus: (name: string, value: string) => void
  /** A message arrived with no step waiting for it: the connection's state is unknown. */
  readonly onDesync: (m: BackendMessage) => void
}

/** Engines (connections) of this process with steps waiting for the server. */
let busyEngines = 0

export class Engine {
  private queue: Array<Step> = []
  private head = 0
  /** Set after an ErrorResponse until the Sync that ends the segment. */
  private failure: Culprit | undefined = undefined
  /** Set when an error arrived for the segment still being written (no Sync queued after it yet). */
  private skipping: Culprit | undefined = undefined
  /** Statements queued since the last sync step (for segment indexes). */
  private segmentCount = 0
  transactionStatus: TransactionStatus = "I"
  private lost: { message: string } | undefined = undefined
  private readonly hooks: EngineHooks

  constructor(hooks: EngineHooks) {
    this.hooks = hooks
  }

  /** Number of steps waiting for the server. */
  get pending(): number {
    return this.queue.length - this.head
  }

  get isLost(): boolean {
    return this.lost !== undefined
  }

  enqueue(step: Step): void {
    if (this.lost !== undefined) {
      step.onLost(this.lost.message, false)
      return
    }
    if (!step.isSync && this.skipping !== undefined) {
      // The server is skipping this segment since an error it already reported: a statement
      // queued now (before the segment's Sync) will get no answer at all.
      step.segmentIndex = step.internal === true ? -1 : this.segmentCount++
      step.onAborted(this.skipping)
      return
    }
    if (step.isSync) {
      this.skipping = undefined
      step.segmentIndex = this.segmentCount
      this.segmentCount = 0
    } else if (step.internal === true) step.segmentIndex = -1
    else step.segmentIndex = this.segmentCount++
    if (this.queue.length === this.head) busyEngines++
    this.queue.push(step)
  }

  /** Called after the head of the queue moved on, while somebody waits for that (interrupts). */
  onAdvance: (() => void) | undefined = undefined

  private shift(): void {
    this.queue[this.head] = undefined as unknown as Step
    this.head++
    if (this.queue.length === this.head) busyEngines--
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    this.onAdvance?.()
  }

  /**
   * Whether a write of this connection may wait for the end of the event loop's turn: another
   * connection of the process is waiting for answers (which may arrive in this turn and resume
   * fibers that queue more here), or this one's server has frames of it to answer already (its
   * head step was written before `bytesWritten`). Never when this is the only connection at work:
   * one statement at a time is written at once.
   */
  mayWriteLater(bytesWritten: number): boolean {
    const own = this.queue.length > this.head
    if (busyEngines > (own ? 1 : 0)) return true
    const head = this.queue[this.head]
    return head !== undefined && head.startOffset < bytesWritten
  }

  /**
   * Moves the start offsets of the pending steps queued from `first` on (frames held behind a Bind
   * that went to the wire, see Connection.holdBind): a step starting in a move's [from, to) gets its
   * delta. The moves and those steps' offsets both ascend, so one pass over the held steps does it.
   */
  rebase(first: Step, moves: ReadonlyArray<Move>): void {
    let start = this.head
    for (let i = this.queue.length - 1; i >= this.head; i--) {
      if (this.queue[i] === first) {
        start = i
        break
      }
    }
    const lowest = moves[0]!.from
    let m = 0
    for (let i = start; i < this.queue.length && m < moves.length; i++) {
      const step = this.queue[i]!
      const at = step.startOffset
      if (at < lowest) continue
      while (m < moves.length && at >= moves[m]!.to) m++
      if (m < moves.length && at >= moves[m]!.from) step.startOffset = at + moves[m]!.delta
    }
  }

  /** The owner of the step the server answers next (the statement it runs or will run next). */
  get headOwner(): object | undefined {
    return this.queue[this.head]?.owner
  }

  /** The owner of the last step queued. */
  get tailOwner(): object | undefined {
    return this.queue.length > this.head ? this.queue[this.queue.length - 1]!.owner : undefined
  }

  readonly onMessage = (m: BackendMessage): void => {
    switch (m.type) {
      case "NoticeResponse":
        this.hooks.onNotice(m.fields)
        return
      case "NotificationResponse":
        this.hooks.onNotification(m.processId, m.channel, m.payload)
        return
      case "ParameterStatus":
        this.hooks.onParameterStatus(m.name, m.value)
        return
      case "ErrorResponse":
        this.onErrorResponse(m.fields)
        return
      case "ReadyForQuery":
        this.onReady(m.status)
        return
    }
    const step = this.queue[this.head]
    if (step === undefined || (step.isSync && step.simple !== true)) {
      this.hooks.onDesync(m)
      return
    }
    if (step.onMessage(m)) this.shift()
  }

  private onErrorResponse(fields: ErrorFields): void {
    const step = this.queue[this.head]
    if (step === undefined) {
      // FATAL errors (admin shutdown, idle timeouts) arrive with nothing pending; the socket closes next.
      this.hooks.onNotice(fields)
      return
    }
    if (fields.severity === "FATAL" && fields.code === "57P05") {
      // idle_session_timeout: the server ends a session only while it waits for a command with
      // none to read, so nothing queued here has started: every step is lost unsent (a pooled
      // statement is then sent on another connection, as when the socket broke before the write).
      this.fail(`the server ended the idle session: ${fields.message}`, 0)
      return
    }
    if (fields.severity === "FATAL" || fields.severity === "PANIC") {
      // The server ends the session: the statement it was running gets the server's own error
      // (AdminShutdown, …); nothing queued after it ran, and no Sync will be answered.
      // The engine is marked lost before the step hears of it: its fiber may resume at once and
      // queue more, which must fail instead of waiting for an answer that will not come.
      if (!step.isSync) this.shift()
      this.fail(`the server ended the session: ${fields.message}`, 0, () => step.onError(fields))
      return
    }
    if (step.isSync) {
      // An error raised at Sync itself (a deferred constraint checked at the implicit COMMIT).
      this.failure = { index: -1, fields }
      step.onError(fields)
      return
    }
    const culprit: Culprit =
      step.refusedAs === undefined
        ? { index: step.segmentIndex, fields }
        : { index: step.segmentIndex, fields, tag: step.refusedAs }
    this.failure = culprit
    this.shift()
    step.onError(fields)
    // Everything up to the next Sync is skipped by the server: nothing will arrive for it.
    for (;;) {
      const next = this.queue[this.head]
      if (next === undefined) {
        // No Sync queued yet: statements queued later in this segment are skipped too.
        this.skipping = culprit
        break
      }
      if (next.isSync) break
      this.shift()
      next.onAborted(culprit)
    }
  }

  private onReady(status: TransactionStatus): void {
    this.transactionStatus = status
    const step = this.queue[this.head]
    // Nothing waiting, or statements before the Sync left unanswered: not a conforming server.
    if (step === undefined || !step.isSync) {
      this.hooks.onDesync({ type: "ReadyForQuery", status })
      return
    }
    this.failure = undefined
    this.shift()
    step.onMessage({ type: "ReadyForQuery", status })
  }

  /** The first error of the segment in progress, if any. */
  get segmentFailure(): Culprit | undefined {
    return this.failure
  }

  /**
   * Fails every pending step; `bytesWritten` tells which steps may have reached the server.
   * `first` runs once the engine is marked lost, before the pending steps are failed.
   */
  fail(message: string, bytesWritten: number, first?: () => void): void {
    if (this.lost !== undefined) return
    this.lost = { message }
    if (this.queue.length > this.head) busyEngines--
    const steps = this.queue.slice(this.head)
    this.queue = []
    this.head = 0
    first?.()
    // A step whose first byte reached the socket may have run; one still in our buffer did not.
    for (const step of steps) step.onLost(message, step.startOffset < bytesWritten)
  }
}

/**
 * The last tag parsed and what it gave: the parser hands out the same string for a tag repeated
 * statement after statement ("INSERT 0 1"), so a pipelined batch parses it once.
 */
let countedTag = ""
let counted = 0
let commandTag = ""
let command = ""

/** Parses the row count out of a command tag ("INSERT 0 5" → 5, "SELECT 3" → 3, "BEGIN" → 0). */
export const rowCountOf = (tag: string): number => {
  if (tag === countedTag) return counted
  const space = tag.lastIndexOf(" ")
  const n = space < 0 ? 0 : Number(tag.slice(space + 1))
  countedTag = tag
  counted = Number.isFinite(n) ? n : 0
  return counted
}

/** Command name of a tag ("INSERT 0 5" → "INSERT"). */
export const commandOf = (tag: string): string => {
  if (tag === commandTag) return command
  const space = tag.indexOf(" ")
  commandTag = tag
  command = space < 0 ? tag : tag.slice(0, space)
  return command
}

export type { RowDescription }

/** Frames at stream offsets [from, to) moved by `delta` (see Engine.rebase). */
export interface Move {
  readonly from: number
  readonly to: number
  readonly delta: number
}
