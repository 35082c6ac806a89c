/**
 * LatencyProxy, hermetic: local echo / sink servers behind the proxy. Bytes arrive intact and in
 * order, every round trip takes at least 2 × delay (a correctness bound, not a speed test),
 * setDelay applies and never lets a chunk overtake an earlier one, FIN and resets propagate,
 * closing frees the port, and a 50 MB transfer into a slow reader stays within the buffer bound.
 */
import { randomBytes } from "node:crypto"
import { createServer, type Socket, connect as tcpConnect } from "node:net"
import { performance } from "node:perf_hooks"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { LatencyProxy, type LatencyProxyHandle, startLatencyProxy, withProxyUrl } from "../src/index.ts"
import { startLocalServer } from "../src/LocalServer.ts"

/** A loopback target running `handler` per connection (half-open allowed, as a TCP peer may be). */
const listen = (handler: (socket: Socket) => void) => startLocalServer(handler, { allowHalfOpen: true })

const echo = () => listen((socket) => socket.pipe(socket))

const connectTo = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, noDelay: true, allowHalfOpen: true })
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })

const closed = (socket: Socket): Promise<void> =>
  socket.closed || socket.destroyed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once("close", resolve))

/** Ping-pong of one byte through an echo; returns each round trip in ms. */
const pings = async (socket: Socket, count: number): Promise<Array<number>> => {
  const out: Array<number> = []
  for (let i = 0; i < count; i++) {
    const answered = new Promise<void>((resolve) => socket.once("data", () => resolve()))
    const t0 = performance.now()
    socket.write(Buffer.of(i & 0xff))
    await answered
    out.push(performance.now() - t0)
  }
  return out
}

/** Reads until the socket ends; resolves with everything it sent. */
const readAll = (socket: Socket): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.once("end", () => resolve(Buffer.concat(chunks)))
    socket.once("error", reject)
  })

/** Resolves once `n` bytes arrived (ignores the rest). */
const receive = (socket: Socket, n: number): Promise<Buffer> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    let got = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      got += chunk.length
      if (got >= n) {
        socket.off("data", onData)
        resolve(Buffer.concat(chunks))
      }
    }
    socket.on("data", onData)
  })

/**
 * Waits until `condition` holds, checking after every turn of the event loop; the 5 s bound is only
 * a liveness limit (a condition still false then fails the test).
 */
