/**
 * Parser: incremental, sans-I/O decoders for the two directions of the protocol.
 *
 * - `BackendParser` turns the bytes a server sends into `BackendMessage`s (what a client reads).
 * - `FrontendParser` turns the bytes a client sends into `FrontendMessage`s, including the untyped
 *   startup packets (what a fake server reads in tests).
 *
 * Usage: `push(chunk)` whatever the socket delivered (any chunking, down to one byte), then call
 * `next()` until it returns `undefined` (needs more bytes). `next()` returns a message, or a
 * `ProtocolError` value; after an error the parser is failed for good and keeps returning it.
 * Nothing here throws on any input, allocates a declared length before the bytes have arrived, or
 * loops without consuming input.
 *
 * Memory: pushed chunks are referenced, not copied. A message lying inside one chunk is decoded in
 * place (DataRow / CopyData keep pointing into that chunk); only a message straddling chunks is
 * copied, once, into a buffer of its exact size. Chunks under SMALL_CHUNK bytes are coalesced into
 * an append-only block so one-byte-at-a-time input costs no per-byte bookkeeping. The parser never
 * writes into memory a returned message can see, so messages stay valid after later pushes; the
 * caller must not mutate a chunk after pushing it.
 *
 * Deliberately not here: interpretation of values (type codecs), protocol state (which message is
 * legal when: the transport's job), and I/O.
 */
import type {
  BackendMessage,
  DataRow,
  ErrorFields,
  FieldDescription,
  FormatCode,
  FrontendMessage,
  TransactionStatus
} from "./Protocol.ts"
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  SSL_REQUEST_CODE
} from "./Protocol.ts"

// --- errors ------------------------------------------------------------------------------------------

/** Why a byte stream is not valid protocol (the `reason` of a `ProtocolError`). */
export type ProtocolErrorReason =
  /** The declared length exceeds `maxMessageSize` (refused before anything is buffered for it). */
  | "MessageTooLarge"
  /** The declared length is below 4, or wrong for a fixed-size message. */
  | "InvalidLength"
  /** A type byte that is not a message of this direction. */
  | "UnknownMessageType"
  /** The body ends before its fields do: missing NUL terminator, a count or length past the end. */
  | "Truncated"
  /** The body is longer than its fields. */
  | "TrailingBytes"
  /** A field outside its domain: format code, transaction status, auth code, negative count… */
  | "InvalidValue"

/**
 * A malformed byte stream. A plain value (no stack capture): the parser returns it, never throws it.
 * `offset` is the absolute byte offset in the stream (since the parser was created) where the
 * problem was detected; `messageType` is the type byte of the offending message as a character
 * ("" for untyped startup packets, undefined when unknown).
 */
export class ProtocolError {
  readonly _tag = "ProtocolError" as const
  readonly reason: ProtocolErrorReason
  readonly message: string
  readonly offset: number
  readonly messageType: string | undefined
  constructor(reason: ProtocolErrorReason, message: string, offset: number, messageType?: string) {
    this.reason = reason
    this.message = message
    this.offset = offset
    this.messageType = messageType
  }
}

/** The one DataRow a `reuseDataRow` parser hands out, rewritten for every row. */
interface MutableDataRow {
  readonly type: "DataRow"
  bytes: Uint8Array
  columnCount: number
  readonly offsets: Array<number>
  readonly lengths: Array<number>
}

/** Options of `BackendParser` and `FrontendParser`. */
export interface ParserOptions {
  /**
   * Return the same DataRow object for every row (its arrays overwritten), valid only until the
   * next call to `next()`. For a consumer that decodes each row at once: it saves three
   * allocations per row, which on 100,000-row results was most of the parser's garbage.
   */
  readonly reuseDataRow?: boolean
  /**
   * Largest accepted value of a message's length field (which counts itself, not the type byte).
   * Default DEFAULT_MAX_MESSAGE_SIZE.
   */
  readonly maxMessageSize?: number
}

/**
 * 1 GiB + 4: PostgreSQL builds every outgoing message in one palloc'd buffer capped at
 * MaxAllocSize (1 GiB - 1), so no real server message is larger and a lower default would refuse
 * legitimate huge values (a 900 MB bytea). The bound is cheap to keep high because the parser
 * never allocates a declared length up front: a corrupt length costs only the bytes that actually
 * arrive. Lower it per connection to cap memory harder.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 0x40000000 + 4

/** PostgreSQL's own limit for startup packets (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10000

// --- byte helpers (small, monomorphic; V8 inlines them) ------------------------------------------------

const i32 = (b: Uint8Array, p: number): number =>
  (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!
const u32 = (b: Uint8Array, p: number): number => i32(b, p) >>> 0
const u16 = (b: Uint8Array, p: number): number => (b[p]! << 8) | b[p + 1]!
const i16 = (b: Uint8Array, p: number): number => ((b[p]! << 24) | (b[p + 1]! << 16)) >> 16

const decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * Strings up to this many bytes are decoded in JS when ASCII. Measured on Node 24 over typical
 * column texts (6-36 bytes): collecting char codes into an array and calling
 * String.fromCharCode.apply ~120 ns/string; TextDecoder.decode(subarray) ~240-320 ns (subarray
 * + native call); `s += fromCharCode(c)` ~180-280 ns (cons-strings). Above ~64 bytes the native
 * decoder's bulk speed wins.
 */
const ASCII_LOOP_MAX = 64

/**
 * UTF-8 text of b[s, e): what a text-format column or a protocol string holds. Exported for row
 * decoders (`decodeUtf8(row.bytes, row.offsets[i], row.offsets[i] + row.lengths[i])`).
 */
