/**
 * PgInterval: an `interval` value as PostgreSQL stores it, three independent fields: months, days
 * and microseconds. They are not normalised into each other ('1 mon' is not '30 days', '1 day' is
 * not '24 hours' across a DST change), which is why this is not a number of milliseconds.
 * microseconds is a bigint: 2^53 µs is only ~285 years of hours, an int64 holds ~292,000 years.
 * PostgreSQL 17+ has infinite intervals; they are the int32/int64 max (min) in all three fields.
 */

const INT32_MAX = 2147483647
const INT32_MIN = -2147483648

/**
 * An `interval` as PostgreSQL stores it: months, days and microseconds, not normalised into each
 * other.
 *
 * @example
 * ```ts
 * const week = new PgInterval(0, 7, 0n)
 * yield* pg.sql`select now() + ${week}`
 * ```
 */
export class PgInterval {
  readonly months: number
  readonly days: number
  readonly microseconds: bigint

  constructor(months: number, days: number, microseconds: bigint) {
    this.months = months
    this.days = days
    this.microseconds = microseconds
  }

  static readonly infinity = new PgInterval(INT32_MAX, INT32_MAX, 2n ** 63n - 1n)
  static readonly negativeInfinity = new PgInterval(INT32_MIN, INT32_MIN, -(2n ** 63n))

  get isFinite(): boolean {
    return !this.equals(PgInterval.infinity) && !this.equals(PgInterval.negativeInfinity)
  }

  equals(that: PgInterval): boolean {
    return this.months === that.months && this.days === that.days && this.microseconds === that.microseconds
  }

  toJSON(): { months: number; days: number; microseconds: string } {
    return { months: this.months, days: this.days, microseconds: String(this.microseconds) }
  }
}
