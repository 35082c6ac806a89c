/**
 * Ticker: runs callbacks on the main thread at sub-millisecond deadlines without keeping a core
 * busy (for LatencyProxy, one per proxy).
 *
 * Node's timers have 1 ms granularity and overshoot by 0.1–0.7 ms, and the event loop cannot sleep
 * for less than 1 ms. So a worker thread sleeps in `Atomics.wait` (a futex with a fractional-ms
 * timeout: no polling) until shortly before the earliest deadline the main thread published in
 * shared memory, polls the clock for the last stretch, and posts a message, which wakes the main
 * thread's event loop; the main thread runs every task that is due and publishes the next deadline.
 * Both leads are learnt: the futex wakes ~0.1 ms late here, so the worker leaves it early by about
 * the 75th percentile of its own overshoot (at most 0.3 ms, so a loaded machine cannot turn it
 * into a spin), and it posts early by the message's median latency (~0.03–0.08 ms), which the main
 * thread measures. A task never runs before its due time: the main thread polls the remainder
 * when the message arrives a little early (at most `MAX_EARLY_MS`), and publishes again when it
 * arrives earlier than that (the deadline moved). Idle, the worker blocks without a timeout.
 *
 * The worker is unref'd (it never keeps the process alive) and ends with `close()`. Should it fail
 * to start or die, the ticker falls back to plain `setTimeout` (correct, but up to ~1 ms late).
 *
 * Shared memory: Int32 `SEQ`, bumped by the main thread whenever it publishes (the futex word the
 * worker waits on), and `STOP`; then Float64 slots, the deadline first, on the `process.hrtime`
 * clock in ms (each thread converts its `performance.now()` by an offset it measures), +Infinity
 * for none. Float64 slots are plain aligned 8-byte stores (not torn on 64-bit platforms), ordered
 * by the Atomics on `SEQ` where it matters; the rest are estimates and counters.
 */
import { performance } from "node:perf_hooks"
import { Worker } from "node:worker_threads"

/** A callback the ticker runs on the main thread; `fire` may arm it again (for a later time). */
export interface Timed {
  readonly fire: () => void
}

/**
 * How early the main thread may be woken and still wait (polling the clock) instead of publishing
 * the deadline again; also how close the next deadline must be for a tick to wait for it too
 * rather than go round through the worker (which costs ~0.1 ms of CPU here), for at most
 * `MAX_TICK_MS` per tick.
 */
const MAX_EARLY_MS = 0.1
const MAX_TICK_MS = 0.3
/** The worker's futex lead tracks this quantile of the futex's overshoot, capped at `MAX_LEAD_MS`. */
const LEAD_QUANTILE = 0.75
const MAX_LEAD_MS = 0.3
/** The post lead tracks the median of the message latency, capped (early wake-ups poll). */
const MAX_POST_LEAD_MS = 0.08
const POST_LEAD_STEP_MS = 0.004

// Shared memory: two Int32 slots, then Float64 slots (index into the Float64Array at byte 8).
const SEQ = 0
const STOP = 1
const DEADLINE = 0
const POST_LEAD = 1
const POSTED_AT = 2
const LEAD = 3
const POLLED = 4
const POSTS = 5
const FLOATS = 6

/**
 * `process.hrtime()` − `performance.now()` in ms in the calling thread (the sample with the
 * tightest bracket of 20): converts this thread's `performance.now()` to the shared clock. (The
 * worker computes its own the same way.)
 */
const hrOffset = (): number => {
  let best = Number.POSITIVE_INFINITY
  let offset = 0
  for (let i = 0; i < 20; i++) {
    const a = performance.now()
    const hr = process.hrtime()
    const b = performance.now()
    if (b - a < best) {
      best = b - a
      offset = hr[0] * 1e3 + hr[1] / 1e6 - (a + b) / 2
    }
  }
  return offset
}

/**
 * The worker's program: CommonJS, eval'd (no file to resolve, whatever runs the caller's
 * TypeScript). Between deadlines it only ever blocks in `Atomics.wait`.
 */
