/**
 * Writer: one growable byte buffer that protocol messages are appended to, with the primitives the
 * encoders need (big-endian integers, NUL-terminated UTF-8 strings, length back-patching).
 *
 * A connection keeps one Writer, appends every frame of a tick into it and hands the bytes to the
 * socket in one write. It does no I/O and knows no message layouts (see Frontend.ts / Backend.ts).
 * It is not thread-safe nor re-entrant: one owner at a time.
 */

/** Why an encoder refused its input: values the wire format cannot carry. */
export type EncodeErrorReason = "NulInString" | "TooManyValues" | "MessageTooLarge"

/**
 * Thrown by encoders (the only throw in the codec) for input the protocol cannot represent: a NUL
 * inside a string that is sent NUL-terminated, more than 65535 parameters, a message over 2^31-1
 * bytes. These are caller bugs or hostile input; callers that accept arbitrary user strings
 * should validate (or catch) before encoding. A plain class, not an Error, so it costs no stack
 * capture; `_tag` makes it a tagged value for Effect code.
 */
export class EncodeError {
  readonly _tag = "EncodeError" as const
  readonly reason: EncodeErrorReason
  readonly message: string
  constructor(reason: EncodeErrorReason, message: string) {
    this.reason = reason
    this.message = message
  }
}

const encoder = new TextEncoder()

/**
 * Strings up to this many UTF-16 units are written by a JS loop when they are pure ASCII; longer
 * ones (or non-ASCII) go through TextEncoder.encodeInto. Measured on Node 24: encodeInto costs
 * ~90-170 ns whatever the length up to a few hundred chars (subarray + native call), the loop
 * ~2-4 ns/char (2 chars: 11 ns, 29 chars: 56 vs 91 ns, 64 chars: 252 vs 134 ns). Statement and
 * portal names, and short queries, are far below the crossover.
 */
const ASCII_LOOP_MAX = 32

const SLAB_SIZE = 16 * 1024
const SLAB_MAX_ITEM = 2 * 1024

/**
 * Capacity kept once a buffer is empty again. 1 MiB is the pipeline's default unsent-bytes window,
 * so steady pipelining never reallocates; only a buffer grown for one huge frame is given back.
 */
export const SHRINK_ABOVE = 1024 * 1024

/** Initial capacity: a typical pipeline tick (a few Bind/Execute frames) fits without growing. */
const DEFAULT_INITIAL_SIZE = 16 * 1024

/**
 * A growable buffer that frontend encoders append frames to (`encodeQuery(w, …)`, `beginBind`…);
 * `take()` returns the bytes written so far and empties it. Encoders throw `EncodeError` for what
 * the protocol cannot carry.
 *
 * @example
 * ```ts
 * const w = new Writer()
 * encodeParse(w, "", "select $1::int", [])
 * encodeSync(w)
 * socket.write(w.take())
 * ```
 */
export class Writer {
  /** Backing store; replaced (never shrunk) when it grows. Bytes [0, pos) are written. */
  buf: Uint8Array
  view: DataView
  pos = 0
  private slab: Uint8Array | null = null
  private slabPos = 0

  private readonly initialSize: number

  constructor(initialSize: number = DEFAULT_INITIAL_SIZE) {
    this.initialSize = Math.max(16, initialSize)
    this.buf = new Uint8Array(this.initialSize)
    this.view = new DataView(this.buf.buffer)
  }

  /** Number of bytes written since the last reset. */
  get length(): number {
    return this.pos
  }

  /**
   * Forget what was written; keeps the capacity so the next frames reuse the same memory, unless
   * it grew beyond SHRINK_ABOVE for one huge frame.
   */
  reset(): void {
    this.pos = 0
    this.shrink()
  }

  /**
   * Empty and above SHRINK_ABOVE: back to the initial size. One 100 MB parameter must not keep
   * 256 MB for the connection's lifetime; the next huge frame pays one allocation again.
   */
  private shrink(): void {
    if (this.pos === 0 && this.buf.length > SHRINK_ABOVE) {
      this.buf = new Uint8Array(this.initialSize)
      this.view = new DataView(this.buf.buffer)
    }
  }

  /** The written bytes without copying. Valid only until the next write or reset. */
  subarray(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }

  /**
   * A copy of the written bytes (safe to hand to a socket), then reset. Small copies are carved
   * out of a shared 16 KiB slab (never reused once handed out), because allocating a separate
   * ArrayBuffer per frame costs ~0.5-1 us on Node 24 (measured on a 75-byte Bind: ~1.2M takes/s
   * with one ArrayBuffer each, vs several million from a slab). The price: a small frame keeps
   * its slab alive while referenced.
   */
  take(): Uint8Array {
    const n = this.pos
    this.pos = 0
    if (n > SLAB_MAX_ITEM) {
      const out = this.buf.slice(0, n)
      this.shrink()
      return out
    }
    if (this.slab === null || this.slabPos + n > SLAB_SIZE) {
      this.slab = new Uint8Array(SLAB_SIZE)
      this.slabPos = 0
    }
    const start = this.slabPos
    const out = this.slab.subarray(start, start + n)
    out.set(this.buf.subarray(0, n))
    // 8-byte alignment keeps each copy's start aligned for DataView/typed views of it.
    this.slabPos = (start + n + 7) & ~7
    return out
  }

