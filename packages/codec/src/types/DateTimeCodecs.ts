/**
 * DateTimeCodecs: date, time, timetz, timestamp, timestamptz and interval, text and binary.
 *
 * Representations (the choice a TypeRegistry makes with its `timestamps` option):
 * - timestamp, timestamptz, `timestamps: "date"` (default): a JS Date, as pg, postgres.js and
 *   @effect/sql-pg give. Microseconds are truncated (floor) to milliseconds; `infinity` and
 *   `-infinity` decode to the numbers Infinity / -Infinity (which compare correctly against Dates:
 *   `Infinity > date` is true); a finite value beyond Date's range (after 275760 AD) is a
 *   DecodeError that names the "exact" option. timestamp (no time zone) is read as UTC wall clock,
 *   so the result never depends on the client process's TZ.
 * - `timestamps: "exact"`: a PgTimestamp (bigint microseconds, lossless, full range, ±infinity).
 * - date → `"YYYY-MM-DD"` string, `" BC"` suffixed before year 1, `"infinity"` / `"-infinity"`:
 *   exactly the ISO DateStyle text. A calendar date has no time zone; decoding it to a Date at
 *   local or UTC midnight is the source of the classic off-by-one-day bug, and Date cannot reach
 *   5874897 AD. time → `"HH:MM:SS[.ffffff]"`, timetz → the same plus `+HH[:MM[:SS]]`, both as the
 *   server prints them (JS has no time-of-day type).
 * - interval → PgInterval { months, days, microseconds: bigint }.
 * Encoders accept those representations, and timestamps also Date, PgTimestamp, ±Infinity and
 * ISO strings; dates also a Date (its UTC calendar day).
 *
 * Text decoders expect DateStyle ISO and IntervalStyle postgres (the server defaults; the
 * transport pins DateStyle at startup); intervals in the verbose and iso_8601 styles parse too.
 * Binary layouts (src/backend/utils/adt/{date,timestamp}.c): date int32 days since 2000-01-01;
 * timestamp(tz) int64 µs since 2000-01-01 00:00:00 (UTC); time int64 µs since midnight; timetz
 * that plus int32 zone in seconds WEST of UTC; interval int64 µs, int32 days, int32 months.
 */
import {
  civilFromDays,
  daysFromCivil,
  formatDay,
  formatFraction,
  formatOffset,
  formatTimeOfDay,
  fractionMicros,
  MICROS_PER_DAY,
  PG_EPOCH_DAYS,
  PG_EPOCH_MICROS,
  PG_EPOCH_MS,
  pad2
} from "../internal/Calendar.ts"
import type { ByteWriter } from "./ByteWriter.ts"
import {
  type Codec,
  decodeFail,
  describeValue,
  encodeFail,
  expectLength,
  makeCodec,
  readI32,
  readI64,
  readU32
} from "./Codec.ts"
import { ArrayOid, Oid } from "./Oid.ts"
import { PgInterval } from "./PgInterval.ts"
import { PgTimestamp } from "./PgTimestamp.ts"

const INT32_MAX = 2147483647
const INT32_MIN = -2147483648
const INT64_MAX = 2n ** 63n - 1n
const INT64_MIN = -(2n ** 63n)
// ±8.64e15 ms is the whole range of a JS Date (ECMA-262 §21.4.1.1).
const MAX_DATE_MS = 8.64e15

// --- date

const DATE_TEXT = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/

const civilToDays = (
  oid: number,
  y: string,
  m: string,
  d: string,
  bc: boolean,
  fail: typeof decodeFail
): number => {
  const year = bc ? 1 - Number(y) : Number(y)
  const month = Number(m)
  const day = Number(d)
  const days = daysFromCivil(year, month, day)
  const [cy, cm, cd] = civilFromDays(days)
  if (month < 1 || month > 12 || cy !== year || cm !== month || cd !== day || (bc && Number(y) === 0))
    fail(oid, `invalid date ${y}-${m}-${d}${bc ? " BC" : ""}`)
  return days
}

