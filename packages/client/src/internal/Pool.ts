/**
 * Pool: the connections of one PgClient layer, and who may use which.
 *
 * Two kinds of use:
 * - shared: a statement (or a one-segment batch) with its own Sync. It goes to an idle connection
 *   when there is one, else a new connection is opened (up to `max`), and once `max` are open it
 *   is pipelined onto the least loaded one (implicit pipelining: it shares the round trip, not
 *   the errors). A long statement therefore delays others only when every connection is busy.
 * - exclusive (a lease): reserve, a transaction, a pipeline scope. The leased connection gets no
 *   shared statements until it is returned; returning it waits for what is in flight and rolls
 *   back a transaction block left open, or closes the connection when that cannot be done in
 *   time. No connection goes back in an unknown state. The one exception to "no shared
 *   statements": when every connection is leased and one lease is a pipeline, a shared statement
 *   may run on it between its segments (outside a transaction block), so `{ max: 1 }` keeps the
 *   single-connection behaviour.
 *
 * Connections that close are dropped (the statements they were running fail with ConnectionLost,
 * saying whether they may have run; callers retry only those that cannot have); new ones are
 * opened on demand, and `min` are kept open. Idle connections above `min` close after
 * `idleTimeout`, every connection after `maxLifetime` (once it is idle). Closing the pool fails
 * the waiters, gives statements in flight `closeTimeout` to finish, then closes every connection.
 *
 * Synchronous and callback-based like Connection; PgClient wraps it in Effects. It opens sessions
 * through the `open` effect it is given and never touches sockets itself.
 */
import type { PgServerError } from "@pgline/transport"
import { type Context, Effect, Exit, Fiber, Metric, Scope } from "effect"
import { AcquireTimeout, ConnectionLost, type PgClientError, type PgConnectError } from "../PgClientError.ts"
import type { Connection } from "./Connection.ts"
import { runCloseNamed, runStatement, settle } from "./run.ts"

export interface PoolOptions {
  readonly max: number
  readonly min: number
  /** Milliseconds an idle connection above `min` stays open. */
  readonly idleTimeout: number
  /** Milliseconds after which a connection is closed once it is idle (0: never). */
  readonly maxLifetime: number
  /** Milliseconds a caller waits for a connection before AcquireTimeout. */
  readonly acquireTimeout: number
  /** Milliseconds statements in flight may take to finish when the pool closes. */
  readonly closeTimeout: number
  /**
   * Whether shared statements may be pipelined onto a busy connection once `max` are open. Off,
   * each waits for a connection with nothing in flight (a classic pool).
   */
  readonly multiplex: boolean
}

export type LeaseKind = "reserve" | "transaction" | "pipeline" | "stream" | "copy" | "script"

/** One connection of the pool with its bookkeeping. */
export class Pooled {
  readonly conn: Connection
  readonly scope: Scope.Closeable
  readonly expiresAt: number
  lastUsed: number
  lease: LeaseKind | undefined = undefined
  /** Past its lifetime (or the pool is closing): gets no new work, closes once idle. */
  retiring = false
  constructor(conn: Connection, scope: Scope.Closeable, maxLifetime: number) {
    this.conn = conn
    this.scope = scope
    const now = Date.now()
    this.lastUsed = now
    // Up to 10% earlier, so connections opened together do not all close together.
    this.expiresAt =
      maxLifetime > 0 ? now + maxLifetime * (0.9 + Math.random() * 0.1) : Number.POSITIVE_INFINITY
  }
  /** Shared waiters handed this connection that have not queued their statement yet. */
  claims = 0
  /** Steps in flight, counting a handed-out waiter as the two steps (statement, Sync) it will add. */
  get load(): number {
    return this.conn.engine.pending + 2 * this.claims
  }
}

interface Waiter {
  readonly exclusive: LeaseKind | undefined
  readonly since: number
  /** performance.now() after which it fails with AcquireTimeout. */
  readonly deadline: number
  readonly resume: (result: Pooled | PgClientError | PgServerError) => void
}