export const decodeUtf8 = (b: Uint8Array, s: number, e: number): string => {
  const n = e - s
  if (n <= ASCII_LOOP_MAX) {
    const codes: Array<number> = new Array(n)
    for (let i = 0; i < n; i++) {
      const c = b[s + i]!
      if (c >= 0x80) return decoder.decode(b.subarray(s, e))
      codes[i] = c
    }
    return String.fromCharCode.apply(null, codes)
  }
  return decoder.decode(b.subarray(s, e))
}

/**
 * The last CommandComplete tag decoded, when it was ASCII: a pipeline of one statement repeated
 * gets the same tag thousands of times ("INSERT 0 1"), and the same string is handed out again
 * instead of a new one per statement. Compared byte by byte (an ASCII byte equals its char code).
 */
let lastTag = ""

const commandTag = (b: Uint8Array, s: number, e: number): string => {
  const n = e - s
  const last = lastTag
  if (last.length === n) {
    let i = 0
    while (i < n && last.charCodeAt(i) === b[s + i]) i++
    if (i === n) return last
  }
  const tag = decodeUtf8(b, s, e)
  // decodeUtf8 gives one char per byte only for ASCII (anything else decodes to fewer, or to U+FFFD).
  let ascii = tag.length === n
  for (let i = 0; ascii && i < n; i++) ascii = b[s + i]! < 0x80
  if (ascii) lastTag = tag
  return tag
}

/** Messages without a body are the same object every time (they are read-only). */
const parseComplete: BackendMessage = Object.freeze({ type: "ParseComplete" })
const bindComplete: BackendMessage = Object.freeze({ type: "BindComplete" })
const closeComplete: BackendMessage = Object.freeze({ type: "CloseComplete" })
const copyDone: BackendMessage = Object.freeze({ type: "CopyDone" })
const emptyQueryResponse: BackendMessage = Object.freeze({ type: "EmptyQueryResponse" })
const noData: BackendMessage = Object.freeze({ type: "NoData" })
const portalSuspended: BackendMessage = Object.freeze({ type: "PortalSuspended" })

/** Index of the NUL ending the string at p, or -1 when there is none before `end`. */
const nul = (b: Uint8Array, p: number, end: number): number => {
  const z = b.indexOf(0, p)
  return z === -1 || z >= end ? -1 : z
}

const chr = (c: number): string => String.fromCharCode(c)

// --- chunk queue -------------------------------------------------------------------------------------

/**
 * Chunks below this size are copied into an owned block instead of being queued: queueing costs an
 * array slot and a typed-array view each, which would dominate (and for a large message split in
 * one-byte chunks, explode) memory. 512 B: above it the copy costs more than the bookkeeping.
 */
const SMALL_CHUNK = 512
/** Size of an owned coalescing block. */
const BLOCK_SIZE = 16 * 1024

/** Unread bytes as a queue of chunks; shared by both parsers. */
class ChunkQueue {
  protected chunks: Array<Uint8Array> = []
  protected head = 0
  protected off = 0
  protected avail = 0
  /** Absolute stream offset of chunks[head][off]. */
  protected consumed = 0
  private block: Uint8Array | null = null
  private blockStart = 0
  private blockFill = 0
  private blockQueued = false

  /** Bytes pushed but not yet returned as messages. */
  get bufferedBytes(): number {
    return this.avail
  }

  /**
   * Takes every unread byte out (copied into one buffer), leaving the queue empty: for a reader
   * that handles what follows itself (the transport's COPY TO fast path) and gives back what it
   * does not want with `push`.
   */
  takeBuffered(): Uint8Array {
    return this.avail === 0 ? new Uint8Array(0) : this.gather(this.avail)
  }

  /**
   * The type byte and length word of the message the unread bytes start with, as far as they are
   * there (undefined when nothing is buffered; length undefined before all five header bytes).
   */
  pendingHeader(): { readonly type: number; readonly length: number | undefined } | undefined {
    if (this.avail === 0) return undefined
    return { type: this.peek(0), length: this.avail >= 5 ? this.peekI32(1) : undefined }
  }

  push(chunk: Uint8Array): void {
    const n = chunk.length
    if (n === 0) return
    this.avail += n
    if (n >= SMALL_CHUNK) {
      this.sealBlock()
      this.chunks.push(chunk)
      return
    }
    let block = this.block
    if (block === null || this.blockFill + n > block.length) {
      block = this.block = new Uint8Array(BLOCK_SIZE)
      this.blockStart = this.blockFill = 0
      this.blockQueued = false
    }
    // Append-only: bytes already in the block (possibly referenced by messages) are never touched.
    block.set(chunk, this.blockFill)
    this.blockFill += n
    const view = block.subarray(this.blockStart, this.blockFill)
    if (this.blockQueued) this.chunks[this.chunks.length - 1] = view
    else {
      this.chunks.push(view)
      this.blockQueued = true
    }
  }

  /** The block's queued view is final; later small chunks start a new view after it. */
  private sealBlock(): void {
    this.blockStart = this.blockFill
    this.blockQueued = false
  }

  /** Move past n bytes (n <= avail). */
  protected skip(n: number): void {
    this.avail -= n
    this.consumed += n
    let off = this.off + n
    const chunks = this.chunks
    let head = this.head
    while (head < chunks.length && off >= chunks[head]!.length) {
      off -= chunks[head]!.length
      head++
    }
    if (head === chunks.length) {
      if (chunks.length !== 0) chunks.length = 0
      head = 0
      off = 0
      this.sealBlock()
    } else if (head > 64 && head * 2 > chunks.length) {
      // Drop consumed slots now and then so a long-lived queue does not grow without bound.
      chunks.splice(0, head)
      head = 0
    }
    this.head = head
    this.off = off
  }

  /** The byte k positions after the read position (k < avail), across chunk boundaries. */
  protected peek(k: number): number {
    let i = this.head
    let p = this.off + k
    while (p >= this.chunks[i]!.length) {
      p -= this.chunks[i]!.length
      i++
    }
    return this.chunks[i]![p]!
  }

