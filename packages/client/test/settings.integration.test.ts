/**
 * PgClient.layer's own settings at their edges: values out of range fail the layer with
 * PgConfigError naming the setting (nothing is opened), and durations of "Infinity" or beyond
 * what a timer can wait (~24.8 days) mean no limit: a caller waits for a connection, idle
 * connections stay, closing the layer lets a statement finish, an interrupted statement's
 * connection is kept. Timeouts are liveness bounds, never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientOptions } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { within } from "./support/pipeline.ts"
import { backendsOf, poolClient } from "./support/pool.ts"

/** Runs `self` and returns the TimeoutOverflowWarnings Node emitted meanwhile. */
const overflowWarnings = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const seen: Array<string> = []
      const listener = (w: Error) => {
        if (w.name === "TimeoutOverflowWarning") seen.push(w.message)
      }
      process.on("warning", listener)
      return { seen, listener }
    }),
    ({ seen }) => Effect.as(self, seen),
    ({ listener }) => Effect.sync(() => process.off("warning", listener))
  )

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("client settings", (it) => {
  it.effect("a setting out of range fails the layer with PgConfigError naming it", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, Exclude<PgClientOptions, string>]> = [
        ["max", { max: 0 }],
        ["max", { max: 1.5 }],
        ["min", { min: -1 }],
        ["min", { min: 3, max: 2 }],
        ["statementCacheSize", { statementCacheSize: Number.NaN }],
        ["statementCacheSize", { statementCacheSize: -1 }],
        ["maxMessageSize", { maxMessageSize: 0 }],
        ["acquireTimeout", { acquireTimeout: Number.NaN }],
        ["idleTimeout", { idleTimeout: -5 }],
        ["cancelGrace", { cancelGrace: "soon" as never }]
      ]
      for (const [key, settings] of cases) {
        const error = yield* Effect.flip(Effect.scoped(poolClient(settings)))
        expect(error).toMatchObject({ _tag: "PgConfigError", key, reason: "invalid-value" })
      }
    })
  )

  it.effect("acquireTimeout of Infinity or 30 days: a caller waits for the connection held", () =>
    Effect.gen(function* () {
      for (const acquireTimeout of ["Infinity", "30 days"] as const) {
        const { pg } = yield* poolClient({ max: 1, acquireTimeout })
        const held = yield* Deferred.make<void>()
        const warnings = yield* overflowWarnings(
          Effect.gen(function* () {
            const holder = yield* Effect.forkChild(
              Effect.scoped(
                Effect.flatMap(pg.reserve, () =>
                  Effect.andThen(Deferred.succeed(held, undefined), Effect.sleep(300))
                )
              )
            )
            yield* Deferred.await(held)
            const rows = (yield* within(10_000)(pg.query("select 1 as one"))).rows
            yield* Fiber.join(holder)
            expect(rows).toEqual([{ one: 1 }])
          })
        )
        expect(warnings).toEqual([])
      }
    })
  )

  it.effect("connect_timeout beyond what a timer waits (3,000,000 s) is no limit, as libpq has it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, connectTimeout: 3_000_000 })
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
    })
  )

  it.effect("statementCacheSize 0: no statement stays prepared; pg.prepare still prepares by name", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, statementCacheSize: 0 })
      for (let i = 0; i < 3; i++)
        expect((yield* pg.query("select $1::int + 1 as v", [i])).rows).toEqual([{ v: i + 1 }])
      const count = pg.query<{ n: number }>("select count(*)::int as n from pg_prepared_statements")
      expect((yield* count).rows).toEqual([{ n: 0 }])
      const named = yield* Effect.scoped(
        Effect.flatMap(pg.reserve, (c) =>
          Effect.flatMap(c.prepare("select $1::int * 2 as v"), (s) =>
            Effect.zip(
              s.execute([21]),
              c.query<{ n: number }>("select count(*)::int as n from pg_prepared_statements")
            )
          )
        )
      )
      expect(named[0].rows).toEqual([{ v: 42 }])
      expect(named[1].rows).toEqual([{ n: 1 }])
    })
  )

  it.effect("idleTimeout of Infinity keeps idle connections open", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2, idleTimeout: "Infinity" })
      yield* Effect.all([pg.query("select pg_sleep(0.1)"), pg.query("select pg_sleep(0.1)")], {
        concurrency: 2
      })
      const observer = (yield* poolClient({ max: 1 })).pg
      expect(yield* backendsOf(observer, app)).toHaveLength(2)
      // Past several of the pool's periodic checks (every 500 ms at most).
      yield* Effect.sleep(1_200)
      expect(yield* backendsOf(observer, app)).toHaveLength(2)
    })
  )

  it.effect("closeTimeout of Infinity: closing the layer lets a statement in flight finish", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { pg } = yield* Scope.provide(scope)(poolClient({ max: 1, closeTimeout: "Infinity" }))
      const running = yield* Effect.forkChild(pg.query<{ one: number }>("select pg_sleep(0.5), 1 as one"))
      yield* Effect.sleep(100)
      yield* within(20_000)(Scope.close(scope, Exit.void))
      const result = yield* Fiber.join(running)
      expect(result.rows[0]!.one).toBe(1)
    })
  )

  it.effect("cancelGrace of Infinity: an interrupted statement is cancelled and its connection kept", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, cancelGrace: "Infinity" })
      const pid = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
      const timedOut = yield* Effect.exit(Effect.timeout(pg.query("select pg_sleep(30)"), 200))
      expect(Exit.isFailure(timedOut)).toBe(true)
      const after = (yield* within(10_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
        .rows[0]!
      expect(after.pid).toBe(pid)
    })
  )
})
