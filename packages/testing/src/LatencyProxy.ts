/**
 * LatencyProxy: a userspace TCP proxy that adds a fixed one-way delay to every chunk in both
 * directions, so the demo, examples and benchmarks can simulate a network round trip to
 * PostgreSQL on a machine without tc/netem (RTT = 2 × delayMs). It listens on 127.0.0.1 and only
 * forwards to a loopback target: it is a test tool, never a relay.
 *
 * How: per connection and direction, a FIFO of (chunk, release time); release times never
 * decrease (a chunk never overtakes an earlier one, even right after `setDelay` shortens the
 * delay). `setTimeout` cannot time this (1 ms granularity, overshoots by 0.1–0.7 ms: measured
 * setTimeout(1) → median 1.26 ms, setTimeout(2) → 2.34 ms), and polling the last stretch, as this
 * proxy once did, keeps a core busy whenever a chunk is in flight, which skews benchmarks on a
 * small machine. So each proxy has one `Ticker` (internal/ticker.ts): a worker thread sleeps in
 * `Atomics.wait` (a futex with a sub-millisecond timeout) until just before the earliest release
 * time, then posts a message that wakes the event loop, which releases every chunk that is due,
 * never one early. The thread is unref'd, idle it blocks without a timeout, and `close()` ends it.
 *
 * Measured on this project's 2-vCPU machine, otherwise idle, one ping-pong connection through an
 * echo: the proxy process uses 26% of a core at 0.5 ms one-way (polling: 84%) and 12% at 2 ms
 * (polling: 45%), the ticker thread 11% and 4% of that; chunks leave a median 0.03 / 0.05 ms late,
 * 90th percentile 0.06 / 0.14 ms (when other processes keep both cores busy, 90th percentiles of
 * 0.3–0.5 ms). `stats()` reports how late chunks actually left.
 *
 * Back-pressure: a direction stops reading its source while the destination's `write` returned
 * false (until 'drain') or while more than `highWaterMark` bytes wait in its FIFO, so a huge
 * transfer holds at most about `highWaterMark` + one socket's write buffer per direction.
 * Half-close (FIN) travels through the FIFO behind the data, delayed like it; an error on either
 * side resets both; each socket's listeners are removed when it closes.
 *
 * Deliberately not simulated: bandwidth limits, jitter, loss, and the handshake's round trip (the
 * client's TCP connect completes at the proxy at once; the first bytes then pay the delay).
 */
import { createServer, isIP, type Server, Socket, connect as tcpConnect } from "node:net"
import { performance } from "node:perf_hooks"
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { Ticker } from "./internal/ticker.ts"
import { PgServer } from "./PgServer.ts"

/** Options of `startLatencyProxy`: the target, the delay added in each direction, the port to listen on. */
export interface LatencyProxyOptions {
  /** Loopback only: `127.0.0.0/8`, `::1` or `localhost`. */
  readonly targetHost: string
  readonly targetPort: number
  /** One-way delay per direction in ms (fractional allowed); the round trip gains twice this. */
  readonly delayMs: number
  /** Port to listen on (127.0.0.1); 0, the default, picks a free one. */
  readonly port?: number
  /**
   * Bytes a direction may hold in its delay FIFO before it stops reading its source. The default,
   * 4 MiB, caps one connection at 4 MiB / delay (2 GB/s at 2 ms one-way, ~0.8 GB/s at 5 ms).
   */
  readonly highWaterMark?: number
}

/** What a latency proxy counted: connections, bytes each way, buffering, and how late chunks were released. */
export interface LatencyProxyStats {
  /** The current one-way delay (ms). */
  readonly delayMs: number
  readonly activeConnections: number
  readonly totalConnections: number
  /** Bytes forwarded client → target and target → client (released, not merely received). */
  readonly bytesToTarget: number
  readonly bytesFromTarget: number
  /** Bytes held right now, all connections: FIFOs plus the destinations' unsent write buffers. */
  readonly bufferedBytes: number
  /** The most bytes one direction of one connection ever held (FIFO + destination write buffer). */
  readonly maxBufferedBytes: number
  /**
   * Chunks (and FINs) released, and how late they left relative to their release time: the timer's
   * error (time spent waiting for a destination's 'drain' is back-pressure, not lateness).
   */
  readonly released: number
  readonly lateMeanMs: number
  readonly lateMaxMs: number
  /**
   * Client flights, all connections: client → target data counted once per burst, a burst being
   * client bytes that arrive after target bytes on the same connection (or first on it). A client
   * that waits for each answer makes one flight per round trip, so the difference over a loop of
   * N operations divided by N is the round trips each one cost, whatever the timing noise.
   */
  readonly clientFlights: number
}

