/**
 * Start-up against fake servers that break its order or its bounds, which a real server never
 * does: no authentication at all before ReadyForQuery, a SCRAM exchange left unfinished, session
 * messages before AuthenticationOk, a NoticeResponse flood, a message declared far too long, and
 * NegotiateProtocolVersion offering more than was asked or coming late. Hermetic.
 */
import { expect, it } from "@effect/vitest"
import { type BackendMessage, encodeBackend } from "@pgline/codec"
import { Effect, Exit } from "effect"
import { acceptStartup, column, dataRow, fakeServer, localServer } from "../../testing/src/index.ts"
import { openSession } from "./support/session.ts"

const session: ReadonlyArray<BackendMessage> = [
  { type: "ParameterStatus", name: "server_version", value: "18.0" },
  { type: "BackendKeyData", processId: 7, secretKey: new Uint8Array([9, 9, 9, 9]) },
  { type: "ReadyForQuery", status: "I" }
]

/** A server that answers the StartupMessage with `answer` (SSLRequest: "N"). */
const answering = (answer: ReadonlyArray<BackendMessage>) =>
  fakeServer((m, conn) => {
    if (m.type === "SSLRequest") conn.sendRaw("N")
    else if (m.type === "StartupMessage") conn.send(...answer)
  })

const local = (port: number, extra = "") =>
  `postgres://u:secret@127.0.0.1:${port}/d?sslmode=prefer${extra === "" ? "" : `&${extra}`}`

/** How opening a session ends: "connected", or the PgConnectError's reason and message. */
const outcome = (url: string) =>
  Effect.scoped(openSession(url)).pipe(
    Effect.as({ reason: "connected", message: "" }),
    Effect.catch((e) =>
      Effect.succeed(
        e._tag === "PgConnectError"
          ? { reason: e.reason, message: e.message }
          : { reason: e._tag, message: "" }
      )
    )
  )

it.live("a server that never authenticates is refused, whatever require_auth and channel_binding say", () =>
  Effect.scoped(
    Effect.gen(function* () {
      const skipping = yield* answering(session)
      for (const extra of [
        "",
        "require_auth=scram-sha-256",
        "require_auth=!none",
        "channel_binding=require"
      ]) {
        const r = yield* outcome(local(skipping.port, extra))
        expect(r.reason, extra).toBe("Protocol")
        expect(r.message, extra).toContain("expected an authentication request from the server")
      }
      // The same server with AuthenticationOk first is let in when nothing requires authentication.
      const trusting = yield* answering([{ type: "AuthenticationOk" }, ...session])
      expect((yield* outcome(local(trusting.port))).reason).toBe("connected")
      expect((yield* outcome(local(trusting.port, "require_auth=none"))).reason).toBe("connected")
    })
  )
)

it.live("ParameterStatus or BackendKeyData before AuthenticationOk is refused", () =>
  Effect.scoped(
    Effect.gen(function* () {
      for (const early of session.slice(0, 2)) {
        const server = yield* answering([early, { type: "AuthenticationOk" }, ...session])
        const r = yield* outcome(local(server.port))
        expect(r.reason, early.type).toBe("Protocol")
        expect(r.message, early.type).toContain(`but received ${early.type}`)
      }
    })
  )
)

it.live("a SCRAM exchange the server abandons for ReadyForQuery is refused", () =>
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* fakeServer((m, conn) => {
        if (m.type === "SSLRequest") conn.sendRaw("N")
        else if (m.type === "StartupMessage") {
          conn.expectAuthResponse("sasl-initial")
          conn.send({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] })
        } else if (m.type === "SASLInitialResponse") conn.send(...session)
      })
      for (const extra of ["", "require_auth=scram-sha-256"]) {
        const r = yield* outcome(local(server.port, extra))
        expect(r.reason, extra).toBe("Protocol")
        expect(r.message, extra).toContain("but received ParameterStatus")
      }
      expect(server.received.map((m) => m.type)).toContain("SASLInitialResponse")
    })
  )
)

it.live("a NoticeResponse flood during start-up keeps a bounded number of notices", () =>
  Effect.scoped(
    Effect.gen(function* () {
      const notice = encodeBackend({
        type: "NoticeResponse",
        fields: { severity: "NOTICE", code: "00000", message: "x".repeat(1000) }
      })
      const server = yield* localServer((socket) => {
        socket.once("data", () => {
          socket.write(encodeBackend({ type: "AuthenticationOk" }))
          // 20,000 notices (20 MB), then the session.
          for (let i = 0; i < 20; i++) socket.write(Buffer.concat(Array.from({ length: 1000 }, () => notice)))
          socket.write(encodeBackend(...session))
        })
      })
      const s = yield* openSession(`postgres://u@127.0.0.1:${server.port}/d?sslmode=disable`)
      expect(s.processId).toBe(7)
      expect(s.startupNotices.length).toBeGreaterThan(0)
      expect(s.startupNotices.length).toBeLessThanOrEqual(64)
      expect(s.startupNotices.reduce((n, f) => n + f.message.length, 0)).toBeLessThanOrEqual(64 * 1024)
    })
  )
)

