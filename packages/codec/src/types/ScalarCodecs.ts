/**
 * ScalarCodecs: bool, the integers, oid, the floats, the character types, "char", bytea, uuid,
 * json and jsonb. Value representations:
 * - bool → boolean; int2, int4, oid → number; float4, float8 → number (NaN, ±Infinity and -0 kept).
 * - int8 → bigint (the default: every int8 fits, none is silently rounded). Two alternatives for a
 *   registry option: `int8AsNumber` (throws DecodeError beyond ±(2^53 - 1) rather than rounding, so a
 *   query fails loudly the day an id crosses 9,007,199,254,740,991) and `int8AsString`.
 * - text, varchar, bpchar (padding kept), name → string; "char" (oid 18) → a string of at most one
 *   character, byte 0 being "" and bytes ≥ 0x80 U+0080..U+00FF (the server prints those as `\ooo`).
 * - bytea → Uint8Array (a copy: decoded values outlive the receive buffer). The text decoder reads
 *   the hex format and the legacy escape format (bytea_output = 'escape').
 * - uuid → lowercase canonical string; json, jsonb → the parsed JS value (JSON.parse), and encoders
 *   take any JSON-serialisable value (a JS string becomes a JSON string; the TypeRegistry's
 *   parameter path sends strings verbatim instead, see there).
 * Not here: numeric (Numeric.ts), date/time (DateTimeCodecs.ts), inet (InetCodecs.ts).
 */
import type { ByteWriter } from "./ByteWriter.ts"
import {
  type Codec,
  decodeFail,
  describeValue,
  encodeFail,
  expectLength,
  makeCodec,
  readF32,
  readF64,
  readI16,
  readI32,
  readI64,
  readU32,
  utf8
} from "./Codec.ts"
import { parseJsonBytes } from "./Json.ts"
import { ArrayOid, Oid } from "./Oid.ts"

// --- integers

const INT_TEXT = /^\s*[+-]?\d+\s*$/

const toInt = (oid: number, value: unknown, min: number, max: number): number => {
  let n: number
  if (typeof value === "number") n = value
  else if (typeof value === "bigint") n = Number(value)
  else if (typeof value === "string" && INT_TEXT.test(value)) n = Number(value)
  else return encodeFail(oid, `expected an integer, got ${describeValue(value)}`)
  if (!Number.isInteger(n) || n < min || n > max)
    encodeFail(oid, `${describeValue(value)} is not an integer in [${min}, ${max}]`)
  return n
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const toInt64 = (oid: number, value: unknown): bigint => {
  let n: bigint
  if (typeof value === "bigint") n = value
  else if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value)
  else if (typeof value === "string" && INT_TEXT.test(value)) n = BigInt(value.trim())
  else return encodeFail(oid, `expected an integer, got ${describeValue(value)}`)
  if (n < INT64_MIN || n > INT64_MAX) encodeFail(oid, `${n} is outside int8`)
  return n
}

/** Integer text straight from the bytes; the server's output is canonical (`-123`). */
const intFromBytes = (oid: number, b: Uint8Array, start: number, end: number): number => {
  let i = start
  const neg = b[i] === 45
  if (neg || b[i] === 43) i++
  if (i >= end) decodeFail(oid, "empty integer")
  let n = 0
  for (; i < end; i++) {
    const d = b[i] - 48
    if (d < 0 || d > 9) decodeFail(oid, `invalid integer ${JSON.stringify(utf8(b, start, end))}`)
    n = n * 10 + d
  }
  return neg ? -n : n
}

const intFromText = (oid: number, text: string): number => {
  if (!INT_TEXT.test(text)) decodeFail(oid, `invalid integer ${JSON.stringify(text)}`)
  return Number(text)
}

