/**
 * A client's session over time, against a real server: interrupting a running statement
 * (Effect.timeout, Fiber.interrupt) sends a CancelRequest (over TLS when the session uses TLS) and
 * returns promptly with the backend idle and the connection reusable; NoticeResponse reaches
 * `onNotice`; ParameterStatus keeps `pg.parameter` current; a backend killed under a statement is
 * ConnectionLost (mayHaveRun true), and the next statement on that client is ConnectionLost
 * (mayHaveRun false). Needs the server (direct TLS: 17+).
 */
import type { ErrorFields } from "@pgline/codec"
import { expect, layer } from "@effect/vitest"
import type { PgClientApi, PgClientOptions } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Fiber } from "effect"
import { connect, createServer, type Socket } from "node:net"
import { tcp, withClient } from "./support/integration.ts"

/** The backend's state as another connection sees it. */
const stateOf = (observer: PgClientApi, pid: number) =>
  Effect.map(
    observer.query<{ state: string | null }>("select state from pg_stat_activity where pid = $1", [pid]),
    (r) => r.rows[0]?.state ?? null
  )

/** Polls until the backend runs a statement (a cancel that arrives before it is a no-op). */
const untilActive = (observer: PgClientApi, pid: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      if ((yield* stateOf(observer, pid)) === "active") return
      yield* Effect.sleep("10 millis")
    }
    throw new Error(`backend ${pid} never became active`)
  })

/** A TCP relay to the server whose client-facing sockets can be destroyed at will (a cut cable). */
const tcpProxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ port: number; cut: () => void; close: () => Promise<void> }>((resolve) => {
          const sockets = new Set<Socket>()
          const server = createServer((client) => {
            const upstream = connect(targetPort, "127.0.0.1")
            for (const s of [client, upstream]) {
              sockets.add(s)
              s.on("error", () => {})
              s.on("close", () => sockets.delete(s))
            }
            client.pipe(upstream)
            upstream.pipe(client)
            client.on("close", () => upstream.destroy())
            upstream.on("close", () => client.destroy())
          })
          const cut = () => {
            for (const s of sockets) s.resetAndDestroy()
          }
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            resolve({
              port: typeof address === "object" && address !== null ? address.port : 0,
              cut,
              close: () =>
                new Promise<void>((done) => {
                  cut()
                  server.close(() => done())
                })
            })
          })
        })
    ),
    (proxy) => Effect.promise(() => proxy.close())
  )

