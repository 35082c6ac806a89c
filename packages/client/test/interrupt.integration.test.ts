/**
 * Interruption is bounded and cancels only what it interrupts, against a real server:
 * - a stalled network (a relay that stops forwarding) or a frozen backend (SIGSTOP): interrupting
 *   a statement or a pipeline returns within cancelGrace plus a margin, the connection is closed,
 *   and the pool goes on with a new one;
 * - a CancelRequest goes out only while the interrupted statement is the one the server runs and
 *   nothing of another fiber is queued behind it; a late cancel never hits the next statement.
 *   Stress: many rounds of interrupting a short statement at random moments while other fibers'
 *   statements share the connection, counting every QueryCanceled that hit a statement nobody
 *   interrupted.
 *
 * Timeouts are liveness bounds, never speed assertions.
 */
import { connect as tcpConnect, createServer, type Socket } from "node:net"
import { expect, layer } from "@effect/vitest"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import { Effect, Exit, Fiber, Random } from "effect"
import { errorOf, within } from "./support/pipeline.ts"
import { poolClient, untilRunning } from "./support/pool.ts"

/**
 * A TCP relay to the test server, closed with the scope: `wire` joins each client socket to its
 * upstream (`index` 0 for the first connection, the pool's); errors are ignored and a close on
 * either side closes the other. Returns the URL that goes through it.
 */
const relay = (wire: (client: Socket, upstream: Socket, index: number) => void) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    const sockets: Array<Socket> = []
    const server = createServer((client) => {
      const upstream = tcpConnect(info.port, info.host)
      for (const s of [client, upstream]) s.on("error", () => {})
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
      wire(client, upstream, sockets.length / 2)
      sockets.push(client, upstream)
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          for (const s of sockets) s.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    return `postgres://${encodeURIComponent(info.user)}:${encodeURIComponent(info.password)}@127.0.0.1:${port}/${info.database}`
  })

/** A relay whose open connections can be frozen (bytes held, sockets kept open). */
const stallableRelay = Effect.gen(function* () {
  const live: Array<[Socket, Socket]> = []
  const url = yield* relay((client, upstream) => {
    client.pipe(upstream)
    upstream.pipe(client)
    live.push([client, upstream])
  })
  return {
    url,
    /** Stops forwarding on every connection open now (new connections still pass). */
    freeze: () => {
      for (const [client, upstream] of live) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
    },
    /** Closes every connection open now. */
    cut: () => {
      for (const [client] of live) client.destroy()
    }
  }
})

/**
 * A relay that can hold what clients send on the connections open now (the server reads nothing
 * of it) and let it through later; new connections pass at once.
 */
const holdingRelay = Effect.gen(function* () {
  const live: Array<{ upstream: Socket; held: Array<Buffer> | undefined }> = []
  // Once set, the first connection's answers arrive this many ms late.
  let answerDelay = 0
  const url = yield* relay((client, upstream, index) => {
    const entry = { upstream, held: undefined as Array<Buffer> | undefined }
    client.on("data", (d: Buffer) => (entry.held === undefined ? upstream.write(d) : entry.held.push(d)))
    upstream.on("data", (d: Buffer) =>
      index === 0 && answerDelay > 0 ? setTimeout(() => client.write(d), answerDelay) : client.write(d)
    )
    live.push(entry)
  })
  return {
    url,
    hold: () => {
      for (const entry of live) entry.held ??= []
    },
    delayAnswers: (ms: number) => {
      answerDelay = ms
    },
    release: () => {
      for (const entry of live) {
        const held = entry.held ?? []
        entry.held = undefined
        for (const d of held) entry.upstream.write(d)
      }
    }
  }
})

/**
 * A relay with latency, once `slow()` is called: the first connection's (the pool's) answers are
 * delayed by `answerDelay` ms, and what later connections (CancelRequests) send by `cancelDelay`
 * ms, so a cancel completes before the answer to the statement it stopped arrives.
 */