const WORKER_SOURCE = `
"use strict"
const { workerData, parentPort } = require("node:worker_threads")
const { performance } = require("node:perf_hooks")
const i32 = new Int32Array(workerData.buffer, 0, 2)
const f64 = new Float64Array(workerData.buffer, 8, ${FLOATS})
// As hrOffset in the main thread.
let offset = 0
for (let i = 0, best = Infinity; i < 20; i++) {
  const a = performance.now()
  const hr = process.hrtime()
  const b = performance.now()
  if (b - a < best) {
    best = b - a
    offset = hr[0] * 1e3 + hr[1] / 1e6 - (a + b) / 2
  }
}
const now = () => performance.now() + offset
// How early to leave the futex: tracks a quantile of its overshoot (stochastic estimate: +q step
// when it overshot by more, -(1-q) step when by less), so most wake-ups come in time and poll only
// the difference; capped, so a loaded machine (long overshoots) cannot turn it into a spin.
const QUANTILE = ${LEAD_QUANTILE}
const MAX_LEAD = ${MAX_LEAD_MS}
const STEP = 0.01
let lead = 0.15
f64[${LEAD}] = lead
for (;;) {
  const seq = Atomics.load(i32, ${SEQ})
  if (Atomics.load(i32, ${STOP}) !== 0) break
  const deadline = f64[${DEADLINE}]
  if (!(deadline < Infinity)) {
    Atomics.wait(i32, ${SEQ}, seq)
    continue
  }
  const wakeAt = deadline - lead
  let t = now()
  if (t < wakeAt) {
    if (Atomics.wait(i32, ${SEQ}, seq, wakeAt - t) === "timed-out") {
      if (now() - wakeAt > lead) lead = Math.min(lead + QUANTILE * STEP, MAX_LEAD)
      else lead = Math.max(lead - (1 - QUANTILE) * STEP, 0.02)
      f64[${LEAD}] = lead
    }
    continue
  }
  const postAt = deadline - f64[${POST_LEAD}]
  const polling = t
  while (t < postAt && Atomics.load(i32, ${SEQ}) === seq) t = now()
  f64[${POLLED}] += t - polling
  if (Atomics.load(i32, ${SEQ}) !== seq) continue
  f64[${POSTED_AT}] = t
  f64[${POSTS}]++
  parentPort.postMessage(0)
  // The main thread answers a tick by publishing (a new sequence number), unless nothing is left.
  Atomics.wait(i32, ${SEQ}, seq)
}
`

/** What the ticker's worker did so far (for benchmarks and tests). */
export interface TickerDiagnostics {
  /** False on the `setTimeout` fallback, and once closed. */
  readonly threaded: boolean
  /** How early the worker leaves its futex wait before a deadline (learnt), ms. */
  readonly leadMs: number
  /** How early the worker posts before a deadline (the learnt median message latency), ms. */
  readonly postLeadMs: number
  /** Messages posted, and the total time the worker polled the clock before posting them, ms. */
  readonly posts: number
  readonly polledMs: number
}

export class Ticker {
  /** Armed tasks and their due times (few: one per connection direction with chunks in flight). */
  private readonly tasks = new Map<Timed, number>()
  private readonly i32: Int32Array
  private readonly f64: Float64Array
  private readonly offset: number
  private worker: Worker | undefined = undefined
  private fallback: ReturnType<typeof setTimeout> | undefined = undefined
  /** The deadline the worker aims at (+Infinity: none). */
  private published = Number.POSITIVE_INFINITY
  private postLead = 0.03
  private ticking = false
  private closed = false
  private exited: Promise<void> = Promise.resolve()

