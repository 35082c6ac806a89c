/**
 * The pool behind PgClient.layer against a real server: `max` is respected (distinct backend
 * pids), a short statement does not wait behind another fiber's long one while a connection is
 * free, AcquireTimeout when every connection is held, broken connections replaced without
 * resending a statement that may have run, `min` / `idleTimeout` / `maxLifetime`, closing the
 * layer (statements in flight finish within `closeTimeout`, then every backend is gone), the
 * pool's metrics, and pipelines holding a connection of their own while other fibers go on.
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import {
  Cause,
  ConfigProvider,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Scope,
  Stream,
  Tracer
} from "effect"
import { PgClient, type Pipeline, type QueryResult } from "@pgline/client"
import { backendsOf, eventually, poolClient, untilRunning } from "./support/pool.ts"
import { errorOf, within } from "./support/pipeline.ts"
import { stallProxy } from "./support/stallProxy.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("the pool", (it) => {
  it.effect(
    "a connection attempt the server never answers is bounded: the pool serves again once it answers",
    () =>
      Effect.gen(function* () {
        const proxy = yield* stallProxy
        // No connect_timeout: the attempt is bounded by acquireTimeout (at least 2 s).
        const { pg } = yield* poolClient({ url: proxy.url, max: 1, acquireTimeout: 1000 })
        yield* pg.query("select 1")
        proxy.setMode("stall")
        proxy.cut()
        // The cut connection is seen closed first (ConnectionLost), then the attempt to open one
        // hangs (AcquireTimeout, counting it), then its bound ends it (PgConnectError, Timeout).
        const seen: Array<string> = []
        yield* eventually(
          Effect.map(Effect.flip(pg.query("select 1")), (e) => {
            seen.push(e._tag === "PgConnectError" ? `${e._tag} ${e.reason}` : e._tag)
            if (e._tag === "AcquireTimeout") expect(e.message).toContain("1 opening")
            return e._tag === "PgConnectError"
          }),
          20_000,
          "the attempt's bound"
        )
        expect(seen).toContain("AcquireTimeout")
        expect(seen.at(-1)).toBe("PgConnectError Timeout")
        proxy.setMode("forward")
        // The stalled attempt ends (connect_timeout) and the next one is answered.
        yield* eventually(
          Effect.map(Effect.exit(pg.query("select 2 as two")), (exit) => exit._tag === "Success"),
          15_000,
          "the pool serving again"
        )
        expect((yield* pg.query("select 3 as three")).rows).toEqual([{ three: 3 }])
      }),
    { timeout: 60_000 }
  )

  it.effect("max is respected: 60 concurrent statements on max 4 use exactly 4 backends", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 4 })
      const observer = (yield* poolClient({ max: 1 })).pg
      const pids = yield* within(20_000)(
        Effect.all(
          Array.from({ length: 60 }, () =>
            Effect.map(
              pg.query<{ pid: number }>("select pg_backend_pid() as pid, pg_sleep(0.05)"),
              (r) => r.rows[0]!.pid
            )
          ),
          { concurrency: "unbounded" }
        )
      )
      expect(new Set(pids).size).toBe(4)
      expect(pg.stats().open).toBe(4)
      expect((yield* backendsOf(observer, app)).length).toBe(4)
    })
  )

  it.effect(
    "a short statement does not wait behind another fiber's long one while a connection is free",
    () =>
      Effect.gen(function* () {
        const { pg, app } = yield* poolClient({ max: 2 })
        const observer = (yield* poolClient({ max: 1 })).pg
        const sleeper = yield* Effect.forkChild(pg.query("select pg_sleep(3) as hol_sleep"))
        yield* untilRunning(observer, app, "hol_sleep")
        const { rows } = yield* within(2_500)(pg.query("select 1 as one"))
        expect(rows).toEqual([{ one: 1 }])
        // It answered while the long statement was still running on the other connection.
        expect(sleeper.pollUnsafe()).toBeUndefined()
        yield* Fiber.interrupt(sleeper)
      })
  )

  it.effect("multiplex: false is a fair classic pool: callers are served in arrival order", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2, multiplex: false })
      const completions: Array<readonly [number, number]> = []
      const pids = new Set<number>()
      yield* within(30_000)(
        Effect.all(
          Array.from({ length: 16 }, (_, caller) =>
            Effect.gen(function* () {
              for (let n = 1; n <= 4; n++) {
                const r = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid, pg_sleep(0.002)")
                pids.add(r.rows[0]!.pid)
                completions.push([caller, n])
              }
            })
          ),
          { concurrency: "unbounded" }
        )
      )
      // Never more than one statement per connection: two backends served everything.
      expect(pids.size).toBe(2)
      // First come, first served: every caller's first statement completes before any caller's third.
      const firstThird = completions.findIndex(([, n]) => n === 3)
      for (let caller = 0; caller < 16; caller++) {
        expect(completions.findIndex(([c, n]) => c === caller && n === 1)).toBeLessThan(firstThird)
      }
    })
  )

  it.effect("AcquireTimeout when every connection is held, and nothing was sent", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, acquireTimeout: 200 })
      yield* pg.query("create table acquire_probe (v int)")
      const error = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("select 1")
          return yield* errorOf(pg.query("insert into acquire_probe values (1)"))
        })
      )
      expect(error).toMatchObject({ _tag: "AcquireTimeout", timeout: 200, max: 1 })
      expect((yield* pg.query("select count(*)::int as n from acquire_probe")).rows).toEqual([{ n: 0 }])
      // Reserve and transactions wait the same way.
      const reserveError = yield* Effect.scoped(
        Effect.gen(function* () {
          yield* pg.reserve
          return yield* errorOf(pg.withTransaction(pg.query("select 1")))
        })
      )
      expect(reserveError._tag).toBe("AcquireTimeout")
    })
  )

  it.effect(
    "AcquireTimeout says why no new connection came while others are held; failed attempts are logged",
    () =>
      Effect.gen(function* () {
        const { pg: admin } = yield* poolClient({ max: 1 })
        yield* admin.query("create role pool_limited login connection limit 1")
        const logged: Array<string> = []
        const capture = Logger.make(({ message }) => {
          logged.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        const { pg } = yield* poolClient({ max: 3, acquireTimeout: 1500, user: "pool_limited" }).pipe(
          Effect.provide(Logger.layer([capture]))
        )
        const error = yield* Effect.scoped(
          Effect.gen(function* () {
            const held = yield* pg.reserve
            yield* held.query("select 1")
            // A second connection is refused by the role's limit (53300) for as long as one is held.
            return yield* errorOf(Effect.scoped(Effect.flatMap(pg.reserve, (c) => c.query("select 1"))))
          })
        )
        expect(error._tag).toBe("AcquireTimeout")
        expect(error.message).toContain("the last attempt to open one failed: TooManyConnections")
        expect(
          logged.some((m) => m.includes("opening a connection") && m.includes("TooManyConnections"))
        ).toBe(true)
        // Once the held connection is back the pool serves again, and a timeout after that says nothing stale.
        expect((yield* pg.query<{ n: number }>("select 1 as n")).rows).toEqual([{ n: 1 }])
      })
  )

  it.effect("a caller waiting for a connection can be interrupted: every API leaves the queue at once", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, acquireTimeout: 60_000 })
      yield* pg.query("create table wait_probe (v int)")
      // The only connection, held until `done` (not for a fixed time).
      const held = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("select 1")
            yield* Deferred.succeed(held, undefined)
            yield* Deferred.await(done)
          })
        )
      )
      yield* Deferred.await(held)
      const waiting: Record<string, Effect.Effect<unknown, unknown>> = {
        query: pg.query("insert into wait_probe values (1)"),
        all: pg.all([pg.sql`insert into wait_probe values (2)`]),
        withTransaction: pg.withTransaction(pg.query("insert into wait_probe values (3)")),
        pipelineTransaction: pg.pipelineTransaction((p) => p.execute("insert into wait_probe values (4)")),
        withPipeline: pg.withPipeline((p) => p.execute("insert into wait_probe values (5)")),
        reserve: Effect.scoped(
          Effect.flatMap(pg.reserve, (r) => r.query("insert into wait_probe values (6)"))
        ),
        script: pg.script("insert into wait_probe values (7)"),
        stream: Stream.runDrain(pg.stream("select 8")),
        copyTo: Stream.runDrain(pg.copyTo("copy (select 9) to stdout")),
        copyFrom: pg.copyFrom("copy wait_probe from stdin", Stream.make("10\n"))
      }
      for (const [name, op] of Object.entries(waiting)) {
        // A timeout interrupts the wait; an uninterruptible wait would last until `done`, so the
        // fiber would not finish while the connection is held.
        const fiber = yield* Effect.forkChild(Effect.exit(Effect.timeout(op, 50)))
        yield* eventually(
          Effect.sync(() => fiber.pollUnsafe() !== undefined),
          10_000,
          `${name} ended while the only connection is held`
        )
        const exit = yield* Fiber.join(fiber)
        expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toMatchObject({ _tag: "TimeoutError" })
      }
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
      // Nothing was sent, and the pool serves the next caller: no lease was left behind.
      expect((yield* within(10_000)(pg.query("select count(*)::int as n from wait_probe"))).rows).toEqual([
        { n: 0 }
      ])
      const reserved = yield* within(10_000)(
        Effect.scoped(Effect.flatMap(pg.reserve, (r) => r.query("select 11 as v")))
      )
      expect(reserved.rows).toEqual([{ v: 11 }])
    })
  )

  it.effect("a broken connection is replaced: the statement on it fails typed and is not resent", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table resent_probe (v int)")
      const victim = yield* Effect.forkChild(
        Effect.flip(pg.query("insert into resent_probe select 1 from pg_sleep(5) as doomed_insert"))
      )
      yield* untilRunning(observer, app, "doomed_insert")
      const [target] = (yield* backendsOf(observer, app)).filter((r) => r.query.includes("doomed_insert"))
      yield* observer.query("select pg_terminate_backend($1::int)", [target!.pid])
      const error = yield* within(5_000)(Fiber.join(victim))
      expect(["AdminShutdown", "ConnectionLost"]).toContain(error._tag)
      // Not resent on another connection: it may have run (here it was aborted), so it is not ours to redo.
      expect((yield* pg.query("select count(*)::int as n from resent_probe")).rows).toEqual([{ n: 0 }])
      // Later work runs on the remaining or a new connection; the dead backend is never used again.
      const pids = yield* Effect.all(
        Array.from({ length: 10 }, () =>
          Effect.map(
            pg.query<{ pid: number }>("select pg_backend_pid() as pid, pg_sleep(0.02)"),
            (r) => r.rows[0]!.pid
          )
        ),
        { concurrency: "unbounded" }
      )
      expect(pids).not.toContain(target!.pid)
      expect(pg.stats().open).toBeLessThanOrEqual(2)
    })
  )

  it.effect(
    "a shared statement waiting on a connection that is lost before it is written runs on a new one",
    () =>
      Effect.gen(function* () {
        // max 1: the only connection is held by a pipeline, so a shared statement queues on it
        // (waiting for the pipeline's segment to end) and has not been written when it dies.
        const { pg, app } = yield* poolClient({ max: 1 })
        const observer = (yield* poolClient({ max: 1 })).pg
        const holder = yield* Effect.forkChild(
          Effect.flip(pg.withPipeline((p) => p.execute("select pg_sleep(5) as held_by_pipeline")))
        )
        yield* untilRunning(observer, app, "held_by_pipeline")
        const [target] = yield* backendsOf(observer, app)
        const waiting = yield* Effect.forkChild(pg.query<{ pid: number }>("select pg_backend_pid() as pid"))
        yield* Effect.sleep(100)
        yield* observer.query("select pg_terminate_backend($1::int)", [target!.pid])
        expect(["AdminShutdown", "ConnectionLost"]).toContain((yield* within(5_000)(Fiber.join(holder)))._tag)
        // It cannot have run on the dead backend, so it was sent on the pool's new connection.
        const { rows } = yield* within(10_000)(Fiber.join(waiting))
        expect(rows[0]!.pid).not.toBe(target!.pid)
        expect((yield* backendsOf(observer, app)).map((r) => r.pid)).toEqual([rows[0]!.pid])
      })
  )

  it.effect("min connections are opened and kept; idle ones above min close after idleTimeout", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 5, min: 2, idleTimeout: 300 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* eventually(
        Effect.sync(() => pg.stats().open === 2),
        5_000,
        "two connections open"
      )
      yield* Effect.all(
        Array.from({ length: 20 }, () => pg.query("select pg_sleep(0.1)")),
        { concurrency: "unbounded" }
      )
      expect(pg.stats().open).toBe(5)
      yield* eventually(
        Effect.sync(() => pg.stats().open === 2),
        10_000,
        "back to min"
      )
      yield* eventually(
        Effect.map(backendsOf(observer, app), (rows) => rows.length === 2),
        5_000,
        "two backends on the server"
      )
    })
  )

  it.effect("maxLifetime: a connection is replaced once idle after its lifetime", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, maxLifetime: 300 })
      const pidNow = Effect.map(
        pg.query<{ pid: number }>("select pg_backend_pid() as pid"),
        (r) => r.rows[0]!.pid
      )
      const first = yield* pidNow
      yield* eventually(
        Effect.map(pidNow, (pid) => pid !== first),
        10_000,
        "a new backend after maxLifetime"
      )
    })
  )

  it.effect("closing the layer lets a statement in flight finish, then every backend is gone", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const observer = (yield* poolClient({ max: 1 })).pg
      const app = `pgline_pool_close_${process.pid}`
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        PgClient.layer({
          url: info.url,
          sslmode: "disable",
          applicationName: app,
          max: 3,
          closeTimeout: 5_000
        }),
        scope
      ).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))
      const pg = Context.get(ctx, PgClient)
      const inFlight = yield* Effect.forkDetach(pg.query("select pg_sleep(0.3) as closing_sleep, 7 as seven"))
      yield* untilRunning(observer, app, "closing_sleep")
      yield* within(10_000)(Scope.close(scope, Exit.void))
      expect((yield* Fiber.join(inFlight)).rows).toEqual([{ closing_sleep: "", seven: 7 }])
      yield* eventually(
        Effect.map(backendsOf(observer, app), (rows) => rows.length === 0),
        5_000,
        "no backends left"
      )
      // After the layer closed, nothing is sent.
      expect(yield* errorOf(pg.query("select 1"))).toMatchObject({
        _tag: "ConnectionLost",
        mayHaveRun: false
      })
    })
  )

  it.effect(
    "closing the layer is bounded: a statement longer than closeTimeout fails with ConnectionLost",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const observer = (yield* poolClient({ max: 1 })).pg
        const app = `pgline_pool_close_bounded_${process.pid}`
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(
          PgClient.layer({ url: info.url, sslmode: "disable", applicationName: app, closeTimeout: 200 }),
          scope
        ).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))
        const pg = Context.get(ctx, PgClient)
        const inFlight = yield* Effect.forkDetach(
          Effect.flip(pg.query("select pg_sleep(30) as endless_sleep"))
        )
        yield* untilRunning(observer, app, "endless_sleep")
        yield* within(5_000)(Scope.close(scope, Exit.void))
        expect(yield* within(5_000)(Fiber.join(inFlight))).toMatchObject({
          _tag: "ConnectionLost",
          mayHaveRun: true
        })
        // The server notices the closed socket once the sleep checks for interrupts; end it sooner.
        yield* observer.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
          [app]
        )
      })
  )

  it.effect("a connection that cannot be rolled back within closeTimeout is closed, not reused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, closeTimeout: 300 })
      const pid = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("begin")
          // The backend stops answering (frozen), so the ROLLBACK at the scope's end cannot finish.
          process.kill(conn.processId, "SIGSTOP")
          return conn.processId
        })
      ).pipe(within(5_000))
      process.kill(pid, "SIGCONT")
      const next = (yield* within(5_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
        .rows[0]!.pid
      expect(next).not.toBe(pid)
    })
  )

  it.effect.each(["synced", "unsynced"])(
    "a failed pipeline (%s) on a backend that stopped answering ends within cancelGrace",
    (variant) =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1, closeTimeout: 300, cancelGrace: 300 })
        let pid = 0
        const exit = yield* Effect.exit(
          within(5_000)(
            pg.withPipeline((p) =>
              Effect.gen(function* () {
                yield* p.execute("begin")
                const handle = yield* p.execute<{ pid: number }>("select pg_backend_pid() as pid")
                // Synced: the block is open and the pipeline's ROLLBACK of it cannot be answered;
                // unsynced: the pipeline's final Sync cannot be.
                if (variant === "synced") yield* p.sync
                pid = (yield* handle).rows[0]!.pid
                process.kill(pid, "SIGSTOP")
                return yield* Effect.fail("no commit")
              })
            )
          ).pipe(Effect.ensuring(Effect.sync(() => pid > 0 && process.kill(pid, "SIGCONT"))))
        )
        expect(Exit.isFailure(exit) && Cause.findErrorOption(exit.cause)).toMatchObject({
          value: "no commit"
        })
        const next = (yield* within(5_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
          .rows[0]!.pid
        expect(next).not.toBe(pid)
      })
  )

  it.effect("the pool publishes its counts as Effect metrics, labelled with its name", () =>
    Effect.gen(function* () {
      const state = (name: string, id: string, extra: Record<string, string> = {}) =>
        Effect.map(
          Metric.snapshot,
          (all) =>
            all.find(
              (m) =>
                m.id === id &&
                m.attributes?.["db.client.connection.pool.name"] === name &&
                Object.entries(extra).every(([k, v]) => m.attributes?.[k] === v)
            )?.state as { value?: number; count?: number } | undefined
        )
      const counts = (name: string) =>
        Effect.all({
          idle: state(name, "db.client.connection.count", { "db.client.connection.state": "idle" }),
          used: state(name, "db.client.connection.count", { "db.client.connection.state": "used" }),
          pending: state(name, "db.client.connection.pending_requests")
        })
      const { pg } = yield* poolClient({ max: 3, min: 3, poolName: "metrics_probe" })
      yield* eventually(
        Effect.sync(() => pg.stats().open === 3),
        5_000,
        "three open"
      )
      // One caller has to wait: all three connections are reserved until it is queued.
      const waiter = yield* Effect.scoped(
        Effect.gen(function* () {
          yield* Effect.all([pg.reserve, pg.reserve, pg.reserve])
          const fiber = yield* Effect.forkDetach(pg.query("select 1 as one"))
          yield* eventually(
            Effect.sync(() => pg.stats().waiting === 1),
            5_000,
            "one waiting"
          )
          // The gauges are read from the pool when metrics are snapshotted: exact at any moment.
          expect(yield* counts("metrics_probe")).toEqual({
            idle: { value: 0 },
            used: { value: 3 },
            pending: { value: 1 }
          })
          return fiber
        })
      )
      expect((yield* Fiber.join(waiter)).rows).toEqual([{ one: 1 }])
      yield* eventually(
        Effect.sync(() => pg.stats().idle === 3),
        5_000,
        "three idle"
      )
      expect(yield* counts("metrics_probe")).toEqual({
        idle: { value: 3 },
        used: { value: 0 },
        pending: { value: 0 }
      })
      expect(yield* state("metrics_probe", "db.client.connection.max")).toMatchObject({ value: 3 })
      expect(yield* state("metrics_probe", "db.client.connection.wait_time")).toMatchObject({ count: 1 })

      // A closed pool's series stay, at their final values.
      const scope = yield* Scope.make()
      const closing = (yield* Scope.provide(
        poolClient({ max: 2, min: 2, poolName: "metrics_closed" }),
        scope
      )).pg
      yield* eventually(
        Effect.sync(() => closing.stats().open === 2),
        5_000,
        "two open"
      )
      const held = yield* Scope.provide(closing.reserve, scope)
      expect((yield* held.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      expect(yield* counts("metrics_closed")).toEqual({
        idle: { value: 1 },
        used: { value: 1 },
        pending: { value: 0 }
      })
      yield* Scope.close(scope, Exit.void)
      expect(yield* counts("metrics_closed")).toEqual({
        idle: { value: 0 },
        used: { value: 0 },
        pending: { value: 0 }
      })
    })
  )

  it.effect("an open pipeline holds a connection of its own: other fibers' statements go on", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 3 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const slow = yield* p.execute("select pg_sleep(2) as pipe_sleep")
          yield* p.flush
          yield* untilRunning(observer, app, "pipe_sleep")
          // Another fiber, while the pipeline's segment is in flight.
          const other = yield* within(1_500)(
            Effect.forkChild(pg.query("select 2 as two")).pipe(Effect.flatMap(Fiber.join))
          )
          expect(other.rows).toEqual([{ two: 2 }])
          yield* p.sync
          expect((yield* slow).rows).toHaveLength(1)
        })
      )
    })
  )

  // With a tracing backend installed the blocks take their scoped, traced path: both must end alike.
  const tracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })
  const tracings = ["untraced", "traced"]
  const traceFor =
    (tracing: string) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      tracing === "traced" ? Effect.withTracer(effect, tracer) : effect

  it.effect.each(tracings)(
    "%s: a block that throws instead of returning an Effect dies, and its connection goes back to the pool",
    (tracing) =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const trace = traceFor(tracing)
        const boom = () => {
          throw new Error("boom")
        }
        const blocks: Record<string, Effect.Effect<unknown, unknown>> = {
          withPipeline: pg.withPipeline(boom),
          pipelineTransaction: pg.pipelineTransaction(boom),
          pipeline: Effect.scoped(Effect.flatMap(pg.pipeline, boom)),
          reserve: Effect.scoped(Effect.flatMap(pg.reserve, boom))
        }
        for (const [name, block] of Object.entries(blocks)) {
          const exit = yield* Effect.exit(trace(block))
          expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause), name).toBe(true)
          expect(Exit.isFailure(exit) && String(Cause.squash(exit.cause)), name).toContain("boom")
          // The pool's only connection is free again: a statement runs, outside any block.
          expect((yield* within(5_000)(pg.query("select 1 as one"))).rows, name).toEqual([{ one: 1 }])
          expect(pg.stats(), name).toMatchObject({ open: 1, idle: 1, inUse: 0 })
          expect((yield* pg.query("select pg_current_xact_id_if_assigned() is null as idle")).rows).toEqual([
            { idle: true }
          ])
        }
      })
  )

  it.effect.each(tracings)(
    "%s: after a block that throws, the fiber's statements never run in another fiber's transaction",
    (tracing) =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const trace = traceFor(tracing)
        const table = `pool_thrown_${tracing}`
        yield* pg.query(`create table ${table} (x int)`)
        const thrown = yield* Effect.exit(
          trace(
            pg.withPipeline((): Effect.Effect<void> => {
              throw new Error("boom")
            })
          )
        )
        expect(Exit.isFailure(thrown)).toBe(true)
        // Another fiber leases the only connection and opens a transaction that will roll back.
        const inTransaction = yield* Deferred.make<void>()
        const other = yield* Effect.forkChild(
          pg.withTransaction(
            Effect.gen(function* () {
              yield* pg.query(`insert into ${table} values (1)`)
              yield* Deferred.succeed(inTransaction, undefined)
              yield* Effect.sleep(300)
              return yield* Effect.fail("rolled back")
            })
          )
        )
        yield* Deferred.await(inTransaction)
        // This fiber's statement waits for the connection and commits on its own.
        yield* trace(pg.query(`insert into ${table} values (2)`))
        expect(Exit.isFailure(yield* Fiber.await(other))).toBe(true)
        expect((yield* pg.query(`select x from ${table} order by x`)).rows).toEqual([{ x: 2 }])
        yield* pg.query(`drop table ${table}`)
      })
  )
  it.effect.each(tracings)(
    "%s: a statement waiting for a pipeline's connection never lands in a block the pipeline left open",
    (tracing) =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const trace = traceFor(tracing)
        const table = `pool_left_open_${tracing}`
        yield* pg.query(`create table ${table} (v text)`)
        // Each block opens a transaction block, syncs it and fails without COMMIT while another
        // fiber's statement waits for the pool's only connection (held by the pipeline).
        let other: Fiber.Fiber<QueryResult, unknown> | undefined
        const leaveOpen = (p: Pipeline) =>
          Effect.gen(function* () {
            yield* p.execute("begin")
            yield* p.execute(`insert into ${table} values ('pipeline')`)
            yield* p.sync
            other = yield* Effect.forkDetach(pg.query(`insert into ${table} values ('other')`))
            yield* Effect.sleep(100)
            return yield* Effect.fail("no commit" as const)
          })
        const blocks: Record<string, Effect.Effect<unknown, unknown>> = {
          withPipeline: pg.withPipeline(leaveOpen),
          pipeline: Effect.scoped(Effect.flatMap(pg.pipeline, leaveOpen))
        }
        for (const [name, block] of Object.entries(blocks)) {
          other = undefined
          expect(Exit.isFailure(yield* Effect.exit(trace(block))), name).toBe(true)
          // The other fiber was told its insert succeeded: it committed on its own.
          expect((yield* Fiber.join(other!)).command, name).toBe("INSERT")
          expect((yield* pg.query(`select v from ${table}`)).rows, name).toEqual([{ v: "other" }])
          yield* pg.query(`delete from ${table}`)
        }
      })
  )

  it.effect(
    "a statement sent as the server ends an idle session (idle_session_timeout) is sent on another connection",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        // 150 ms each way: the statement leaves after the server timed out (and closed cleanly)
        // but before its FATAL 57P05 reaches the client, so the statement is pending when it does.
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 150 })
        const { pg } = yield* poolClient({
          url: withProxyUrl(info.url, proxy),
          max: 1,
          serverParams: { idle_session_timeout: "400" }
        })
        yield* pg.query("create table if not exists idle_ended (n int)")
        // The answer leaves the server 150 ms before it arrives: its idle clock started then.
        // Sending 325 ms after the answer is 475 ms into its idle time, 75 ms after the timeout,
        // and the FATAL arrives at 550 ms.
        yield* Effect.sleep(325)
        const inserted = yield* within(15_000)(pg.query("insert into idle_ended values (1)"))
        expect(inserted.rowCount).toBe(1)
        expect((yield* pg.query<{ n: number }>("select count(*)::int as n from idle_ended")).rows).toEqual([
          { n: 1 }
        ])
      })
  )
})
