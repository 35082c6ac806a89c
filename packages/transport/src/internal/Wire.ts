/**
 * Wire: one socket (TCP, Unix or TLS) with the codec's parser on its read side and one coalescing
 * writer on its write side. Frames are encoded straight into `writer` by callers and go out in one
 * socket write per tick (`schedule()`), so a burst of Parse/Bind/Execute/Sync from one fiber costs
 * one syscall; a burst above 32 KiB goes out in 32 KiB writes as it is encoded. Reading does not
 * stop while writes are buffered, which is what keeps a huge pipeline from deadlocking when both
 * socket buffers fill; only a consumer that holds the connection alone (a COPY TO stream) pauses
 * it, to push back on the server through TCP.
 *
 * It knows nothing of statements; the session and the client install a message handler. Every
 * listener it adds is removed by `destroy()`.
 */
import type { Socket } from "node:net"
import type { TLSSocket } from "node:tls"
import { type BackendMessage, BackendParser, ProtocolError, Writer } from "@pgline/codec"

export type WireHandler = (message: BackendMessage) => void
export type WireCloseHandler = (cause: WireClosed) => void

/** Why the wire closed: the peer closed, a socket error, a protocol violation, or we closed it. */
export interface WireClosed {
  readonly kind: "ended" | "error" | "protocol" | "local"
  readonly message: string
  readonly protocolError?: ProtocolError
}

/**
 * Once this many bytes are buffered, `schedule` writes at once instead of at the end of the tick,
 * so a long pipeline streams: the server executes the first statements while later ones are still
 * being encoded. Measured on 10,000 pipelined upserts: 325 → 230–300 ms direct (end-of-tick only
 * vs 16–64 KiB), noisy machine; below 16 KiB the extra writes start to cost.
 */
const EAGER_FLUSH = 32 * 1024

const NOT_SCHEDULED = 0
const AT_TICK_END = 1
const AT_TURN_END = 2

/**
 * CopyData messages longer than this are left to the parser (which gathers a long message once,
 * into a buffer of its size) rather than carried across socket chunks by the COPY TO fast path.
 */
const MAX_CARRIED = 256 * 1024

/** One socket with the protocol parser on its read side and a coalescing writer on its write side (see the module comment). */
export class Wire {
  readonly writer = new Writer(16 * 1024)
  readonly parser: BackendParser
  socket: Socket | TLSSocket
  private handler: WireHandler | undefined
  private closeHandler: WireCloseHandler | undefined
  /** Which flush is pending: none, at the end of this tick (microtask), at the end of this turn (setImmediate). */
  private scheduled: number = NOT_SCHEDULED
  private closed: WireClosed | undefined
  private drainWaiters: Array<{ readonly threshold: number; readonly resume: () => void }> = []
  /** Bytes handed to the socket since the wire opened (for "may have run" decisions). */
  bytesWritten = 0
  /** Bytes received from the peer since the wire opened. */
  bytesRead = 0
  private readonly onData = (chunk: Buffer) => {
    try {
      this.receive(chunk)
    } catch (error) {
      // A handler's bug must not escape into the socket's event (an uncaught exception ends the
      // process): the connection, whose state is now unknown, closes with the error's text.
      this.close({ kind: "error", message: `reading the server's messages failed: ${String(error)}` })
    }
  }
  private readonly onError = (error: Error) => this.close({ kind: "error", message: error.message })
  private readonly onEnd = () => this.close({ kind: "ended", message: "the server closed the connection" })
  private readonly onDrain = () => this.releaseDrainWaiters()

  /** The longest CopyData the fast path takes itself: within the parser's own limit. */
  private readonly maxCarried: number

  constructor(socket: Socket | TLSSocket, maxMessageSize?: number) {
    this.socket = socket
    this.maxCarried = Math.min(MAX_CARRIED, maxMessageSize ?? MAX_CARRIED)
    // Rows are decoded inside the handler, so one reused DataRow object serves them all.
    this.parser = new BackendParser(
      maxMessageSize === undefined ? { reuseDataRow: true } : { maxMessageSize, reuseDataRow: true }
    )
    this.attach()
  }

  private attach(): void {
    this.socket.on("data", this.onData)
    this.socket.on("error", this.onError)
    this.socket.on("close", this.onEnd)
    this.socket.on("drain", this.onDrain)
    // Connecting may have paused the stream (to read the SSLRequest answer byte by byte).
    this.socket.resume()
  }

  private detach(): void {
    this.socket.off("data", this.onData)
    this.socket.off("error", this.onError)
    this.socket.off("close", this.onEnd)
    this.socket.off("drain", this.onDrain)
  }

  /** Swaps the underlying socket (after a TLS upgrade). Buffered unparsed bytes are not allowed. */
  replaceSocket(socket: Socket | TLSSocket): void {
    this.detach()
    this.socket = socket
    this.attach()
  }

  get isClosed(): boolean {
    return this.closed !== undefined
  }

  get closeReason(): WireClosed | undefined {
    return this.closed
  }

