/**
 * pg.listen and pg.notify against a real server: exact payloads in order, channel names quoted,
 * several streams per channel and per client, UNLISTEN and the listening connection closed when
 * the last stream ends, reconnection across pg_terminate_backend (with its warning), NOTIFY
 * delivered at COMMIT, invalid channels refused, and a notification reaching a pool connection
 * logged instead of dropped.
 *
 * A listen stream starts listening when it is first pulled, so each test first waits until its
 * streams receive a probe notification, then sends what it checks.
 */
import { expect, layer } from "@effect/vitest"
import type { Notification, PgClientApi } from "@pgline/client"
import { PgClient } from "@pgline/client"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import { Cause, ConfigProvider, Context, Effect, Exit, Fiber, Layer, Logger, Scope, Stream } from "effect"
import { errorOf, within } from "./support/pipeline.ts"
import { backendsOf, eventually, poolClient } from "./support/pool.ts"
import { stallProxy } from "./support/stallProxy.ts"

/** Collects a channel's notifications (not the probes) into an array while the returned fiber runs. */
const collect = (pg: PgClientApi, channel: string) =>
  Effect.gen(function* () {
    const seen: Array<Notification> = []
    const probes = { n: 0 }
    const fiber = yield* Effect.forkChild(
      Stream.runForEach(pg.listen(channel), (n) =>
        Effect.sync(() => {
          if (n.payload.startsWith("probe:")) probes.n++
          else seen.push(n)
        })
      )
    )
    return { seen, probes, fiber }
  })

/** Notifies probes until every collector has seen one: from then on, they all listen. */
/** listenScoped on `channel`, one NOTIFY with `payload` once listening, and the first notification. */
const notifyListening = (pg: PgClientApi, channel: string, payload: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const notifications = yield* pg.listenScoped(channel)
      yield* pg.notify(channel, payload)
      return yield* notifications.pipe(Stream.take(1), Stream.runCollect)
    })
  )