const formatPgDays = (pgDays: number): string => {
  if (pgDays === INT32_MAX) return "infinity"
  if (pgDays === INT32_MIN) return "-infinity"
  const { text, bc } = formatDay(pgDays + PG_EPOCH_DAYS)
  return bc ? text + " BC" : text
}

/** Days since 2000-01-01 (the int32 sentinels for ±infinity) from an encoder input. */
const toPgDays = (value: unknown): number => {
  let days: number | undefined
  if (typeof value === "string") {
    const t = value.trim()
    if (t === "infinity" || t === "+infinity") return INT32_MAX
    if (t === "-infinity") return INT32_MIN
    const m = DATE_TEXT.exec(t)
    if (m !== null)
      days = civilToDays(Oid.date, m[1], m[2], m[3], m[4] !== undefined, encodeFail) - PG_EPOCH_DAYS
  } else if (value instanceof Date) {
    const ms = value.getTime()
    if (!Number.isNaN(ms)) days = Math.floor(ms / 86_400_000) - PG_EPOCH_DAYS
  } else if (value === Infinity) return INT32_MAX
  else if (value === -Infinity) return INT32_MIN
  if (days === undefined)
    return encodeFail(Oid.date, `expected a "YYYY-MM-DD" string or a Date, got ${describeValue(value)}`)
  if (days >= INT32_MAX || days <= INT32_MIN) encodeFail(Oid.date, `date out of range`)
  return days
}

const date: Codec<string> = makeCodec({
  name: "date",
  oid: Oid.date,
  arrayOid: ArrayOid.date,
  parse: (t) => t,
  binaryDecode: (b, s, e) => {
    expectLength(Oid.date, s, e, 4)
    return formatPgDays(readI32(b, s))
  },
  textEncode: (v) => formatPgDays(toPgDays(v)),
  binaryEncode: (v, out) => out.i32(toPgDays(v))
})

// --- timestamp, timestamptz

const TIMESTAMP_TEXT =
  /^(\d{4,})-(\d{2})-(\d{2})[ Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?( BC)?$/

interface Parts {
  /** Days since 1970-01-01. */
  readonly days: number
  readonly micros: number
  /** Zone offset in seconds east of UTC (0 when absent). */
  readonly offset: number
  /** Whether the text gave a zone (Z or an offset). */
  readonly zoned: boolean
}

const parseTimestamp = (oid: number, t: string, fail: typeof decodeFail): Parts => {
  const m = TIMESTAMP_TEXT.exec(t)
  if (m === null) return fail(oid, `invalid timestamp ${JSON.stringify(t)}`)
  const days = civilToDays(oid, m[1], m[2], m[3], m[13] !== undefined, fail)
  const micros = ((Number(m[4]) * 60 + Number(m[5])) * 60 + Number(m[6] ?? 0)) * 1e6 + fractionMicros(m[7])
  let offset = 0
  if (m[9] !== undefined) {
    offset = Number(m[10]) * 3600 + Number(m[11] ?? 0) * 60 + Number(m[12] ?? 0)
    if (m[9] === "-") offset = -offset
  }
  return { days, micros, offset, zoned: m[8] !== undefined || m[9] !== undefined }
}

/**
 * PostgreSQL-epoch microseconds of a timestamp string given as a parameter value encoded here
 * (an element of an array or range whose other values made it binary: a lone string goes as text,
 * read by the server). Read as the server reads the text: a timestamp ignores a zone; a
 * timestamptz without one is in the session's time zone, which this encoding cannot know, so it
 * is refused rather than read as UTC.
 */
const stringToMicros = (oid: number, t: string): bigint => {
  const lower = t.toLowerCase()
  if (lower === "infinity" || lower === "+infinity" || lower === "-infinity")
    return textToMicros(oid, lower, encodeFail)
  const p = parseTimestamp(oid, t, encodeFail)
  if (oid === Oid.timestamptz && !p.zoned)
    encodeFail(
      oid,
      `${JSON.stringify(t)} has no UTC offset: next to a Date it would be read as UTC, not in the session's time zone as a string alone is; add the offset (Z, +02:00) or pass a Date`
    )
  const offset = oid === Oid.timestamptz ? p.offset : 0
  return BigInt(p.days - PG_EPOCH_DAYS) * BigInt(MICROS_PER_DAY) + BigInt(p.micros - offset * 1e6)
}

/** PostgreSQL-epoch microseconds of a timestamp text (sentinels for the infinities). */
const textToMicros = (oid: number, t: string, fail: typeof decodeFail): bigint => {
  if (t === "infinity" || t === "+infinity") return INT64_MAX
  if (t === "-infinity") return INT64_MIN
  const p = parseTimestamp(oid, t, fail)
  return BigInt(p.days - PG_EPOCH_DAYS) * BigInt(MICROS_PER_DAY) + BigInt(p.micros - p.offset * 1e6)
}

/** What a timestamp encoder accepts besides a PgTimestamp: a Date, or milliseconds since 1970. */
export type Timestamp = Date | number

const textToDate = (oid: number, t: string): Timestamp => {
  if (t === "infinity") return Infinity
  if (t === "-infinity") return -Infinity
  const p = parseTimestamp(oid, t, decodeFail)
  const ms = p.days * 86_400_000 + Math.floor(p.micros / 1000) - p.offset * 1000
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) outOfDateRange(oid, t)
  return new Date(ms)
}

