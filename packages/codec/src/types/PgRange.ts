/**
 * PgRange, rangeCodec and multirangeCodec: range types over any element codec (the built-ins
 * int4range, int8range, numrange, tsrange, tstzrange, daterange, and user ranges) and their
 * multiranges, text and binary.
 *
 * A range decodes to a PgRange: `lower`/`upper` are element values, `null` for an unbounded side
 * (an unbounded side is never inclusive, as the server normalises it); `isEmpty` marks `empty`.
 * A bound can also be an element's own infinity (tsrange `[-infinity,infinity]` has bounds, they
 * are ±Infinity / PgTimestamp.infinity, which is not the same as `(,)`). Discrete ranges come back
 * canonical: `[1,3]` is returned by the server as `[1,4)`. A multirange decodes to an array of
 * PgRange (`{}` is `[]`).
 *
 * Text (range_in / range_out, src/backend/utils/adt/rangetypes.c): `empty`, or a bracket, the lower
 * bound, a comma, the upper bound, a bracket; a bound is quoted when empty or containing
 * `"\()[],` or white space, with `"` and `\` doubled inside quotes. Binary (range_send): one flags
 * byte (0x01 empty, 0x02 lower inclusive, 0x04 upper inclusive, 0x08 lower infinite, 0x10 upper
 * infinite), then each present bound as int32 length and bytes. A multirange (multirange_send) is
 * int32 count, then each range as int32 length and its range_send bytes.
 */
import type { ByteWriter } from "./ByteWriter.ts"
import { type Codec, decodeFail, describeValue, encodeFail, readI32, utf8 } from "./Codec.ts"
import { markContainer } from "../internal/containers.ts"

const EMPTY = 0x01
const LB_INC = 0x02
const UB_INC = 0x04
const LB_INF = 0x08
const UB_INF = 0x10
// RANGE_LB_NULL / RANGE_UB_NULL: never sent by the server, read as unbounded if they ever are.
const LB_NULL = 0x20
const UB_NULL = 0x40

/**
 * A range value (int4range, tstzrange, a user range…): bounds (`null` for unbounded), their
 * inclusivity and emptiness.
 *
 * @example
 * ```ts
 * new PgRange(1, 10) // '[1,10)'
 * ```
 */
export class PgRange<A = unknown> {
  readonly lower: A | null
  readonly upper: A | null
  readonly lowerInclusive: boolean
  readonly upperInclusive: boolean
  readonly isEmpty: boolean

  /** `[lower, upper)` by default, PostgreSQL's canonical form; `null` is an unbounded side. */
  constructor(
    lower: A | null,
    upper: A | null,
    lowerInclusive = true,
    upperInclusive = false,
    isEmpty = false
  ) {
    this.isEmpty = isEmpty
    this.lower = isEmpty ? null : lower
    this.upper = isEmpty ? null : upper
    this.lowerInclusive = !isEmpty && lower !== null && lowerInclusive
    this.upperInclusive = !isEmpty && upper !== null && upperInclusive
  }

  static empty<A = never>(): PgRange<A> {
    return new PgRange<A>(null, null, false, false, true)
  }

  toString(): string {
    if (this.isEmpty) return "empty"
    return `${this.lowerInclusive ? "[" : "("}${this.lower ?? ""},${this.upper ?? ""}${this.upperInclusive ? "]" : ")"}`
  }
}

const toRange = (oid: number, value: unknown): PgRange => {
  if (value instanceof PgRange) return value
  return encodeFail(oid, `expected a PgRange, got ${describeValue(value)}`)
}

// --- text

const isSpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f"

const quoteBound = (s: string): string => {
  let needs = s.length === 0
  for (let i = 0; i < s.length && !needs; i++) {
    const c = s[i]
    needs =
      c === '"' || c === "\\" || c === "(" || c === ")" || c === "[" || c === "]" || c === "," || isSpace(c)
  }
  return needs ? `"${s.replace(/["\\]/g, "$&$&")}"` : s
}