  setHandler(handler: WireHandler | undefined, onClose: WireCloseHandler | undefined): void {
    this.handler = handler
    this.closeHandler = onClose
  }

  /**
   * While set (during start-up), sees each message's type and declared length before its body is
   * buffered; a message it returns closes the wire as a protocol failure. Start-up bounds its
   * messages far below maxMessageSize, which only the parser enforces.
   */
  headerCheck: ((type: number, length: number) => string | undefined) | undefined = undefined

  /** The first bytes the peer sent (up to 32), to say what it was when it was not PostgreSQL. */
  firstBytes: Uint8Array = new Uint8Array(0)

  private receive(chunk: Buffer): void {
    this.bytesRead += chunk.length
    if (this.firstBytes.length < 32) {
      const joined = new Uint8Array(Math.min(32, this.firstBytes.length + chunk.length))
      joined.set(this.firstBytes)
      joined.set(chunk.subarray(0, joined.length - this.firstBytes.length), this.firstBytes.length)
      this.firstBytes = joined
    }
    const sink = this.copyDataSink
    if (sink === undefined) {
      if (this.carry !== undefined) {
        // The sink went away with a message half carried: the parser takes it from here.
        this.parser.push(this.carry.subarray(0, this.carried))
        this.carry = undefined
      }
    } else {
      if (this.carry === undefined && this.parser.bufferedBytes > 0 && this.mayTakeBack()) {
        // The parser holds the start of a CopyData cut by the last chunk: carry it here instead.
        this.startCarry(this.parser.takeBuffered())
      }
      if (this.carry !== undefined) {
        const rest = this.continueCarry(chunk, sink)
        if (rest === undefined || this.closed !== undefined) return
        chunk = rest
      }
      if (this.parser.bufferedBytes === 0 && this.copyDataSink === sink) {
        // COPY TO's bulk: whole CopyData messages go straight to the sink, without a message
        // object each (rows arrive one CopyData apiece); one cut by the chunk's end is carried to
        // the next chunk in a buffer of its size. Anything else, and long messages, go through
        // the parser as usual, in order.
        const n = chunk.length
        let p = 0
        while (p < n && chunk[p] === 0x64) {
          if (n - p < 5) {
            this.startCarry(chunk.subarray(p))
            return
          }
          const len = chunk.readInt32BE(p + 1)
          if (len < 4 || len > this.maxCarried) break
          if (p + 1 + len > n) {
            this.startCarry(chunk.subarray(p))
            return
          }
          sink(chunk, p + 5, p + 1 + len)
          p += 1 + len
          if (this.closed !== undefined || this.copyDataSink !== sink) break
        }
        if (this.closed !== undefined || p === n) return
        if (p > 0) chunk = chunk.subarray(p)
      }
    }
    // Buffer is a Uint8Array; the parser reads it in place and never writes to it.
    this.parser.push(chunk)
    for (;;) {
      if (this.closed !== undefined) return
      if (this.headerCheck !== undefined) {
        const header = this.parser.pendingHeader()
        const refused =
          header?.length === undefined ? undefined : this.headerCheck(header.type, header.length)
        if (refused !== undefined) {
          this.close({ kind: "protocol", message: refused })
          return
        }
      }
      const message = this.parser.next()
      if (message === undefined) return
      if (message instanceof ProtocolError) {
        this.close({ kind: "protocol", message: message.message, protocolError: message })
        return
      }
      this.handler?.(message)
    }
  }

  /**
   * While set, CopyData messages that start a socket chunk are handed here as (chunk, start, end)
   * instead of being parsed into messages: the COPY TO consumer installs it once copy-out began and
   * removes it at the end. The bytes stay valid (the chunk is never reused), and once a message is
   * handed over the wire never reads that chunk's bytes up to the message's end again: the sink may
   * rewrite them (COPY TO packs the payloads together in place).
   */
  copyDataSink: ((chunk: Buffer, start: number, end: number) => void) | undefined = undefined

  /**
   * A CopyData message cut by a socket chunk's end, while `copyDataSink` is set: a buffer the size
   * of the whole message once its header is known (5 bytes before), filled up to `carried`.
   */
  private carry: Uint8Array | undefined = undefined
  private carried = 0

  /** Whether the parser's partial message is a CopyData the fast path may carry. */
  private mayTakeBack(): boolean {
    const header = this.parser.pendingHeader()
    if (header === undefined || header.type !== 0x64) return false
    return header.length === undefined || (header.length >= 4 && header.length <= this.maxCarried)
  }

  private startCarry(bytes: Uint8Array): void {
    const size =
      bytes.length >= 5 ? 1 + new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getInt32(1) : 5
    const carry = new Uint8Array(size)
    carry.set(bytes)
    this.carry = carry
    this.carried = bytes.length
  }