const outOfDateRange = (oid: number, what: string): never =>
  decodeFail(
    oid,
    `${what} is outside the range of a JS Date; use a TypeRegistry with { timestamps: "exact" }`
  )

const binaryToDate = (oid: number, b: Uint8Array, s: number, e: number): Timestamp => {
  expectLength(oid, s, e, 8)
  const hi = readI32(b, s)
  const lo = readU32(b, s + 4)
  if (hi === INT32_MAX && lo === 0xffffffff) return Infinity
  if (hi === INT32_MIN && lo === 0) return -Infinity
  // floor(µs / 1000) without BigInt: hi * 2^32 = hi * 4294967 * 1000 + hi * 296, and both
  // hi * 4294967 and hi * 296 + lo stay below 2^53, so every step is exact.
  const ms = hi * 4294967 + Math.floor((hi * 296 + lo) / 1000) + PG_EPOCH_MS
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) outOfDateRange(oid, String(readI64(b, s)) + " µs")
  return new Date(ms)
}

const toMicros = (oid: number, value: unknown): bigint => {
  let us: bigint | undefined
  if (value instanceof Date) {
    const ms = value.getTime()
    if (!Number.isNaN(ms)) us = BigInt(ms) * 1000n - PG_EPOCH_MICROS
  } else if (value instanceof PgTimestamp) us = value.micros
  else if (value === Infinity) us = INT64_MAX
  else if (value === -Infinity) us = INT64_MIN
  else if (typeof value === "string") us = stringToMicros(oid, value.trim())
  if (us === undefined)
    return encodeFail(oid, `expected a Date, PgTimestamp or ISO string, got ${describeValue(value)}`)
  if (us > INT64_MAX || us < INT64_MIN) encodeFail(oid, "timestamp out of range")
  return us
}

/** The ISO DateStyle text of PostgreSQL-epoch microseconds (zone +00 when `tz`). */
const formatMicros = (us: bigint, tz: boolean): string => {
  if (us === INT64_MAX) return "infinity"
  if (us === INT64_MIN) return "-infinity"
  const perDay = BigInt(MICROS_PER_DAY)
  let days = us / perDay
  let rest = us - days * perDay
  if (rest < 0n) {
    rest += perDay
    days -= 1n
  }
  const { text, bc } = formatDay(Number(days) + PG_EPOCH_DAYS)
  return `${text} ${formatTimeOfDay(Number(rest))}${tz ? "+00" : ""}${bc ? " BC" : ""}`
}

