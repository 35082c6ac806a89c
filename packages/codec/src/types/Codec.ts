/**
 * Codec: the shape every type codec has (text and binary, decode and encode) plus the small
 * helpers they share. Decoders read a slice `bytes[start, end)` of a buffer they do not own (the
 * parser hands DataRow column offsets into one receive buffer) and never keep a reference to it;
 * binary encoders append to a ByteWriter, text encoders return a string the caller writes as UTF-8.
 * Encoders take `unknown`: values come from users at run time and are checked, not trusted; a
 * value an encoder cannot represent throws TypeEncodeError, malformed input to a decoder DecodeError.
 * This module holds no registry and no mutable state.
 */
import type { ByteWriter } from "./ByteWriter.ts"
import { DecodeError, TypeEncodeError } from "./DecodeError.ts"

/** Wire format codes of the extended protocol: 0 text, 1 binary. */
export type Format = 0 | 1

/** Decodes the slice `bytes[start, end)` of a buffer it does not own; throws `DecodeError` for malformed input. */
export type Decoder<A = unknown> = (bytes: Uint8Array, start: number, end: number) => A

/**
 * A type's codec: text and (optionally) binary decoding and encoding, with its OIDs. Make one with
 * `makeCodec` and add it with `TypeRegistry.register`.
 */
export interface Codec<A = unknown> {
  /** The type's name in pg_type (`int4`, `_int4` for arrays, or the user's name). */
  readonly name: string
  readonly oid: number
  /** OID of the array type whose elements are this type; 0 when there is none. */
  readonly arrayOid: number
  /** Text format from an already decoded string (array and range parsers call this per element). */
  readonly parse: (text: string) => A
  readonly textDecode: Decoder<A>
  readonly binaryDecode?: Decoder<A>
  readonly textEncode: (value: unknown) => string
  /** Appends the value to `out`, after whatever it already holds (other parameters, an array's header). */
  readonly binaryEncode?: (value: unknown, out: ByteWriter) => void
  /**
   * Ask for results in text even though a binary decoder exists: the value is its text (numeric's
   * decimal string), so the server's output function does the formatting and the client only
   * slices. Parameters and array elements still use binary.
   */
  readonly textResults?: boolean
}

// ignoreBOM: the default decoder silently drops a leading U+FEFF, which is data in a text column.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * Decodes UTF-8 without copying. Short ASCII strings (column values such as ids, flags, dates)
 * are built with String.fromCharCode: below ~16 bytes that is several times faster than a
 * TextDecoder call, whose fixed cost dominates for tiny inputs.
 */
export const utf8 = (bytes: Uint8Array, start: number, end: number): string => {
  // Node's Buffer (what sockets deliver) decodes a range in place; a TextDecoder needs a
  // subarray view per value first. Duck-typed so the codec still imports no Node API.
  const slice = (bytes as { utf8Slice?: (start: number, end: number) => string }).utf8Slice
  if (slice !== undefined) return slice.call(bytes, start, end)
  if (end - start <= 16) {
    let s = ""
    for (let i = start; i < end; i++) {
      const b = bytes[i]
      if (b >= 0x80) return utf8Decoder.decode(bytes.subarray(start, end))
      s += String.fromCharCode(b)
    }
    return s
  }
  return utf8Decoder.decode(bytes.subarray(start, end))
}

/** Throws the `DecodeError` of a codec for type `oid` (for codec implementations). */
export const decodeFail = (oid: number, reason: string): never => {
  throw new DecodeError(oid, reason)
}

/** Throws the `TypeEncodeError` of a codec for type `oid` (for codec implementations). */
export const encodeFail = (oid: number, reason: string): never => {
  throw new TypeEncodeError(oid, reason)
}

/** A short description of a value for error messages (its type, and the value when it is short). */
export const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)
  if (typeof value === "bigint") return `${value}n`
  if (value instanceof Date && Number.isNaN(value.getTime())) return "an invalid Date"
  if (typeof value === "object") return value.constructor?.name ?? "object"
  return String(value)
}