const int2: Codec<number> = makeCodec({
  name: "int2",
  oid: Oid.int2,
  arrayOid: ArrayOid.int2,
  parse: (t) => intFromText(Oid.int2, t),
  textDecode: (b, s, e) => intFromBytes(Oid.int2, b, s, e),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.int2, s, e, 2)
    return readI16(b, s)
  },
  textEncode: (v) => String(toInt(Oid.int2, v, -32768, 32767)),
  binaryEncode: (v, out) => out.i16(toInt(Oid.int2, v, -32768, 32767))
})

const int4: Codec<number> = makeCodec({
  name: "int4",
  oid: Oid.int4,
  arrayOid: ArrayOid.int4,
  parse: (t) => intFromText(Oid.int4, t),
  textDecode: (b, s, e) => intFromBytes(Oid.int4, b, s, e),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.int4, s, e, 4)
    return readI32(b, s)
  },
  textEncode: (v) => String(toInt(Oid.int4, v, -2147483648, 2147483647)),
  binaryEncode: (v, out) => out.i32(toInt(Oid.int4, v, -2147483648, 2147483647))
})

const oid: Codec<number> = makeCodec({
  name: "oid",
  oid: Oid.oid,
  arrayOid: ArrayOid.oid,
  parse: (t) => intFromText(Oid.oid, t),
  textDecode: (b, s, e) => intFromBytes(Oid.oid, b, s, e),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.oid, s, e, 4)
    return readU32(b, s)
  },
  textEncode: (v) => String(toInt(Oid.oid, v, 0, 4294967295)),
  binaryEncode: (v, out) => out.i32(toInt(Oid.oid, v, 0, 4294967295) | 0)
})

const int8Text = (v: unknown): string => String(toInt64(Oid.int8, v))
const int8Binary = (v: unknown, out: ByteWriter): void => out.i64(toInt64(Oid.int8, v))

const int8: Codec<bigint> = makeCodec({
  name: "int8",
  oid: Oid.int8,
  arrayOid: ArrayOid.int8,
  parse: (t) => {
    if (!INT_TEXT.test(t)) decodeFail(Oid.int8, `invalid integer ${JSON.stringify(t)}`)
    return BigInt(t.trim())
  },
  binaryDecode: (b, s, e) => {
    expectLength(Oid.int8, s, e, 8)
    return readI64(b, s)
  },
  textEncode: int8Text,
  binaryEncode: int8Binary
})

const int8AsNumber: Codec<number> = makeCodec({
  name: "int8",
  oid: Oid.int8,
  arrayOid: ArrayOid.int8,
  parse: (t) => {
    const n = intFromText(Oid.int8, t)
    if (!Number.isSafeInteger(n)) decodeFail(Oid.int8, `${t} is beyond Number.MAX_SAFE_INTEGER`)
    return n
  },
  textDecode: (b, s, e) => {
    const n = intFromBytes(Oid.int8, b, s, e)
    if (!Number.isSafeInteger(n)) decodeFail(Oid.int8, `${utf8(b, s, e)} is beyond Number.MAX_SAFE_INTEGER`)
    return n
  },
  binaryDecode: (b, s, e) => {
    expectLength(Oid.int8, s, e, 8)
    const hi = readI32(b, s)
    // |value| < 2^53 exactly when the high word is in [-2^21, 2^21), except -2^53 itself.
    if (hi < -2097152 || hi >= 2097152 || (hi === -2097152 && readU32(b, s + 4) === 0))
      decodeFail(Oid.int8, `${readI64(b, s)} is beyond Number.MAX_SAFE_INTEGER`)
    return hi * 4294967296 + readU32(b, s + 4)
  },
  textEncode: int8Text,
  binaryEncode: int8Binary
})

const int8AsString: Codec<string> = makeCodec({
  name: "int8",
  oid: Oid.int8,
  arrayOid: ArrayOid.int8,
  parse: (t) => {
    if (!INT_TEXT.test(t)) decodeFail(Oid.int8, `invalid integer ${JSON.stringify(t)}`)
    return t
  },
  binaryDecode: (b, s, e) => {
    expectLength(Oid.int8, s, e, 8)
    return String(readI64(b, s))
  },
  textEncode: int8Text,
  binaryEncode: int8Binary
})

