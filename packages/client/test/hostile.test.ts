/**
 * A hostile or broken server, scripted with the fake server (a real one will not send these):
 * ErrorResponse codes that are names of Object.prototype members must reach the error channel as
 * UnknownServerError with the code kept, never throw inside the socket handler or put an untagged
 * value in the error channel. Hermetic: no real server.
 */
import { expect, it } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import type { FrontendMessage } from "@pgline/codec"
import { ConfigProvider, Effect } from "effect"
import { type FakeConnection, fakeServer } from "./support/fakeServer.ts"

/** Start-up as a server would answer it: trust authentication, an idle session. */
const startup = (m: FrontendMessage, conn: FakeConnection): boolean => {
  if (m.type === "SSLRequest") {
    conn.sendRaw("N")
    return true
  }
  if (m.type === "StartupMessage") {
    conn.send(
      { type: "AuthenticationOk" },
      { type: "ParameterStatus", name: "server_version", value: "18.0" },
      { type: "BackendKeyData", processId: 4242, secretKey: new Uint8Array([1, 2, 3, 4]) },
      { type: "ReadyForQuery", status: "I" }
    )
    return true
  }
  return false
}

const query = (port: number, text: string) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    return yield* Effect.flip(pg.query(text))
  }).pipe(
    Effect.provide(PgClient.layer({ host: "127.0.0.1", port, user: "u", database: "d", max: 1 })),
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
  )

it.effect("ErrorResponse codes named after Object.prototype members arrive as UnknownServerError", () =>
  Effect.gen(function* () {
    for (const code of ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf"]) {
      const fake = yield* fakeServer((m, conn) => {
        if (startup(m, conn)) return
        if (m.type === "Sync") {
          conn.send(
            { type: "ErrorResponse", fields: { severity: "ERROR", code, message: `hostile ${code}` } },
            { type: "ReadyForQuery", status: "I" }
          )
        }
      })
      const error = yield* query(fake.port, "select 1")
      expect(error).toMatchObject({ _tag: "UnknownServerError", code, message: `hostile ${code}` })
    }
  })
)