it.live("a start-up message declared longer than start-up allows fails at its header", () =>
  Effect.scoped(
    Effect.gen(function* () {
      // Before AuthenticationOk every message is bounded (a notice or error too); after it, as in
      // libpq, only the types that are never long (a 40,000-byte ParameterStatus is refused).
      for (const [type, length, afterOk] of [
        ["E", 64 * 1024 * 1024, false],
        ["E", 40_000, false],
        ["R", 4000, false],
        ["S", 40_000, true]
      ] as const) {
        const server = yield* localServer((socket) => {
          socket.on("error", () => {})
          socket.once("data", () => {
            const header = Buffer.alloc(5)
            header.write(type, 0)
            header.writeInt32BE(length, 1)
            // The header, a little of the body, then nothing: only the declared length can tell.
            socket.write(
              Buffer.concat([
                ...(afterOk ? [encodeBackend({ type: "AuthenticationOk" })] : []),
                header,
                Buffer.alloc(1024)
              ])
            )
          })
        })
        const r = yield* outcome(`postgres://u@127.0.0.1:${server.port}/d?sslmode=disable`).pipe(
          Effect.timeout("5 seconds"),
          Effect.catchTag("TimeoutError", () => Effect.succeed({ reason: "still waiting", message: "" }))
        )
        expect(r.reason, type).toBe("Protocol")
        expect(r.message, type).toContain("over the start-up limit")
      }
    })
  )
)

it.live("after AuthenticationOk a long notice (a login trigger's RAISE) is accepted, as libpq does", () =>
  Effect.scoped(
    Effect.gen(function* () {
      const long = "n".repeat(40_000)
      const server = yield* answering([
        { type: "AuthenticationOk" },
        { type: "NoticeResponse", fields: { severity: "NOTICE", code: "00000", message: long } },
        ...session
      ])
      expect((yield* outcome(local(server.port))).reason).toBe("connected")
    })
  )
)

it.live(
  "NegotiateProtocolVersion is refused when it offers more than was asked, comes late or is empty",
  () =>
    Effect.scoped(
      Effect.gen(function* () {
        const npv = (minor: number, unrecognizedOptions: ReadonlyArray<string> = []): BackendMessage => ({
          type: "NegotiateProtocolVersion",
          newestProtocolVersion: (3 << 16) | minor,
          unrecognizedOptions
        })
        const ok: BackendMessage = { type: "AuthenticationOk" }
        const cases: ReadonlyArray<[string, string, ReadonlyArray<BackendMessage>]> = [
          ["3.2 offered, 3.0 asked", "max_protocol_version=3.0", [npv(2), ok, ...session]],
          ["after AuthenticationOk", "max_protocol_version=3.2", [ok, npv(0), ...session]],
          [
            "naming an option never sent",
            "max_protocol_version=3.2",
            [npv(0, ["_pq_.compression"]), ok, ...session]
          ],
          ["asking for no change", "max_protocol_version=3.2", [npv(2), ok, ...session]]
        ]
        for (const [label, extra, answer] of cases) {
          const server = yield* answering(answer)
          const r = yield* outcome(local(server.port, extra))
          expect(r.reason, label).toBe("Protocol")
          expect(r.message, label).toContain("NegotiateProtocolVersion")
        }
        // What a server before 18 answers to 3.2: 3.0, which the session goes on with.
        const older = yield* answering([npv(0), ok, ...session])
        const s = yield* openSession(local(older.port, "max_protocol_version=3.2"))
        expect(s.protocol).toBe("3.0")
      })
    )
)

it.live("an authentication method pgline does not know is an Authentication failure naming it", () =>
  Effect.scoped(
    Effect.gen(function* () {
      // A well-formed AuthenticationRequest with code 99: a PostgreSQL-like server asking for a
      // method of a future version or an extension, not a peer speaking another protocol.
      const server = yield* fakeServer((m, conn) => {
        if (m.type === "SSLRequest") conn.sendRaw("N")
        else if (m.type === "StartupMessage") conn.sendRaw(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 99]))
      })
      const r = yield* outcome(local(server.port))
      expect(r).toEqual({
        reason: "Authentication",
        message: `127.0.0.1:${server.port}: the server asks for authentication method 99, which pgline does not support`
      })
      // An 'R' that is not a request at all (a VNC server's greeting) stays a protocol failure.
      const vnc = yield* fakeServer((m, conn) => {
        if (m.type === "SSLRequest") conn.sendRaw("N")
        else if (m.type === "StartupMessage") conn.sendRaw("RFB 003.008\n")
      })
      const other = yield* outcome(local(vnc.port))
      expect(other.reason).toBe("Protocol")
      expect(other.message).toContain("over the start-up limit")
    })
  )
)

it.live("sslmode=prefer: an SSLRequest answered with garbage ends there, no plain retry (libpq)", () =>
  Effect.scoped(
    Effect.gen(function* () {
      // A peer that answers the SSLRequest with neither S nor N is not a PostgreSQL server; a plain
      // retry would send it a StartupMessage and wait for an answer that may never come.
      const server = yield* localServer((socket) => {
        socket.on("error", () => {})
        socket.once("data", () => socket.write("HTTP/1.1 400 Bad Request\r\n\r\n"))
      })
      const r = yield* outcome(local(server.port))
      expect(r.reason).toBe("Protocol")
      expect(r.message).toContain("does not speak the PostgreSQL protocol")
      expect(server.accepted()).toBe(1)
    })
  )
)