  protected peekI32(k: number): number {
    return (this.peek(k) << 24) | (this.peek(k + 1) << 16) | (this.peek(k + 2) << 8) | this.peek(k + 3)
  }

  /** Copy the next n bytes (n <= avail, spanning chunks) into a fresh buffer and consume them. */
  protected gather(n: number): Uint8Array {
    const out = new Uint8Array(n)
    let filled = 0
    let i = this.head
    let p = this.off
    while (filled < n) {
      const c = this.chunks[i]!
      const take = Math.min(c.length - p, n - filled)
      out.set(take === c.length ? c : c.subarray(p, p + take), filled)
      filled += take
      i++
      p = 0
    }
    this.skip(n)
    return out
  }
}

// --- backend -----------------------------------------------------------------------------------------

/** 1 for each type byte a server may send. */
const BACKEND_TYPES = new Uint8Array(256)
for (const c of "R K 2 3 C d c G H W D I E V v n N A t S 1 s Z T".split(" "))
  BACKEND_TYPES[c.charCodeAt(0)] = 1

/**
 * Incremental parser of what a server sends: `push(chunk)` the bytes as they arrive, then call
 * `next()` until it returns undefined (more bytes needed). A message split across chunks is
 * reassembled; several in one chunk come out one by one. It never throws: malformed input makes
 * `next()` return a `ProtocolError` (also kept in `error`), after which the parser stays failed.
 *
 * @example
 * ```ts
 * const parser = new BackendParser()
 * parser.push(chunk)
 * for (let m = parser.next(); m !== undefined; m = parser.next()) {
 *   if (m instanceof ProtocolError) throw new Error(m.message)
 *   if (m.type === "ReadyForQuery") console.log(m.status)
 * }
 * ```
 */
export class BackendParser extends ChunkQueue {
  readonly maxMessageSize: number
  private failure: ProtocolError | undefined = undefined
  private readonly scratch: MutableDataRow | undefined

  constructor(options?: ParserOptions) {
    super()
    this.maxMessageSize = options?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
    this.scratch =
      options?.reuseDataRow === true
        ? { type: "DataRow", bytes: new Uint8Array(0), columnCount: 0, offsets: [], lengths: [] }
        : undefined
  }

  /** The error the parser failed with, if any. */
  get error(): ProtocolError | undefined {
    return this.failure
  }

  /** The next complete message, `undefined` when more bytes are needed, or the (sticky) error. */
  next(): BackendMessage | ProtocolError | undefined {
    if (this.failure !== undefined) return this.failure
    if (this.avail < 5) return undefined
    const c = this.chunks[this.head]!
    const off = this.off
    const inChunk = c.length - off
    let type: number
    let len: number
    if (inChunk >= 5) {
      type = c[off]!
      len = i32(c, off + 1)
    } else {
      type = this.peek(0)
      len = this.peekI32(1)
    }
    // Checked before waiting for the body, so garbage fails now instead of stalling for bytes.
    if (BACKEND_TYPES[type] === 0) {
      return this.fail("UnknownMessageType", `unknown backend message type 0x${type.toString(16)}`, 0, type)
    }
    if (len < 4) return this.fail("InvalidLength", `message length ${len} is below 4`, 1, type)
    if (len > this.maxMessageSize) {
      return this.fail("MessageTooLarge", `message length ${len} exceeds maxMessageSize`, 1, type)
    }
    const total = len + 1
    if (this.avail < total) return undefined
    let r: BackendMessage | ProtocolError
    if (inChunk >= total) {
      r = decodeBackend(c, off, off + total, this.consumed - off, this.scratch)
      if (inChunk > total) {
        // Inline skip: the common case stays in the current chunk.
        this.off = off + total
        this.avail -= total
        this.consumed += total
      } else this.skip(total)
    } else {
      const base = this.consumed
      r = decodeBackend(this.gather(total), 0, total, base, this.scratch)
    }
    if (r instanceof ProtocolError) this.failure = r
    return r
  }

  private fail(reason: ProtocolErrorReason, message: string, at: number, type: number): ProtocolError {
    this.failure = new ProtocolError(reason, message, this.consumed + at, chr(type))
    return this.failure
  }
}

/** Build a ProtocolError for the message in b[start..]: `base` maps buffer indexes to stream offsets. */
const bad = (
  reason: ProtocolErrorReason,
  message: string,
  b: Uint8Array,
  start: number,
  at: number,
  base: number
) => new ProtocolError(reason, message, base + at, chr(b[start]!))

const readFormat = (v: number): FormatCode | -1 => (v === 0 || v === 1 ? v : -1)