const rangeText = (element: Codec, oid: number, value: unknown): string => {
  const r = toRange(oid, value)
  if (r.isEmpty) return "empty"
  const lo = r.lower === null ? "" : quoteBound(element.textEncode(r.lower))
  const hi = r.upper === null ? "" : quoteBound(element.textEncode(r.upper))
  return `${r.lowerInclusive ? "[" : "("}${lo},${hi}${r.upperInclusive ? "]" : ")"}`
}

/** Parses one range literal starting at `i`; returns it and the index after it. */
const parseRangeAt = (element: Codec, oid: number, t: string, start: number): [PgRange, number] => {
  let i = start
  const fail = (): never =>
    decodeFail(oid, `malformed range literal: ${JSON.stringify(t.slice(start, start + 80))}`)
  while (i < t.length && isSpace(t[i])) i++
  if (t.slice(i, i + 5).toLowerCase() === "empty") return [PgRange.empty(), i + 5]
  const open = t[i]
  if (open !== "[" && open !== "(") return fail()
  i++
  // A bound runs to the next unquoted, unescaped `,` (lower) or closing bracket (upper).
  const bound = (stops: string): string | null => {
    let s = ""
    let any = false
    while (i < t.length && !stops.includes(t[i])) {
      any = true
      const c = t[i]
      if (c === "\\") {
        s += t[i + 1] ?? ""
        i += 2
      } else if (c === '"') {
        i++
        for (;;) {
          if (i >= t.length) return fail()
          if (t[i] === "\\") {
            s += t[i + 1] ?? ""
            i += 2
          } else if (t[i] === '"') {
            if (t[i + 1] === '"') {
              s += '"'
              i += 2
            } else {
              i++
              break
            }
          } else s += t[i++]
        }
      } else {
        s += c
        i++
      }
    }
    return any ? s : null
  }
  const lower = bound(",")
  if (t[i] !== ",") return fail()
  i++
  const upper = bound(")]")
  const close = t[i]
  if (close !== ")" && close !== "]") return fail()
  i++
  return [
    new PgRange(
      lower === null ? null : element.parse(lower),
      upper === null ? null : element.parse(upper),
      open === "[",
      close === "]"
    ),
    i
  ]
}

const parseRange = (element: Codec, oid: number, t: string): PgRange => {
  const [r, end] = parseRangeAt(element, oid, t, 0)
  for (let i = end; i < t.length; i++) if (!isSpace(t[i])) decodeFail(oid, "trailing characters after range")
  return r
}

// --- binary

const rangeBinaryDecode = (element: Codec, oid: number, b: Uint8Array, s: number, e: number): PgRange => {
  const decode = element.binaryDecode!
  if (e - s < 1) return decodeFail(oid, "empty range value")
  const flags = b[s]
  if (flags & EMPTY) {
    if (e - s !== 1) decodeFail(oid, "trailing bytes after empty range")
    return PgRange.empty()
  }
  let p = s + 1
  const read = (): unknown => {
    if (e - p < 4) return decodeFail(oid, "truncated range bound")
    const len = readI32(b, p)
    p += 4
    if (len < 0 || e - p < len) return decodeFail(oid, "truncated range bound")
    const v = decode(b, p, p + len)
    p += len
    return v
  }
  const lower = flags & (LB_INF | LB_NULL) ? null : read()
  const upper = flags & (UB_INF | UB_NULL) ? null : read()
  if (p !== e) decodeFail(oid, "trailing bytes after range")
  return new PgRange(lower, upper, (flags & LB_INC) !== 0, (flags & UB_INC) !== 0)
}

const rangeBinaryEncode = (element: Codec, oid: number, value: unknown, out: ByteWriter): void => {
  const encode = element.binaryEncode!
  const r = toRange(oid, value)
  if (r.isEmpty) {
    out.u8(EMPTY)
    return
  }
  out.u8(
    (r.lowerInclusive ? LB_INC : 0) |
      (r.upperInclusive ? UB_INC : 0) |
      (r.lower === null ? LB_INF : 0) |
      (r.upper === null ? UB_INF : 0)
  )
  for (const v of [r.lower, r.upper]) {
    if (v === null) continue
    const at = out.beginLength()
    encode(v, out)
    out.endLength(at)
  }
}