/** A running latency proxy: where it listens, `url()` to rewrite a PostgreSQL URL through it, `setDelay`, `stats`, `close`. */
export interface LatencyProxyHandle {
  readonly host: string
  readonly port: number
  /** `postgresUrl` with its host and port pointed at this proxy. */
  readonly url: (postgresUrl: string) => string
  /** Changes the one-way delay for chunks received from now on. */
  readonly setDelay: (delayMs: number) => void
  readonly stats: () => LatencyProxyStats
  /** Stops listening and resets every open connection; resolves once the port is free. Idempotent. */
  readonly close: () => Promise<void>
}

/** The proxy could not start (bad options, or the listen failed). */
export class LatencyProxyError extends Schema.TaggedError<LatencyProxyError>()("LatencyProxyError", {
  message: Schema.String
}) {}

const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024

const checkDelay = (delayMs: number): number => {
  if (!Number.isFinite(delayMs) || delayMs < 0) {
    throw new RangeError(`delayMs must be a finite number ≥ 0, not ${delayMs}`)
  }
  return delayMs
}

const isLoopback = (host: string): boolean => {
  if (host === "localhost") return true
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  const kind = isIP(h)
  if (kind === 4) return h.startsWith("127.")
  if (kind === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\./i.test(h)
  return false
}

/** Rewrites the host and port of a `postgres://` (or `postgresql://`) URL to go through `proxy`. */
export const withProxyUrl = (
  url: string,
  proxy: { readonly host: string; readonly port: number }
): string => {
  const parsed = new URL(url)
  parsed.hostname = proxy.host
  parsed.port = String(proxy.port)
  // libpq lets query parameters override the authority; drop them so they cannot bypass the proxy.
  parsed.searchParams.delete("host")
  parsed.searchParams.delete("hostaddr")
  parsed.searchParams.delete("port")
  return parsed.toString()
}

/** Counters shared by every connection of one proxy. */
interface Shared {
  delayMs: number
  /** Wakes directions at their head's release time (one worker thread per proxy). */
  readonly ticker: Ticker
  readonly highWaterMark: number
  bytesToTarget: number
  bytesFromTarget: number
  maxBufferedBytes: number
  released: number
  lateSum: number
  lateMax: number
  clientFlights: number
}

/** Which way a connection's latest data went, shared by its two directions (for flights). */
interface LastData {
  toTarget: boolean | undefined
}

interface Entry {
  /** undefined: the source's FIN. */
  data: Buffer | undefined
  readonly releaseAt: number
}

/** One direction of one connection: src → FIFO → dst. */
class Direction {
  readonly src: Socket
  readonly dst: Socket
  readonly shared: Shared
  readonly toTarget: boolean
  queue: Array<Entry | undefined> = []
  head = 0
  queuedBytes = 0
  lastRelease = 0
  /** dst.write returned false; waiting for 'drain'. */
  blocked = false
  /** When the last 'drain' unblocked this direction: entries due earlier count as late from here. */
  unblockedAt = 0
  /** We paused src (blocked or FIFO above the high-water mark). */
  paused = false
  /** The source's FIN is queued or already passed on. */
  finQueued = false
  disposed = false
  /** Armed on the ticker for the head's release time. */
  armed = false

  readonly last: LastData

  constructor(src: Socket, dst: Socket, shared: Shared, toTarget: boolean, last: LastData) {
    this.src = src
    this.dst = dst
    this.shared = shared
    this.toTarget = toTarget
    this.last = last
  }

  buffered(): number {
    return this.queuedBytes + this.dst.writableLength
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.disposed) return
    if (this.toTarget && this.last.toTarget !== true) this.shared.clientFlights++
    this.last.toTarget = this.toTarget
    this.enqueue(chunk)
    this.queuedBytes += chunk.length
    const held = this.buffered()
    if (held > this.shared.maxBufferedBytes) this.shared.maxBufferedBytes = held
    if (this.queuedBytes >= this.shared.highWaterMark) this.pauseSource()
    this.schedule()
  }

  readonly onEnd = (): void => {
    if (this.disposed) return
    this.finQueued = true
    this.enqueue(undefined)
    this.schedule()
  }

  readonly onDrain = (): void => {
    if (!this.blocked || this.disposed) return
    this.blocked = false
    this.unblockedAt = performance.now()
    this.pump()
  }

  enqueue(data: Buffer | undefined): void {
    const due = performance.now() + this.shared.delayMs
    const releaseAt = Math.max(due, this.lastRelease)
    this.lastRelease = releaseAt
    this.queue.push({ data, releaseAt })
  }

  pauseSource(): void {
    if (this.paused) return
    this.paused = true
    this.src.pause()
  }

  /** Arms the ticker for the head's release time (or releases at once when it is due). */
  schedule(): void {
    if (this.armed || this.blocked || this.disposed) return
    const head = this.queue[this.head]
    if (head === undefined) return
    if (head.releaseAt <= performance.now()) this.pump()
    else {
      this.armed = true
      this.shared.ticker.arm(this, head.releaseAt)
    }
  }

  /** The ticker's callback: the head is due. */
  readonly fire = (): void => {
    this.armed = false
    this.pump()
  }

  pump(): void {
    if (this.disposed) return
    const now = performance.now()
    const shared = this.shared
    while (!this.blocked) {
      const entry = this.queue[this.head]
      if (entry === undefined || entry.releaseAt > now) break
      this.queue[this.head++] = undefined
      const late = now - Math.max(entry.releaseAt, this.unblockedAt)
      shared.released++
      shared.lateSum += late
      if (late > shared.lateMax) shared.lateMax = late
      const data = entry.data
      if (data === undefined) {
        if (!this.dst.destroyed) this.dst.end()
        continue
      }
      this.queuedBytes -= data.length
      if (this.toTarget) shared.bytesToTarget += data.length
      else shared.bytesFromTarget += data.length
      if (this.dst.destroyed) continue
      if (!this.dst.write(data)) {
        this.blocked = true
        this.pauseSource()
        const held = this.buffered()
        if (held > shared.maxBufferedBytes) shared.maxBufferedBytes = held
      }
    }
    // Compact once the consumed prefix dominates, so the FIFO stays O(live entries).
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    } else if (this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
    }
    // Resume below half the mark, not at it, so a fast source does not flap pause/resume per chunk.
    if (this.paused && !this.blocked && this.queuedBytes < this.shared.highWaterMark / 2) {
      this.paused = false
      if (!this.src.destroyed) this.src.resume()
    }
    this.schedule()
  }

  dispose(): void {
    this.disposed = true
    if (this.armed) this.shared.ticker.disarm(this)
    this.armed = false
    this.queue = []
    this.head = 0
    this.queuedBytes = 0
  }
}