/** Decode the backend message occupying b[start, end): type byte, length word, body. */
const decodeBackend = (
  b: Uint8Array,
  start: number,
  end: number,
  base: number,
  scratch?: MutableDataRow
): BackendMessage | ProtocolError => {
  const type = b[start]!
  let p = start + 5
  const bodyLen = end - p
  switch (type) {
    case 0x44: {
      // 'D' DataRow: the hot path. One pass validates the layout and records offsets.
      if (bodyLen < 2) return bad("Truncated", "DataRow without column count", b, start, p, base)
      const n = u16(b, p)
      p += 2
      // Plain arrays of small ints, not Int32Arrays: measured 66 vs 115 ns per 8-column row on
      // Node 24 (typed-array allocation dominates at this size).
      const offsets: Array<number> = scratch === undefined ? new Array(n) : scratch.offsets
      const lengths: Array<number> = scratch === undefined ? new Array(n) : scratch.lengths
      for (let i = 0; i < n; i++) {
        if (p + 4 > end)
          return bad("Truncated", `DataRow column ${i} length past the body`, b, start, p, base)
        const len = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!
        p += 4
        offsets[i] = p
        lengths[i] = len
        if (len > 0) {
          p += len
          if (p > end)
            return bad("Truncated", `DataRow column ${i} value past the body`, b, start, p - len, base)
        } else if (len < -1) {
          return bad("InvalidValue", `DataRow column ${i} has length ${len}`, b, start, p - 4, base)
        }
      }
      if (p !== end) return bad("TrailingBytes", "DataRow has bytes after its columns", b, start, p, base)
      if (scratch !== undefined) {
        scratch.bytes = b
        scratch.columnCount = n
        return scratch as DataRow
      }
      return { type: "DataRow", bytes: b, columnCount: n, offsets, lengths }
    }
    case 0x43: {
      // 'C' CommandComplete
      const z = nul(b, p, end)
      if (z === -1) return bad("Truncated", "CommandComplete tag without NUL", b, start, p, base)
      if (z + 1 !== end)
        return bad("TrailingBytes", "CommandComplete has bytes after its tag", b, start, z + 1, base)
      return { type: "CommandComplete", tag: commandTag(b, p, z) }
    }
    case 0x5a: {
      // 'Z' ReadyForQuery
      if (bodyLen !== 1)
        return bad("InvalidLength", `ReadyForQuery body of ${bodyLen} bytes`, b, start, start + 1, base)
      const s = b[p]!
      if (s !== 0x49 && s !== 0x54 && s !== 0x45) {
        return bad("InvalidValue", `ReadyForQuery status 0x${s.toString(16)}`, b, start, p, base)
      }
      return { type: "ReadyForQuery", status: chr(s) as TransactionStatus }
    }
    case 0x31:
    case 0x32:
    case 0x33:
    case 0x63:
    case 0x49:
    case 0x6e:
    case 0x73: {
      if (bodyLen !== 0) {
        return bad("InvalidLength", `${chr(type)} message must have an empty body`, b, start, start + 1, base)
      }
      switch (type) {
        case 0x31:
          return parseComplete
        case 0x32:
          return bindComplete
        case 0x33:
          return closeComplete
        case 0x63:
          return copyDone
        case 0x49:
          return emptyQueryResponse
        case 0x6e:
          return noData
        default:
          return portalSuspended
      }
    }
    case 0x54: {
      // 'T' RowDescription
      if (bodyLen < 2) return bad("Truncated", "RowDescription without field count", b, start, p, base)
      const n = u16(b, p)
      p += 2
      const fields: Array<FieldDescription> = new Array(n)
      for (let i = 0; i < n; i++) {
        const z = nul(b, p, end)
        if (z === -1) return bad("Truncated", `RowDescription field ${i} name without NUL`, b, start, p, base)
        const name = decodeUtf8(b, p, z)
        p = z + 1
        if (p + 18 > end)
          return bad("Truncated", `RowDescription field ${i} past the body`, b, start, p, base)
        const format = readFormat(i16(b, p + 16))
        if (format === -1)
          return bad("InvalidValue", `RowDescription field ${i} format`, b, start, p + 16, base)
        fields[i] = {
          name,
          tableOid: u32(b, p),
          columnAttribute: i16(b, p + 4),
          typeOid: u32(b, p + 6),
          typeSize: i16(b, p + 10),
          typeModifier: i32(b, p + 12),
          format
        }
        p += 18
      }
      if (p !== end)
        return bad("TrailingBytes", "RowDescription has bytes after its fields", b, start, p, base)
      return { type: "RowDescription", fields }
    }
    case 0x64:
      // 'd' CopyData: a view, no copy.
      return { type: "CopyData", data: b.subarray(p, end) }
    case 0x45:
    case 0x4e: {
      // 'E' ErrorResponse / 'N' NoticeResponse
      const fields = readFields(b, start, p, end, base)
      if (fields instanceof ProtocolError) return fields
      return type === 0x45 ? { type: "ErrorResponse", fields } : { type: "NoticeResponse", fields }
    }
    case 0x74: {
      // 't' ParameterDescription
      if (bodyLen < 2) return bad("Truncated", "ParameterDescription without count", b, start, p, base)
      const n = u16(b, p)
      p += 2
      if (bodyLen !== 2 + 4 * n) {
        return bad(
          bodyLen < 2 + 4 * n ? "Truncated" : "TrailingBytes",
          `ParameterDescription of ${n} types has a ${bodyLen}-byte body`,
          b,
          start,
          p,
          base
        )
      }
      const parameterTypes: Array<number> = new Array(n)
      for (let i = 0; i < n; i++, p += 4) parameterTypes[i] = u32(b, p)
      return { type: "ParameterDescription", parameterTypes }
    }
    case 0x53: {
      // 'S' ParameterStatus
      const z1 = nul(b, p, end)
      if (z1 === -1) return bad("Truncated", "ParameterStatus name without NUL", b, start, p, base)
      const z2 = nul(b, z1 + 1, end)
      if (z2 === -1) return bad("Truncated", "ParameterStatus value without NUL", b, start, z1 + 1, base)
      if (z2 + 1 !== end)
        return bad("TrailingBytes", "ParameterStatus has trailing bytes", b, start, z2 + 1, base)
      return { type: "ParameterStatus", name: decodeUtf8(b, p, z1), value: decodeUtf8(b, z1 + 1, z2) }
    }
    case 0x52:
      return decodeAuthentication(b, start, p, end, base)
    case 0x4b: {
      // 'K' BackendKeyData: 4-byte key in 3.0, 4..256 bytes in 3.2.
      const keyLen = bodyLen - 4
      if (keyLen < 4 || keyLen > MAX_CANCEL_KEY_LENGTH) {
        return bad(
          "InvalidLength",
          `BackendKeyData key of ${keyLen} bytes (4..256)`,
          b,
          start,
          start + 1,
          base
        )
      }
      return { type: "BackendKeyData", processId: i32(b, p), secretKey: b.slice(p + 4, end) }
    }
    case 0x41: {
      // 'A' NotificationResponse
      if (bodyLen < 4) return bad("Truncated", "NotificationResponse without process id", b, start, p, base)
      const processId = i32(b, p)
      p += 4
      const z1 = nul(b, p, end)
      if (z1 === -1) return bad("Truncated", "NotificationResponse channel without NUL", b, start, p, base)
      const z2 = nul(b, z1 + 1, end)
      if (z2 === -1)
        return bad("Truncated", "NotificationResponse payload without NUL", b, start, z1 + 1, base)
      if (z2 + 1 !== end)
        return bad("TrailingBytes", "NotificationResponse has trailing bytes", b, start, z2 + 1, base)
      return {
        type: "NotificationResponse",
        processId,
        channel: decodeUtf8(b, p, z1),
        payload: decodeUtf8(b, z1 + 1, z2)
      }
    }
    case 0x47:
    case 0x48:
    case 0x57: {
      // 'G' CopyInResponse, 'H' CopyOutResponse, 'W' CopyBothResponse
      if (bodyLen < 3) return bad("Truncated", "Copy response without format and count", b, start, p, base)
      const format = readFormat(b[p]!)
      if (format === -1) return bad("InvalidValue", "Copy response overall format", b, start, p, base)
      const n = u16(b, p + 1)
      p += 3
      if (bodyLen !== 3 + 2 * n) {
        return bad(
          bodyLen < 3 + 2 * n ? "Truncated" : "TrailingBytes",
          `Copy response of ${n} columns has a ${bodyLen}-byte body`,
          b,
          start,
          p,
          base
        )
      }
      const columnFormats: Array<FormatCode> = new Array(n)
      for (let i = 0; i < n; i++, p += 2) {
        const f = readFormat(i16(b, p))
        if (f === -1) return bad("InvalidValue", `Copy response column ${i} format`, b, start, p, base)
        columnFormats[i] = f
      }
      return type === 0x47
        ? { type: "CopyInResponse", format, columnFormats }
        : type === 0x48
          ? { type: "CopyOutResponse", format, columnFormats }
          : { type: "CopyBothResponse", format, columnFormats }
    }
    case 0x56: {
      // 'V' FunctionCallResponse
      if (bodyLen < 4) return bad("Truncated", "FunctionCallResponse without length", b, start, p, base)
      const len = i32(b, p)
      p += 4
      if (len === -1) {
        if (p !== end) return bad("TrailingBytes", "FunctionCallResponse NULL with bytes", b, start, p, base)
        return { type: "FunctionCallResponse", result: null }
      }
      if (len < 0) return bad("InvalidValue", `FunctionCallResponse length ${len}`, b, start, p - 4, base)
      if (p + len !== end) {
        return bad(
          p + len > end ? "Truncated" : "TrailingBytes",
          "FunctionCallResponse length",
          b,
          start,
          p - 4,
          base
        )
      }
      return { type: "FunctionCallResponse", result: b.subarray(p, end) }
    }
    case 0x76: {
      // 'v' NegotiateProtocolVersion
      if (bodyLen < 8) return bad("Truncated", "NegotiateProtocolVersion header", b, start, p, base)
      const newestProtocolVersion = i32(b, p)
      const n = i32(b, p + 4)
      p += 8
      // Each option takes at least its NUL, so a count above the remaining bytes is impossible.
      if (n < 0 || n > end - p) {
        return bad("InvalidValue", `NegotiateProtocolVersion option count ${n}`, b, start, p - 4, base)
      }
      const unrecognizedOptions: Array<string> = []
      for (let i = 0; i < n; i++) {
        const z = nul(b, p, end)
        if (z === -1) return bad("Truncated", `NegotiateProtocolVersion option ${i}`, b, start, p, base)
        unrecognizedOptions.push(decodeUtf8(b, p, z))
        p = z + 1
      }
      if (p !== end) return bad("TrailingBytes", "NegotiateProtocolVersion trailing bytes", b, start, p, base)
      return { type: "NegotiateProtocolVersion", newestProtocolVersion, unrecognizedOptions }
    }
    default:
      return bad(
        "UnknownMessageType",
        `unknown backend message type 0x${type.toString(16)}`,
        b,
        start,
        start,
        base
      )
  }
}