// --- floats

/** The server's special float spellings, any case: NaN, [+-]Infinity, [+-]inf. */
const FLOAT_SPECIAL = /^(?:(nan)|([+-]?)inf(?:inity)?)$/i

const toFloat = (oid: number, value: unknown): number => {
  if (typeof value === "number") return value
  if (typeof value === "bigint") return Number(value)
  if (typeof value === "string") {
    const t = value.trim()
    const special = FLOAT_SPECIAL.exec(t)
    if (special !== null)
      return special[1] !== undefined ? Number.NaN : special[2] === "-" ? -Infinity : Infinity
    const n = Number(t)
    if (t !== "" && (!Number.isNaN(n) || t === "NaN")) {
      // Text beyond the double's range reads as ±Infinity or 0 in JS; the server refuses it.
      if (!Number.isFinite(n) && !/Infinity$/.test(t))
        encodeFail(oid, `${t} is out of range for ${typeName(oid)}`)
      if (n === 0 && /[1-9]/.test(t.replace(/[eE].*$/, "")))
        encodeFail(oid, `${t} is out of range for ${typeName(oid)}`)
      return n
    }
  }
  return encodeFail(oid, `expected a number, got ${describeValue(value)}`)
}

const typeName = (oid: number) => (oid === Oid.float4 ? "float4" : "float8")

/**
 * A number as float4, refused where the server refuses it: a finite value beyond float4's range
 * (overflow) or a non-zero one that rounds to zero (underflow), instead of ±Infinity or 0.
 */
const toFloat4 = (value: unknown): number => {
  const n = toFloat(Oid.float4, value)
  const f = Math.fround(n)
  if (!Number.isFinite(f) && Number.isFinite(n))
    encodeFail(Oid.float4, `${n} is out of range for float4 (overflow)`)
  if (f === 0 && n !== 0) encodeFail(Oid.float4, `${n} is out of range for float4 (underflow)`)
  return f
}

const FLOAT_TEXT = /^\s*(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Infinity)\s*$/

const floatFromText = (oid: number, t: string): number => {
  if (!FLOAT_TEXT.test(t)) decodeFail(oid, `invalid float ${JSON.stringify(t)}`)
  return Number(t)
}

// String(-0) is "0": the sign of zero would be lost without this.
const floatText = (n: number): string => (Object.is(n, -0) ? "-0" : String(n))

const float4: Codec<number> = makeCodec({
  name: "float4",
  oid: Oid.float4,
  arrayOid: ArrayOid.float4,
  // The server prints the shortest text that reads back as the same float4 ("1.1"); rounding it
  // to float4 makes the text and binary decoders agree bit for bit.
  parse: (t) => Math.fround(floatFromText(Oid.float4, t)),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.float4, s, e, 4)
    return readF32(b, s)
  },
  textEncode: (v) => floatText(toFloat4(v)),
  binaryEncode: (v, out) => out.f32(toFloat4(v))
})

const float8: Codec<number> = makeCodec({
  name: "float8",
  oid: Oid.float8,
  arrayOid: ArrayOid.float8,
  parse: (t) => floatFromText(Oid.float8, t),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.float8, s, e, 8)
    return readF64(b, s)
  },
  textEncode: (v) => floatText(toFloat(Oid.float8, v)),
  binaryEncode: (v, out) => out.f64(toFloat(Oid.float8, v))
})

// --- bool

const toBool = (value: unknown): boolean => {
  if (typeof value === "boolean") return value
  return encodeFail(Oid.bool, `expected a boolean, got ${describeValue(value)}`)
}

const parseBool = (t: string): boolean => {
  if (t === "t" || t === "true") return true
  if (t === "f" || t === "false") return false
  return decodeFail(Oid.bool, `invalid boolean ${JSON.stringify(t)}`)
}

