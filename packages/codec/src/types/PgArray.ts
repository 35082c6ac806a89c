/**
 * PgArray and arrayCodec: PostgreSQL arrays of any element codec, text and binary.
 *
 * Representation: an array whose lower bounds are all 1 (the default; practically every array)
 * decodes to plain nested JS arrays, `[[1, 2], [3, null]]`, NULL elements as `null`, `{}` as `[]`.
 * An array with any other lower bound (`'[0:1]={a,b}'`) decodes to a PgArray, which keeps the
 * bounds so that a round trip is lossless. Encoders take either. For json/jsonb elements a JS
 * array is a JSON value, not a dimension, so nested JS arrays are 1-D there; use a PgArray to send
 * a multi-dimensional json array.
 *
 * Text format (array_in / array_out in src/backend/utils/adt/arrayfuncs.c): optional
 * `[lb:ub]...=` prefix, braces per dimension, elements double-quoted when empty, equal to NULL in
 * any case, or containing `{}",\` or white space, with `"` and `\` backslash-escaped.
 * Binary format (array_send): int32 ndim, int32 has-nulls flag, int32 element OID, per dimension
 * int32 length and int32 lower bound, then per element int32 length (-1 for NULL) and its bytes.
 */
import type { ByteWriter } from "./ByteWriter.ts"
import { type Codec, decodeFail, describeValue, encodeFail, readI32, utf8 } from "./Codec.ts"
import { markContainer } from "../internal/containers.ts"
import { Oid } from "./Oid.ts"

// MAXDIM in src/include/utils/array.h.
const MAX_DIMS = 6

/**
 * An array whose lower bounds are not all 1 (`'[0:1]={a,b}'`), kept with its bounds so a round
 * trip is lossless; arrays with default bounds decode to plain nested JS arrays instead.
 *
 * @example
 * ```ts
 * new PgArray(["a", "b"], [2], [0]) // '[0:1]={a,b}'
 * ```
 */
export class PgArray<A = unknown> {
  /** Elements in row-major order. */
  readonly elements: ReadonlyArray<A | null>
  readonly dims: ReadonlyArray<number>
  readonly lowerBounds: ReadonlyArray<number>

  constructor(
    elements: ReadonlyArray<A | null>,
    dims: ReadonlyArray<number>,
    lowerBounds?: ReadonlyArray<number>
  ) {
    const count = dims.length === 0 ? 0 : dims.reduce((a, b) => a * b, 1)
    if (count !== elements.length)
      throw new RangeError(`dims ${dims.join("x")} need ${count} elements, got ${elements.length}`)
    if (lowerBounds !== undefined && lowerBounds.length !== dims.length)
      throw new RangeError("one lower bound per dimension")
    const int32 = (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647
    if (!dims.every(int32) || !(lowerBounds ?? []).every(int32))
      throw new RangeError("dimensions and lower bounds must be 32-bit integers")
    this.elements = elements
    this.dims = dims
    this.lowerBounds = lowerBounds ?? dims.map(() => 1)
  }

  /** The elements as nested JS arrays (dropping the lower bounds). */
  toNested(): Array<unknown> {
    return nest(this.elements, this.dims)
  }
}

const nest = (flat: ReadonlyArray<unknown>, dims: ReadonlyArray<number>): Array<unknown> => {
  if (dims.length === 0) return []
  let pos = 0
  const build = (d: number): Array<unknown> => {
    const n = dims[d]
    const out = new Array<unknown>(n)
    if (d === dims.length - 1) for (let i = 0; i < n; i++) out[i] = flat[pos++]
    else for (let i = 0; i < n; i++) out[i] = build(d + 1)
    return out
  }
  return build(0)
}

const isJson = (oid: number): boolean => oid === Oid.json || oid === Oid.jsonb

/** Flattens an encoder input into (elements, dims, lower bounds), checking it is rectangular. */
const flatten = (oid: number, value: unknown, elementIsJson: boolean): PgArray<unknown> => {
  if (value instanceof PgArray) return value
  if (!Array.isArray(value)) return encodeFail(oid, `expected an array, got ${describeValue(value)}`)
  if (value.length === 0) return new PgArray([], [])
  const dims: number[] = []
  let probe: unknown = value
  while (Array.isArray(probe) && !(elementIsJson && dims.length === 1)) {
    dims.push(probe.length)
    if (probe.length === 0) break
    probe = probe[0]
  }
  if (dims.length > MAX_DIMS) encodeFail(oid, `more than ${MAX_DIMS} dimensions`)
  const elements: unknown[] = []
  const walk = (v: unknown, d: number): void => {
    if (d === dims.length) {
      if (Array.isArray(v) && !elementIsJson) encodeFail(oid, "array is not rectangular")
      // As for a parameter: undefined (or a hole) is a mistake more often than a NULL.
      if (v === undefined) encodeFail(oid, "an array element is undefined: pass null for SQL NULL")
      elements.push(v)
      return
    }
    if (!Array.isArray(v) || v.length !== dims[d]) {
      encodeFail(oid, "array is not rectangular")
      return
    }
    for (let i = 0; i < v.length; i++) walk(v[i], d + 1)
  }
  walk(value, 0)
  if (dims.includes(0)) return new PgArray([], [])
  return new PgArray(elements, dims)
}

// --- text

const needsQuotes = (s: string): boolean => {
  if (s.length === 0) return true
  if (s.length === 4 && s.toUpperCase() === "NULL") return true
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // " , \ { } and array_isspace (space, \t \n \v \f \r).
    if (c === 34 || c === 44 || c === 92 || c === 123 || c === 125 || c === 32 || (c >= 9 && c <= 13))
      return true
  }
  return false
}