  private constructor(threaded: boolean) {
    const buffer = new SharedArrayBuffer(8 + 8 * FLOATS)
    this.i32 = new Int32Array(buffer, 0, 2)
    this.f64 = new Float64Array(buffer, 8, FLOATS)
    this.f64[DEADLINE] = Number.POSITIVE_INFINITY
    this.f64[POST_LEAD] = this.postLead
    this.offset = hrOffset()
    if (!threaded) return
    try {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        name: "LatencyProxy ticker",
        workerData: { buffer }
      })
      worker.unref()
      worker.on("message", this.onMessage)
      worker.on("error", this.onWorkerGone)
      worker.on("exit", this.onWorkerGone)
      this.exited = new Promise((resolve) => worker.once("exit", () => resolve()))
      this.worker = worker
    } catch {
      this.worker = undefined
    }
  }

  /**
   * A ticker whose worker is up, or that runs on `setTimeout` if the worker could not start (or
   * with `threaded: false`, for tests).
   */
  static async start(options: { readonly threaded?: boolean } = {}): Promise<Ticker> {
    const ticker = new Ticker(options.threaded ?? true)
    const worker = ticker.worker
    if (worker !== undefined) {
      await new Promise<void>((resolve) => {
        const done = () => {
          worker.off("online", done)
          worker.off("exit", done)
          resolve()
        }
        worker.on("online", done)
        worker.on("exit", done)
      })
    }
    return ticker
  }

  diagnostics(): TickerDiagnostics {
    return {
      threaded: this.worker !== undefined && this.worker.threadId !== -1,
      leadMs: this.f64[LEAD]!,
      postLeadMs: this.postLead,
      posts: this.f64[POSTS]!,
      polledMs: this.f64[POLLED]!
    }
  }

  /** Runs `task.fire()` once, at the first tick at or after `dueAt`; replaces an earlier arming. */
  arm(task: Timed, dueAt: number): void {
    if (this.closed) return
    this.tasks.set(task, dueAt)
    if (!this.ticking && dueAt < this.published) this.publish(dueAt)
  }

  disarm(task: Timed): void {
    this.tasks.delete(task)
  }

  /** Stops the worker; armed tasks never fire. Idempotent; resolves once the thread is gone. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.tasks.clear()
      if (this.fallback !== undefined) clearTimeout(this.fallback)
      this.fallback = undefined
      const worker = this.worker
      if (worker !== undefined) {
        worker.off("message", this.onMessage)
        Atomics.store(this.i32, STOP, 1)
        Atomics.add(this.i32, SEQ, 1)
        Atomics.notify(this.i32, SEQ)
        void worker.terminate().catch(() => {})
      }
    }
    return this.exited
  }

  private earliest(): number {
    let min = Number.POSITIVE_INFINITY
    for (const dueAt of this.tasks.values()) if (dueAt < min) min = dueAt
    return min
  }

  private publish(at: number): void {
    this.published = at
    if (this.worker !== undefined) {
      this.f64[DEADLINE] = at + this.offset
      // Nothing to wait for: the worker may sleep on (it rereads the deadline whenever it wakes,
      // and the next `arm` bumps the sequence), which saves it a pointless wake-up per tick.
      if (at === Number.POSITIVE_INFINITY) return
      Atomics.add(this.i32, SEQ, 1)
      Atomics.notify(this.i32, SEQ)
      return
    }
    if (this.fallback !== undefined) clearTimeout(this.fallback)
    this.fallback = undefined
    if (at === Number.POSITIVE_INFINITY) return
    this.fallback = setTimeout(this.tick, Math.max(0, at - performance.now()))
    this.fallback.unref()
  }

  /** A tick from the worker: learn the message's latency (its median becomes the post lead). */
  private readonly onMessage = (): void => {
    const latency = performance.now() + this.offset - this.f64[POSTED_AT]!
    this.postLead =
      latency > this.postLead
        ? Math.min(this.postLead + POST_LEAD_STEP_MS / 2, MAX_POST_LEAD_MS)
        : Math.max(this.postLead - POST_LEAD_STEP_MS / 2, 0)
    this.f64[POST_LEAD] = this.postLead
    this.tick()
  }

  private readonly tick = (): void => {
    this.fallback = undefined
    if (this.closed) return
    let now = performance.now()
    let first = this.earliest()
    if (first > now + MAX_EARLY_MS) {
      // Woken well before anything is due (the deadline moved, or a timer fired early): re-aim.
      this.publish(first)
      return
    }
    // Run what is due; a deadline at most MAX_EARLY_MS away is waited for here (cheaper than
    // another round through the worker, ~0.1 ms of CPU here), for at most MAX_TICK_MS in all.
    const until = now + MAX_TICK_MS
    this.ticking = true
    try {
      do {
        while (now < first) now = performance.now()
        for (const [task, dueAt] of this.tasks) {
          if (dueAt > now) continue
          this.tasks.delete(task)
          task.fire()
          if (this.closed) return
        }
        first = this.earliest()
        now = performance.now()
      } while (first <= now + MAX_EARLY_MS && now < until)
    } finally {
      this.ticking = false
      // Also after a task threw: the worker waits for this before it times anything again.
      if (!this.closed) this.publish(this.earliest())
    }
  }

  private readonly onWorkerGone = (): void => {
    const worker = this.worker
    if (worker === undefined) return
    worker.off("message", this.onMessage)
    worker.off("error", this.onWorkerGone)
    worker.off("exit", this.onWorkerGone)
    this.worker = undefined
    // Unexpected (not close()): carry on with timers so armed tasks still fire.
    if (!this.closed) this.publish(this.earliest())
  }
}