const observe = <A, E, R>(f: (observer: PgClientApi) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    return yield* withClient({ ...tcp(info), sslmode: "disable" }, f)
  })

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("a client's session", (it) => {
  const interruptible = (options: (info: typeof PgServer.Service) => PgClientOptions) =>
    Effect.gen(function* () {
      const info = yield* PgServer
      yield* withClient(options(info), (pg) =>
        observe((observer) =>
          Effect.gen(function* () {
            // 1. Effect.timeout: the statement is interrupted when the time is up.
            const started = Date.now()
            const timedOut = yield* Effect.flip(
              pg.query("select pg_sleep(30)").pipe(Effect.timeout("300 millis"))
            )
            expect(timedOut._tag).toBe("TimeoutError")
            // Liveness bound: well before the 30 s sleep would have ended.
            expect(Date.now() - started).toBeLessThan(15_000)
            expect(yield* stateOf(observer, pg.processId)).toBe("idle")
            expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])

            // 2. Fiber.interrupt once the server runs it; interrupt returns when the backend is idle.
            const fiber = yield* Effect.forkChild(pg.query("select pg_sleep(30)"))
            yield* untilActive(observer, pg.processId)
            yield* Fiber.interrupt(fiber)
            expect(yield* stateOf(observer, pg.processId)).toBe("idle")
            expect((yield* pg.query("select 2 as two")).rows).toEqual([{ two: 2 }])
          })
        )
      )
    })

  it.effect("interrupting pg_sleep(30) cancels it; the backend is idle and the connection reusable", () =>
    interruptible((info) => ({ ...tcp(info), sslmode: "disable" }))
  )

  it.effect("the same over TLS (the CancelRequest goes over TLS), protocol 3.0 and 3.2", () =>
    Effect.gen(function* () {
      yield* interruptible((info) => ({ ...tcp(info), sslmode: "require" }))
      yield* interruptible((info) => ({
        ...tcp(info),
        sslmode: "verify-full",
        sslrootcert: info.ca!,
        maxProtocolVersion: "3.2"
      }))
      // Direct TLS exists from PostgreSQL 17 (the tls suite checks the typed failure before it).
      const info = yield* PgServer
      if ((info.version ?? 18) >= 17)
        yield* interruptible((info) => ({
          ...tcp(info),
          sslmode: "require",
          sslnegotiation: "direct",
          maxProtocolVersion: "3.2"
        }))
    })
  )

  it.effect("the same over a Unix socket", () =>
    interruptible((info) => ({
      host: info.socketDir!,
      port: info.port,
      user: info.user,
      database: info.database
    }))
  )

  it.effect("RAISE NOTICE and WARNING reach onNotice, in order, before the statement returns", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const notices: Array<ErrorFields> = []
      const result = yield* withClient({ ...tcp(info), onNotice: (n) => notices.push(n) }, (pg) =>
        pg.query(`do $$ begin
            raise notice 'first %', 1;
            raise warning 'second' using detail = 'more', hint = 'try';
          end $$`)
      )
      expect(result.command).toBe("DO")
      expect(notices).toHaveLength(2)
      expect(notices[0]).toMatchObject({ severity: "NOTICE", code: "00000", message: "first 1" })
      expect(notices[1]).toMatchObject({
        severity: "WARNING",
        code: "01000",
        message: "second",
        detail: "more",
        hint: "try"
      })
      // A server-side notice outside PL/pgSQL.
      notices.length = 0
      yield* withClient({ ...tcp(info), onNotice: (n) => notices.push(n) }, (pg) =>
        pg.query("drop table if exists pgline_never_existed")
      )
      expect(notices).toEqual([expect.objectContaining({ severity: "NOTICE", code: "00000" })])
    })
  )

  it.effect("ParameterStatus: server_version at start, TimeZone and application_name after SET", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      yield* withClient({ ...tcp(info), applicationName: "before" }, (pg) =>
        Effect.gen(function* () {
          const version = (yield* pg.query<{ v: string }>("select current_setting('server_version') as v"))
            .rows[0]!.v
          expect(pg.parameter("server_version")).toBe(version)
          expect(pg.parameter("application_name")).toBe("before")
          expect(pg.parameter("TimeZone")).not.toBe("Asia/Tokyo")
          yield* pg.query("set TimeZone = 'Asia/Tokyo'")
          expect(pg.parameter("TimeZone")).toBe("Asia/Tokyo")
          expect(pg.parameters.get("TimeZone")).toBe("Asia/Tokyo")
          yield* pg.query("set application_name = 'after'")
          expect(pg.parameter("application_name")).toBe("after")
          expect(pg.parameter("no_such_parameter")).toBeUndefined()
        })
      )
    })
  )

  it.effect(
    "the backend terminated under a statement: the server's FATAL, then a replacement connection",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        yield* withClient({ ...tcp(info), sslmode: "disable" }, (pg) =>
          observe((observer) =>
            Effect.gen(function* () {
              const fiber = yield* Effect.forkChild(Effect.flip(pg.query("select pg_sleep(30)")))
              yield* untilActive(observer, pg.processId)
              const killed = yield* observer.query<{ ok: boolean }>("select pg_terminate_backend($1) as ok", [
                pg.processId
              ])
              expect(killed.rows).toEqual([{ ok: true }])
              // pg_terminate_backend makes the backend send FATAL 57P01 before it closes: the statement
              // fails with that typed error (the server says it was aborted, not that it may have run).
              const during = yield* Fiber.join(fiber)
              expect(during).toMatchObject({ _tag: "AdminShutdown", code: "57P01", severity: "FATAL" })
              // The pool dropped the dead connection: the next statement runs on a new backend.
              const after = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")
              expect(after.rows[0]!.pid).not.toBe(pg.processId)
            })
          )
        )
      })
  )

  it.effect(
    "the connection cut under a statement: ConnectionLost mayHaveRun true, then a new connection",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const proxy = yield* tcpProxy(info.port)
          yield* withClient({ ...tcp(info), port: proxy.port, sslmode: "disable" }, (pg) =>
            observe((observer) =>
              Effect.gen(function* () {
                const fiber = yield* Effect.forkChild(Effect.flip(pg.query("select pg_sleep(30)")))
                yield* untilActive(observer, pg.processId)
                // No ErrorResponse, no orderly close from the server: the network just goes away.
                proxy.cut()
                const during = yield* Fiber.join(fiber)
                expect(during).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: true })
                const after = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")
                expect(after.rows[0]!.pid).not.toBe(pg.processId)
                // The orphaned backend is still sleeping; end it so the server stays tidy.
                yield* observer.query("select pg_terminate_backend($1)", [pg.processId])
              })
            )
          )
        })
      )
  )
})
