/**
 * Session.open against scripted fake servers, for what a real server will not do on demand: never
 * answer (connect_timeout, interruption of a pending connect), answer the SSLRequest with
 * unencrypted bytes behind the "S" (CVE-2021-23222), refuse the SSLRequest with an error, send a
 * message start-up does not allow. Also what PgConnectError says about each host tried. Hermetic
 * apart from the one real server used as the reachable second host.
 */
import type { Socket } from "node:net"
import { TLSSocket } from "node:tls"
import { expect, layer } from "@effect/vitest"
import { encodeBackend } from "@pgline/codec"
import { Effect, Exit, Fiber } from "effect"
import { localServer, PgServer } from "../../testing/src/index.ts"
import { generateCertificates } from "../../testing/src/internal/certificates.ts"
import { openSession } from "./support/session.ts"

/** A listener that runs `onConnection` for each client (nothing by default: it never answers). */
const fakeListener = (onConnection: (socket: Socket) => void = () => {}) =>
  localServer((socket) => {
    onConnection(socket)
    // Flowing mode, so that the client's close is seen even when the script reads nothing.
    socket.resume()
  })

/** Waits (bounded) until `f` holds. */
const eventually = (f: () => boolean, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      if (f()) return
      yield* Effect.sleep("10 millis")
    }
    throw new Error(`never happened: ${what}`)
  })