const timestampCodec = <A>(
  name: string,
  oid: number,
  arrayOid: number,
  tz: boolean,
  parse: (t: string) => A,
  binaryDecode: (b: Uint8Array, s: number, e: number) => A
): Codec<A> =>
  makeCodec({
    name,
    oid,
    arrayOid,
    parse,
    binaryDecode,
    textEncode: (v) => formatMicros(toMicros(oid, v), tz),
    binaryEncode: (v: unknown, out: ByteWriter) => out.i64(toMicros(oid, v))
  })

const exactText = (oid: number) => (t: string) => new PgTimestamp(textToMicros(oid, t, decodeFail))
const exactBinary = (oid: number) => (b: Uint8Array, s: number, e: number) => {
  expectLength(oid, s, e, 8)
  return new PgTimestamp(readI64(b, s))
}

const timestamp = timestampCodec<Timestamp>(
  "timestamp",
  Oid.timestamp,
  ArrayOid.timestamp,
  false,
  (t) => textToDate(Oid.timestamp, t),
  (b, s, e) => binaryToDate(Oid.timestamp, b, s, e)
)
const timestamptz = timestampCodec<Timestamp>(
  "timestamptz",
  Oid.timestamptz,
  ArrayOid.timestamptz,
  true,
  (t) => textToDate(Oid.timestamptz, t),
  (b, s, e) => binaryToDate(Oid.timestamptz, b, s, e)
)
const timestampExact = timestampCodec(
  "timestamp",
  Oid.timestamp,
  ArrayOid.timestamp,
  false,
  exactText(Oid.timestamp),
  exactBinary(Oid.timestamp)
)
const timestamptzExact = timestampCodec(
  "timestamptz",
  Oid.timestamptz,
  ArrayOid.timestamptz,
  true,
  exactText(Oid.timestamptz),
  exactBinary(Oid.timestamptz)
)

// --- time, timetz

const TIME_TEXT = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/
const TIMETZ_TEXT =
  /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$/

const clockMicros = (
  oid: number,
  h: string,
  m: string,
  s: string | undefined,
  f: string | undefined
): number => {
  const us = ((Number(h) * 60 + Number(m)) * 60 + Number(s ?? 0)) * 1e6 + fractionMicros(f)
  // 24:00:00 is a valid time (end of day); anything later is not.
  if (Number(m) > 59 || Number(s ?? 0) > 59 || us > MICROS_PER_DAY) encodeFail(oid, "time out of range")
  return us
}

const timeMicros = (value: unknown): number => {
  if (typeof value === "string") {
    const m = TIME_TEXT.exec(value.trim())
    if (m !== null) return clockMicros(Oid.time, m[1], m[2], m[3], m[4])
  }
  return encodeFail(Oid.time, `expected an "HH:MM:SS[.ffffff]" string, got ${describeValue(value)}`)
}

const time: Codec<string> = makeCodec({
  name: "time",
  oid: Oid.time,
  arrayOid: ArrayOid.time,
  parse: (t) => t,
  binaryDecode: (b, s, e) => {
    expectLength(Oid.time, s, e, 8)
    const us = readI32(b, s) * 4294967296 + readU32(b, s + 4)
    if (us < 0 || us > MICROS_PER_DAY) decodeFail(Oid.time, `time out of range: ${us}`)
    return formatTimeOfDay(us)
  },
  textEncode: (v) => formatTimeOfDay(timeMicros(v)),
  binaryEncode: (v, out) => out.i64(BigInt(timeMicros(v)))
})

const timetzParts = (value: unknown): { micros: number; east: number } => {
  if (typeof value === "string") {
    const m = TIMETZ_TEXT.exec(value.trim())
    if (m !== null) {
      const micros = clockMicros(Oid.timetz, m[1], m[2], m[3], m[4])
      let east = Number(m[6]) * 3600 + Number(m[7] ?? 0) * 60 + Number(m[8] ?? 0)
      // TZDISP_LIMIT: offsets are limited to ±15:59:59.
      if (east >= 16 * 3600) encodeFail(Oid.timetz, "time zone offset out of range")
      if (m[5] === "-") east = -east
      return { micros, east }
    }
  }
  return encodeFail(Oid.timetz, `expected an "HH:MM:SS[.ffffff]+HH[:MM]" string, got ${describeValue(value)}`)
}