const quote = (s: string): string => (needsQuotes(s) ? `"${s.replace(/["\\]/g, "\\$&")}"` : s)

const textEncode = (element: Codec, oid: number, value: unknown): string => {
  const a = flatten(oid, value, isJson(element.oid))
  if (a.dims.length === 0) return "{}"
  let prefix = ""
  if (a.lowerBounds.some((lb) => lb !== 1)) {
    for (let d = 0; d < a.dims.length; d++)
      prefix += `[${a.lowerBounds[d]}:${a.lowerBounds[d] + a.dims[d] - 1}]`
    prefix += "="
  }
  let pos = 0
  const build = (d: number): string => {
    let s = "{"
    for (let i = 0; i < a.dims[d]; i++) {
      if (i > 0) s += ","
      if (d < a.dims.length - 1) s += build(d + 1)
      else {
        const v = a.elements[pos++]
        s += v === null ? "NULL" : quote(element.textEncode(v))
      }
    }
    return s + "}"
  }
  return prefix + build(0)
}

const isArraySpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f"

const parseText = (element: Codec, oid: number, text: string): unknown => {
  let i = 0
  const n = text.length
  const fail = (why: string): never =>
    decodeFail(oid, `malformed array literal (${why}): ${JSON.stringify(text.slice(0, 80))}`)
  const skipSpace = () => {
    while (i < n && isArraySpace(text[i])) i++
  }
  skipSpace()
  let bounds: number[] | undefined
  let declared: number[] | undefined
  if (text[i] === "[") {
    bounds = []
    declared = []
    while (text[i] === "[") {
      const close = text.indexOf("]", i)
      const m = /^\[([+-]?\d+):([+-]?\d+)\]$/.exec(text.slice(i, close + 1))
      if (close < 0 || m === null) return fail("bad dimension")
      bounds.push(Number(m[1]))
      declared.push(Number(m[2]) - Number(m[1]) + 1)
      i = close + 1
    }
    skipSpace()
    if (text[i] !== "=") return fail("missing =")
    i++
    skipSpace()
  }
  const elements: unknown[] = []
  const dims: number[] = []
  const level = (d: number): void => {
    if (text[i] !== "{") throw fail("expected {")
    i++
    skipSpace()
    let count = 0
    if (text[i] === "}") i++
    else {
      for (;;) {
        skipSpace()
        if (text[i] === "{") level(d + 1)
        else {
          let s = ""
          let quoted = false
          if (text[i] === '"') {
            quoted = true
            i++
            while (i < n && text[i] !== '"') {
              if (text[i] === "\\") i++
              s += text[i++]
            }
            if (i >= n) throw fail("unterminated quote")
            i++
          } else {
            // Unquoted: up to the delimiter or brace; trailing white space is not part of it.
            let keep = 0
            while (i < n && text[i] !== "," && text[i] !== "}") {
              if (text[i] === "\\") {
                i++
                s += text[i++]
                keep = s.length
              } else s += text[i++]
            }
            let end = s.length
            while (end > keep && isArraySpace(s[end - 1])) end--
            s = s.slice(0, end)
            if (s.length === 0) throw fail("empty element")
          }
          elements.push(!quoted && s.length === 4 && s.toUpperCase() === "NULL" ? null : element.parse(s))
        }
        count++
        skipSpace()
        if (text[i] === ",") {
          i++
          continue
        }
        if (text[i] === "}") {
          i++
          break
        }
        throw fail("expected , or }")
      }
    }
    if (dims[d] === undefined) dims[d] = count
    else if (dims[d] !== count) fail("sub-arrays of different sizes")
  }
  level(0)
  skipSpace()
  if (i !== n) return fail("trailing characters")
  if (elements.length === 0) return []
  if (declared !== undefined && (declared.length !== dims.length || declared.some((v, d) => v !== dims[d])))
    return fail("dimensions do not match the contents")
  if (bounds?.some((lb) => lb !== 1)) return new PgArray(elements, dims, bounds)
  return nest(elements, dims)
}

