/**
 * Wire's write side: frames of one tick go out in one socket write; a long burst streams in
 * pieces while it is still being encoded, so the server can start on its first statements.
 */
import { once } from "node:events"
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net"
import { encodeFlush } from "@pgline/codec"
import { afterEach, describe, expect, it } from "vitest"
import { Wire } from "../src/internal/Wire.ts"

const open: Array<{ server: Server; sockets: Array<Socket> }> = []

/** A loopback server that counts the bytes it receives, and a Wire connected to it. */
const pair = async () => {
  let received = 0
  const sockets: Array<Socket> = []
  const server = createServer((s) => {
    sockets.push(s)
    s.on("data", (d: Buffer) => {
      received += d.length
    })
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const port = (server.address() as { port: number }).port
  const socket = tcpConnect({ host: "127.0.0.1", port })
  await once(socket, "connect")
  sockets.push(socket)
  open.push({ server, sockets })
  return { wire: new Wire(socket), received: () => received }
}

afterEach(async () => {
  for (const { server, sockets } of open.splice(0)) {
    for (const s of sockets) s.destroy()
    await new Promise((r) => server.close(r))
  }
})

const waitFor = async (predicate: () => boolean) => {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 5))
}

describe("Wire writes", () => {
  it("a small burst waits for the end of the tick and goes out in one write", async () => {
    const { wire, received } = await pair()
    for (let i = 0; i < 100; i++) {
      encodeFlush(wire.writer)
      wire.schedule()
    }
    // Nothing has reached the socket yet: the write happens after this synchronous code.
    expect(wire.bytesWritten).toBe(0)
    await waitFor(() => received() === 500)
    expect(wire.bytesWritten).toBe(500)
    expect(received()).toBe(500)
  })

  it("a long burst streams while it is being encoded", async () => {
    const { wire, received } = await pair()
    const frames = 40_000 // 200,000 bytes of Flush frames
    let writtenMidway = -1
    for (let i = 0; i < frames; i++) {
      encodeFlush(wire.writer)
      wire.schedule()
      if (i === frames / 2) writtenMidway = wire.bytesWritten
    }
    // Half-way through the synchronous loop most of the first half is already with the socket.
    expect(writtenMidway).toBeGreaterThan(50_000)
    expect(writtenMidway % 5).toBe(0)
    await waitFor(() => received() === frames * 5)
    expect(received()).toBe(frames * 5)
    expect(wire.bytesWritten).toBe(frames * 5)
  })
})