const until = async (condition: () => boolean, what: string): Promise<void> => {
  const deadline = performance.now() + 5_000
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`never happened: ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Waits until the proxy has no connection left: both sockets closed. */
const settled = (proxy: LatencyProxyHandle): Promise<void> =>
  until(() => proxy.stats().activeConnections === 0, "every proxied connection closed")

const withProxy = async <A>(
  targetPort: number,
  delayMs: number,
  body: (proxy: LatencyProxyHandle) => Promise<A>,
  highWaterMark?: number
): Promise<A> => {
  const proxy = await startLatencyProxy({
    targetHost: "127.0.0.1",
    targetPort,
    delayMs,
    ...(highWaterMark === undefined ? {} : { highWaterMark })
  })
  try {
    return await body(proxy)
  } finally {
    await proxy.close()
  }
}

describe("LatencyProxy", () => {
  it("forwards 1 MB written in random chunk sizes intact and in order, both ways", async () => {
    const target = await echo()
    try {
      await withProxy(target.port, 0.5, async (proxy) => {
        const payload = randomBytes(1024 * 1024)
        const socket = await connectTo(proxy.port)
        const echoed = receive(socket, payload.length)
        // A fixed-seed LCG picks chunk sizes 1..8192; every few chunks yield a tick so the proxy
        // sees many separate reads rather than one coalesced stream.
        let seed = 12345
        let offset = 0
        let writes = 0
        while (offset < payload.length) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff
          const size = 1 + (seed % 8192)
          socket.write(payload.subarray(offset, offset + size))
          offset += size
          if (++writes % 7 === 0) await new Promise((resolve) => setImmediate(resolve))
        }
        const got = await echoed
        expect(got.length).toBe(payload.length)
        expect(got.equals(payload)).toBe(true)
        expect(writes).toBeGreaterThan(200)
        const stats = proxy.stats()
        expect(stats.bytesToTarget).toBe(payload.length)
        expect(stats.bytesFromTarget).toBe(payload.length)
        socket.destroy()
      })
    } finally {
      await target.close()
    }
  })

  for (const delayMs of [0.5, 2, 5]) {
    it(`round trips through a ${delayMs} ms proxy take at least ${2 * delayMs} ms`, async () => {
      const target = await echo()
      try {
        await withProxy(target.port, delayMs, async (proxy) => {
          const socket = await connectTo(proxy.port)
          const rtts = await pings(socket, 20)
          expect(Math.min(...rtts)).toBeGreaterThanOrEqual(2 * delayMs)
          const stats = proxy.stats()
          expect(stats.delayMs).toBe(delayMs)
          expect(stats.released).toBe(40)
          expect(stats.lateMaxMs).toBeGreaterThanOrEqual(0)
          // Each ping waited for its echo: one client flight per round trip.
          expect(stats.clientFlights).toBe(20)
          socket.destroy()
        })
      } finally {
        await target.close()
      }
    })
  }

  it("counts client flights: writes before any answer are one flight, a write after an answer starts another", async () => {
    const target = await echo()
    try {
      await withProxy(target.port, 1, async (proxy) => {
        const socket = await connectTo(proxy.port)
        // Three writes in a row: nothing has come back yet, so they are one flight.
        const all = receive(socket, 3)
        socket.write("a")
        socket.write("b")
        socket.write("c")
        await all
        expect(proxy.stats().clientFlights).toBe(1)
        // After the answers, each ping is a flight of its own.
        await pings(socket, 3)
        expect(proxy.stats().clientFlights).toBe(4)
        socket.destroy()
      })
    } finally {
      await target.close()
    }
  })

  it("setDelay changes the delay for later chunks, and a shorter delay never lets a chunk overtake", async () => {
    const target = await echo()
    try {
      await withProxy(target.port, 0.5, async (proxy) => {
        const socket = await connectTo(proxy.port)
        expect(Math.min(...(await pings(socket, 5)))).toBeGreaterThanOrEqual(1)
        proxy.setDelay(5)
        expect(Math.min(...(await pings(socket, 5)))).toBeGreaterThanOrEqual(10)
        // "A" goes out with a 20 ms delay; "B", sent right after the delay drops to 0, waits behind it.
        proxy.setDelay(20)
        const both = receive(socket, 2)
        const flights = proxy.stats().clientFlights
        const t0 = performance.now()
        socket.write("A")
        // Wait until the proxy has read "A" into its FIFO (due in 20 ms): "A" is the first client
        // byte after the echoes, so reading it starts a new client flight.
        await until(() => proxy.stats().clientFlights > flights, "the proxy read A")
        proxy.setDelay(0)
        socket.write("B")
        const got = await both
        expect(got.toString()).toBe("AB")
        // A's 20 ms up; the echo back of A and B left after setDelay(0).
        expect(performance.now() - t0).toBeGreaterThanOrEqual(20)
        expect(Math.min(...(await pings(socket, 5)))).toBeGreaterThanOrEqual(0)
        expect(() => proxy.setDelay(-1)).toThrow(RangeError)
        expect(() => proxy.setDelay(Number.NaN)).toThrow(RangeError)
        socket.destroy()
      })
    } finally {
      await target.close()
    }
  })

  it("propagates half-close: data after the client's FIN still flows back, then the FIN", async () => {
    const target = await listen((socket) => {
      const chunks: Array<Buffer> = []
      socket.on("data", (chunk: Buffer) => chunks.push(chunk))
      socket.on("end", () => {
        // Reply after a pause: the client's side is half-closed, ours is still open.
        setTimeout(() => socket.end(`got ${Buffer.concat(chunks).toString()}`), 5)
      })
    })
    try {
      await withProxy(target.port, 1, async (proxy) => {
        const socket = await connectTo(proxy.port)
        const reply = readAll(socket)
        socket.end("hello")
        expect((await reply).toString()).toBe("got hello")
        await closed(socket)
        // Both sides closed: the link is gone (its listeners were removed when each socket closed).
        await settled(proxy)
        expect(proxy.stats().totalConnections).toBe(1)
        expect(proxy.stats().bufferedBytes).toBe(0)
      })
    } finally {
      await target.close()
    }
  })

  it("a reset on the target side resets the client, and a refused target closes it", async () => {
    const target = await listen((socket) => {
      socket.once("data", () => socket.resetAndDestroy())
    })
    try {
      await withProxy(target.port, 1, async (proxy) => {
        const socket = await connectTo(proxy.port)
        const error = new Promise<Error | undefined>((resolve) => {
          socket.once("error", resolve)
          socket.once("close", () => resolve(undefined))
        })
        socket.write("x")
        const seen = await error
        expect((seen as NodeJS.ErrnoException | undefined)?.code).toBe("ECONNRESET")
        await closed(socket)
        await settled(proxy)
      })
    } finally {
      await target.close()
    }
    // Nothing listens on the old port any more: the upstream connect is refused.
    await withProxy(target.port, 1, async (proxy) => {
      const socket = await connectTo(proxy.port)
      socket.on("error", () => {})
      socket.write("x")
      await closed(socket)
      await settled(proxy)
    })
  })

  it("close() closes open connections and frees the port", async () => {
    const target = await echo()
    try {
      const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: target.port, delayMs: 2 })
      const socket = await connectTo(proxy.port)
      socket.on("error", () => {})
      await pings(socket, 2)
      expect(proxy.stats().activeConnections).toBe(1)
      socket.write("in flight")
      await proxy.close()
      await closed(socket)
      expect(proxy.stats().activeConnections).toBe(0)
      await proxy.close() // idempotent
      // The port is free: a new listener can take it.
      const again = createServer()
      await new Promise<void>((resolve, reject) => {
        again.once("error", reject)
        again.listen(proxy.port, "127.0.0.1", resolve)
      })
      await new Promise<void>((resolve) => again.close(() => resolve()))
    } finally {
      await target.close()
    }
  })

  it("bounds its buffers: 50 MB into a slow reader never holds more than the high-water mark + a socket buffer", async () => {
    const total = 50 * 1024 * 1024
    const highWaterMark = 1024 * 1024
    let received = 0
    let finished: () => void = () => {}
    const done = new Promise<void>((resolve) => {
      finished = resolve
    })
    const sink = await listen((socket) => {
      // A slow reader: after each chunk, stop reading for 1 ms.
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length
        socket.pause()
        setTimeout(() => socket.resume(), 1)
      })
      socket.on("end", () => {
        socket.end()
        finished()
      })
    })
    try {
      await withProxy(
        sink.port,
        1,
        async (proxy) => {
          const socket = await connectTo(proxy.port)
          let peak = 0
          const sampler = setInterval(() => {
            peak = Math.max(peak, proxy.stats().bufferedBytes)
          }, 2)
          // The writer respects its own socket's back-pressure, so what it cannot send waits here,
          // not in the proxy: the proxy holding it all would show up in its stats.
          const block = randomBytes(64 * 1024)
          let sent = 0
          while (sent < total) {
            sent += block.length
            if (!socket.write(block)) await new Promise((resolve) => socket.once("drain", resolve))
          }
          socket.end()
          await done
          clearInterval(sampler)
          expect(received).toBe(total)
          const stats = proxy.stats()
          expect(stats.bytesToTarget).toBe(total)
          // Bound: the FIFO pauses its source at the mark (one more 64 KiB read may be in flight),
          // plus the destination's write buffer (16 KiB mark + the chunk that crossed it).
          const bound = highWaterMark + 512 * 1024
          expect(stats.maxBufferedBytes).toBeLessThanOrEqual(bound)
          expect(peak).toBeLessThanOrEqual(2 * bound)
          expect(stats.maxBufferedBytes).toBeLessThan(total / 10)
          socket.destroy()
        },
        highWaterMark
      )
    } finally {
      await sink.close()
    }
  })

  it("refuses non-loopback targets and bad options", async () => {
    await expect(startLatencyProxy({ targetHost: "10.0.0.1", targetPort: 5432, delayMs: 1 })).rejects.toThrow(
      /loopback/
    )
    await expect(
      startLatencyProxy({ targetHost: "example.com", targetPort: 5432, delayMs: 1 })
    ).rejects.toThrow(/loopback/)
    await expect(
      startLatencyProxy({ targetHost: "127.0.0.1", targetPort: 5432, delayMs: -1 })
    ).rejects.toThrow(RangeError)
    await expect(startLatencyProxy({ targetHost: "127.0.0.1", targetPort: 0, delayMs: 1 })).rejects.toThrow(
      RangeError
    )
  })

  it("withProxyUrl rewrites host and port and keeps the rest", () => {
    const proxy = { host: "127.0.0.1", port: 40001 }
    expect(withProxyUrl("postgres://u:p%40ss@localhost:5432/db?sslmode=require", proxy)).toBe(
      "postgres://u:p%40ss@127.0.0.1:40001/db?sslmode=require"
    )
    expect(withProxyUrl("postgresql://u@db.internal/db", proxy)).toBe("postgresql://u@127.0.0.1:40001/db")
    expect(withProxyUrl("postgres://u@h:1/db?host=/tmp&port=7&application_name=x", proxy)).toBe(
      "postgres://u@127.0.0.1:40001/db?application_name=x"
    )
  })

  it.effect("LatencyProxy.make is a scoped resource: closing the scope closes the proxy", () =>
    Effect.gen(function* () {
      const target = yield* Effect.acquireRelease(Effect.promise(echo), (t) => Effect.promise(t.close))
      const scope = yield* Scope.make()
      const proxy = yield* LatencyProxy.make({
        targetHost: "127.0.0.1",
        targetPort: target.port,
        delayMs: 1
      }).pipe(Scope.provide(scope))
      const rtts = yield* Effect.promise(async () => {
        const socket = await connectTo(proxy.port)
        const out = await pings(socket, 3)
        socket.destroy()
        return out
      })
      expect(Math.min(...rtts)).toBeGreaterThanOrEqual(2)
      expect(proxy.url("postgres://u@localhost:5432/db")).toBe(`postgres://u@127.0.0.1:${proxy.port}/db`)
      yield* Scope.close(scope, Exit.void)
      const refused = yield* Effect.promise(() =>
        connectTo(proxy.port).then(
          (s) => {
            s.destroy()
            return "connected"
          },
          (e: NodeJS.ErrnoException) => e.code
        )
      )
      expect(refused).toBe("ECONNREFUSED")

      const failed = yield* Effect.exit(
        Effect.scoped(LatencyProxy.make({ targetHost: "192.0.2.1", targetPort: 1, delayMs: 1 }))
      )
      expect(Exit.isFailure(failed)).toBe(true)
    }).pipe(Effect.scoped)
  )
})