const timetz: Codec<string> = makeCodec({
  name: "timetz",
  oid: Oid.timetz,
  arrayOid: ArrayOid.timetz,
  parse: (t) => t,
  binaryDecode: (b, s, e) => {
    expectLength(Oid.timetz, s, e, 12)
    const us = readI32(b, s) * 4294967296 + readU32(b, s + 4)
    if (us < 0 || us > MICROS_PER_DAY) decodeFail(Oid.timetz, `time out of range: ${us}`)
    return formatTimeOfDay(us) + formatOffset(-readI32(b, s + 8))
  },
  textEncode: (v) => {
    const p = timetzParts(v)
    return formatTimeOfDay(p.micros) + formatOffset(p.east)
  },
  binaryEncode: (v, out) => {
    const p = timetzParts(v)
    out.i64(BigInt(p.micros))
    out.i32(-p.east)
  }
})

// --- interval

const CLOCK = /^([+-])?(\d+):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/
const ISO_INTERVAL =
  /^P(?:([+-]?\d+)Y)?(?:([+-]?\d+)M)?(?:([+-]?\d+)W)?(?:([+-]?\d+)D)?(?:T(?:([+-]?\d+)H)?(?:([+-]?\d+)M)?(?:([+-]?\d+(?:\.\d+)?)S)?)?$/

/** Signed decimal seconds ("-6.789") to microseconds, exactly. */
const secondsMicros = (t: string): bigint => {
  const neg = t[0] === "-"
  const body = t[0] === "-" || t[0] === "+" ? t.slice(1) : t
  const [whole, frac = ""] = body.split(".")
  const us = BigInt(whole) * 1_000_000n + BigInt(fractionMicros(frac))
  return neg ? -us : us
}

const UNIT_MONTHS: Record<string, number> = {
  year: 12,
  years: 12,
  mon: 1,
  mons: 1,
  month: 1,
  months: 1
}
const UNIT_MICROS: Record<string, bigint> = {
  hour: 3_600_000_000n,
  hours: 3_600_000_000n,
  min: 60_000_000n,
  mins: 60_000_000n,
  minute: 60_000_000n,
  minutes: 60_000_000n
}

const parseInterval = (oid: number, text: string, fail: typeof decodeFail): PgInterval => {
  const t = text.trim()
  if (t === "infinity" || t === "+infinity") return PgInterval.infinity
  if (t === "-infinity") return PgInterval.negativeInfinity
  const bad = (): never => fail(oid, `invalid interval ${JSON.stringify(text)}`)
  let months = 0
  let days = 0
  let micros = 0n
  if (t[0] === "P") {
    const m = ISO_INTERVAL.exec(t)
    if (m === null || t === "P" || t.endsWith("T")) return bad()
    months = Number(m[1] ?? 0) * 12 + Number(m[2] ?? 0)
    days = Number(m[3] ?? 0) * 7 + Number(m[4] ?? 0)
    micros = BigInt(m[5] ?? 0) * 3_600_000_000n + BigInt(m[6] ?? 0) * 60_000_000n + secondsMicros(m[7] ?? "0")
    return new PgInterval(months, days, micros)
  }
  const tokens = t.split(/\s+/)
  let ago = false
  for (let i = tokens[0] === "@" ? 1 : 0; i < tokens.length; i++) {
    const tok = tokens[i]
    if (tok === "ago") {
      ago = true
      continue
    }
    const clock = CLOCK.exec(tok)
    if (clock !== null) {
      const us =
        (BigInt(clock[2]) * 3600n + BigInt(clock[3]) * 60n + BigInt(clock[4] ?? 0)) * 1_000_000n +
        BigInt(fractionMicros(clock[5]))
      micros += clock[1] === "-" ? -us : us
      continue
    }
    const unit = tokens[++i]
    if (unit === undefined) return bad()
    if (unit === "sec" || unit === "secs" || unit === "second" || unit === "seconds") {
      if (!/^[+-]?\d+(?:\.\d+)?$/.test(tok)) return bad()
      micros += secondsMicros(tok)
      continue
    }
    if (!/^[+-]?\d+$/.test(tok)) return bad()
    if (unit === "day" || unit === "days") days += Number(tok)
    else if (UNIT_MONTHS[unit] !== undefined) months += Number(tok) * UNIT_MONTHS[unit]
    else if (UNIT_MICROS[unit] !== undefined) micros += BigInt(tok) * UNIT_MICROS[unit]
    else return bad()
  }
  return ago ? new PgInterval(-months, -days, -micros) : new PgInterval(months, days, micros)
}