const bool: Codec<boolean> = makeCodec({
  name: "bool",
  oid: Oid.bool,
  arrayOid: ArrayOid.bool,
  parse: (t) => parseBool(t),
  textDecode: (b, s, e) => {
    if (e - s === 1) {
      if (b[s] === 116) return true
      if (b[s] === 102) return false
    }
    // boolout prints t/f; the bool → text cast (and so a text array of it) says true/false.
    return parseBool(utf8(b, s, e))
  },
  binaryDecode: (b, s, e) => {
    expectLength(Oid.bool, s, e, 1)
    return b[s] !== 0
  },
  textEncode: (v) => (toBool(v) ? "t" : "f"),
  binaryEncode: (v, out) => out.u8(toBool(v) ? 1 : 0)
})

// --- character types

const toText = (oid: number, value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean")
    return String(value)
  return encodeFail(oid, `expected a string, got ${describeValue(value)}`)
}

const textLike = (name: string, oid: number, arrayOid: number): Codec<string> =>
  makeCodec({
    name,
    oid,
    arrayOid,
    parse: (t) => t,
    binaryDecode: utf8,
    textEncode: (v) => toText(oid, v),
    binaryEncode: (v, out) => {
      out.utf8(toText(oid, v))
    }
  })

const text = textLike("text", Oid.text, ArrayOid.text)
const varchar = textLike("varchar", Oid.varchar, ArrayOid.varchar)
const bpchar = textLike("bpchar", Oid.bpchar, ArrayOid.bpchar)
const name = textLike("name", Oid.name, ArrayOid.name)

const charCode = (value: unknown): number => {
  const s = toText(Oid.char, value)
  if (s.length === 0) return 0
  const c = s.charCodeAt(0)
  if (s.length > 1 || c > 255) encodeFail(Oid.char, `"char" holds one byte, got ${describeValue(value)}`)
  return c
}

const char: Codec<string> = makeCodec({
  name: "char",
  oid: Oid.char,
  arrayOid: ArrayOid.char,
  // charout prints byte 0 as "" and bytes with the high bit set as a backslash and 3 octal digits.
  parse: (t) =>
    t.length === 4 && t[0] === "\\" && /^\\[0-3][0-7]{2}$/.test(t)
      ? String.fromCharCode(parseInt(t.slice(1), 8))
      : t,
  binaryDecode: (b, s, e) => {
    expectLength(Oid.char, s, e, 1)
    return b[s] === 0 ? "" : String.fromCharCode(b[s])
  },
  textEncode: (v) => {
    const c = charCode(v)
    if (c === 0) return ""
    return c >= 128 ? "\\" + c.toString(8) : String.fromCharCode(c)
  },
  binaryEncode: (v, out) => out.u8(charCode(v))
})

// --- bytea

const HEX = "0123456789abcdef"
const hexByte: string[] = []
for (let i = 0; i < 256; i++) hexByte.push(HEX[i >> 4] + HEX[i & 15])

const hexValue = (c: number): number => {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13)

