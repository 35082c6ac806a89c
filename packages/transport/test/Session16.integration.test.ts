/**
 * Session.open against PostgreSQL 16, which speaks protocol 3.0 only: asked for 3.2 it answers
 * NegotiateProtocolVersion and the session falls back to 3.0 (4-byte key, cancel still works);
 * min_protocol_version=3.2 fails with reason ProtocolVersion. Needs the embedded server, version 16.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgServer } from "../../testing/src/index.ts"
import { openSession, query, simpleQuery, untilActive } from "./support/session.ts"

layer(PgServer.layerWith({ version: 16 }), { timeout: 120_000, excludeTestServices: true })(
  "Session against PostgreSQL 16",
  (it) => {
    it.effect("max_protocol_version=3.2 falls back to 3.0 after NegotiateProtocolVersion", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const session = yield* openSession(`${info.url}?max_protocol_version=3.2`)
          expect(session.parameters.get("server_version")).toMatch(/^16/)
          expect(session.protocol).toBe("3.0")
          expect(session.secretKey.length).toBe(4)
          expect((yield* query(session, "select 1")).rows).toEqual([["1"]])
        })
      )
    )

    it.effect("min_protocol_version=3.2 fails with reason ProtocolVersion", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const error = yield* Effect.flip(
          Effect.scoped(openSession(`${info.url}?min_protocol_version=3.2&max_protocol_version=3.2`))
        )
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "ProtocolVersion" })
      })
    )

    it.effect("cancel after the fallback uses the 4-byte key (over TLS)", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const session = yield* openSession(`${info.url}?max_protocol_version=3.2&sslmode=require`)
          expect(session.tls).toBe(true)
          const running = simpleQuery(session, "select pg_sleep(30)")
          const observer = yield* openSession(info.url)
          yield* untilActive(observer, session.processId)
          yield* Effect.promise(() => session.cancel())
          const result = yield* Effect.promise(() => running).pipe(Effect.timeout("10 seconds"))
          expect(result.error).toMatchObject({ code: "57014" })
        })
      )
    )
  }
)