const local = (port: number, extra = "") => `postgres://u@127.0.0.1:${port}/d?${extra}`

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("Session faults", (it) => {
  it.effect("interrupting a pending connect closes its socket (no connect_timeout)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const fake = yield* fakeListener()
        const fiber = yield* Effect.forkChild(Effect.scoped(openSession(local(fake.port, "sslmode=disable"))))
        yield* eventually(() => fake.accepted() === 1, "the client connected")
        yield* Fiber.interrupt(fiber)
        yield* eventually(() => fake.open() === 0, "the client closed its socket")
        expect(fake.open()).toBe(0)
      })
    )
  )

  it.effect("SSLRequest answered with S plus unencrypted bytes is refused (CVE-2021-23222)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const fake = yield* fakeListener((socket) =>
          socket.once("data", () => {
            socket.write(
              Buffer.concat([Buffer.from("S"), encodeBackend({ type: "ReadyForQuery", status: "I" })])
            )
          })
        )
        const error = yield* Effect.flip(Effect.scoped(openSession(local(fake.port, "sslmode=require"))))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
      })
    )
  )

  it.effect("an ErrorResponse instead of the SSLRequest answer is a Protocol failure", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const fake = yield* fakeListener((socket) =>
          socket.once("data", () => {
            socket.end(
              encodeBackend({
                type: "ErrorResponse",
                fields: { severity: "FATAL", code: "08P01", message: "unsupported frontend protocol" }
              })
            )
          })
        )
        const error = yield* Effect.flip(Effect.scoped(openSession(local(fake.port, "sslmode=require"))))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
      })
    )
  )

  it.effect("a message start-up does not allow is a Protocol failure", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const fake = yield* fakeListener((socket) =>
          socket.once("data", () => {
            socket.write(
              encodeBackend({ type: "AuthenticationOk" }, { type: "CommandComplete", tag: "SELECT 1" })
            )
          })
        )
        const error = yield* Effect.flip(Effect.scoped(openSession(local(fake.port, "sslmode=disable"))))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
      })
    )
  )

  it.effect("connect_timeout covers a silent server and a host list moves on to the next host", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const fake = yield* fakeListener()
        const started = Date.now()
        const exit = yield* Effect.exit(
          Effect.scoped(
            Effect.map(
              openSession(
                `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${fake.port},127.0.0.1:${info.port}/${info.database}?connect_timeout=2&sslmode=disable`
              ),
              (s) => s.endpoint.port
            )
          )
        )
        expect(exit).toEqual(Exit.succeed(info.port))
        // Liveness bound: the silent host cost about connect_timeout, not forever.
        expect(Date.now() - started).toBeLessThan(10_000)
      })
    )
  )

  it.effect("PgConnectError names the host, or every host tried", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* fakeListener((socket) => socket.destroy())
        const b = yield* fakeListener((socket) => socket.destroy())
        const one = yield* Effect.flip(Effect.scoped(openSession(local(a.port, "sslmode=disable"))))
        expect(one).toMatchObject({
          _tag: "PgConnectError",
          reason: "Network",
          host: "127.0.0.1",
          port: a.port
        })
        const two = yield* Effect.flip(
          Effect.scoped(openSession(`postgres://u@127.0.0.1:${a.port},127.0.0.1:${b.port}/d?sslmode=disable`))
        )
        expect(two).toMatchObject({ _tag: "PgConnectError", reason: "Network" })
        if (two._tag !== "PgConnectError") throw new Error("unreachable")
        expect(two.attempts).toHaveLength(2)
        expect(two.attempts![0]).toContain(String(a.port))
        expect(two.attempts![1]).toContain(String(b.port))
      })
    )
  )

  it.effect("a CancelRequest connection the server never closes is closed by the client, bounded", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let connections = 0
        // Half-open sockets allowed: the client's FIN after the request does not close the server's side.
        const fake = yield* localServer(
          (socket) => {
            socket.resume()
            // The first connection is the session: answer start-up at once. The second is the
            // CancelRequest: read it and never close.
            if (++connections === 1) {
              socket.once("data", () =>
                socket.write(
                  encodeBackend(
                    { type: "AuthenticationOk" },
                    { type: "BackendKeyData", processId: 7, secretKey: new Uint8Array([9, 9, 9, 9]) },
                    { type: "ReadyForQuery", status: "I" }
                  )
                )
              )
            }
          },
          { allowHalfOpen: true }
        )
        const session = yield* openSession(local(fake.port, "sslmode=disable"))
        const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
        const before = sockets()
        // Resolves (the request was delivered) although the server never closes the connection.
        yield* Effect.promise(() => session.cancel()).pipe(Effect.timeout("8 seconds"))
        expect(fake.accepted()).toBe(2)
        // One more socket than before: the server's side of the cancel connection (half-open, in this
        // process); the client's side was destroyed.
        yield* eventually(() => sockets() === before + 1, "the client's cancel socket destroyed")
      })
    )
  )

  it.effect(
    "a CancelRequest connection stalled in the TLS handshake ends by the deadline, socket closed",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const certs = yield* Effect.promise(() => generateCertificates("u"))
          let connections = 0
          const fake = yield* localServer((socket) => {
            socket.on("error", () => {})
            const which = ++connections
            socket.once("data", () => {
              // Both SSLRequests get "S"; the second connection (the CancelRequest's) then never
              // takes part in the handshake.
              socket.write("S")
              if (which !== 1) return
              const tls = new TLSSocket(socket, {
                isServer: true,
                cert: certs.serverCert,
                key: certs.serverKey
              })
              tls.on("error", () => {})
              tls.once("data", () =>
                tls.write(
                  encodeBackend(
                    { type: "AuthenticationOk" },
                    { type: "BackendKeyData", processId: 7, secretKey: new Uint8Array([9, 9, 9, 9]) },
                    { type: "ReadyForQuery", status: "I" }
                  )
                )
              )
            })
          })
          const session = yield* openSession(local(fake.port, "sslmode=require&connect_timeout=2"))
          expect(session.tls).toBe(true)
          const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length
          const before = sockets()
          const started = Date.now()
          yield* Effect.promise(() => session.cancel()).pipe(Effect.timeout("8 seconds"))
          // The whole cancel is bounded by connect_timeout (2 s), not only its TCP connect.
          expect(Date.now() - started).toBeLessThan(4_000)
          expect(fake.accepted()).toBe(2)
          // The client's side is gone, and with it the server's (in this process too).
          yield* eventually(() => sockets() === before, "the client's cancel socket destroyed")
        })
      )
  )
})