const toInterval = (value: unknown): PgInterval => {
  if (value instanceof PgInterval) return value
  if (typeof value === "string") return parseInterval(Oid.interval, value, encodeFail)
  if (typeof value === "object" && value !== null) {
    const v = value as { months?: unknown; days?: unknown; microseconds?: unknown }
    const us = v.microseconds
    if (
      Number.isInteger(v.months) &&
      Number.isInteger(v.days) &&
      (typeof us === "bigint" || Number.isInteger(us))
    )
      return new PgInterval(v.months as number, v.days as number, BigInt(us as number | bigint))
  }
  return encodeFail(
    Oid.interval,
    `expected a PgInterval or { months, days, microseconds }, got ${describeValue(value)}`
  )
}

const checkInterval = (v: PgInterval): PgInterval => {
  if (!Number.isInteger(v.months) || !Number.isInteger(v.days))
    encodeFail(Oid.interval, `interval months and days must be integers, got ${v.months} and ${v.days}`)
  if (v.months > INT32_MAX || v.months < INT32_MIN || v.days > INT32_MAX || v.days < INT32_MIN)
    encodeFail(Oid.interval, "interval field out of range")
  if (v.microseconds > INT64_MAX || v.microseconds < INT64_MIN)
    encodeFail(Oid.interval, "interval out of range")
  return v
}

/** `M mons D days ±H:MM:SS[.ffffff]`: the postgres style, which interval_in reads back exactly. */
const formatInterval = (v: PgInterval): string => {
  if (v.equals(PgInterval.infinity)) return "infinity"
  if (v.equals(PgInterval.negativeInfinity)) return "-infinity"
  const neg = v.microseconds < 0n
  const a = neg ? -v.microseconds : v.microseconds
  const secs = a / 1_000_000n
  const h = secs / 3600n
  const m = Number((secs / 60n) % 60n)
  const s = Number(secs % 60n)
  const clock = `${neg ? "-" : ""}${h < 10n ? "0" : ""}${h}:${pad2(m)}:${pad2(s)}${formatFraction(Number(a % 1_000_000n))}`
  return `${v.months} mons ${v.days} days ${clock}`
}

const interval: Codec<PgInterval> = makeCodec({
  name: "interval",
  oid: Oid.interval,
  arrayOid: ArrayOid.interval,
  parse: (t) => parseInterval(Oid.interval, t, decodeFail),
  binaryDecode: (b, s, e) => {
    expectLength(Oid.interval, s, e, 16)
    return new PgInterval(readI32(b, s + 12), readI32(b, s + 8), readI64(b, s))
  },
  textEncode: (v) => formatInterval(checkInterval(toInterval(v))),
  binaryEncode: (v, out) => {
    const i = checkInterval(toInterval(v))
    out.i64(i.microseconds)
    out.i32(i.days)
    out.i32(i.months)
  }
})

/**
 * The codecs of date, time, timetz, timestamp, timestamptz and interval (see the module comment for
 * the mappings); malformed values throw `DecodeError`, out-of-range ones `TypeEncodeError`.
 */
export const DateTimeCodecs = {
  date,
  time,
  timetz,
  timestamp,
  timestamptz,
  timestampExact,
  timestamptzExact,
  interval
} as const