  /** Make room for n more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    let size = this.buf.length * 2
    const need = this.pos + n
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8(v: number): void {
    if (this.pos + 1 > this.buf.length) this.grow(1)
    this.buf[this.pos++] = v
  }

  /** Signed or unsigned 16-bit (the caller range-checks; the value is truncated to 16 bits). */
  i16(v: number): void {
    if (this.pos + 2 > this.buf.length) this.grow(2)
    const b = this.buf
    const p = this.pos
    b[p] = v >>> 8
    b[p + 1] = v
    this.pos = p + 2
  }

  /** Signed or unsigned 32-bit, big-endian (OIDs are unsigned; lengths signed). */
  i32(v: number): void {
    if (this.pos + 4 > this.buf.length) this.grow(4)
    const b = this.buf
    const p = this.pos
    b[p] = v >>> 24
    b[p + 1] = v >>> 16
    b[p + 2] = v >>> 8
    b[p + 3] = v
    this.pos = p + 4
  }

  bytes(src: Uint8Array): void {
    this.bytesFrom(src, 0, src.length)
  }

  /** Bytes [start, end) of `src` (a range of another writer's buffer, without a view on it). */
  bytesFrom(src: Uint8Array, start: number, end: number): void {
    const n = end - start
    if (this.pos + n > this.buf.length) this.grow(n)
    // TypedArray.set has a fixed native-call cost; tiny copies are cheaper as a loop.
    if (n < 16) {
      const b = this.buf
      let p = this.pos
      for (let i = start; i < end; i++) b[p++] = src[i]!
      this.pos = p
    } else {
      this.buf.set(start === 0 && end === src.length ? src : src.subarray(start, end), this.pos)
      this.pos += n
    }
  }

  /** UTF-8 without terminator. */
  utf8(s: string): void {
    const n = s.length
    if (n <= ASCII_LOOP_MAX) {
      if (this.pos + n > this.buf.length) this.grow(n)
      const b = this.buf
      let p = this.pos
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        b[p++] = c
      }
      if (i === n) {
        this.pos = p
        return
      }
    }
    this.utf8Slow(s)
  }

  private utf8Slow(s: string): void {
    // Optimistically reserve one byte per unit (ASCII), then grow by what remains, 3 bytes per
    // unit (the UTF-8 worst case for a BMP unit; a surrogate pair is 4 bytes for 2 units).
    this.ensure(s.length)
    let rest = s
    for (;;) {
      const r = encoder.encodeInto(rest, this.buf.subarray(this.pos))
      this.pos += r.written
      if (r.read === rest.length) return
      rest = rest.slice(r.read)
      this.grow(rest.length * 3)
    }
  }

  /** NUL-terminated UTF-8; a NUL inside `s` would truncate it on the server, so it is refused. */
  cstring(s: string): void {
    const n = s.length
    if (n <= ASCII_LOOP_MAX) {
      if (this.pos + n + 1 > this.buf.length) this.grow(n + 1)
      const b = this.buf
      let p = this.pos
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80 || c === 0) break
        b[p++] = c
      }
      if (i === n) {
        b[p] = 0
        this.pos = p + 1
        return
      }
    }
    if (s.indexOf("\0") !== -1) throw new EncodeError("NulInString", "string contains a NUL character")
    this.utf8Slow(s)
    this.u8(0)
  }

  /**
   * Start a typed message: writes the type byte and reserves the length word. Returns the offset of
   * the length word for `endMessage`. Pass -1 for untyped startup packets (no type byte).
   */
  beginMessage(typeByte: number): number {
    if (this.pos + 5 > this.buf.length) this.grow(5)
    if (typeByte >= 0) this.buf[this.pos++] = typeByte
    const at = this.pos
    this.pos = at + 4
    return at
  }

  /** Back-patch the length word at `at`: the length counts itself and the body, not the type byte. */
  endMessage(at: number): void {
    const len = this.pos - at
    if (len > 0x7fffffff) throw new EncodeError("MessageTooLarge", `message of ${len} bytes exceeds 2^31-1`)
    const b = this.buf
    b[at] = len >>> 24
    b[at + 1] = len >>> 16
    b[at + 2] = len >>> 8
    b[at + 3] = len
  }

  /** Reserve a 4-byte value length (Bind parameter, DataRow column); pair with `endValue`. */
  beginValue(): number {
    if (this.pos + 4 > this.buf.length) this.grow(4)
    const at = this.pos
    this.pos = at + 4
    return at
  }

  /** Patch the value length at `at` (bytes written after the length word). */
  endValue(at: number): void {
    const len = this.pos - at - 4
    const b = this.buf
    b[at] = len >>> 24
    b[at + 1] = len >>> 16
    b[at + 2] = len >>> 8
    b[at + 3] = len
  }
}