it.live("target_session_attrs asks a server that does not report its state, as libpq does", () =>
  Effect.scoped(
    Effect.gen(function* () {
      /** A server reporting neither default_transaction_read_only nor in_hot_standby (a proxy that
       * drops them, say) that answers libpq's questions with `answer`, recording what it was asked. */
      const unreported = (
        answer: string,
        parameters: Record<string, string> = { server_version: "18.0" }
      ) => {
        const asked: Array<string> = []
        return Effect.map(
          fakeServer((m, conn) => {
            if (acceptStartup(m, conn, { parameters })) return
            if (m.type === "Query") {
              asked.push(m.query)
              conn.send(
                { type: "RowDescription", fields: [column("v", 25)] },
                dataRow(answer),
                { type: "CommandComplete", tag: "SELECT 1" },
                { type: "ReadyForQuery", status: "I" }
              )
            }
          }),
          (server) => ({ server, asked })
        )
      }
      const attrs = (port: number, value: string) =>
        outcome(`postgres://u@127.0.0.1:${port}/d?sslmode=disable&target_session_attrs=${value}`)
      const cases: ReadonlyArray<[string, string, string, string]> = [
        ["read-write", "on", "SHOW transaction_read_only", "TargetSessionAttrs"],
        ["read-write", "off", "SHOW transaction_read_only", "connected"],
        ["read-only", "on", "SHOW transaction_read_only", "connected"],
        ["standby", "t", "SELECT pg_catalog.pg_is_in_recovery()", "connected"],
        ["standby", "f", "SELECT pg_catalog.pg_is_in_recovery()", "TargetSessionAttrs"],
        ["primary", "f", "SELECT pg_catalog.pg_is_in_recovery()", "connected"]
      ]
      for (const [wanted, answer, question, expected] of cases) {
        const { server, asked } = yield* unreported(answer)
        const r = yield* attrs(server.port, wanted)
        expect({ reason: r.reason, asked }, `${wanted} ${answer}`).toEqual({
          reason: expected,
          asked: [question]
        })
      }
      // A server that reports both is not asked; nor is anything asked for "any".
      const reported = yield* unreported("on", {
        server_version: "18.0",
        default_transaction_read_only: "off",
        in_hot_standby: "off"
      })
      expect((yield* attrs(reported.server.port, "read-write")).reason).toBe("connected")
      const anything = yield* unreported("on")
      expect((yield* attrs(anything.server.port, "any")).reason).toBe("connected")
      expect([...reported.asked, ...anything.asked]).toEqual([])
    })
  )
)

it.live("the target_session_attrs question is bounded by connect_timeout and by interruption", () =>
  Effect.scoped(
    Effect.gen(function* () {
      // Start-up completes without the two parameters; the question is never answered.
      const server = yield* localServer((socket) => {
        socket.on("error", () => {})
        socket.once("data", () => socket.write(encodeBackend({ type: "AuthenticationOk" }, ...session)))
      })
      const url = (extra: string) =>
        `postgres://u@127.0.0.1:${server.port}/d?sslmode=disable&target_session_attrs=read-write${extra}`
      const timedOut = yield* outcome(url("&connect_timeout=2")).pipe(
        Effect.timeout("10 seconds"),
        Effect.catchTag("TimeoutError", () => Effect.succeed({ reason: "still waiting", message: "" }))
      )
      expect(timedOut.reason).toBe("Timeout")
      expect(timedOut.message).toContain("connect_timeout expired")
      // Interrupted while waiting for the answer: the attempt ends and its socket is closed.
      const interrupted = yield* Effect.exit(outcome(url("")).pipe(Effect.timeout("300 millis")))
      expect(Exit.isFailure(interrupted)).toBe(true)
      yield* Effect.sleep("200 millis")
      expect(server.open()).toBe(0)
    })
  )
)

it.live("sslmode=prefer: a TLS attempt that failed is named beside the plain retry's pg_hba refusal", () =>
  Effect.scoped(
    Effect.gen(function* () {
      // "S", then bytes that are not TLS: the handshake fails; the plain retry is refused by pg_hba.
      const server = yield* fakeServer((m, conn) => {
        if (m.type === "SSLRequest") {
          conn.sendRaw("S")
          setTimeout(() => conn.socket.end("not a TLS server hello"), 20)
        } else if (m.type === "StartupMessage")
          conn.send({
            type: "ErrorResponse",
            fields: { severity: "FATAL", code: "28000", message: "no pg_hba.conf entry, no encryption" }
          })
      })
      const error = yield* Effect.flip(Effect.scoped(openSession(local(server.port))))
      expect(error._tag).toBe("InvalidAuthorizationSpecification")
      expect(error.message).toMatch(
        /^no pg_hba\.conf entry, no encryption \(the attempt before it failed: .+\)$/
      )
    })
  )
)