const decodeAuthentication = (
  b: Uint8Array,
  start: number,
  p: number,
  end: number,
  base: number
): BackendMessage | ProtocolError => {
  if (end - p < 4) return bad("Truncated", "Authentication without code", b, start, p, base)
  const kind = i32(b, p)
  p += 4
  const rest = end - p
  const exact = (n: number, m: BackendMessage): BackendMessage | ProtocolError =>
    rest === n
      ? m
      : bad("InvalidLength", `Authentication code ${kind} with a ${rest}-byte payload`, b, start, p, base)
  switch (kind) {
    case 0:
      return exact(0, { type: "AuthenticationOk" })
    case 2:
      return exact(0, { type: "AuthenticationKerberosV5" })
    case 3:
      return exact(0, { type: "AuthenticationCleartextPassword" })
    case 5:
      return exact(4, { type: "AuthenticationMD5Password", salt: b.slice(p, end) })
    case 7:
      return exact(0, { type: "AuthenticationGSS" })
    case 8:
      return { type: "AuthenticationGSSContinue", data: b.slice(p, end) }
    case 9:
      return exact(0, { type: "AuthenticationSSPI" })
    case 10: {
      const mechanisms: Array<string> = []
      for (;;) {
        const z = nul(b, p, end)
        if (z === -1) return bad("Truncated", "AuthenticationSASL mechanism list", b, start, p, base)
        if (z === p) {
          p++
          break
        }
        mechanisms.push(decodeUtf8(b, p, z))
        p = z + 1
      }
      if (p !== end) return bad("TrailingBytes", "AuthenticationSASL trailing bytes", b, start, p, base)
      return { type: "AuthenticationSASL", mechanisms }
    }
    case 11:
      return { type: "AuthenticationSASLContinue", data: b.slice(p, end) }
    case 12:
      return { type: "AuthenticationSASLFinal", data: b.slice(p, end) }
    default:
      return bad("InvalidValue", `unknown authentication code ${kind}`, b, start, p - 4, base)
  }
}