const byteaFromBytes = (b: Uint8Array, s: number, e: number): Uint8Array => {
  if (e - s >= 2 && b[s] === 92 && b[s + 1] === 120) {
    // Hex format; byteain allows whitespace between digit pairs.
    const out = new Uint8Array((e - s - 2) >> 1)
    let n = 0
    for (let i = s + 2; i < e; ) {
      if (isSpace(b[i])) {
        i++
        continue
      }
      const hi = hexValue(b[i])
      const lo = i + 1 < e ? hexValue(b[i + 1]) : -1
      if (hi < 0 || lo < 0) decodeFail(Oid.bytea, "invalid hexadecimal digit")
      out[n++] = (hi << 4) | lo
      i += 2
    }
    return n === out.length ? out : out.slice(0, n)
  }
  // Escape format: `\\` is a backslash, `\ooo` an octal byte, anything else is itself.
  const out = new Uint8Array(e - s)
  let n = 0
  for (let i = s; i < e; ) {
    const c = b[i]
    if (c !== 92) {
      out[n++] = c
      i++
    } else if (i + 1 < e && b[i + 1] === 92) {
      out[n++] = 92
      i += 2
    } else if (
      i + 3 < e &&
      b[i + 1] >= 48 &&
      b[i + 1] <= 51 &&
      b[i + 2] >= 48 &&
      b[i + 2] <= 55 &&
      b[i + 3] >= 48 &&
      b[i + 3] <= 55
    ) {
      out[n++] = ((b[i + 1] - 48) << 6) | ((b[i + 2] - 48) << 3) | (b[i + 3] - 48)
      i += 4
    } else {
      return decodeFail(Oid.bytea, "invalid escape sequence")
    }
  }
  return out.slice(0, n)
}

const textEncoder = new TextEncoder()

const toBytes = (value: unknown): Uint8Array => {
  if (value instanceof Uint8Array) return value
  return encodeFail(Oid.bytea, `expected a Uint8Array, got ${describeValue(value)}`)
}

/** bytea's text form: `\x` followed by two hex digits per byte. */
export const byteaHex = (bytes: Uint8Array): string => {
  let s = "\\x"
  for (let i = 0; i < bytes.length; i++) s += hexByte[bytes[i]]
  return s
}

/**
 * A plain Uint8Array copy. Not `bytes.slice`: on a Node Buffer (what sockets deliver) slice is a
 * view into the receive buffer, which the next read overwrites.
 */
export const copyBytes = (b: Uint8Array, s: number, e: number): Uint8Array => {
  const out = new Uint8Array(e - s)
  out.set(b.subarray(s, e))
  return out
}

const bytea: Codec<Uint8Array> = makeCodec({
  name: "bytea",
  oid: Oid.bytea,
  arrayOid: ArrayOid.bytea,
  parse: (t) => {
    const b = textEncoder.encode(t)
    return byteaFromBytes(b, 0, b.length)
  },
  textDecode: byteaFromBytes,
  binaryDecode: copyBytes,
  textEncode: (v) => byteaHex(toBytes(v)),
  binaryEncode: (v, out) => out.raw(toBytes(v))
})

// --- uuid

const uuidBytes = (value: unknown): Uint8Array => {
  // uuid_in accepts optional braces and a hyphen after any group of four digits.
  if (typeof value === "string") {
    let t = value
    if (t.length > 1 && t[0] === "{" && t[t.length - 1] === "}") t = t.slice(1, -1)
    t = t.replace(/-/g, "")
    if (t.length === 32) {
      const out = new Uint8Array(16)
      for (let i = 0; i < 16; i++) {
        const hi = hexValue(t.charCodeAt(2 * i))
        const lo = hexValue(t.charCodeAt(2 * i + 1))
        if (hi < 0 || lo < 0) break
        out[i] = (hi << 4) | lo
        if (i === 15) return out
      }
    }
  }
  return encodeFail(Oid.uuid, `expected a UUID string, got ${describeValue(value)}`)
}

const uuidText = (b: Uint8Array, s: number): string => {
  let r = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) r += "-"
    r += hexByte[b[s + i]]
  }
  return r
}

const uuid: Codec<string> = makeCodec({
  name: "uuid",
  oid: Oid.uuid,
  arrayOid: ArrayOid.uuid,
  parse: (t) => t,
  binaryDecode: (b, s, e) => {
    expectLength(Oid.uuid, s, e, 16)
    return uuidText(b, s)
  },
  textEncode: (v) => uuidText(uuidBytes(v), 0),
  binaryEncode: (v, out) => out.raw(uuidBytes(v))
})

// --- json, jsonb

