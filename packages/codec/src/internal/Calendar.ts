/**
 * Calendar arithmetic shared by the date/time codecs: proleptic Gregorian day numbers (as
 * PostgreSQL uses for all dates, also before 1582), PostgreSQL's 2000-01-01 epoch, and the text
 * pieces of the ISO DateStyle. Years are astronomical here (1 BC is year 0); only the text layer
 * speaks of " BC".
 */

/** Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for date and timestamp. */
export const PG_EPOCH_DAYS = 10957
export const PG_EPOCH_MS = PG_EPOCH_DAYS * 86_400_000
export const PG_EPOCH_MICROS = BigInt(PG_EPOCH_MS) * 1000n
export const MICROS_PER_DAY = 86_400_000_000

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
export const daysFromCivil = (year: number, month: number, day: number): number => {
  // Count from March so the leap day is the last day of the counted year.
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const monthFromMarch = (month + 9) % 12
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  // 719468 days from 0000-03-01 to 1970-01-01.
  return era * 146097 + dayOfEra - 719468
}

/** The inverse of daysFromCivil: [year, month, day]. */
export const civilFromDays = (days: number): [number, number, number] => {
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const dayOfEra = z - era * 146097
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) /
      365
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day]
}

export const pad2 = (n: number): string => (n < 10 ? "0" : "") + n

const pad4 = (n: number): string => (n < 10 ? "000" : n < 100 ? "00" : n < 1000 ? "0" : "") + n

/** `YYYY-MM-DD` of Unix day `days`, and whether it is BC, as the ISO DateStyle prints it. */
export const formatDay = (days: number): { readonly text: string; readonly bc: boolean } => {
  const [y, m, d] = civilFromDays(days)
  const bc = y <= 0
  return { text: `${pad4(bc ? 1 - y : y)}-${pad2(m)}-${pad2(d)}`, bc }
}

/** `HH:MM:SS[.ffffff]` with trailing fraction zeros trimmed, as the server prints times. */
export const formatTimeOfDay = (micros: number): string => {
  const secs = Math.floor(micros / 1e6)
  const frac = micros - secs * 1e6
  const h = Math.floor(secs / 3600)
  const m = Math.floor((secs % 3600) / 60)
  const s = secs % 60
  return `${pad2(h)}:${pad2(m)}:${pad2(s)}${formatFraction(frac)}`
}

export const formatFraction = (micros: number): string => {
  if (micros === 0) return ""
  let f = String(micros).padStart(6, "0")
  let end = 6
  while (f.charCodeAt(end - 1) === 48) end--
  f = f.slice(0, end)
  return "." + f
}

/** `+HH[:MM[:SS]]` for an offset east of UTC in seconds, as EncodeTimezone prints it. */
export const formatOffset = (eastSeconds: number): string => {
  const sign = eastSeconds < 0 ? "-" : "+"
  const a = Math.abs(eastSeconds)
  const h = Math.floor(a / 3600)
  const m = Math.floor((a % 3600) / 60)
  const s = a % 60
  return sign + pad2(h) + (m !== 0 || s !== 0 ? ":" + pad2(m) : "") + (s !== 0 ? ":" + pad2(s) : "")
}

/** Fraction digits (1..9 of them; beyond 6 are rounded as the server would have) to microseconds. */
export const fractionMicros = (digits: string | undefined): number => {
  if (digits === undefined || digits.length === 0) return 0
  if (digits.length <= 6) return Number(digits.padEnd(6, "0"))
  return Math.round(Number(digits.slice(0, 6) + "." + digits.slice(6)))
}