const FIELD_NAMES: Record<number, keyof ErrorFields> = {
  83: "severityLocalized",
  86: "severity",
  67: "code",
  77: "message",
  68: "detail",
  72: "hint",
  80: "position",
  112: "internalPosition",
  113: "internalQuery",
  87: "where",
  115: "schema",
  116: "table",
  99: "column",
  100: "dataType",
  110: "constraint",
  70: "file",
  76: "line",
  82: "routine"
}

const readFields = (
  b: Uint8Array,
  start: number,
  p: number,
  end: number,
  base: number
): ErrorFields | ProtocolError => {
  const out: Record<string, string> = {}
  let unknown: Record<string, string> | undefined
  for (;;) {
    if (p >= end) return bad("Truncated", "error fields without terminator", b, start, p, base)
    const code = b[p++]!
    if (code === 0) break
    const z = nul(b, p, end)
    if (z === -1) return bad("Truncated", `error field '${chr(code)}' without NUL`, b, start, p, base)
    const value = decodeUtf8(b, p, z)
    p = z + 1
    const name = FIELD_NAMES[code]
    if (name !== undefined) out[name] = value
    else {
      unknown ??= {}
      unknown[chr(code)] = value
    }
  }
  if (p !== end)
    return bad("TrailingBytes", "error fields have bytes after the terminator", b, start, p, base)
  const fields: Record<string, unknown> = {
    severity: out.severity ?? out.severityLocalized ?? "",
    code: out.code ?? "",
    message: out.message ?? ""
  }
  for (const k in out) if (k !== "severity" && k !== "code" && k !== "message") fields[k] = out[k]
  if (unknown !== undefined) fields.unknown = unknown
  return fields as unknown as ErrorFields
}

// --- frontend ----------------------------------------------------------------------------------------

const FRONTEND_TYPES = new Uint8Array(256)
for (const c of "B C d c f D E H F p P Q S X".split(" ")) FRONTEND_TYPES[c.charCodeAt(0)] = 1

/**
 * What a 'p' message means depends on the authentication exchange the server started; the fake
 * server says which one it expects (default "password").
 */
export type AuthResponseKind = "password" | "sasl-initial" | "sasl" | "gss"

/**
 * Incremental parser of what a client sends (for test servers and proxies), used like
 * `BackendParser`: untyped start-up packets first (StartupMessage, SSLRequest, CancelRequest…),
 * then typed messages. Password-type messages (`p`) are read as the kind set with
 * `expectAuthResponse`. Malformed input yields a `ProtocolError`; it never throws.
 */
export class FrontendParser extends ChunkQueue {
  readonly maxMessageSize: number
  private failure: ProtocolError | undefined = undefined
  /** True until a StartupMessage has been read: packets are untyped until then. */
  private startup = true
  private authKind: AuthResponseKind = "password"

  constructor(options?: ParserOptions) {
    super()
    this.maxMessageSize = options?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
  }

  get error(): ProtocolError | undefined {
    return this.failure
  }

  /** Decode the following 'p' messages as `kind`. */
  expectAuthResponse(kind: AuthResponseKind): void {
    this.authKind = kind
  }

  next(): FrontendMessage | ProtocolError | undefined {
    if (this.failure !== undefined) return this.failure
    return this.startup ? this.nextStartup() : this.nextTyped()
  }

  private nextStartup(): FrontendMessage | ProtocolError | undefined {
    if (this.avail < 4) return undefined
    const len = this.peekI32(0)
    if (len < 8) return this.fail("InvalidLength", `startup packet length ${len} is below 8`, 0, "")
    if (len > MAX_STARTUP_PACKET) {
      return this.fail("MessageTooLarge", `startup packet length ${len} exceeds ${MAX_STARTUP_PACKET}`, 0, "")
    }
    if (this.avail < len) return undefined
    const base = this.consumed
    const b = this.gather(len)
    const code = i32(b, 4)
    let r: FrontendMessage | ProtocolError
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      r =
        len !== 8
          ? new ProtocolError("InvalidLength", `encryption request of ${len} bytes`, base, "")
          : { type: code === SSL_REQUEST_CODE ? "SSLRequest" : "GSSENCRequest" }
    } else if (code === CANCEL_REQUEST_CODE) {
      const keyLen = len - 12
      r =
        keyLen < 4 || keyLen > MAX_CANCEL_KEY_LENGTH
          ? new ProtocolError("InvalidLength", `CancelRequest key of ${keyLen} bytes`, base, "")
          : { type: "CancelRequest", processId: i32(b, 8), secretKey: b.slice(12, len) }
    } else if (code >>> 16 === 3) {
      r = decodeStartupParameters(b, code, len, base)
      if (!(r instanceof ProtocolError)) this.startup = false
    } else {
      r = new ProtocolError(
        "InvalidValue",
        `unsupported protocol version ${code >>> 16}.${code & 0xffff}`,
        base + 4,
        ""
      )
    }
    if (r instanceof ProtocolError) this.failure = r
    return r
  }

  private nextTyped(): FrontendMessage | ProtocolError | undefined {
    if (this.avail < 5) return undefined
    const type = this.peek(0)
    if (FRONTEND_TYPES[type] === 0) {
      return this.fail(
        "UnknownMessageType",
        `unknown frontend message type 0x${type.toString(16)}`,
        0,
        chr(type)
      )
    }
    const len = this.peekI32(1)
    if (len < 4) return this.fail("InvalidLength", `message length ${len} is below 4`, 1, chr(type))
    if (len > this.maxMessageSize) {
      return this.fail("MessageTooLarge", `message length ${len} exceeds maxMessageSize`, 1, chr(type))
    }
    const total = len + 1
    if (this.avail < total) return undefined
    const base = this.consumed
    const c = this.chunks[this.head]!
    let r: FrontendMessage | ProtocolError
    if (c.length - this.off >= total) {
      const off = this.off
      r = decodeFrontend(c, off, off + total, base - off, this.authKind)
      this.skip(total)
    } else {
      r = decodeFrontend(this.gather(total), 0, total, base, this.authKind)
    }
    if (r instanceof ProtocolError) this.failure = r
    return r
  }

  private fail(reason: ProtocolErrorReason, message: string, at: number, type: string): ProtocolError {
    this.failure = new ProtocolError(reason, message, this.consumed + at, type)
    return this.failure
  }
}

