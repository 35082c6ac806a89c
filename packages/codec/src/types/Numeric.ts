/**
 * Numeric: the `numeric` codec. Values are decimal strings, never floats: `"123.4500"` keeps the
 * display scale the server reports, `"NaN"`, `"Infinity"` and `"-Infinity"` are the special
 * values (PostgreSQL 14+ has numeric infinities). Encoders accept a decimal string (exponent
 * notation allowed, as numeric_in does), a bigint, or a number (via String(n), so 0.1 is sent as
 * "0.1", the shortest round-tripping form, not as its exact binary expansion).
 *
 * Binary layout (numeric_send in src/backend/utils/adt/numeric.c): int16 ndigits, int16 weight,
 * uint16 sign, int16 dscale, then ndigits base-10000 digits; digit k is worth 10000^(weight - k).
 * This module does no arithmetic: it regroups decimal digits, so any size the server accepts
 * (131072 digits before the point, 16383 after) round-trips exactly.
 */
import { type Codec, decodeFail, describeValue, encodeFail, makeCodec, readI16 } from "./Codec.ts"
import { ArrayOid, Oid } from "./Oid.ts"

const POS = 0x0000
const NEG = 0x4000
const NAN = 0xc000
const PINF = 0xd000
const NINF = 0xf000
// dscale is 14 bits in the on-disk header (NUMERIC_DSCALE_MASK), the weight a signed int16.
const MAX_DSCALE = 0x3fff

const pad4 = (n: number): string => (n < 10 ? "000" : n < 100 ? "00" : n < 1000 ? "0" : "") + n

const binaryDecode = (b: Uint8Array, s: number, e: number): string => {
  if (e - s < 8) return decodeFail(Oid.numeric, "numeric shorter than its 8-byte header")
  const ndigits = readI16(b, s)
  const weight = readI16(b, s + 2)
  const sign = (b[s + 4] << 8) | b[s + 5]
  const dscale = readI16(b, s + 6)
  if (ndigits < 0 || e - s !== 8 + 2 * ndigits)
    decodeFail(Oid.numeric, `length does not match ${ndigits} digits`)
  if (sign === NAN) return "NaN"
  if (sign === PINF) return "Infinity"
  if (sign === NINF) return "-Infinity"
  if (sign !== POS && sign !== NEG) decodeFail(Oid.numeric, `invalid sign 0x${sign.toString(16)}`)
  if (dscale < 0 || dscale > MAX_DSCALE) decodeFail(Oid.numeric, `invalid scale ${dscale}`)
  const digit = (k: number): number => {
    if (k < 0 || k >= ndigits) return 0
    const d = readI16(b, s + 8 + 2 * k)
    if (d < 0 || d > 9999) decodeFail(Oid.numeric, `invalid digit ${d}`)
    return d
  }
  let out = sign === NEG ? "-" : ""
  if (weight < 0) out += "0"
  else {
    out += String(digit(0))
    for (let k = 1; k <= weight; k++) out += pad4(digit(k))
  }
  if (dscale > 0) {
    // Digits beyond dscale are dropped, as numeric_recv does (trunc_var to the given dscale).
    let frac = ""
    for (let k = weight + 1; frac.length < dscale; k++) frac += pad4(digit(k))
    out += "." + frac.slice(0, dscale)
  }
  return out
}

const DECIMAL = /^\s*([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/

/** Normalises an encoder input to a decimal string numeric_in accepts, or throws TypeEncodeError. */
const toDecimal = (value: unknown): string => {
  if (typeof value === "string") {
    const t = value.trim()
    const m = DECIMAL.exec(t)
    if (m !== null && (m[2].length > 0 || (m[3] ?? "").length > 0)) return t
    const l = t.toLowerCase()
    if (l === "nan") return "NaN"
    if (l === "infinity" || l === "+infinity" || l === "inf" || l === "+inf") return "Infinity"
    if (l === "-infinity" || l === "-inf") return "-Infinity"
  } else if (typeof value === "number") {
    return Number.isNaN(value) ? "NaN" : String(value)
  } else if (typeof value === "bigint") {
    return String(value)
  }
  return encodeFail(Oid.numeric, `expected a decimal string, number or bigint, got ${describeValue(value)}`)
}

const binaryEncode = (value: unknown, out: import("./ByteWriter.ts").ByteWriter): void => {
  const t = toDecimal(value)
  const special = t === "NaN" ? NAN : t === "Infinity" ? PINF : t === "-Infinity" ? NINF : -1
  if (special >= 0) {
    out.i16(0)
    out.i16(0)
    out.i16((special << 16) >> 16)
    out.i16(0)
    return
  }
  const m = DECIMAL.exec(t)!
  const negative = m[1] === "-"
  const intPart = m[2]
  const fracPart = m[3] ?? ""
  const exp = m[4] === undefined ? 0 : Number(m[4])
  // Bounds well past what the server accepts, so absurd exponents fail here instead of
  // allocating megabytes of zeros.
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 1_000_000)
    encodeFail(Oid.numeric, `exponent out of range in ${t}`)
  const dscale = Math.max(0, fracPart.length - exp)
  if (dscale > MAX_DSCALE) encodeFail(Oid.numeric, `scale ${dscale} exceeds ${MAX_DSCALE}`)
  let digits = intPart + fracPart
  let point = intPart.length + exp // digits left of the decimal point
  // Strip leading zeros so the first digit is significant (the zero value keeps none at all).
  let lead = 0
  while (lead < digits.length && digits.charCodeAt(lead) === 48) lead++
  digits = digits.slice(lead)
  point -= lead
  let end = digits.length
  while (end > 0 && digits.charCodeAt(end - 1) === 48) end--
  digits = digits.slice(0, end)
  if (digits.length === 0) {
    out.i16(0)
    out.i16(0)
    out.i16(POS)
    out.i16(dscale)
    return
  }
  // Align on base-10000 groups around the decimal point.
  const leftPad = (((4 - (point % 4)) % 4) + 4) % 4
  const weight = (point + leftPad) / 4 - 1
  if (weight > 32767 || weight < -32768) encodeFail(Oid.numeric, `value out of numeric range`)
  digits = "0".repeat(leftPad) + digits
  digits += "0".repeat((4 - (digits.length % 4)) % 4)
  const ndigits = digits.length / 4
  out.i16(ndigits)
  out.i16(weight)
  out.i16(negative ? NEG : POS)
  out.i16(dscale)
  for (let k = 0; k < ndigits; k++) out.i16(Number(digits.slice(4 * k, 4 * k + 4)))
}

/** The numeric codec: an exact decimal string (`"12.50"`, `"NaN"`, `"Infinity"`), never a float. */
export const numeric: Codec<string> = makeCodec({
  name: "numeric",
  oid: Oid.numeric,
  arrayOid: ArrayOid.numeric,
  parse: (t) => t,
  // numeric_out formats the digits in C; decoding binary means regrouping base-10000 digits here
  // (measured: 100,000 values 9 ms as text, 26 ms from binary).
  textResults: true,
  binaryDecode,
  textEncode: toDecimal,
  binaryEncode
})

/** The numeric codec, for registries. */
export const Numeric = { codec: numeric } as const
