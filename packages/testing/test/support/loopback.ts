/**
 * A loopback TCP server for the proxy's hermetic tests: runs `handler` per connection (half-open
 * allowed, Nagle off); close() destroys what is still open.
 */
import { createServer, type Server, type Socket } from "node:net"

export interface Target {
  readonly server: Server
  readonly port: number
  readonly close: () => Promise<void>
}

/** A loopback server running `handler` per connection; close() destroys what is still open. */
export const listen = async (handler: (socket: Socket) => void): Promise<Target> => {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    socket.setNoDelay(true)
    handler(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("no address")
  return {
    server,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