/**
 * A pool's metrics, named after OpenTelemetry's database client conventions and labelled with the
 * pool's name: connections by state (idle, used), the configured maximum, callers waiting, and the
 * time a caller waited for a connection (seconds; only callers that had to wait).
 */
const makeMetrics = (pool: string) => {
  const attributes = { "db.client.connection.pool.name": pool }
  const count = (state: string) =>
    Metric.gauge("db.client.connection.count", {
      description: "connections of a pgline pool by state",
      attributes: { ...attributes, "db.client.connection.state": state }
    })
  return {
    idle: count("idle"),
    used: count("used"),
    max: Metric.gauge("db.client.connection.max", { description: "the pool's max", attributes }),
    pending: Metric.gauge("db.client.connection.pending_requests", {
      description: "callers waiting for a connection",
      attributes
    }),
    waitTime: Metric.histogram("db.client.connection.wait_time", {
      description: "seconds a caller waited for a connection (callers served at once are not counted)",
      attributes,
      boundaries: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    })
  }
}

export class Pool {
  readonly connections: Array<Pooled> = []
  private opening = 0
  private readonly openingFibers = new Set<Fiber.Fiber<unknown, unknown>>()
  private readonly waiters: Array<Waiter> = []
  private closed = false
  /** Failed opening attempts in a row, and when the next may start (performance.now()). */
  private failures = 0
  private retryAt = 0
  /**
   * The last failed opening attempt since the last one that succeeded: what AcquireTimeout says
   * (callers that waited for good otherwise never learn why no connection came).
   */
  private lastFailure: { readonly at: number; readonly error: PgConnectError | PgServerError } | undefined =
    undefined
  private readonly options: PoolOptions
  private readonly open: Effect.Effect<Pooled, PgConnectError | PgServerError>
  private readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  private readonly context: Context.Context<never>
  private readonly metrics: ReturnType<typeof makeMetrics>
  private readonly registrations: Array<{ readonly remove: () => void }>
  /** Waiters for a shared connection (the rest wait for a lease). */
  private sharedWaiters = 0
  readonly name: string