const decodeStartupParameters = (
  b: Uint8Array,
  protocolVersion: number,
  len: number,
  base: number
): FrontendMessage | ProtocolError => {
  const parameters: Record<string, string> = {}
  let p = 8
  for (;;) {
    if (p >= len) return new ProtocolError("Truncated", "StartupMessage without terminator", base + p, "")
    if (b[p] === 0) {
      p++
      break
    }
    const z1 = nul(b, p, len)
    if (z1 === -1) return new ProtocolError("Truncated", "StartupMessage name without NUL", base + p, "")
    const z2 = nul(b, z1 + 1, len)
    if (z2 === -1)
      return new ProtocolError("Truncated", "StartupMessage value without NUL", base + z1 + 1, "")
    const name = decodeUtf8(b, p, z1)
    const value = decodeUtf8(b, z1 + 1, z2)
    // A plain assignment of "__proto__" would change the prototype instead of adding a key.
    if (name === "__proto__") {
      Object.defineProperty(parameters, name, { value, enumerable: true, writable: true, configurable: true })
    } else parameters[name] = value
    p = z2 + 1
  }
  if (p !== len) return new ProtocolError("TrailingBytes", "StartupMessage trailing bytes", base + p, "")
  return { type: "StartupMessage", protocolVersion, parameters }
}

/** Reads `count` Int16 format codes at p; returns the array or an error. Shared by Bind/FunctionCall. */
const readFormats = (
  b: Uint8Array,
  start: number,
  p: number,
  end: number,
  base: number,
  what: string
): Array<FormatCode> | ProtocolError => {
  if (p + 2 > end) return bad("Truncated", `${what} count`, b, start, p, base)
  const n = u16(b, p)
  p += 2
  if (p + 2 * n > end) return bad("Truncated", `${n} ${what} past the body`, b, start, p, base)
  const out: Array<FormatCode> = new Array(n)
  for (let i = 0; i < n; i++, p += 2) {
    const f = readFormat(i16(b, p))
    if (f === -1) return bad("InvalidValue", `${what} ${i}`, b, start, p, base)
    out[i] = f
  }
  return out
}

/** Reads `Int16 count, (Int32 len, bytes)*` values; sets `valuesEnd` to the position after them. */
let valuesEnd = 0
const readValues = (
  b: Uint8Array,
  start: number,
  p: number,
  end: number,
  base: number,
  what: string
): Array<Uint8Array | null> | ProtocolError => {
  if (p + 2 > end) return bad("Truncated", `${what} count`, b, start, p, base)
  const n = u16(b, p)
  p += 2
  const out: Array<Uint8Array | null> = new Array(n)
  for (let i = 0; i < n; i++) {
    if (p + 4 > end) return bad("Truncated", `${what} ${i} length`, b, start, p, base)
    const len = i32(b, p)
    p += 4
    if (len === -1) out[i] = null
    else if (len < 0) return bad("InvalidValue", `${what} ${i} length ${len}`, b, start, p - 4, base)
    else {
      if (p + len > end) return bad("Truncated", `${what} ${i} past the body`, b, start, p, base)
      out[i] = b.subarray(p, p + len)
      p += len
    }
  }
  valuesEnd = p
  return out
}

