/**
 * RawSession: a deliberately minimal protocol client for tests and scripts. It speaks raw frontend
 * messages over node:net and hands back every backend message (and the raw bytes) it received.
 *
 *   const s = await RawSession.connect({ host: "127.0.0.1", port, user: "postgres", database: "postgres" })
 *   const msgs = await s.roundTrip([
 *     { type: "Parse", name: "", query: "select $1::int4", parameterTypes: [] },
 *     { type: "Bind", portal: "", statement: "", parameterFormats: [], parameters: [bytes], resultFormats: [1] },
 *     { type: "Execute", portal: "", maxRows: 0 },
 *     { type: "Sync" }
 *   ])                       // resolves after one ReadyForQuery per Sync/Query/FunctionCall
 *   s.takeRaw()              // the exact bytes behind `msgs` (for golden captures)
 *   await s.close()
 *
 * Trust authentication only (anything else rejects), no TLS, no cancellation, no protocol state
 * checks: it is a probe, not a driver. Every read has a timeout so a test never hangs.
 */
import * as net from "node:net"
import { encodeFrontend } from "../../src/Frontend.ts"
import { BackendParser, ProtocolError } from "../../src/Parser.ts"
import { type BackendMessage, type FrontendMessage, PROTOCOL_3_0 } from "../../src/Protocol.ts"

export interface RawSessionOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database?: string
  /** Defaults to 3.0 (196608); PROTOCOL_3_2 or any other value is sent as is. */
  readonly protocolVersion?: number
  /** Extra startup parameters (e.g. application_name, `_pq_.` options). */
  readonly parameters?: Readonly<Record<string, string>>
  /** Per-read timeout in ms (default 10 s). */
  readonly timeoutMs?: number
}

export class RawSession {
  /** Messages received during startup, up to and including the first ReadyForQuery. */
  startupMessages: ReadonlyArray<BackendMessage> = []
  private readonly socket: net.Socket
  private readonly parser = new BackendParser()
  private readonly timeoutMs: number
  private raw: Array<Uint8Array> = []
  private queue: Array<BackendMessage> = []
  private failure: Error | undefined
  private wake: (() => void) | undefined

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.socket = socket
    this.timeoutMs = timeoutMs
    socket.on("data", (chunk: Uint8Array) => {
      this.raw.push(chunk)
      this.parser.push(chunk)
      for (;;) {
        const m = this.parser.next()
        if (m === undefined) break
        if (m instanceof ProtocolError) {
          this.failure = new Error(`protocol error: ${m.reason}: ${m.message} at ${m.offset}`)
          break
        }
        this.queue.push(m)
      }
      this.wake?.()
    })
    socket.on("error", (e) => {
      this.failure = e
      this.wake?.()
    })
    socket.on("close", () => {
      this.failure ??= new Error("connection closed")
      this.wake?.()
    })
  }

  /** Connect, send StartupMessage, and read until the first ReadyForQuery (trust auth only). */
  static async connect(options: RawSessionOptions): Promise<RawSession> {
    const socket = net.connect({ host: options.host, port: options.port })
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve)
      socket.once("error", reject)
    })
    const s = new RawSession(socket, options.timeoutMs ?? 10_000)
    const parameters: Record<string, string> = { user: options.user }
    if (options.database !== undefined) parameters.database = options.database
    Object.assign(parameters, options.parameters)
    s.send({ type: "StartupMessage", protocolVersion: options.protocolVersion ?? PROTOCOL_3_0, parameters })
    const msgs = await s.readUntil(
      (m) => m.type === "ReadyForQuery" || m.type === "ErrorResponse" || m.type.startsWith("Authentication")
    )
    const last = msgs[msgs.length - 1]!
    if (last.type === "ErrorResponse") throw new Error(`startup failed: ${last.fields.message}`)
    if (last.type !== "ReadyForQuery") {
      if (last.type !== "AuthenticationOk") throw new Error(`unsupported authentication: ${last.type}`)
      msgs.push(...(await s.readUntil((m) => m.type === "ReadyForQuery" || m.type === "ErrorResponse")))
      const end = msgs[msgs.length - 1]!
      if (end.type === "ErrorResponse") throw new Error(`startup failed: ${end.fields.message}`)
    }
    s.startupMessages = msgs
    return s
  }

  /** Send frontend messages in one write. */
  send(...msgs: ReadonlyArray<FrontendMessage>): void {
    this.socket.write(encodeFrontend(...msgs))
  }

  /** Send raw bytes (for malformed-input tests). */
  sendBytes(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /**
   * Send `msgs` and collect backend messages until `readyCount` ReadyForQuery have arrived
   * (default: one per Sync, Query and FunctionCall in `msgs`: each of those ends with one).
   */
  async roundTrip(msgs: ReadonlyArray<FrontendMessage>, readyCount?: number): Promise<Array<BackendMessage>> {
    let remaining =
      readyCount ??
      msgs.filter((m) => m.type === "Sync" || m.type === "Query" || m.type === "FunctionCall").length
    this.send(...msgs)
    const out: Array<BackendMessage> = []
    while (remaining > 0) {
      const got = await this.readUntil((m) => m.type === "ReadyForQuery")
      out.push(...got)
      remaining--
    }
    return out
  }

  /** Messages up to and including the first one matching `pred`. */
  async readUntil(pred: (m: BackendMessage) => boolean): Promise<Array<BackendMessage>> {
    const out: Array<BackendMessage> = []
    const deadline = Date.now() + this.timeoutMs
    for (;;) {
      while (this.queue.length > 0) {
        const m = this.queue.shift()!
        out.push(m)
        if (pred(m)) return out
      }
      if (this.failure !== undefined) throw this.failure
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out after ${this.timeoutMs} ms; got ${out.map((m) => m.type)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = undefined
    }
  }

  /** All raw bytes received since the last takeRaw() (or since connect), concatenated. */
  takeRaw(): Uint8Array {
    const total = this.raw.reduce((n, c) => n + c.length, 0)
    const out = new Uint8Array(total)
    let at = 0
    for (const c of this.raw) {
      out.set(c, at)
      at += c.length
    }
    this.raw = []
    return out
  }

  /** Send Terminate and wait for the server to close the connection. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return
    await new Promise<void>((resolve) => {
      this.socket.once("close", () => resolve())
      this.socket.end(encodeFrontend({ type: "Terminate" }))
      setTimeout(() => {
        this.socket.destroy()
      }, this.timeoutMs).unref()
    })
  }
}