const untilListening = (
  pg: PgClientApi,
  channel: string,
  ...collectors: ReadonlyArray<{ probes: { n: number } }>
) =>
  eventually(
    Effect.andThen(
      pg.notify(channel, `probe:${Date.now()}`),
      Effect.sync(() => collectors.every((c) => c.probes.n > 0))
    ),
    10_000,
    `listening on ${channel}`
  )

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("listen", (it) => {
  it.effect(
    "the client closing while the listener's reconnection has opened its connection leaves none open",
    () =>
      Effect.gen(function* () {
        const proxy = yield* stallProxy
        const observer = (yield* poolClient({ max: 1 })).pg
        const scope = yield* Scope.make()
        const { pg, app } = yield* Scope.provide(scope)(
          poolClient({ url: proxy.url, max: 1, acquireTimeout: 20_000 })
        )
        const got: Array<string> = []
        yield* Effect.forkChild(
          Stream.runForEach(pg.listen("leak_a"), (n) => Effect.sync(() => got.push(n.payload)))
        )
        yield* eventually(
          Effect.andThen(
            observer.notify("leak_a", "p"),
            Effect.sync(() => got.length > 0)
          ),
          10_000,
          "listening"
        )
        // The reconnection's attempt stalls; a new channel's listen takes the lock and stalls too.
        proxy.setMode("stall")
        proxy.cut()
        yield* eventually(
          Effect.sync(() => proxy.stalled() === 1),
          5_000,
          "the reconnection stalled"
        )
        const other = yield* Effect.forkChild(
          Effect.exit(Stream.runCollect(Stream.take(pg.listen("leak_b"), 1)))
        )
        yield* eventually(
          Effect.sync(() => proxy.stalled() === 2),
          5_000,
          "the listen stalled"
        )
        // The reconnection's connection opens; it waits for the lock, and the client closes.
        proxy.setMode("forward")
        proxy.release(0)
        yield* eventually(
          Effect.map(backendsOf(observer, app), (r) => r.length === 1),
          5_000,
          "its backend"
        )
        yield* within(10_000)(Scope.close(scope, Exit.void))
        yield* Fiber.interrupt(other)
        yield* eventually(
          Effect.map(backendsOf(observer, app), (r) => r.length === 0),
          10_000,
          "no backend left"
        )
      }),
    { timeout: 60_000 }
  )

  it.effect(
    "while the listener reconnects into a stall, streams end and start without waiting for it",
    () =>
      Effect.gen(function* () {
        const proxy = yield* stallProxy
        const { pg } = yield* poolClient({ url: proxy.url, max: 2, acquireTimeout: 1000 })
        const direct = (yield* poolClient({ max: 1 })).pg
        const got: Array<string> = []
        const consumer = yield* Effect.forkChild(
          Stream.runForEach(pg.listen("stall_a"), (n) => Effect.sync(() => got.push(n.payload)))
        )
        yield* eventually(
          Effect.andThen(
            direct.notify("stall_a", "x"),
            Effect.sync(() => got.length > 0)
          ),
          10_000,
          "listening"
        )
        proxy.setMode("stall")
        proxy.cut()
        yield* Effect.sleep("300 millis")
        // Its stream ends at once: the lost connection needs no UNLISTEN.
        const ended = yield* Effect.exit(Effect.timeout(Fiber.interrupt(consumer), "1 second"))
        expect(ended._tag).toBe("Success")
        proxy.setMode("forward")
        // Listening works again once the server answers.
        const later = yield* Effect.timeout(
          Effect.scoped(
            Effect.gen(function* () {
              const stream = yield* pg.listenScoped("stall_b")
              yield* direct.notify("stall_b", "y")
              return yield* Stream.runCollect(Stream.take(stream, 1))
            })
          ),
          "15 seconds"
        )
        expect(Array.from(later).map((n) => n.payload)).toEqual(["y"])
      }),
    { timeout: 60_000 }
  )

  it.effect("listen after the client's layer closed fails with ConnectionLost instead of waiting", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { pg } = yield* Scope.provide(scope)(poolClient({ max: 1 }))
      yield* Scope.close(scope, Exit.void)
      const error = yield* errorOf(Stream.runHead(pg.listen("after_close")))
      expect(error).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
    })
  )

  it.effect("exact payloads, in order, with the sender's process id", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const c = yield* collect(pg, "ln_exact")
      yield* untilListening(pg, "ln_exact", c)
      const payloads = [
        "",
        "plain",
        'it\'s "quoted" \\ back',
        "ünïcødé 😀",
        "x".repeat(7999),
        "new\nline\ttab"
      ]
      for (let i = 0; i < 50; i++) payloads.push(`n${i}`)
      for (const p of payloads) yield* pg.notify("ln_exact", p)
      yield* eventually(
        Effect.sync(() => c.seen.length >= payloads.length),
        10_000,
        "every notification"
      )
      expect(c.seen.map((n) => n.payload)).toEqual(payloads)
      expect(c.seen.every((n) => n.channel === "ln_exact")).toBe(true)
      const pids = yield* Effect.scoped(Effect.map(pg.reserve, (conn) => conn.processId))
      expect(typeof pids).toBe("number")
      expect(c.seen[0]!.processId).toBeGreaterThan(0)
      yield* Fiber.interrupt(c.fiber)
    })
  )

  it.effect("channel names are quoted: case, spaces, quotes and semicolons are kept exactly", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const odd = 'Mixed Case "q"; drop table x'
      const a = yield* collect(pg, odd)
      const lower = yield* collect(pg, "mixed case")
      yield* untilListening(pg, odd, a)
      yield* untilListening(pg, "mixed case", lower)
      yield* pg.notify(odd, "for the odd one")
      yield* pg.notify("mixed case", "for the lower one")
      yield* eventually(
        Effect.sync(() => a.seen.length === 1 && lower.seen.length === 1),
        10_000,
        "both"
      )
      expect(a.seen[0]).toMatchObject({ channel: odd, payload: "for the odd one" })
      expect(lower.seen[0]).toMatchObject({ channel: "mixed case", payload: "for the lower one" })
      yield* Fiber.interrupt(a.fiber)
      yield* Fiber.interrupt(lower.fiber)
    })
  )

  it.effect(
    "several streams: each gets its channel's notifications; the last one's end closes the connection",
    () =>
      Effect.gen(function* () {
        const { pg, app } = yield* poolClient({ max: 1 })
        const observer = (yield* poolClient({ max: 1 })).pg
        const a1 = yield* collect(pg, "ln_a")
        const a2 = yield* collect(pg, "ln_a")
        const b = yield* collect(pg, "ln_b")
        yield* untilListening(pg, "ln_a", a1, a2)
        yield* untilListening(pg, "ln_b", b)
        // The pool's one connection plus one listening connection shared by all streams.
        expect((yield* backendsOf(observer, app)).length).toBe(2)
        yield* pg.notify("ln_a", "A")
        yield* pg.notify("ln_b", "B")
        yield* eventually(
          Effect.sync(() => a1.seen.length === 1 && a2.seen.length === 1 && b.seen.length === 1),
          10_000,
          "each stream its own"
        )
        expect([a1.seen[0]!.payload, a2.seen[0]!.payload, b.seen[0]!.payload]).toEqual(["A", "A", "B"])
        yield* Fiber.interrupt(a1.fiber)
        yield* pg.notify("ln_a", "A2")
        yield* eventually(
          Effect.sync(() => a2.seen.length === 2),
          10_000,
          "the other stream still listens"
        )
        expect(a1.seen.length).toBe(1)
        yield* Fiber.interrupt(a2.fiber)
        yield* Fiber.interrupt(b.fiber)
        yield* eventually(
          Effect.map(backendsOf(observer, app), (rows) => rows.length === 1),
          10_000,
          "the listening connection closed"
        )
      })
  )

  it.effect("Stream.take ends the stream and UNLISTENs its channel; other channels keep listening", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      const keep = yield* collect(pg, "ln_keep")
      yield* untilListening(pg, "ln_keep", keep)
      const taken = yield* Effect.forkChild(
        Stream.runCollect(
          pg.listen("ln_take").pipe(
            Stream.filter((n) => !n.payload.startsWith("probe:")),
            Stream.take(2)
          )
        )
      )
      yield* eventually(
        Effect.gen(function* () {
          yield* pg.notify("ln_take", "first")
          yield* Effect.sleep(50)
          return taken.pollUnsafe() !== undefined
        }),
        10_000,
        "two notifications taken"
      )
      const got = yield* Fiber.join(taken)
      expect(got.map((n) => n.payload)).toEqual(["first", "first"])
      // The listening connection's last statement is the channel's UNLISTEN.
      yield* eventually(
        Effect.map(backendsOf(observer, app), (rows) => rows.some((r) => r.query === 'unlisten "ln_take"')),
        10_000,
        "UNLISTEN sent"
      )
      // The keeping stream still works after the other channel's UNLISTEN.
      yield* pg.notify("ln_keep", "still here")
      yield* eventually(
        Effect.sync(() => keep.seen.length === 1),
        10_000,
        "the kept channel"
      )
      yield* Fiber.interrupt(keep.fiber)
    })
  )

  it.effect("after pg_terminate_backend the listener reconnects, LISTENs again and warns", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const warnings: Array<string> = []
      const capture = Logger.make((options) => {
        const text = String(Array.isArray(options.message) ? options.message.join(" ") : options.message)
        if (text.includes("listening connection")) warnings.push(text)
      })
      const app = `pgline_listen_reconnect_${process.pid}`
      const ctx = yield* Layer.build(
        PgClient.layer({ url: info.url, sslmode: "disable", applicationName: app, max: 1 }).pipe(
          Layer.provide(Logger.layer([capture]))
        )
      ).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))
      const pg = Context.get(ctx, PgClient)
      const observer = (yield* poolClient({ max: 1 })).pg
      const c = yield* collect(pg, "ln_reconnect")
      yield* untilListening(pg, "ln_reconnect", c)
      yield* pg.notify("ln_reconnect", "before")
      yield* eventually(
        Effect.sync(() => c.seen.length === 1),
        10_000,
        "before the kill"
      )
      yield* observer.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and query ilike 'listen%'",
        [app]
      )
      c.probes.n = 0
      yield* untilListening(pg, "ln_reconnect", c)
      yield* pg.notify("ln_reconnect", "after")
      yield* eventually(
        Effect.sync(() => c.seen.some((n) => n.payload === "after")),
        10_000,
        "after the kill"
      )
      expect(c.seen.map((n) => n.payload)).toEqual(["before", "after"])
      expect(warnings.some((w) => w.includes("missed"))).toBe(true)
      yield* Fiber.interrupt(c.fiber)
    })
  )

  it.effect("NOTIFY inside withTransaction is delivered at COMMIT, never after ROLLBACK", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const c = yield* collect(pg, "ln_tx")
      yield* untilListening(pg, "ln_tx", c)
      yield* Effect.exit(
        pg.withTransaction(Effect.andThen(pg.notify("ln_tx", "rolled back"), Effect.fail("no" as const)))
      )
      yield* pg.withTransaction(
        Effect.gen(function* () {
          yield* pg.notify("ln_tx", "committed")
          yield* Effect.sleep(100)
          // Not before COMMIT.
          expect(c.seen.length).toBe(0)
        })
      )
      yield* eventually(
        Effect.sync(() => c.seen.length === 1),
        10_000,
        "the committed one"
      )
      yield* pg.notify("ln_tx", "last")
      yield* eventually(
        Effect.sync(() => c.seen.length === 2),
        10_000,
        "the last one"
      )
      expect(c.seen.map((n) => n.payload)).toEqual(["committed", "last"])
      yield* Fiber.interrupt(c.fiber)
    })
  )

  it.effect("listenScoped: listening once it returns, so nothing sent right after is missed", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      for (let round = 0; round < 5; round++) {
        const got = yield* notifyListening(pg, "ln_scoped", `round ${round}`)
        expect(got.map((n) => n.payload)).toEqual([`round ${round}`])
      }
      const invalid = yield* errorOf(Effect.scoped(pg.listenScoped("")))
      expect(invalid._tag === "StatementRejected" && invalid.reason).toBe("InvalidText")
    })
  )

  it.effect("a first listen still opening its connection can be interrupted; the listener works after", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 0 })
      const { pg, app } = yield* poolClient({ url: withProxyUrl(info.url, proxy), max: 1 })
      yield* pg.query("select 1")
      // From now on a new connection's start-up takes several seconds (2 s each way per exchange).
      proxy.setDelay(2_000)
      const fiber = yield* Effect.forkChild(
        Effect.exit(Effect.timeout(Effect.scoped(pg.listenScoped("ln_interrupted")), 100))
      )
      yield* eventually(
        Effect.sync(() => fiber.pollUnsafe() !== undefined),
        3_000,
        "the interrupted listen ended while its connection was still starting"
      )
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toMatchObject({ _tag: "TimeoutError" })
      proxy.setDelay(0)
      const got = yield* notifyListening(pg, "ln_interrupted", "after")
      expect(got.map((n) => n.payload)).toEqual(["after"])
      // The listening connection closed with its last stream: only the pool's connection is left.
      yield* eventually(
        Effect.map(backendsOf(pg, app), (rows) => rows.length === 1),
        10_000,
        "one backend left"
      )
    })
  )

  it.effect("invalid channel names are refused typed", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      for (const channel of ["", "a\u0000b", "x".repeat(64), "é".repeat(32), "\ud800"]) {
        const error = yield* errorOf(Stream.runCollect(pg.listen(channel)))
        expect(error._tag === "StatementRejected" && error.reason).toBe("InvalidText")
      }
      const tooLong = yield* errorOf(pg.notify("x".repeat(64), "p"))
      expect(tooLong._tag).toBe("InvalidParameterValue")
    })
  )
})
