/**
 * LocalServer: a bare TCP listener on 127.0.0.1 for tests that need a peer a real PostgreSQL will
 * not be (one that never answers, scripted fakes, echo and sink targets behind a proxy). It runs
 * `onConnection` for each accepted socket (Nagle off; socket errors are the test's business, so
 * they are swallowed here) and tracks the open sockets; closing destroys them and frees the port.
 */
import { createServer, type Socket } from "node:net"
import { Effect, type Scope } from "effect"

/** A loopback TCP listener started by `startLocalServer`: its port, connection counts and `close()`. */
export interface LocalServer {
  readonly port: number
  /** Sockets accepted and not yet closed. */
  readonly open: () => number
  /** Sockets accepted since the start. */
  readonly accepted: () => number
  /** Destroys every open socket and stops listening. Idempotent. */
  readonly close: () => Promise<void>
}

/** Options of `startLocalServer`. */
export interface LocalServerOptions {
  /** Keep a socket writable after the peer's FIN (default false). */
  readonly allowHalfOpen?: boolean
}

/**
 * Starts a bare TCP listener on a free loopback port that hands every connection to `onConnection`
 * (for tests: a server that never answers, one that closes at once…). Rejects if it cannot listen.
 */
export const startLocalServer = (
  onConnection: (socket: Socket) => void,
  options: LocalServerOptions = {}
): Promise<LocalServer> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<Socket>()
    let accepted = 0
    let closing: Promise<void> | undefined
    const server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
      accepted++
      sockets.add(socket)
      socket.on("error", () => {})
      socket.on("close", () => sockets.delete(socket))
      socket.setNoDelay(true)
      onConnection(socket)
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("no TCP address"))
      resolve({
        port: address.port,
        open: () => sockets.size,
        accepted: () => accepted,
        close: () => {
          closing ??= new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
          return closing
        }
      })
    })
  })

/** `startLocalServer` as a scoped resource: closed with the scope. */
export const localServer = (
  onConnection: (socket: Socket) => void,
  options: LocalServerOptions = {}
): Effect.Effect<LocalServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startLocalServer(onConnection, options)),
    (server) => Effect.promise(() => server.close())
  )
