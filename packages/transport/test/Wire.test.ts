/**
 * Wire's write side: frames of one tick go out in one socket write; a long burst streams in
 * pieces while it is still being encoded, so the server can start on its first statements. Its
 * read side's COPY TO fast path: CopyData handed over without message objects, under every
 * chunking of the socket's input, in order with the messages the parser handles.
 */
import { EventEmitter, once } from "node:events"
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net"
import { encodeBackend, encodeFlush } from "@pgline/codec"
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
  const writes: Array<number> = []
  const write = socket.write.bind(socket) as (chunk: Uint8Array, cb?: () => void) => boolean
  socket.write = ((chunk: Uint8Array, cb?: () => void) => {
    writes.push(chunk.length)
    return write(chunk, cb)
  }) as typeof socket.write
  return { wire: new Wire(socket), received: () => received, writes }
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

  it("a write that may wait goes out at the end of the event loop's turn, with what joined it", async () => {
    const { wire, received, writes } = await pair()
    encodeFlush(wire.writer)
    wire.schedule(true)
    // Later in the same turn (after this tick's microtasks, where a write that may not wait goes
    // out), more frames join the pending write.
    await Promise.resolve()
    await Promise.resolve()
    expect(wire.bytesWritten).toBe(0)
    encodeFlush(wire.writer)
    wire.schedule(true)
    await new Promise((r) => setImmediate(r))
    expect(writes).toEqual([10])
    expect(wire.bytesWritten).toBe(10)
    await waitFor(() => received() === 10)
    expect(received()).toBe(10)
  })

  it("a write that must not wait takes over a pending end-of-turn write", async () => {
    const { wire, received, writes } = await pair()
    encodeFlush(wire.writer)
    wire.schedule(true)
    encodeFlush(wire.writer)
    wire.schedule()
    await Promise.resolve()
    // Both frames left at the end of the tick, in one write, before the turn's end.
    expect(writes).toEqual([10])
    await new Promise((r) => setImmediate(r))
    expect(writes).toEqual([10])
    await waitFor(() => received() === 10)
    expect(received()).toBe(10)
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

/** A socket stand-in: the test pushes chunks as 'data' events, exactly as split as it likes. */
class FakeSocket extends EventEmitter {
  paused = false
  pause(): this {
    this.paused = true
    return this
  }
  resume(): this {
    this.paused = false
    return this
  }
  write(): boolean {
    return true
  }
  destroy(): this {
    return this
  }
  get writableLength(): number {
    return 0
  }
}

describe("Wire reads: the COPY TO fast path", () => {
  const payloads: Array<Uint8Array> = [
    new Uint8Array(0),
    Uint8Array.of(7),
    ...Array.from({ length: 200 }, (_, i) => new TextEncoder().encode(`${i}\trow ${"x".repeat(i % 37)}\n`)),
    new Uint8Array(300 * 1024).fill(3), // longer than the fast path carries: the parser's
    new TextEncoder().encode("last\n")
  ]
  const stream = Buffer.concat([
    encodeBackend({ type: "CopyOutResponse", format: 0, columnFormats: [0, 0] }),
    ...payloads.map((data) => encodeBackend({ type: "CopyData", data })),
    encodeBackend({ type: "CopyDone" }),
    encodeBackend({ type: "CommandComplete", tag: "COPY 203" }),
    encodeBackend({ type: "ReadyForQuery", status: "I" })
  ])
  const expected = Buffer.concat(payloads)

  /** Feeds `stream` in the given pieces; returns the copied bytes and the messages the handler saw. */
  const feed = (cuts: ReadonlyArray<number>) => {
    const socket = new FakeSocket()
    const wire = new Wire(socket as unknown as Socket)
    const copied: Array<Uint8Array> = []
    const seen: Array<string> = []
    let viaSink = 0
    const sink = (chunk: Buffer, start: number, end: number) => {
      viaSink++
      copied.push(Uint8Array.prototype.slice.call(chunk, start, end))
    }
    wire.setHandler(
      (m) => {
        seen.push(m.type)
        if (m.type === "CopyOutResponse") wire.copyDataSink = sink
        if (m.type === "CopyData") copied.push(m.data.slice())
        if (m.type === "CopyDone") wire.copyDataSink = undefined
      },
      () => {}
    )
    let at = 0
    for (const cut of [...cuts, stream.length]) {
      if (cut <= at) continue
      socket.emit("data", stream.subarray(at, Math.min(cut, stream.length)))
      at = Math.min(cut, stream.length)
    }
    return { bytes: Buffer.concat(copied), seen, viaSink }
  }

  it("every payload arrives once, in order, whatever the chunking; other messages keep their order", () => {
    const splits: Array<ReadonlyArray<number>> = [[]]
    for (const size of [1, 2, 3, 5, 7, 64, 1000, 65536]) {
      const cuts: Array<number> = []
      for (let c = size; c < stream.length; c += size) cuts.push(c)
      splits.push(cuts)
    }
    let seed = 42
    for (let r = 0; r < 20; r++) {
      const cuts: Array<number> = []
      for (let c = 0; c < stream.length; ) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        c += 1 + (seed % 9000)
        cuts.push(c)
      }
      splits.push(cuts)
    }
    for (const cuts of splits) {
      const { bytes, seen } = feed(cuts)
      expect(Buffer.compare(bytes, expected)).toBe(0)
      const others = seen.filter((t) => t !== "CopyData")
      expect(others).toEqual(["CopyOutResponse", "CopyDone", "CommandComplete", "ReadyForQuery"])
    }
    // Not vacuous: in 1000-byte pieces, most rows took the fast path (those in the chunk that
    // carried CopyOutResponse went through the parser, which installed the sink).
    const pieces: Array<number> = []
    for (let c = 1000; c < stream.length; c += 1000) pieces.push(c)
    expect(feed(pieces).viaSink).toBeGreaterThan(100)
  })
})

describe("Wire reads", () => {
  it("a handler that throws closes the wire with its error instead of escaping the socket's event", () => {
    const socket = new FakeSocket()
    const wire = new Wire(socket as unknown as Socket)
    const closed: Array<string> = []
    const seen: Array<string> = []
    wire.setHandler(
      (m) => {
        seen.push(m.type)
        throw new TypeError("handler bug")
      },
      (cause) => closed.push(`${cause.kind}: ${cause.message}`)
    )
    const bytes = Buffer.concat([
      encodeBackend({ type: "ReadyForQuery", status: "I" }),
      encodeBackend({ type: "ReadyForQuery", status: "I" })
    ])
    expect(() => socket.emit("data", bytes)).not.toThrow()
    expect(seen).toEqual(["ReadyForQuery"])
    expect(closed).toEqual(["error: reading the server's messages failed: TypeError: handler bug"])
    expect(wire.isClosed).toBe(true)
  })
})