/** The name and OIDs of a range type, for `rangeCodec`. */
export interface RangeOptions {
  readonly name: string
  readonly oid: number
  readonly arrayOid: number
}

/** The codec of a range type over an element codec (register it for a user range type). */
export const rangeCodec = (element: Codec, options: RangeOptions): Codec<PgRange> => {
  const { oid } = options
  const parse = (t: string) => parseRange(element, oid, t)
  const codec: { -readonly [K in keyof Codec<PgRange>]: Codec<PgRange>[K] } = {
    ...options,
    parse,
    textDecode: (b, s, e) => parse(utf8(b, s, e)),
    textEncode: (v) => rangeText(element, oid, v)
  }
  if (element.binaryDecode !== undefined)
    codec.binaryDecode = (b, s, e) => rangeBinaryDecode(element, oid, b, s, e)
  if (element.binaryEncode !== undefined)
    codec.binaryEncode = (v, out) => rangeBinaryEncode(element, oid, v, out)
  return markContainer(codec)
}

// --- multirange

const toRanges = (oid: number, value: unknown): ReadonlyArray<unknown> => {
  if (Array.isArray(value)) return value
  return encodeFail(oid, `expected an array of PgRange, got ${describeValue(value)}`)
}

const parseMultirange = (element: Codec, oid: number, t: string): Array<PgRange> => {
  const fail = (): never => decodeFail(oid, `malformed multirange literal: ${JSON.stringify(t.slice(0, 80))}`)
  let i = 0
  while (i < t.length && isSpace(t[i])) i++
  if (t[i] !== "{") return fail()
  i++
  const out: PgRange[] = []
  while (i < t.length && isSpace(t[i])) i++
  if (t[i] === "}") i++
  else {
    for (;;) {
      const [r, next] = parseRangeAt(element, oid, t, i)
      if (!r.isEmpty) out.push(r)
      i = next
      while (i < t.length && isSpace(t[i])) i++
      if (t[i] === ",") i++
      else if (t[i] === "}") {
        i++
        break
      } else return fail()
    }
  }
  while (i < t.length && isSpace(t[i])) i++
  if (i !== t.length) fail()
  return out
}

/** The codec of a multirange type over its range's element codec; values are arrays of PgRange. */
export const multirangeCodec = (
  element: Codec,
  range: Codec<PgRange>,
  options: RangeOptions
): Codec<Array<PgRange>> => {
  const { oid } = options
  const parse = (t: string) => parseMultirange(element, oid, t)
  const codec: { -readonly [K in keyof Codec<Array<PgRange>>]: Codec<Array<PgRange>>[K] } = {
    ...options,
    parse,
    textDecode: (b, s, e) => parse(utf8(b, s, e)),
    textEncode: (v) =>
      `{${toRanges(oid, v)
        .map((r) => range.textEncode(r))
        .join(",")}}`
  }
  if (range.binaryDecode !== undefined) {
    const decode = range.binaryDecode
    codec.binaryDecode = (b, s, e) => {
      if (e - s < 4) return decodeFail(oid, "multirange shorter than its count")
      const n = readI32(b, s)
      if (n < 0) decodeFail(oid, `invalid range count ${n}`)
      let p = s + 4
      const out: PgRange[] = []
      for (let k = 0; k < n; k++) {
        if (e - p < 4) decodeFail(oid, "truncated range")
        const len = readI32(b, p)
        p += 4
        if (len < 0 || e - p < len) decodeFail(oid, "truncated range")
        out.push(decode(b, p, p + len))
        p += len
      }
      if (p !== e) decodeFail(oid, "trailing bytes after the last range")
      return out
    }
  }
  if (range.binaryEncode !== undefined) {
    const encode = range.binaryEncode
    codec.binaryEncode = (v, out) => {
      const ranges = toRanges(oid, v)
      out.i32(ranges.length)
      for (const r of ranges) {
        const at = out.beginLength()
        encode(r, out)
        out.endLength(at)
      }
    }
  }
  return markContainer(codec)
}
