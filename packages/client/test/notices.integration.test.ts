/**
 * Notices without an `onNotice` handler go to the Effect logger of the context the client layer
 * was built in: a user's Logger sees them, at the notice's level, annotated with the SQLSTATE.
 */
import { expect, it } from "@effect/vitest"
import { PgClient } from "@pgline/client"
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