const parseJson = (oid: number, t: string): unknown => {
  try {
    return JSON.parse(t)
  } catch (e) {
    return decodeFail(oid, `invalid JSON: ${(e as Error).message}`)
  }
}

/**
 * Objects JSON.stringify turns into `{}` or whose contents it drops (a Map's entries, a Set's
 * values, a typed array's indexes as keys): as JSON they would change silently.
 */
const hasNoJson = (value: unknown): boolean =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { toJSON?: unknown }).toJSON !== "function" &&
  (value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    value instanceof Promise ||
    value instanceof RegExp)

const jsonText = (oid: number, value: unknown): string => {
  if (hasNoJson(value))
    return encodeFail(
      oid,
      `JSON would hold none of the contents of ${describeValue(value)} (convert it first)`
    )
  let s: string | undefined
  try {
    s = JSON.stringify(value)
  } catch (e) {
    return encodeFail(oid, `not JSON-serialisable: ${(e as Error).message}`)
  }
  if (s === undefined) return encodeFail(oid, `not JSON-serialisable: ${describeValue(value)}`)
  // JSON.stringify writes a lone surrogate as a \\udXXX escape (its only \\ud escapes), which jsonb
  // refuses: refused here, as a lone surrogate anywhere else in a parameter is.
  if (s.includes("\\ud") && LONE_SURROGATE_ESCAPE.test(s))
    return encodeFail(oid, "a string in the value holds a lone UTF-16 surrogate, which UTF-8 cannot carry")
  return s
}

/** A \\ud800–\\udfff escape not itself escaped (after an even run of backslashes). */
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/

/** JSON.parse's result for bytes [s, e), or a DecodeError naming the type. */
const parseJsonAt = (oid: number, b: Uint8Array, s: number, e: number): unknown => {
  try {
    return parseJsonBytes(b, s, e)
  } catch (err) {
    return decodeFail(oid, `invalid JSON: ${(err as Error).message}`)
  }
}

const json: Codec<unknown> = makeCodec({
  name: "json",
  oid: Oid.json,
  arrayOid: ArrayOid.json,
  parse: (t) => parseJson(Oid.json, t),
  textDecode: (b, s, e) => parseJsonAt(Oid.json, b, s, e),
  binaryDecode: (b, s, e) => parseJsonAt(Oid.json, b, s, e),
  textEncode: (v) => jsonText(Oid.json, v),
  binaryEncode: (v, out) => {
    out.utf8(jsonText(Oid.json, v))
  }
})

// jsonb_send writes a format version byte (1, the only version) before the JSON text.
const jsonb: Codec<unknown> = makeCodec({
  name: "jsonb",
  oid: Oid.jsonb,
  arrayOid: ArrayOid.jsonb,
  parse: (t) => parseJson(Oid.jsonb, t),
  textDecode: (b, s, e) => parseJsonAt(Oid.jsonb, b, s, e),
  binaryDecode: (b, s, e) => {
    if (e - s < 1 || b[s] !== 1)
      decodeFail(Oid.jsonb, `unsupported jsonb version ${e > s ? b[s] : "(empty)"}`)
    return parseJsonAt(Oid.jsonb, b, s + 1, e)
  },
  textEncode: (v) => jsonText(Oid.jsonb, v),
  binaryEncode: (v, out) => {
    out.u8(1)
    out.utf8(jsonText(Oid.jsonb, v))
  }
})

/**
 * The codecs of the scalar built-ins (bool, integers, floats, text types, bytea, uuid, json/jsonb,
 * oid…); malformed values throw `DecodeError`, values a type cannot carry `TypeEncodeError`.
 */
export const ScalarCodecs = {
  bool,
  int2,
  int4,
  int8,
  int8AsNumber,
  int8AsString,
  oid,
  float4,
  float8,
  text,
  varchar,
  bpchar,
  name,
  char,
  bytea,
  uuid,
  json,
  jsonb
} as const