  /**
   * Feeds the carried message from `chunk`; hands it to the sink once whole. Returns the rest of
   * the chunk, or undefined when the chunk was used up.
   */
  private continueCarry(
    chunk: Buffer,
    sink: (chunk: Buffer, start: number, end: number) => void
  ): Buffer | undefined {
    let carry = this.carry!
    let at = 0
    if (carry.length === 5 && this.carried < 5) {
      // The header is still incomplete.
      const take = Math.min(5 - this.carried, chunk.length)
      carry.set(chunk.subarray(0, take), this.carried)
      this.carried += take
      at = take
      if (this.carried < 5) return undefined
      const len = new DataView(carry.buffer).getInt32(1)
      if (len < 4 || len > this.maxCarried) {
        // Not one for the fast path after all: the parser gets it whole, in order.
        this.carry = undefined
        this.parser.push(carry)
        return at === chunk.length ? undefined : chunk.subarray(at)
      }
      const full = new Uint8Array(1 + len)
      full.set(carry)
      carry = this.carry = full
    }
    const take = Math.min(carry.length - this.carried, chunk.length - at)
    carry.set(chunk.subarray(at, at + take), this.carried)
    this.carried += take
    at += take
    if (this.carried < carry.length) return undefined
    this.carry = undefined
    sink(Buffer.from(carry.buffer, carry.byteOffset, carry.length), 5, carry.length)
    return at === chunk.length ? undefined : chunk.subarray(at)
  }

  /**
   * Writes one message from a header and a body given apart (COPY FROM data): what the writer
   * holds goes first, then both pieces straight to the socket, without copying the body.
   */
  writeRaw(header: Uint8Array, body: Uint8Array): void {
    if (this.closed !== undefined) return
    this.flush()
    this.socket.cork()
    this.socket.write(header)
    this.socket.write(body, this.onDrain)
    this.socket.uncork()
    this.bytesWritten += header.length + body.length
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.writer.length + this.socket.writableLength
  }

  /**
   * Queues the frames written into `writer` so far for one socket write at the end of this tick
   * (or writes now when `EAGER_FLUSH` bytes are waiting). With `later` (the caller knows more is
   * likely to join: the client decides, see Engine.mayWriteLater), the write waits for the end of
   * this turn of the event loop instead (setImmediate), so frames that other callbacks of the same
   * turn queue (fibers resumed by other sockets' answers) join it. Measured with 64 fibers on a pool
   * of 10 (bench/per-op.ts concurrent): 3.7 -> 4.5 statements per write, 7-14% less time per query.
   * An end-of-tick request takes over a pending end-of-turn write.
   */
  schedule(later = false): void {
    if (this.writer.length >= EAGER_FLUSH) {
      this.flush()
      return
    }
    if (later) {
      if (this.scheduled !== NOT_SCHEDULED) return
      this.scheduled = AT_TURN_END
      setImmediate(this.flushAtTurnEnd)
      return
    }
    if (this.scheduled === AT_TICK_END) return
    this.scheduled = AT_TICK_END
    queueMicrotask(this.flush)
  }

  /** setImmediate's flush: nothing to do when an end-of-tick flush came first. */
  private readonly flushAtTurnEnd = (): void => {
    if (this.scheduled === AT_TURN_END) this.flush()
  }

  readonly flush = (): void => {
    this.scheduled = NOT_SCHEDULED
    if (this.writer.length === 0 || this.closed !== undefined) return
    const bytes = this.writer.take()
    this.bytesWritten += bytes.length
    // The callback runs once these bytes reached the kernel: the moment to wake a waiter whose
    // threshold is below the socket's own high-water mark (no 'drain' comes for those). Every
    // write carries it: a waiter may come after the write, while its bytes are still queued
    // (over TLS they stay queued for a while), and no later write may come to wake it.
    this.socket.write(bytes, this.onDrain)
  }

  /**
   * Calls `resume` once fewer than `threshold` bytes wait to be written (or the wire closed).
   * Frames still in our own buffer go out first: waiting on them would wait on nothing.
   */
  whenBelow(threshold: number, resume: () => void): void {
    if (this.closed === undefined && this.writer.length > 0) {
      this.drainWaiters.push({ threshold, resume })
      this.flush()
      this.releaseDrainWaiters()
      return
    }
    if (this.closed !== undefined || this.pendingBytes < threshold) {
      resume()
      return
    }
    this.drainWaiters.push({ threshold, resume })
  }

  private releaseDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return
    const closed = this.closed !== undefined
    const pending = this.pendingBytes
    const still: Array<{ readonly threshold: number; readonly resume: () => void }> = []
    const ready: Array<() => void> = []
    for (const w of this.drainWaiters) {
      if (closed || pending < w.threshold) ready.push(w.resume)
      else still.push(w)
    }
    this.drainWaiters = still
    for (const r of ready) r()
  }

  /** Stops reading from the socket until `resumeReading` (back-pressure for a slow consumer). */
  pauseReading(): void {
    if (this.closed === undefined) this.socket.pause()
  }

  resumeReading(): void {
    if (this.closed === undefined) this.socket.resume()
  }

  close(reason: WireClosed): void {
    if (this.closed !== undefined) return
    this.closed = reason
    this.detach()
    // A late socket error after close must not become an uncaught exception.
    this.socket.on("error", () => {})
    this.socket.destroy()
    this.releaseDrainWaiters()
    this.closeHandler?.(reason)
  }
}