  constructor(
    options: PoolOptions,
    open: Effect.Effect<Pooled, PgConnectError | PgServerError>,
    context: Context.Context<never>,
    name: string
  ) {
    this.options = options
    this.open = open
    this.context = context
    this.name = name
    this.fork = Effect.runForkWith(context)
    this.metrics = makeMetrics(name)
    this.metrics.max.updateUnsafe(options.max, context)
    this.registrations = this.register()
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Adds a connection opened by the caller (the first one, opened while the layer is built). */
  add(pooled: Pooled): void {
    this.connections.push(pooled)
  }

  /** The connection closed under us: drop it; waiters may need a new one. */
  lost(pooled: Pooled): void {
    if (this.connections.includes(pooled)) this.retire(pooled)
  }

  /** Some parameters of any open connection (server_version, …): the oldest open one's. */
  get parameters(): ReadonlyMap<string, string> {
    return this.connections[0]?.conn.parameters ?? new Map()
  }

  /** The usable connection with the least in flight (the first idle one when there is one). */
  private leastLoaded(): Pooled | undefined {
    let best: Pooled | undefined
    for (const p of this.connections) {
      if (p.lease !== undefined || p.retiring || p.conn.isClosed) continue
      const load = p.load
      if (load === 0) return p
      if (best === undefined || load < best.load) best = p
    }
    return best
  }

  /**
   * A connection for a shared statement now, or undefined when the caller must wait (a new
   * connection is being opened, or every connection is leased).
   */
  shared(): Pooled | undefined {
    // A classic pool serves callers in arrival order: a newcomer queues behind waiters.
    if (!this.options.multiplex && this.waiters.length > 0) return undefined
    const best = this.leastLoaded()
    if (best !== undefined && best.load === 0) return best
    if (this.canSpawn()) {
      this.spawn()
      return undefined
    }
    if (!this.options.multiplex) return undefined
    // Connections being opened will take waiters: wait for one while that queue is shorter than
    // what is in flight on the least loaded open connection.
    if (best !== undefined && this.opening > 0 && 2 * this.sharedWaiters < this.opening * best.load)
      return undefined
    return best ?? this.pipelineHeld()
  }

  /** When every connection is leased: one held by a pipeline, usable between its segments. */
  private pipelineHeld(): Pooled | undefined {
    for (const p of this.connections) if (p.lease === "pipeline" && !p.conn.isClosed) return p
    return undefined
  }

  /** A connection to lease now, or undefined when the caller must wait. */
  private exclusive(kind: LeaseKind, spawn: boolean): Pooled | undefined {
    const best = this.leastLoaded()
    if (best !== undefined && best.load === 0) {
      best.lease = kind
      return best
    }
    if (this.canSpawn()) {
      if (spawn) this.spawn()
      return undefined
    }
    // Every connection is open and busy with shared statements: take the least loaded one; its
    // statements in flight finish first (each has its own Sync), then the lease's own run.
    if (best !== undefined) best.lease = kind
    return best
  }

  /** A connection leased at once when one is free (no wait, no connection opened), else undefined. */
  leaseNow(kind: LeaseKind): Pooled | undefined {
    return this.closed ? undefined : this.exclusive(kind, false)
  }

  /** Waits for a connection: shared (`kind` undefined) or leased. */
  wait(kind: LeaseKind | undefined): Effect.Effect<Pooled, PgClientError | PgServerError> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.fail(closedError())
      if (kind !== undefined) {
        const now = this.exclusive(kind, true)
        if (now !== undefined) {
          return Effect.succeed(now)
        }
      }
      // A shared caller has just been told to wait by `shared()`; asking again would open another connection.
      const since = performance.now()
      const waiting = Effect.callback<Pooled, PgClientError | PgServerError>((resume) => {
        const waiter: Waiter = {
          exclusive: kind,
          since,
          deadline: since + this.options.acquireTimeout,
          resume: (result) => resume(result instanceof Pooled ? Effect.succeed(result) : Effect.fail(result))
        }
        this.waiters.push(waiter)
        if (kind === undefined) this.sharedWaiters++
        this.armTimer()
        // A waiter may be servable already (a connection freed between the check and now).
        this.dispatch()
        return Effect.sync(() => {
          const i = this.waiters.indexOf(waiter)
          if (i >= 0) {
            this.waiters.splice(i, 1)
            if (kind === undefined) this.sharedWaiters--
          }
        })
      })
      // A shared waiter's claim ends here: its fiber queues the statement next.
      return kind === undefined
        ? Effect.map(waiting, (p) => {
            if (p.claims > 0) p.claims--
            return p
          })
        : waiting
    })
  }

  /**
   * One timer for every waiter's acquireTimeout: waiters are in arrival order, so the first one's
   * deadline is the next to come (a timer per waiter cost a setTimeout per statement under load).
   */
  private timer: ReturnType<typeof setTimeout> | undefined = undefined

  private armTimer(): void {
    if (this.timer !== undefined || this.waiters.length === 0) return
    // Every waiter has the same acquireTimeout: Infinity (wait for good) needs no timer.
    const wait = this.waiters[0]!.deadline - performance.now()
    if (Number.isFinite(wait)) this.timer = setTimeout(this.expire, Math.max(0, wait))
  }

  private readonly expire = (): void => {
    this.timer = undefined
    const now = performance.now()
    while (this.waiters.length > 0 && this.waiters[0]!.deadline <= now) {
      const w = this.waiters.shift()!
      if (w.exclusive === undefined) this.sharedWaiters--
      const failed =
        this.lastFailure !== undefined && this.lastFailure.at >= w.since ? this.lastFailure.error : undefined
      w.resume(
        new AcquireTimeout({
          message:
            `no connection within ${this.options.acquireTimeout} ms (max ${this.options.max}, ${this.connections.length} open, ${this.opening} opening, ${this.waiters.length} waiting)` +
            (failed === undefined
              ? ""
              : `; the last attempt to open one failed: ${failed._tag}: ${failed.message}`),
          timeout: this.options.acquireTimeout,
          max: this.options.max
        })
      )
    }
    this.armTimer()
  }

  /** Serves waiters in arrival order with what is available; opens connections for the rest. */
  dispatch(): void {
    if (this.waiters.length === 0) {
      this.maintain()
      return
    }
    let unserved = 0
    // Once one shared waiter cannot be served, no later one can either (serving a lease only takes
    // connections away): the rest are skipped, and the scan ends when no lease waits.
    let sharedBlocked = false
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!
      let got: Pooled | undefined
      if (w.exclusive !== undefined) got = this.exclusive(w.exclusive, false)
      else if (sharedBlocked) {
        unserved++
        i++
        continue
      } else {
        got = this.leastLoaded()
        // A busy connection only when nothing is being opened (multiplexing) or never (a classic
        // pool); the claim makes the next waiter see it as loaded.
        if (got !== undefined && got.load > 0 && (!this.options.multiplex || this.opening > 0))
          got = undefined
        if (got === undefined && this.options.multiplex && this.opening === 0) got = this.pipelineHeld()
        if (got !== undefined) {
          got.claims++
          this.sharedWaiters--
        }
      }
      if (got === undefined) {
        if (w.exclusive === undefined) {
          sharedBlocked = true
          if (this.sharedWaiters === this.waiters.length) {
            unserved += this.waiters.length - i
            break
          }
        }
        unserved++
        i++
        continue
      }
      this.waiters.splice(i, 1)
      this.metrics.waitTime.updateUnsafe((performance.now() - w.since) / 1000, this.context)
      w.resume(got)
    }
    while (unserved > this.opening && this.canSpawn()) this.spawn()
  }

  /**
   * Whether another connection may be opened: below `max`, and not within the back-off after a
   * failed attempt (so a server refusing connections is not hammered by every waiter).
   */
  private canSpawn(): boolean {
    return (
      !this.closed &&
      this.connections.length + this.opening < this.options.max &&
      performance.now() >= this.retryAt
    )
  }

  /** Opens one connection in the background; waiters get it when it is ready. */
  private spawn(): void {
    if (this.closed) return
    this.opening++
    const fiber = this.fork(
      Effect.matchEffect(this.open, {
        onFailure: (error) =>
          Effect.suspend(() => {
            this.opening--
            this.failures++
            this.lastFailure = { at: performance.now(), error }
            // Callers still waiting (some connections are open, so they are not failed here)
            // would otherwise learn the reason only from AcquireTimeout's message.
            const waiting = this.waiters.length
            // 50 ms doubling up to 2 s; the periodic check retries for waiters still queued.
            this.retryAt = performance.now() + Math.min(2000, 50 * 2 ** Math.min(this.failures - 1, 6))
            // With nothing open, nobody can be served: every waiter gets the reason.
            if (this.connections.length === 0 && this.opening === 0) {
              const waiters = this.waiters.splice(0)
              this.sharedWaiters = 0
              for (const w of waiters) w.resume(error)
            }
            this.dispatch()
            return this.waiters.length > 0 && waiting > 0
              ? Effect.logWarning(
                  `pgline: opening a connection for ${this.waiters.length} waiting caller(s) failed (${error._tag}: ${error.message}); trying again`
                )
              : Effect.void
          }),
        onSuccess: (pooled) =>
          Effect.sync(() => {
            this.opening--
            this.failures = 0
            this.lastFailure = undefined
            if (this.closed) {
              this.fork(Scope.close(pooled.scope, Exit.void))
              return
            }
            this.connections.push(pooled)
            this.dispatch()
          })
      })
    )
    this.openingFibers.add(fiber)
    fiber.addObserver(() => this.openingFibers.delete(fiber))
  }

  /** After a shared use: serve waiters that were waiting for a connection to become idle. */
  afterUse(pooled: Pooled): void {
    pooled.lastUsed = Date.now()
    if (this.waiters.length > 0) this.dispatch()
    else if (pooled.retiring && pooled.load === 0 && pooled.lease === undefined) this.retire(pooled)
  }

  /**
   * Ends a lease: waits for what is in flight, rolls back a transaction block left open, then
   * makes the connection available again (or closes it when any of that fails or takes longer
   * than `closeTimeout`).
   */
  release(pooled: Pooled): Effect.Effect<void> {
    return Effect.suspend(() => this.releaseNow(pooled) ?? Effect.void)
  }

  /**
   * `release` done now when the connection is clean (the usual case, answered from what the
   * connection knows: nothing in flight, no block open, nothing prepared under a name): undefined
   * then; else the clean-up to run.
   */
  releaseNow(pooled: Pooled): Effect.Effect<void> | undefined {
    const conn = pooled.conn
    if (
      !conn.isClosed &&
      conn.exclusiveHolder === undefined &&
      conn.engine.pending === 0 &&
      conn.transactionStatus === "I" &&
      conn.namedStatements().length === 0
    ) {
      this.back(pooled, true)
      return undefined
    }
    return this.cleanThenRelease(pooled, (ok) => this.back(pooled, ok))
  }

  /** The end of a lease: the connection is available again, or closed when `ok` is false. */
  private back(pooled: Pooled, ok: boolean): void {
    pooled.lease = undefined
    pooled.lastUsed = Date.now()
    if (!ok || this.closed || pooled.retiring) this.retire(pooled)
    else this.dispatch()
  }

  /** The slow path of `release`: wait for what is in flight, roll back, bounded by closeTimeout. */
  private cleanThenRelease(pooled: Pooled, back: (ok: boolean) => void): Effect.Effect<void> {
    const conn = pooled.conn
    const clean: Effect.Effect<boolean> = Effect.gen(function* () {
      // A pipeline or stream still holds the connection (its Scope outlived the lease): whatever
      // it sends next must fail, not reach the connection's next user.
      if (conn.isClosed || conn.exclusiveHolder !== undefined) return false
      let status = conn.transactionStatus
      if (conn.engine.pending > 0) status = (yield* settle(conn)) ?? "E"
      if (conn.isClosed) return false
      if (status !== "I") {
        const rolledBack = yield* Effect.exit(runStatement(conn, "rollback", []))
        if (!Exit.isSuccess(rolledBack) || conn.transactionStatus !== "I") return false
      }
      // Statements the lease prepared under a name (pg.prepare) go with it: the next lease could
      // not reuse their names, and nothing of one lease is left to another.
      for (const name of conn.namedStatements()) {
        if (Exit.isFailure(yield* Effect.exit(runCloseNamed(conn, name)))) return false
      }
      return true
    })
    // Bounded without interrupting the clean-up: an interrupted statement waits for the server
    // (cancel, then its Sync), which a stalled server never gives. Past the bound the connection
    // is closed, which fails whatever the clean-up still waits for.
    const bounded = Effect.callback<boolean>((resume) => {
      const fiber = this.fork(clean)
      const timer = Number.isFinite(this.options.closeTimeout)
        ? setTimeout(() => resume(Effect.succeed(false)), this.options.closeTimeout)
        : undefined
      fiber.addObserver((exit) => {
        clearTimeout(timer)
        resume(Effect.succeed(Exit.isSuccess(exit) && exit.value))
      })
    })
    return Effect.uninterruptible(Effect.flatMap(bounded, (ok) => Effect.sync(() => back(ok))))
  }

  /** Closes a connection (Terminate, then the socket) and forgets it. */
  private retire(pooled: Pooled): void {
    const i = this.connections.indexOf(pooled)
    if (i >= 0) this.connections.splice(i, 1)
    this.fork(Scope.close(pooled.scope, Exit.void))
    if (!this.closed) this.dispatch()
  }

  /** Periodic: close idle connections past idleTimeout or maxLifetime, keep `min` open. */
  reap(): void {
    if (this.closed) return
    const now = Date.now()
    for (const p of [...this.connections]) {
      if (p.conn.isClosed) {
        this.lost(p)
        continue
      }
      if (now >= p.expiresAt) p.retiring = true
      const idle = p.lease === undefined && p.load === 0
      if (!idle) continue
      if (p.retiring) this.retire(p)
      else if (this.connections.length > this.options.min && now - p.lastUsed >= this.options.idleTimeout)
        this.retire(p)
    }
    this.maintain()
    if (this.waiters.length > 0) this.dispatch()
  }

  /** Opens connections until `min` are open or opening. */
  private maintain(): void {
    while (this.canSpawn() && this.connections.length + this.opening < this.options.min) this.spawn()
  }

  /**
   * Closes the pool: new requests and waiters fail, statements in flight get `closeTimeout` to
   * finish (leases too), then every connection is closed.
   */
  close(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function* () {
      self.closed = true
      const waiters = self.waiters.splice(0)
      self.sharedWaiters = 0
      if (self.timer !== undefined) clearTimeout(self.timer)
      for (const w of waiters) w.resume(closedError())
      for (const fiber of [...self.openingFibers]) yield* Fiber.interrupt(fiber)
      const deadline = Date.now() + self.options.closeTimeout
      while (
        Date.now() < deadline &&
        self.connections.some((p) => !p.conn.isClosed && (p.load > 0 || p.lease !== undefined))
      ) {
        yield* Effect.sleep(5)
      }
      const all = self.connections.splice(0)
      for (const p of all) yield* Scope.close(p.scope, Exit.void)
      self.unregister()
    })
  }

  /** Current counts (the gauges read them when metrics are snapshotted). */
  stats(): { open: number; idle: number; inUse: number; waiting: number; opening: number } {
    let idle = 0
    for (const p of this.connections) if (p.lease === undefined && p.load === 0) idle++
    return {
      open: this.connections.length,
      idle,
      inUse: this.connections.length - idle,
      waiting: this.waiters.length,
      opening: this.opening
    }
  }

  /**
   * The gauges of connections by state and of waiting callers are read from the pool when metrics
   * are snapshotted (Metric.registerUnsafe), not pushed on every lease and release: pushing looked
   * each series up in the registry, ~1.5k instructions per gauge set, several per statement.
   */
  private register(): Array<{ readonly remove: () => void }> {
    const gauge = (metric: Metric.Metric<number, Metric.GaugeState<number>>, value: () => number) =>
      Metric.registerUnsafe(metric, this.context, {
        get: () => ({ value: value() }),
        update: () => {},
        modify: () => {}
      })
    return [
      gauge(this.metrics.idle, () => this.stats().idle),
      gauge(this.metrics.used, () => this.stats().inUse),
      gauge(this.metrics.pending, () => this.waiters.length)
    ]
  }

  /** A closed pool's gauges keep their final values, and the registry no longer holds the pool. */
  private unregister(): void {
    for (const r of this.registrations.splice(0)) r.remove()
    const s = this.stats()
    this.metrics.idle.updateUnsafe(s.idle, this.context)
    this.metrics.used.updateUnsafe(s.inUse, this.context)
    this.metrics.pending.updateUnsafe(s.waiting, this.context)
  }
}

const closedError = () =>
  new ConnectionLost({ message: "the client's layer has been closed", mayHaveRun: false })