/** Throws `DecodeError` unless the slice `[start, end)` is exactly `n` bytes long. */
export const expectLength = (oid: number, start: number, end: number, n: number): void => {
  if (end - start !== n) decodeFail(oid, `expected ${n} bytes, got ${end - start}`)
}

/** Builds a codec whose text decoder is `parse` over the UTF-8 slice. */
export const makeCodec = <A>(spec: {
  readonly name: string
  readonly oid: number
  readonly arrayOid: number
  readonly parse: (text: string) => A
  readonly textDecode?: Decoder<A>
  readonly binaryDecode?: Decoder<A>
  readonly textEncode: (value: unknown) => string
  readonly binaryEncode?: (value: unknown, out: ByteWriter) => void
  readonly textResults?: boolean
}): Codec<A> => {
  const parse = spec.parse
  const codec: {
    -readonly [K in keyof Codec<A>]: Codec<A>[K]
  } = {
    name: spec.name,
    oid: spec.oid,
    arrayOid: spec.arrayOid,
    parse,
    textDecode: spec.textDecode ?? ((bytes, start, end) => parse(utf8(bytes, start, end))),
    textEncode: spec.textEncode
  }
  if (spec.binaryDecode !== undefined) codec.binaryDecode = spec.binaryDecode
  if (spec.binaryEncode !== undefined) codec.binaryEncode = spec.binaryEncode
  if (spec.textResults === true) codec.textResults = true
  return codec
}

/** Encodes one value in binary into a fresh Uint8Array (tests and one-off callers). */
export const encodeBinary = (codec: Codec, value: unknown, out: ByteWriter): Uint8Array => {
  if (codec.binaryEncode === undefined)
    return encodeFail(codec.oid, `type ${codec.name} has no binary encoder`)
  out.reset()
  codec.binaryEncode(value, out)
  return out.toBytes()
}

// --- big-endian reads straight from the slice: no DataView per value (a DataView costs an
// allocation; the parser's buffers are shared, so one cannot be cached per buffer either).

/** Reads a big-endian signed 16-bit integer at `i`. */
export const readI16 = (b: Uint8Array, i: number): number => (((b[i] << 8) | b[i + 1]) << 16) >> 16

/** Reads a big-endian signed 32-bit integer at `i`. */
export const readI32 = (b: Uint8Array, i: number): number =>
  (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]

/** Reads a big-endian unsigned 32-bit integer at `i`. */
export const readU32 = (b: Uint8Array, i: number): number => readI32(b, i) >>> 0

/** Reads a big-endian signed 64-bit integer at `i`, as a bigint. */
export const readI64 = (b: Uint8Array, i: number): bigint => {
  const hi = readI32(b, i)
  const lo = readU32(b, i + 4)
  // |value| < 2^53: exact as a double, so one BigInt instead of the four a shift-and-or builds.
  if (hi >= -0x200000 && hi < 0x200000) return BigInt(hi * 4294967296 + lo)
  return (BigInt(hi) << 32n) | BigInt(lo)
}

// Floats go through an 8-byte scratch view. It is written and read within one synchronous call,
// so sharing it is safe (it carries no state between calls).
const scratch = new DataView(new ArrayBuffer(8))

/** Reads a big-endian IEEE 754 single-precision float at `i`. */
export const readF32 = (b: Uint8Array, i: number): number => {
  for (let k = 0; k < 4; k++) scratch.setUint8(k, b[i + k])
  return scratch.getFloat32(0)
}

/** Reads a big-endian IEEE 754 double-precision float at `i`. */
export const readF64 = (b: Uint8Array, i: number): number => {
  for (let k = 0; k < 8; k++) scratch.setUint8(k, b[i + k])
  return scratch.getFloat64(0)
}
