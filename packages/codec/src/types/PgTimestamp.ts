/**
 * PgTimestamp: a lossless timestamp value, what `timestamp` and `timestamptz` decode to when a
 * TypeRegistry is created with `{ timestamps: "exact" }`. It holds exactly what the server stores:
 * microseconds since 2000-01-01 00:00:00 (UTC for timestamptz, the wall clock for timestamp) as a
 * bigint, with PostgreSQL's own sentinels for ±infinity (int64 max / min). A JS Date cannot be
 * that: it has milliseconds only and ends at year 275760, while PostgreSQL goes to 294276 AD with
 * microseconds. It does no time-zone or calendar arithmetic beyond conversions.
 */
import { civilFromDays, formatFraction, PG_EPOCH_MICROS, pad2 } from "../internal/Calendar.ts"

const INT64_MAX = 2n ** 63n - 1n
const INT64_MIN = -(2n ** 63n)

/**
 * An exact timestamp: microseconds since 2000-01-01 as a bigint, with ±infinity; what timestamps
 * decode to with `new TypeRegistry({ timestamps: "exact" })`.
 *
 * @example
 * ```ts
 * const t = PgTimestamp.fromDate(new Date("2024-01-01T00:00:00Z"))
 * ```
 */
export class PgTimestamp {
  /** Microseconds since 2000-01-01 00:00:00; int64 max is `infinity`, int64 min `-infinity`. */
  readonly micros: bigint

  constructor(micros: bigint) {
    this.micros = micros
  }

  static readonly infinity = new PgTimestamp(INT64_MAX)
  static readonly negativeInfinity = new PgTimestamp(INT64_MIN)

  static fromDate(date: Date): PgTimestamp {
    const ms = date.getTime()
    if (Number.isNaN(ms)) throw new RangeError("invalid Date")
    return new PgTimestamp(BigInt(ms) * 1000n - PG_EPOCH_MICROS)
  }

  static fromUnixMicros(micros: bigint): PgTimestamp {
    return new PgTimestamp(micros - PG_EPOCH_MICROS)
  }

  get isFinite(): boolean {
    return this.micros !== INT64_MAX && this.micros !== INT64_MIN
  }

  /** Microseconds since 1970-01-01 00:00:00 (meaningless for the infinities). */
  toUnixMicros(): bigint {
    return this.micros + PG_EPOCH_MICROS
  }

  /** The Date, truncated to the millisecond (floor); RangeError for ±infinity or beyond Date's range. */
  toDate(): Date {
    if (!this.isFinite) throw new RangeError(`${this.toISOString()} has no Date`)
    const us = this.toUnixMicros()
    let ms = us / 1000n
    if (us < 0n && ms * 1000n !== us) ms -= 1n
    const d = new Date(Number(ms))
    if (Number.isNaN(d.getTime())) throw new RangeError(`${this.toISOString()} is outside the range of Date`)
    return d
  }

  /** ISO 8601 with microseconds (`2024-01-02T03:04:05.123456Z`, years beyond 0..9999 as ±YYYYYY), or `infinity` / `-infinity`. */
  toISOString(): string {
    if (this.micros === INT64_MAX) return "infinity"
    if (this.micros === INT64_MIN) return "-infinity"
    const us = this.toUnixMicros()
    const day = 86_400_000_000n
    let days = us / day
    let rest = us - days * day
    if (rest < 0n) {
      rest += day
      days -= 1n
    }
    const [y, m, d] = civilFromDays(Number(days))
    const year =
      y >= 0 && y <= 9999
        ? String(y).padStart(4, "0")
        : (y < 0 ? "-" : "+") + String(Math.abs(y)).padStart(6, "0")
    const r = Number(rest)
    const secs = Math.floor(r / 1e6)
    const time = `${pad2(Math.floor(secs / 3600))}:${pad2(Math.floor((secs % 3600) / 60))}:${pad2(secs % 60)}`
    return `${year}-${pad2(m)}-${pad2(d)}T${time}${formatFraction(r - secs * 1e6)}Z`
  }

  toString(): string {
    return this.toISOString()
  }

  toJSON(): string {
    return this.toISOString()
  }

  equals(that: PgTimestamp): boolean {
    return this.micros === that.micros
  }
}