/** Not a hot path (fake servers only), so small local closures keep it readable. */
const decodeFrontend = (
  b: Uint8Array,
  start: number,
  end: number,
  base: number,
  authKind: AuthResponseKind
): FrontendMessage | ProtocolError => {
  const type = b[start]!
  let p = start + 5
  const bodyLen = end - p
  const cstr = (at: number, what: string): number | ProtocolError => {
    const z = nul(b, at, end)
    return z === -1 ? bad("Truncated", `${what} without NUL`, b, start, at, base) : z
  }
  const onlyString = (what: string): string | ProtocolError => {
    const z = cstr(p, what)
    if (z instanceof ProtocolError) return z
    if (z + 1 !== end) return bad("TrailingBytes", `${what} has trailing bytes`, b, start, z + 1, base)
    return decodeUtf8(b, p, z)
  }
  switch (type) {
    case 0x53:
    case 0x48:
    case 0x58:
    case 0x63:
      if (bodyLen !== 0)
        return bad("InvalidLength", `${chr(type)} must have an empty body`, b, start, start + 1, base)
      return type === 0x53
        ? { type: "Sync" }
        : type === 0x48
          ? { type: "Flush" }
          : type === 0x58
            ? { type: "Terminate" }
            : { type: "CopyDone" }
    case 0x51: {
      const query = onlyString("Query")
      return typeof query === "string" ? { type: "Query", query } : query
    }
    case 0x66: {
      const message = onlyString("CopyFail")
      return typeof message === "string" ? { type: "CopyFail", message } : message
    }
    case 0x64:
      return { type: "CopyData", data: b.subarray(p, end) }
    case 0x50: {
      // 'P' Parse
      const z1 = cstr(p, "Parse name")
      if (z1 instanceof ProtocolError) return z1
      const z2 = cstr(z1 + 1, "Parse query")
      if (z2 instanceof ProtocolError) return z2
      const name = decodeUtf8(b, p, z1)
      const query = decodeUtf8(b, z1 + 1, z2)
      p = z2 + 1
      if (p + 2 > end) return bad("Truncated", "Parse parameter count", b, start, p, base)
      const n = u16(b, p)
      p += 2
      if (p + 4 * n !== end) {
        return bad(
          p + 4 * n > end ? "Truncated" : "TrailingBytes",
          "Parse parameter types",
          b,
          start,
          p,
          base
        )
      }
      const parameterTypes: Array<number> = new Array(n)
      for (let i = 0; i < n; i++, p += 4) parameterTypes[i] = u32(b, p)
      return { type: "Parse", name, query, parameterTypes }
    }
    case 0x42: {
      // 'B' Bind
      const z1 = cstr(p, "Bind portal")
      if (z1 instanceof ProtocolError) return z1
      const z2 = cstr(z1 + 1, "Bind statement")
      if (z2 instanceof ProtocolError) return z2
      const portal = decodeUtf8(b, p, z1)
      const statement = decodeUtf8(b, z1 + 1, z2)
      p = z2 + 1
      const parameterFormats = readFormats(b, start, p, end, base, "Bind parameter formats")
      if (parameterFormats instanceof ProtocolError) return parameterFormats
      p += 2 + 2 * parameterFormats.length
      const parameters = readValues(b, start, p, end, base, "Bind parameter")
      if (parameters instanceof ProtocolError) return parameters
      p = valuesEnd
      const resultFormats = readFormats(b, start, p, end, base, "Bind result formats")
      if (resultFormats instanceof ProtocolError) return resultFormats
      p += 2 + 2 * resultFormats.length
      if (p !== end) return bad("TrailingBytes", "Bind has trailing bytes", b, start, p, base)
      return { type: "Bind", portal, statement, parameterFormats, parameters, resultFormats }
    }
    case 0x44:
    case 0x43: {
      // 'D' Describe / 'C' Close
      const what = type === 0x44 ? "Describe" : "Close"
      if (bodyLen < 1) return bad("Truncated", `${what} without target`, b, start, p, base)
      const t = b[p]!
      if (t !== 0x53 && t !== 0x50)
        return bad("InvalidValue", `${what} target 0x${t.toString(16)}`, b, start, p, base)
      p++
      const name = onlyString(what)
      if (name instanceof ProtocolError) return name
      const target = t === 0x53 ? "S" : "P"
      return type === 0x44 ? { type: "Describe", target, name } : { type: "Close", target, name }
    }
    case 0x45: {
      // 'E' Execute
      const z = cstr(p, "Execute portal")
      if (z instanceof ProtocolError) return z
      if (z + 5 !== end) {
        return bad(z + 5 > end ? "Truncated" : "TrailingBytes", "Execute row limit", b, start, z + 1, base)
      }
      return { type: "Execute", portal: decodeUtf8(b, p, z), maxRows: i32(b, z + 1) }
    }
    case 0x46: {
      // 'F' FunctionCall
      if (bodyLen < 4) return bad("Truncated", "FunctionCall oid", b, start, p, base)
      const functionOid = u32(b, p)
      p += 4
      const argumentFormats = readFormats(b, start, p, end, base, "FunctionCall argument formats")
      if (argumentFormats instanceof ProtocolError) return argumentFormats
      p += 2 + 2 * argumentFormats.length
      const args = readValues(b, start, p, end, base, "FunctionCall argument")
      if (args instanceof ProtocolError) return args
      p = valuesEnd
      if (p + 2 !== end) {
        return bad(
          p + 2 > end ? "Truncated" : "TrailingBytes",
          "FunctionCall result format",
          b,
          start,
          p,
          base
        )
      }
      const resultFormat = readFormat(i16(b, p))
      if (resultFormat === -1) return bad("InvalidValue", "FunctionCall result format", b, start, p, base)
      return { type: "FunctionCall", functionOid, argumentFormats, arguments: args, resultFormat }
    }
    case 0x70: {
      // 'p': meaning chosen by the authentication exchange in progress.
      switch (authKind) {
        case "password": {
          const password = onlyString("PasswordMessage")
          return typeof password === "string" ? { type: "PasswordMessage", password } : password
        }
        case "sasl-initial": {
          const z = cstr(p, "SASLInitialResponse mechanism")
          if (z instanceof ProtocolError) return z
          const mechanism = decodeUtf8(b, p, z)
          p = z + 1
          if (p + 4 > end) return bad("Truncated", "SASLInitialResponse length", b, start, p, base)
          const len = i32(b, p)
          p += 4
          if (len === -1) {
            if (p !== end)
              return bad("TrailingBytes", "SASLInitialResponse trailing bytes", b, start, p, base)
            return { type: "SASLInitialResponse", mechanism, data: null }
          }
          if (len < 0 || p + len !== end) {
            return bad(
              len < 0 ? "InvalidValue" : p + len > end ? "Truncated" : "TrailingBytes",
              `SASLInitialResponse length ${len}`,
              b,
              start,
              p - 4,
              base
            )
          }
          return { type: "SASLInitialResponse", mechanism, data: b.subarray(p, end) }
        }
        case "sasl":
          return { type: "SASLResponse", data: b.subarray(p, end) }
        case "gss":
          return { type: "GSSResponse", data: b.subarray(p, end) }
      }
    }
  }
  return bad(
    "UnknownMessageType",
    `unknown frontend message type 0x${type.toString(16)}`,
    b,
    start,
    start,
    base
  )
}
