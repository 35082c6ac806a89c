/**
 * ByteWriter: a growable big-endian byte buffer that binary encoders append into. One writer is
 * meant to live as long as its connection and be `reset()` between frames, so encoding a parameter
 * allocates nothing once the buffer has grown to the workload's size. It knows nothing about
 * messages or types. Grown above 1 MiB for one huge value, it goes back to its initial size on the
 * next `reset()`, so a connection that once sent a 100 MB bytea does not keep the space.
 */

const encoder = new TextEncoder()

/**
 * A growable big-endian byte buffer that binary type encoders append to (`i32`, `f64`, `bytes`,
 * `utf8`…), reused between values with `reset()`. Never throws for space: it grows.
 */
export class ByteWriter {
  bytes: Uint8Array
  view: DataView
  length = 0

  private readonly initialSize: number

  // 1 KiB covers a Bind with a dozen scalar parameters; larger frames grow by doubling.
  constructor(initialSize = 1024) {
    this.initialSize = initialSize
    this.bytes = new Uint8Array(initialSize)
    this.view = new DataView(this.bytes.buffer)
  }

  reset(): void {
    this.length = 0
    if (this.bytes.length > 1024 * 1024) {
      this.bytes = new Uint8Array(this.initialSize)
      this.view = new DataView(this.bytes.buffer)
    }
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n
    if (need <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
    this.view = new DataView(next.buffer)
  }

  u8(v: number): void {
    this.ensure(1)
    this.bytes[this.length++] = v
  }

  i16(v: number): void {
    this.ensure(2)
    this.view.setInt16(this.length, v)
    this.length += 2
  }

  i32(v: number): void {
    this.ensure(4)
    this.view.setInt32(this.length, v)
    this.length += 4
  }

  i64(v: bigint): void {
    this.ensure(8)
    this.view.setBigInt64(this.length, v)
    this.length += 8
  }

  f32(v: number): void {
    this.ensure(4)
    this.view.setFloat32(this.length, v)
    this.length += 4
  }

  f64(v: number): void {
    this.ensure(8)
    this.view.setFloat64(this.length, v)
    this.length += 8
  }

  raw(src: Uint8Array): void {
    this.ensure(src.length)
    this.bytes.set(src, this.length)
    this.length += src.length
  }

  /** Appends `s` as UTF-8 and returns the number of bytes written. */
  utf8(s: string): number {
    // TextEncoder would put U+FFFD in place of a lone surrogate: the value would change silently.
    if (!s.isWellFormed())
      throw new RangeError("a string holds a lone UTF-16 surrogate, which UTF-8 cannot carry")
    // A UTF-16 code unit never needs more than 3 UTF-8 bytes (surrogate pairs: 4 bytes for 2 units).
    this.ensure(s.length * 3)
    const { written } = encoder.encodeInto(s, this.bytes.subarray(this.length))
    this.length += written
    return written
  }

  /** Reserves an int32 length slot and returns its position, for `endLength`. */
  beginLength(): number {
    this.ensure(4)
    const at = this.length
    this.length += 4
    return at
  }

  /** Writes the number of bytes appended since `beginLength` returned `at`. */
  endLength(at: number): void {
    this.view.setInt32(at, this.length - at - 4)
  }

  /** A copy of the bytes written so far (the writer's own buffer is reused after `reset`). */
  toBytes(): Uint8Array {
    return this.bytes.slice(0, this.length)
  }
}