// --- binary

const binaryDecode = (element: Codec, oid: number, b: Uint8Array, s: number, e: number): unknown => {
  const decodeElement = element.binaryDecode!
  if (e - s < 12) return decodeFail(oid, "array shorter than its header")
  const ndim = readI32(b, s)
  const elemOid = readI32(b, s + 8) >>> 0
  if (ndim < 0 || ndim > MAX_DIMS) decodeFail(oid, `invalid number of dimensions ${ndim}`)
  if (elemOid !== element.oid) decodeFail(oid, `element type ${elemOid}, expected ${element.oid}`)
  if (ndim === 0) return []
  let p = s + 12
  if (e - p < 8 * ndim) decodeFail(oid, "truncated dimensions")
  const dims: number[] = []
  const bounds: number[] = []
  let count = 1
  let defaultBounds = true
  for (let d = 0; d < ndim; d++) {
    const len = readI32(b, p)
    const lb = readI32(b, p + 4)
    if (len < 0) decodeFail(oid, `negative dimension ${len}`)
    dims.push(len)
    bounds.push(lb)
    if (lb !== 1) defaultBounds = false
    count *= len
    p += 8
  }
  const elements = new Array<unknown>(count)
  for (let k = 0; k < count; k++) {
    if (e - p < 4) decodeFail(oid, "truncated element")
    const len = readI32(b, p)
    p += 4
    if (len === -1) elements[k] = null
    else {
      if (len < 0 || e - p < len) decodeFail(oid, "truncated element")
      elements[k] = decodeElement(b, p, p + len)
      p += len
    }
  }
  if (p !== e) decodeFail(oid, "trailing bytes after the last element")
  if (count === 0) return []
  return defaultBounds ? nest(elements, dims) : new PgArray(elements, dims, bounds)
}

const binaryEncode = (element: Codec, oid: number, value: unknown, out: ByteWriter): void => {
  const encodeElement = element.binaryEncode!
  const a = flatten(oid, value, isJson(element.oid))
  out.i32(a.dims.length)
  out.i32(a.elements.includes(null) ? 1 : 0)
  out.i32(element.oid | 0)
  for (let d = 0; d < a.dims.length; d++) {
    out.i32(a.dims[d])
    out.i32(a.lowerBounds[d])
  }
  for (const v of a.elements) {
    if (v === null) out.i32(-1)
    else {
      const at = out.beginLength()
      encodeElement(v, out)
      out.endLength(at)
    }
  }
}

/** The codec of arrays of `element` (OID `element.arrayOid` unless `oid` is given). */
export const arrayCodec = (
  element: Codec,
  options?: { readonly oid?: number; readonly name?: string }
): Codec => {
  const oid = options?.oid ?? element.arrayOid
  const parse = (t: string) => parseText(element, oid, t)
  const codec: { -readonly [K in keyof Codec]: Codec[K] } = {
    name: options?.name ?? `_${element.name}`,
    oid,
    arrayOid: 0,
    parse,
    textDecode: (b, s, e) => parse(utf8(b, s, e)),
    textEncode: (v) => textEncode(element, oid, v)
  }
  if (element.binaryDecode !== undefined)
    codec.binaryDecode = (b, s, e) => binaryDecode(element, oid, b, s, e)
  if (element.binaryEncode !== undefined) codec.binaryEncode = (v, out) => binaryEncode(element, oid, v, out)
  return markContainer(codec)
}
