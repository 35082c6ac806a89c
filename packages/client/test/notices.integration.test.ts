/**
 * Notices without an `onNotice` handler go to the Effect logger of the context the client layer
 * was built in: a user's Logger sees them, at the notice's level, annotated with the SQLSTATE.
 */
import { expect, it } from "@effect/vitest"
import { type Notification, PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Layer, Logger, References } from "effect"

it.live(
  "a RAISE WARNING reaches the user's logger with its SQLSTATE",
  () =>
    Effect.gen(function* () {
      const seen: Array<{ level: string; message: unknown; annotations: Record<string, unknown> }> = []
      const capture = Logger.make((options) => {
        seen.push({
          level: options.logLevel,
          message: options.message,
          annotations: {
            ...(options.fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>)
          }
        })
      })
      const info = yield* PgServer
      yield* Effect.gen(function* () {
        const pg = yield* PgClient
        yield* pg.query("do $$ begin raise warning 'careful: %', 42 using errcode = '01000'; end $$")
        // The log is forked; give it a turn to run.
        yield* Effect.yieldNow
        yield* Effect.sleep(10)
      }).pipe(
        Effect.provide(
          PgClient.layer({ url: info.url, sslmode: "disable" }).pipe(Layer.provide(Logger.layer([capture])))
        )
      )
      const warning = seen.find((s) => String(s.message).includes("careful: 42"))
      expect(warning?.level).toBe("Warn")
      expect(warning?.annotations["sqlstate"]).toBe("01000")
    }).pipe(Effect.provide(PgServer.layer)),
  { timeout: 60_000 }
)

it.live(
  "a notification on a connection nobody listens on is logged, not dropped silently",
  () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const capture = Logger.make((options) => {
        seen.push(String(Array.isArray(options.message) ? options.message.join(" ") : options.message))
      })
      const info = yield* PgServer
      yield* Effect.gen(function* () {
        const pg = yield* PgClient
        yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("listen unheard")
            yield* conn.query("notify unheard, 'hello'")
            // The notification arrives with the NOTIFY's answer; the log is forked.
            for (let i = 0; i < 100 && !seen.some((m) => m.includes("unheard")); i++) yield* Effect.sleep(10)
            yield* conn.query("unlisten unheard")
          })
        )
      }).pipe(
        Effect.provide(
          PgClient.layer({ url: info.url, sslmode: "disable" }).pipe(Layer.provide(Logger.layer([capture])))
        )
      )
      expect(seen.some((m) => m.includes(`channel "unheard"`) && m.includes("use pg.listen"))).toBe(true)
    }).pipe(Effect.provide(PgServer.layer)),
  60_000
)

it.live(
  "onNotification receives what reaches a pool connection, with the sender's process id; nothing is logged",
  () =>
    Effect.gen(function* () {
      const logged: Array<string> = []
      const capture = Logger.make((options) => {
        logged.push(String(Array.isArray(options.message) ? options.message.join(" ") : options.message))
      })
      const received: Array<Notification> = []
      const info = yield* PgServer
      const sender = yield* Effect.gen(function* () {
        const pg = yield* PgClient
        return yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("listen heard")
            const pid = (yield* conn.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
            yield* conn.query("notify heard, 'one'")
            yield* conn.query("select pg_notify('heard', '')")
            return pid
          })
        )
      }).pipe(
        Effect.provide(
          PgClient.layer({
            url: info.url,
            sslmode: "disable",
            onNotification: (n) => received.push(n)
          }).pipe(Layer.provide(Logger.layer([capture])))
        )
      )
      // A session's own notifications arrive before the ReadyForQuery that ends the NOTIFY.
      expect(received).toEqual([
        { channel: "heard", payload: "one", processId: sender },
        { channel: "heard", payload: "", processId: sender }
      ])
      expect(logged.filter((m) => m.includes("heard"))).toEqual([])
    }).pipe(Effect.provide(PgServer.layer)),
  60_000
)

it.live(
  "an onNotice or onNotification callback that throws is logged as an error; the connection goes on",
  () =>
    Effect.gen(function* () {
      const errors: Array<string> = []
      const capture = Logger.make((options) => {
        if (options.logLevel === "Error")
          errors.push(String(Array.isArray(options.message) ? options.message.join(" ") : options.message))
      })
      const info = yield* PgServer
      const rows = yield* Effect.gen(function* () {
        const pg = yield* PgClient
        return yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("do $$ begin raise notice 'first'; end $$")
            yield* conn.query("listen thrown")
            yield* conn.query("notify thrown, 'x'")
            const after = yield* conn.query<{ v: number }>("select 1 as v")
            for (let i = 0; i < 100 && errors.length < 2; i++) yield* Effect.sleep(10)
            return after.rows
          })
        )
      }).pipe(
        Effect.provide(
          PgClient.layer({
            url: info.url,
            sslmode: "disable",
            max: 1,
            onNotice: () => {
              throw new Error("notice handler broke")
            },
            onNotification: () => {
              throw new Error("notification handler broke")
            }
          }).pipe(Layer.provide(Logger.layer([capture])))
        )
      )
      expect(rows).toEqual([{ v: 1 }])
      expect(errors.some((m) => m.includes("onNotice callback threw"))).toBe(true)
      expect(errors.some((m) => m.includes("onNotification callback threw"))).toBe(true)
    }).pipe(Effect.provide(PgServer.layer)),
  60_000
)