const latencyRelay = (answerDelay: number, cancelDelay: number) =>
  Effect.gen(function* () {
    let slow = false
    let cancels = 0
    const url = yield* relay((client, upstream, index) => {
      if (index === 0) {
        client.on("data", (d: Buffer) => upstream.write(d))
        upstream.on("data", (d: Buffer) =>
          slow ? setTimeout(() => client.write(d), answerDelay) : client.write(d)
        )
      } else {
        client.on("data", (d: Buffer) => {
          if (slow) cancels++
          setTimeout(() => upstream.write(d), slow ? cancelDelay : 0)
        })
        upstream.on("data", (d: Buffer) => client.write(d))
      }
    })
    return {
      url,
      slow: () => {
        slow = true
      },
      cancels: () => cancels
    }
  })

layer(PgServer.layer, { timeout: 180_000, excludeTestServices: true })("interruption", (it) => {
  it.effect(
    "a cancel ignored while an earlier answer was on its way is sent again once the server is quiet",
    () =>
      Effect.gen(function* () {
        const relay = yield* holdingRelay
        const { pg } = yield* poolClient({ url: relay.url, max: 1, cancelGrace: 4_000 })
        const pid = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
        relay.delayAnswers(150)
        const fiber = yield* Effect.forkChild(
          pg.withPipeline((p) =>
            Effect.gen(function* () {
              yield* p.execute("select 1 as early")
              yield* p.flush
              yield* Effect.sleep(30)
              relay.hold()
              return yield* Effect.flatten(p.execute("select pg_sleep(30) as held_sleep"))
            })
          )
        )
        yield* Effect.sleep(60)
        const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* Effect.sleep(340)
        relay.release()
        yield* within(10_000)(Fiber.join(interrupting))
        const next = (yield* within(5_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
          .rows[0]!
        expect(next.pid).toBe(pid)
      })
  )

  it.effect(
    "a cancel whose statement's answer is still on its way is not sent again (it would hit the next)",
    () =>
      Effect.gen(function* () {
        const relay = yield* latencyRelay(300, 600)
        const { pg } = yield* poolClient({ url: relay.url, max: 1, cancelGrace: 10_000 })
        yield* pg.query("select 1")
        const mine = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            relay.slow()
            const tx = yield* Effect.exit(
              pg.pipelineTransaction((q) =>
                Effect.andThen(
                  q.execute("select pg_sleep(5)"),
                  Effect.andThen(Effect.sleep(100), Effect.interrupt)
                )
              )
            )
            expect(Exit.hasInterrupts(tx)).toBe(true)
            // Nobody interrupts this one.
            return yield* Effect.exit(
              Effect.flatMap(p.execute("select pg_sleep(1.5), 'mine' as who"), (h) =>
                Effect.andThen(p.sync, h)
              )
            )
          })
        )
        expect(Exit.isSuccess(mine)).toBe(true)
        expect(relay.cancels()).toBe(1)
      })
  )

  it.effect(
    "a cancel the server got before it read the statement is sent again; the connection is kept",
    () =>
      Effect.gen(function* () {
        const relay = yield* holdingRelay
        const { pg } = yield* poolClient({ url: relay.url, max: 1, cancelGrace: 4_000 })
        const pid = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
        // The statement stays in the relay: the first cancel reaches a backend waiting for input,
        // which ignores it; then the statement arrives and runs.
        relay.hold()
        const fiber = yield* Effect.forkChild(pg.query("select pg_sleep(30) as held_sleep"))
        yield* Effect.sleep(100)
        const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* Effect.sleep(300)
        relay.release()
        yield* within(10_000)(Fiber.join(interrupting))
        expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
        // Cancelled by a later CancelRequest, not by closing the connection after cancelGrace.
        const next = (yield* within(5_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
          .rows[0]!
        expect(next.pid).toBe(pid)
      })
  )

  it.effect(
    "a Bind held for its statement's description never counts as sent when the connection is lost",
    () =>
      Effect.gen(function* () {
        for (const variant of [
          "new",
          "cached earlier in the segment",
          "prepared by name in the segment"
        ] as const) {
          const relay = yield* stallableRelay
          const { pg } = yield* poolClient({ url: relay.url, max: 1 })
          expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
          // withPipeline itself fails at its final sync (ConnectionLost): the handles are read inside.
          const exits: Array<unknown> = []
          yield* Effect.exit(
            pg.withPipeline((p) =>
              Effect.gen(function* () {
                // The server's answers (the description) never reach the client.
                relay.freeze()
                let held: Effect.Effect<unknown, unknown>
                if (variant === "new")
                  held = yield* p.execute("select $1::jsonb as v /* lost, new */", [["a"]])
                else if (variant === "cached earlier in the segment") {
                  yield* p.execute("select $1::jsonb as v /* lost */", [null])
                  held = yield* p.execute("select $1::jsonb as v /* lost */", [["a"]])
                } else {
                  yield* p.prepare("select $1::jsonb as v", { name: "held_lost" })
                  held = yield* p.executePrepared("held_lost", [["a"]])
                }
                const behind = yield* p.execute("select 3 as three")
                yield* p.flush
                relay.cut()
                exits.push(yield* Effect.flip(within(5_000)(held)), yield* Effect.flip(within(5_000)(behind)))
              })
            )
          )
          // Neither Bind left the client: both may be sent again.
          expect(exits).toMatchObject([
            { _tag: "ConnectionLost", mayHaveRun: false },
            { _tag: "ConnectionLost", mayHaveRun: false }
          ])
        }
      })
  )

  it.effect("a stalled network: Effect.timeout returns within cancelGrace and the pool goes on", () =>
    Effect.gen(function* () {
      const relay = yield* stallableRelay
      const { pg } = yield* poolClient({ url: relay.url, max: 1, cancelGrace: 500 })
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      relay.freeze()
      const started = Date.now()
      const timedOut = yield* within(5_000)(Effect.flip(Effect.timeout(pg.query("select 2 as two"), 300)))
      expect(timedOut._tag).toBe("TimeoutError")
      // Bounded: the timeout, the grace, and a margin for a loaded machine (a liveness bound).
      expect(Date.now() - started).toBeLessThan(4_000)
      // The stalled connection was closed; a new one (through the relay, which passes new
      // connections) serves the next statement.
      expect((yield* within(5_000)(pg.query("select 3 as three"))).rows).toEqual([{ three: 3 }])
    })
  )

  it.effect("a frozen backend (SIGSTOP): interrupting a statement and a pipeline is bounded", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1, cancelGrace: 500 })
      const observer = (yield* poolClient({ max: 1 })).pg
      for (const kind of ["statement", "pipeline"] as const) {
        const pid = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
        const work =
          kind === "statement"
            ? pg.query("select pg_sleep(2) as frozen_sleep")
            : pg.withPipeline((p) =>
                Effect.flatMap(p.execute("select pg_sleep(2) as frozen_sleep"), (h) => h)
              )
        const fiber = yield* Effect.forkChild(work)
        yield* untilRunning(observer, app, "frozen_sleep")
        process.kill(pid, "SIGSTOP")
        try {
          yield* within(5_000)(Fiber.interrupt(fiber))
          expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
        } finally {
          process.kill(pid, "SIGCONT")
        }
        const next = (yield* within(5_000)(pg.query<{ pid: number }>("select pg_backend_pid() as pid")))
          .rows[0]!
        expect(next.pid).not.toBe(pid)
      }
    })
  )

  it.effect("a transaction whose body fails while the server is frozen returns within cancelGrace", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1, cancelGrace: 500, closeTimeout: 500 })
      yield* pg.query("create table frozen_tx (v int)")
      let pid = 0
      const started = Date.now()
      const error = yield* within(8_000)(
        Effect.flip(
          pg.withTransaction(
            Effect.gen(function* () {
              pid = (yield* pg.query<{ pid: number }>(
                "insert into frozen_tx values (1) returning pg_backend_pid() as pid"
              )).rows[0]!.pid
              process.kill(pid, "SIGSTOP")
              return yield* Effect.fail("application error" as const)
            })
          )
        )
      ).pipe(Effect.ensuring(Effect.sync(() => pid > 0 && process.kill(pid, "SIGCONT"))))
      // The body's own failure, after a ROLLBACK that could not finish and a closed connection.
      expect(error).toBe("application error")
      expect(Date.now() - started).toBeLessThan(6_000)
      expect((yield* within(5_000)(pg.query("select count(*)::int as n from frozen_tx"))).rows).toEqual([
        { n: 0 }
      ])
    })
  )

  it.effect("interrupting a statement queued behind another fiber's cancels nothing of the other's", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      for (let round = 0; round < 15; round++) {
        const a = yield* Effect.forkChild(pg.query("select pg_sleep(0.3) as a_sleep"))
        yield* untilRunning(observer, app, "a_sleep")
        // B's statement is pipelined behind A's on the one connection.
        const b = yield* Effect.forkChild(pg.query("select 'b' as b"))
        yield* Effect.sleep(5)
        yield* Fiber.interrupt(b)
        // A was never interrupted: it must succeed.
        expect(yield* Fiber.join(a)).toMatchObject({ rowCount: 1 })
        // And the interrupting fiber's next statement runs.
        expect((yield* pg.query("select 'next' as v")).rows).toEqual([{ v: "next" }])
      }
    })
  )

  it.effect(
    "stress: 10,000 interrupted statements, 0 wrong cancels",
    () =>
      Effect.gen(function* () {
        // Through a zero-delay proxy that counts connections: every CancelRequest is one.
        const info = yield* PgServer
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 0 })
        const { pg } = yield* poolClient({ url: withProxyUrl(info.url, proxy), max: 1 })
        const rounds = Number(process.env["PGLINE_CANCEL_ROUNDS"] ?? 10_000)
        let wrong = 0
        let cancelled = 0
        let neighbours = 0
        // Another fiber's statements share the connection the whole time.
        const neighbour = yield* Effect.forkChild(
          Effect.forever(
            Effect.flatMap(Effect.exit(pg.query("select 'n' as n")), (exit) =>
              Effect.sync(() => {
                neighbours++
                if (Exit.isFailure(exit)) wrong++
              })
            )
          )
        )
        for (let round = 0; round < rounds; round++) {
          const fiber = yield* Effect.forkChild(pg.query("select pg_sleep(0.001)"), {
            startImmediately: true
          })
          const delay = yield* Random.nextIntBetween(0, 3)
          if (delay > 0) yield* Effect.sleep(delay)
          yield* Fiber.interrupt(fiber)
          const exit = yield* Fiber.await(fiber)
          // Interrupted, or finished first: either is right; any other failure is wrong.
          if (Exit.hasInterrupts(exit)) cancelled++
          else if (Exit.isFailure(exit)) wrong++
          // The interrupting fiber's next statement: never hit by a late cancel.
          const next = yield* Effect.exit(pg.query("select 1 as one"))
          if (Exit.isFailure(next)) wrong++
        }
        yield* Fiber.interrupt(neighbour)
        expect({ wrong }).toEqual({ wrong: 0 })
        expect(neighbours).toBeGreaterThan(0)
        // Not vacuous: most rounds interrupted a statement in flight, and many sent a CancelRequest
        // (the proxy saw one connection per cancel besides the pool's one).
        expect(cancelled).toBeGreaterThan(rounds / 2)
        const cancels = proxy.stats().totalConnections - 1
        if (process.env["PGLINE_CANCEL_REPORT"])
          console.log({ rounds, interrupted: cancelled, cancels, neighbours, wrong })
        expect(cancels).toBeGreaterThan(rounds / 10)
      }),
    240_000
  )

  it.effect("an interrupted pipeline leaves the connection usable for the next statement", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      for (let round = 0; round < 50; round++) {
        const fiber = yield* Effect.forkChild(
          pg.withPipeline((p) =>
            Effect.gen(function* () {
              for (let i = 0; i < 5; i++) yield* p.execute("select pg_sleep(0.002)")
              yield* p.sync
            })
          ),
          { startImmediately: true }
        )
        yield* Effect.sleep(round % 5)
        yield* Fiber.interrupt(fiber)
        expect(yield* Effect.exit(pg.query("select 1 as one"))).toMatchObject({ _tag: "Success" })
      }
      expect(yield* errorOf(pg.query("select 1/0"))).toMatchObject({ _tag: "DivisionByZero" })
    })
  )
})