/** One accepted connection and its upstream socket. */
class Link {
  readonly client: Socket
  readonly upstream: Socket
  readonly up: Direction
  readonly down: Direction
  readonly onDone: (link: Link) => void
  clientClosed = false
  upstreamClosed = false
  failed = false

  constructor(
    client: Socket,
    targetHost: string,
    targetPort: number,
    shared: Shared,
    onDone: (l: Link) => void
  ) {
    this.client = client
    this.onDone = onDone
    client.setNoDelay(true)
    this.upstream = tcpConnect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true })
    const last: LastData = { toTarget: undefined }
    this.up = new Direction(client, this.upstream, shared, true, last)
    this.down = new Direction(this.upstream, client, shared, false, last)
    client.on("data", this.up.onData)
    client.on("end", this.up.onEnd)
    client.on("drain", this.down.onDrain)
    client.on("error", this.onError)
    client.on("close", this.onClientClose)
    this.upstream.on("data", this.down.onData)
    this.upstream.on("end", this.down.onEnd)
    this.upstream.on("drain", this.up.onDrain)
    this.upstream.on("error", this.onError)
    this.upstream.on("close", this.onUpstreamClose)
  }

  buffered(): number {
    return (this.up.disposed ? 0 : this.up.buffered()) + (this.down.disposed ? 0 : this.down.buffered())
  }

  /** An error on either side resets both (the peer sees ECONNRESET, as across a real network). */
  readonly onError = (): void => {
    if (this.failed) return
    this.failed = true
    this.up.dispose()
    this.down.dispose()
    reset(this.client)
    reset(this.upstream)
  }

  readonly onClientClose = (): void => {
    this.clientClosed = true
    const c = this.client
    c.off("data", this.up.onData)
    c.off("end", this.up.onEnd)
    c.off("drain", this.down.onDrain)
    c.off("error", this.onError)
    c.off("close", this.onClientClose)
    // Nothing more can reach the client; what the client sent (and its FIN) still drains upstream.
    this.down.dispose()
    this.settle()
  }

  readonly onUpstreamClose = (): void => {
    this.upstreamClosed = true
    const u = this.upstream
    u.off("data", this.down.onData)
    u.off("end", this.down.onEnd)
    u.off("drain", this.up.onDrain)
    u.off("error", this.onError)
    u.off("close", this.onUpstreamClose)
    this.up.dispose()
    this.settle()
  }

  settle(): void {
    if (this.clientClosed && this.upstreamClosed) {
      this.onDone(this)
      return
    }
    // A side that closed without sending a FIN (destroyed) will never end its stream: tear the
    // other side down too instead of leaving it half-open forever. After a FIN, wait: the FIN and
    // the data before it are still on their way (destroying now would drop them).
    if (this.clientClosed && !this.up.finQueued) this.upstream.destroy()
    if (this.upstreamClosed && !this.down.finQueued) this.client.destroy()
  }

  destroy(): void {
    this.up.dispose()
    this.down.dispose()
    this.client.destroy()
    this.upstream.destroy()
  }
}

