/**
 * A hostile or broken server, scripted with the fake server (a real one will not send these):
 * ErrorResponse codes that are names of Object.prototype members must reach the error channel as
 * UnknownServerError with the code kept, never throw inside the socket handler or put an untagged
 * value in the error channel; messages that break the protocol's grammar (a DataRow of the wrong
 * width, an extra CommandComplete, a message where another is due) close the connection with
 * ProtocolFailure instead of a wrong or shifted result; a peer that is not PostgreSQL is named as
 * such. Hermetic: no real server.
 */
import { expect, it } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import type { BackendMessage } from "@pgline/codec"
import { ConfigProvider, Effect } from "effect"
import { acceptStartup, column, dataRow, type FakeConnection, fakeServer, localServer } from "@pgline/testing"

const startup = acceptStartup

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

/** A fake server answering every Sync of a fresh one-column statement with `answer`. */
const answering = (answer: (conn: FakeConnection) => void) =>
  fakeServer((m, conn) => {
    if (startup(m, conn)) return
    if (m.type === "Sync") answer(conn)
  })

const head: ReadonlyArray<BackendMessage> = [
  { type: "ParseComplete" },
  { type: "ParameterDescription", parameterTypes: [] },
  { type: "RowDescription", fields: [column("a")] },
  { type: "BindComplete" }
]

it.effect("a DataRow wider or narrower than its RowDescription is a ProtocolFailure, not a wrong row", () =>
  Effect.gen(function* () {
    for (const values of [["1", "2"], []] as const) {
      const fake = yield* answering((conn) => {
        conn.send(...head)
        conn.sendRaw(dataRow(...values))
        conn.send({ type: "CommandComplete", tag: "SELECT 1" }, { type: "ReadyForQuery", status: "I" })
      })
      expect(yield* query(fake.port, "select 1 as a")).toMatchObject({
        _tag: "ProtocolFailure",
        reason: "Grammar",
        mayHaveRun: true
      })
    }
  })
)

it.effect(
  "an extra CommandComplete fails the statement with ProtocolFailure instead of shifting results",
  () =>
    Effect.gen(function* () {
      const fake = yield* answering((conn) => {
        conn.send(...head)
        conn.sendRaw(dataRow("1"))
        conn.send(
          { type: "CommandComplete", tag: "SELECT 1" },
          { type: "CommandComplete", tag: "SELECT 1" },
          { type: "ReadyForQuery", status: "I" }
        )
      })
      const error = yield* query(fake.port, "select 1 as a")
      expect(error).toMatchObject({ _tag: "ProtocolFailure", reason: "Grammar" })
      expect(error.message).toContain("CommandComplete")
    })
)

it.effect("a message where another is due (BindComplete before ParseComplete) is a ProtocolFailure", () =>
  Effect.gen(function* () {
    const fake = yield* answering((conn) => {
      conn.send({ type: "BindComplete" }, ...head, { type: "ReadyForQuery", status: "I" })
    })
    expect(yield* query(fake.port, "select 1 as a")).toMatchObject({
      _tag: "ProtocolFailure",
      reason: "Grammar"
    })
  })
)

it.effect("a peer that is not PostgreSQL is reported as such, with what it sent", () =>
  Effect.gen(function* () {
    const http = yield* localServer((socket) => {
      socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
    })
    for (const sslmode of ["disable", "prefer"] as const) {
      const error = yield* Effect.flip(
        Effect.gen(function* () {
          yield* PgClient
        }).pipe(
          Effect.provide(
            PgClient.layer({ host: "127.0.0.1", port: http.port, user: "u", database: "d", sslmode })
          ),
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
        )
      )
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
      expect(error.message).toContain("does not speak the PostgreSQL protocol")
      expect(error.message).toContain("HTTP/1.1 400 Bad Request")
    }
  })
)

it.effect("a flood of distinct ParameterStatus names is bounded: start-up refuses it, a session closes", () =>
  Effect.gen(function* () {
    const flood = Array.from(
      { length: 300 },
      (_, i): BackendMessage => ({
        type: "ParameterStatus",
        name: `flood_${i}`,
        value: "x"
      })
    )
    const atStartup = yield* fakeServer((m, conn) => {
      if (m.type === "StartupMessage") conn.send({ type: "AuthenticationOk" }, ...flood)
    })
    const startupError = yield* Effect.flip(
      Effect.gen(function* () {
        yield* PgClient
      }).pipe(
        Effect.provide(
          PgClient.layer({
            host: "127.0.0.1",
            port: atStartup.port,
            user: "u",
            database: "d",
            sslmode: "disable"
          })
        ),
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
      )
    )
    expect(startupError).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
    expect(startupError.message).toContain("ParameterStatus")
    const later = yield* answering((conn) => conn.send(...flood))
    const error = yield* query(later.port, "select 1 as a")
    expect(error).toMatchObject({ _tag: "ProtocolFailure", reason: "Grammar" })
    expect(error.message).toContain("ParameterStatus")
  })
)