const reset = (socket: Socket): void => {
  if (socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** Starts a proxy on 127.0.0.1 in front of `targetHost:targetPort` (plain async; see `LatencyProxy`). */
export const startLatencyProxy = async (options: LatencyProxyOptions): Promise<LatencyProxyHandle> => {
  const { targetHost, targetPort } = options
  if (!isLoopback(targetHost)) {
    throw new Error(`LatencyProxy forwards to loopback addresses only, not ${JSON.stringify(targetHost)}`)
  }
  if (!Number.isInteger(targetPort) || targetPort <= 0 || targetPort > 65535) {
    throw new RangeError(`targetPort must be a TCP port, not ${targetPort}`)
  }
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  if (!(highWaterMark > 0)) throw new RangeError(`highWaterMark must be > 0, not ${highWaterMark}`)
  const delayMs = checkDelay(options.delayMs)
  const ticker = await Ticker.start()
  const shared: Shared = {
    delayMs,
    ticker,
    highWaterMark,
    bytesToTarget: 0,
    bytesFromTarget: 0,
    maxBufferedBytes: 0,
    released: 0,
    lateSum: 0,
    lateMax: 0,
    clientFlights: 0
  }
  const links = new Set<Link>()
  let totalConnections = 0
  const onDone = (link: Link) => {
    links.delete(link)
  }
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    totalConnections++
    links.add(new Link(client, targetHost, targetPort, shared, onDone))
  })
  // Accept errors (EMFILE …) concern one connection attempt, not the proxy.
  const onServerError = () => {}
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen({ host: "127.0.0.1", port: options.port ?? 0 }, () => {
        server.off("error", reject)
        resolve()
      })
    })
  } catch (cause) {
    await ticker.close()
    throw cause
  }
  server.on("error", onServerError)
  const address = server.address()
  if (address === null || typeof address === "string") {
    server.close()
    await ticker.close()
    throw new Error("LatencyProxy: no TCP address")
  }
  const host = "127.0.0.1"
  const port = address.port

  let closing: Promise<void> | undefined
  return {
    host,
    port,
    url: (postgresUrl) => withProxyUrl(postgresUrl, { host, port }),
    setDelay: (delayMs) => {
      shared.delayMs = checkDelay(delayMs)
    },
    stats: () => {
      let bufferedBytes = 0
      for (const link of links) bufferedBytes += link.buffered()
      return {
        delayMs: shared.delayMs,
        activeConnections: links.size,
        totalConnections,
        bytesToTarget: shared.bytesToTarget,
        bytesFromTarget: shared.bytesFromTarget,
        bufferedBytes,
        maxBufferedBytes: shared.maxBufferedBytes,
        released: shared.released,
        lateMeanMs: shared.released === 0 ? 0 : shared.lateSum / shared.released,
        lateMaxMs: shared.lateMax,
        clientFlights: shared.clientFlights
      }
    },
    close: () => {
      closing ??= Promise.all([
        new Promise<void>((resolve) => {
          server.close(() => {
            server.off("error", onServerError)
            resolve()
          })
          for (const link of links) link.destroy()
        }),
        ticker.close()
      ]).then(() => undefined)
      return closing
    }
  }
}

/** Round-trip times measured by `measureRtt`, in ms. */
export interface RttStats {
  readonly samples: ReadonlyArray<number>
  readonly medianMs: number
  readonly minMs: number
  readonly maxMs: number
}

// SSLRequest: Int32 length 8, Int32 code 80877103 (1234 << 16 | 5679). Encoded once.
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

/** Options of `measureRtt`: how long to settle first, and a timeout. */
export interface MeasureRttOptions {
  /**
   * Pause between connecting and sending the SSLRequest, so the server has forked its backend and
   * the proxy has connected upstream before the clock starts: otherwise each sample includes the
   * fork (~1–3 ms), not only the round trip. Default 10 ms.
   */
  readonly settleMs?: number
  /** Per-sample limit (ms). Default 5,000. */
  readonly timeoutMs?: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const oneSample = (host: string, port: number, settleMs: number, timeoutMs: number): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    const socket = new Socket()
    let t0 = 0
    let settled = false
    const finish = (error: Error | undefined, rtt: number) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off("data", onData)
      socket.off("close", onClose)
      socket.destroy()
      // Errors after destroy (none expected) must not crash the process.
      socket.on("error", () => {})
      socket.off("error", onError)
      if (error === undefined) resolve(rtt)
      else reject(error)
    }
    const onData = (chunk: Buffer) => {
      const t1 = performance.now()
      const answer = chunk[0]
      // 'S' (0x53) or 'N' (0x4e); 'E' would be a server too old for SSLRequest.
      if (answer === 0x53 || answer === 0x4e) finish(undefined, t1 - t0)
      else finish(new Error(`measureRtt: unexpected answer byte ${answer} to SSLRequest`), 0)
    }
    const onError = (error: Error) => finish(error, 0)
    const onClose = () => finish(new Error("measureRtt: connection closed before the answer"), 0)
    const timer = setTimeout(
      () => finish(new Error(`measureRtt: no answer within ${timeoutMs} ms`), 0),
      timeoutMs
    )
    socket.on("error", onError)
    socket.on("close", onClose)
    socket.setNoDelay(true)
    socket.connect({ host, port }, () => {
      void sleep(settleMs).then(() => {
        if (settled) return
        socket.on("data", onData)
        t0 = performance.now()
        socket.write(SSL_REQUEST)
      })
    })
  })

/**
 * Measures the TCP round trip to a PostgreSQL server (directly or through a proxy): per sample, a
 * fresh connection, an 8-byte SSLRequest, and the time until the 1-byte answer; then it closes.
 * Sequential; each sample costs `settleMs` + one RTT. (SSLRequest is the only exchange a server
 * answers before authentication, and only once per connection, hence one connection per sample.
 * A TLS-enabled server answers 'S' and logs "could not accept SSL connection: EOF detected" per
 * sample; one without TLS answers 'N' and logs nothing.)
 */
export const measureRtt = async (
  host: string,
  port: number,
  samples = 50,
  options: MeasureRttOptions = {}
): Promise<RttStats> => {
  if (!Number.isInteger(samples) || samples < 1) throw new RangeError(`samples must be ≥ 1, not ${samples}`)
  const settleMs = options.settleMs ?? 10
  const timeoutMs = options.timeoutMs ?? 5_000
  const results: Array<number> = []
  for (let i = 0; i < samples; i++) results.push(await oneSample(host, port, settleMs, timeoutMs))
  const sorted = [...results].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const medianMs = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { samples: results, medianMs, minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]! }
}

const toError = (cause: unknown) =>
  new LatencyProxyError({ message: cause instanceof Error ? cause.message : String(cause) })

/** A latency proxy as a scoped Effect service; its value is the handle (host, port, stats, …). */
export class LatencyProxy extends Context.Service<LatencyProxy, LatencyProxyHandle>()(
  "@pgline/testing/LatencyProxy"
) {
  /** Starts a proxy, closed (connections reset, port freed) when the scope closes. */
  static readonly make = (
    options: LatencyProxyOptions
  ): Effect.Effect<LatencyProxyHandle, LatencyProxyError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => startLatencyProxy(options), catch: toError }),
      (proxy) => Effect.promise(() => proxy.close())
    )

  /** A proxy with explicit options. */
  static readonly layer = (options: LatencyProxyOptions): Layer.Layer<LatencyProxy, LatencyProxyError> =>
    Layer.effect(LatencyProxy, LatencyProxy.make(options))

  /** A proxy in front of the `PgServer` in context. */
  static readonly layerPgServer = (delayMs: number): Layer.Layer<LatencyProxy, LatencyProxyError, PgServer> =>
    Layer.effect(
      LatencyProxy,
      Effect.gen(function* () {
        const info = yield* PgServer
        return yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs })
      })
    )

  /**
   * Replaces the `PgServer` in context by one reached through a new proxy (host, port and url
   * rewritten; no Unix socket, which would bypass it), and provides that proxy too.
   */
  static readonly pgServerThrough = (
    delayMs: number
  ): Layer.Layer<LatencyProxy | PgServer, LatencyProxyError, PgServer> =>
    Layer.effectContext(
      Effect.gen(function* () {
        const info = yield* PgServer
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs })
        return Context.make(LatencyProxy, proxy).pipe(
          Context.add(PgServer, {
            ...info,
            host: proxy.host,
            port: proxy.port,
            url: proxy.url(info.url),
            socketDir: undefined
          })
        )
      })
    )
}
