/**
 * TypeArbitraries: fast-check generators of values for every built-in type codec, shared by the
 * hermetic round-trip properties (types.property.test.ts) and the server agreement test
 * (types.integration.test.ts). Values are in the representation the decoders produce, and the
 * canonical form the server prints: types whose values are strings (date, time, inet, …) are
 * generated as raw wire values and formatted by pgline's binary decoder, so the integration test is
 * what checks that formatting against the server. Edge values are mixed in with fc.constantFrom.
 */
import fc from "fast-check"
import {
  ByteWriter,
  type Codec,
  Oid,
  PgArray,
  PgInterval,
  PgRange,
  PgTimestamp,
  TypeRegistry
} from "../../src/index.ts"

export interface TypeCase {
  /** SQL type name, used in casts. */
  readonly sql: string
  readonly oid: number
  readonly arb: fc.Arbitrary<unknown>
  /** Which registry decodes this case. */
  readonly exact?: boolean
}

export const registries = { date: new TypeRegistry(), exact: new TypeRegistry({ timestamps: "exact" }) }

const viaBinary = (oid: number, write: (w: ByteWriter) => void): unknown => {
  const w = new ByteWriter(32)
  write(w)
  const codec = registries.date.get(oid) as Codec
  return codec.binaryDecode!(w.bytes, 0, w.length)
}

// Code points PostgreSQL text cannot hold: NUL. Lone surrogates cannot be UTF-8 at all.
const pgString = (max = 40) =>
  fc.string({ unit: "binary", maxLength: max }).filter((s) => !s.includes("\u0000"))
const nasty = fc.constantFrom(
  "",
  "NULL",
  "null",
  'a"b',
  "a\\b",
  "a,b",
  "{x}",
  "(y)",
  "[z]",
  " lead",
  "tail ",
  "\t\n",
  "é😀"
)
const textValue = fc.oneof(pgString(), nasty)

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const numericValue = fc.oneof(
  fc
    .tuple(
      fc.boolean(),
      fc.bigInt({ min: 0n, max: 10n ** 40n }),
      fc.nat({ max: 30 }),
      fc.bigInt({ min: 0n, max: 10n ** 30n })
    )
    .map(([neg, int, scale, frac]) => {
      const f = scale === 0 ? "" : "." + (frac % 10n ** BigInt(scale)).toString().padStart(scale, "0")
      const zero = int === 0n && /^[.0]*$/.test(f)
      return (neg && !zero ? "-" : "") + int.toString() + f
    }),
  fc.constantFrom(
    "0",
    "NaN",
    "Infinity",
    "-Infinity",
    "0.0001",
    "-0.00000001",
    "1" + "0".repeat(1000),
    "9".repeat(500) + "." + "9".repeat(500)
  )
)

// 4714-11-24 BC (Julian day 0) .. 5874897-12-31, in days since 2000-01-01.
const MIN_DAY = -2451545
const MAX_DAY = 2147483493 - 2451545
const dateValue = fc
  .oneof(
    fc.integer({ min: MIN_DAY, max: MAX_DAY }),
    fc.integer({ min: -800000, max: 100000 }),
    fc.constantFrom(MIN_DAY, MAX_DAY, 0, -730120, 2147483647, -2147483648)
  )
  .map((d) => viaBinary(Oid.date, (w) => w.i32(d)))

const MIN_MICROS = BigInt(MIN_DAY) * 86400000000n
// END_TIMESTAMP - 1: 294276-12-31 23:59:59.999999.
const MAX_MICROS = 9223371331200000000n - 1n
const exactTimestamp = fc
  .oneof(
    fc.bigInt({ min: MIN_MICROS, max: MAX_MICROS }),
    fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }),
    fc.constantFrom(MIN_MICROS, MAX_MICROS, INT64_MIN, INT64_MAX, 0n, -1n, 1n)
  )
  .map((us) => new PgTimestamp(us))

// JS Date covers ±8.64e15 ms; PostgreSQL starts at 4714-11-24 BC, so the Date range is cut there.
const dateTimestamp = fc.oneof(
  fc.date({ min: new Date(Date.UTC(-4712, 0, 1)), max: new Date(8.64e15), noInvalidDate: true }),
  fc.constantFrom(Infinity, -Infinity, new Date(0), new Date(Date.UTC(-4712, 0, 1)), new Date(8.64e15))
)

const timeValue = fc
  .oneof(fc.integer({ min: 0, max: 86400000000 }), fc.constantFrom(0, 86400000000, 1, 86399999999))
  .map((us) => viaBinary(Oid.time, (w) => w.i64(BigInt(us))))
const timetzValue = fc
  .tuple(
    fc.integer({ min: 0, max: 86400000000 }),
    fc.oneof(fc.integer({ min: -57599, max: 57599 }), fc.constantFrom(0, 3600, -19800, 3208, 57599))
  )
  .map(([us, zone]) =>
    viaBinary(Oid.timetz, (w) => {
      w.i64(BigInt(us))
      w.i32(zone)
    })
  )

const intervalValue = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: -2147483647, max: 2147483646 }),
      fc.integer({ min: -2147483647, max: 2147483646 }),
      fc.bigInt({ min: INT64_MIN + 1n, max: INT64_MAX - 1n })
    )
    .map(([m, d, us]) => new PgInterval(m, d, us)),
  fc
    .tuple(
      fc.integer({ min: -1000, max: 1000 }),
      fc.integer({ min: -1000, max: 1000 }),
      fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n })
    )
    .map(([m, d, us]) => new PgInterval(m, d, us)),
  fc.constantFrom(
    PgInterval.infinity,
    PgInterval.negativeInfinity,
    new PgInterval(0, 0, 0n),
    new PgInterval(0, 0, -1n)
  )
)

const word = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }))
const inetValue = (cidr: boolean) =>
  fc
    .oneof(
      fc.tuple(
        fc.constant(4),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 32 })
      ),
      fc.tuple(
        fc.constant(6),
        fc.array(word, { minLength: 8, maxLength: 8 }).map((ws) => ws.flatMap((x) => [x >> 8, x & 0xff])),
        fc.integer({ min: 0, max: 128 })
      ),
      fc.constant<[number, number[], number]>([
        6,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4],
        128
      ]),
      fc.constant<[number, number[], number]>([6, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128])
    )
    .map(([v, bytes, bits]) => {
      const addr = bytes.map((b, i) =>
        cidr ? b & (0xff << (8 - Math.min(8, Math.max(0, bits - 8 * i)))) & 0xff : b
      )
      return viaBinary(cidr ? Oid.cidr : Oid.inet, (w) => {
        w.u8(v === 4 ? 2 : 3)
        w.u8(bits)
        w.u8(cidr ? 1 : 0)
        w.u8(addr.length)
        w.raw(Uint8Array.from(addr))
      })
    })

const jsonValue = fc
  .jsonValue()
  .map((v) => JSON.parse(JSON.stringify(v)))
  // jsonb refuses \u0000 in strings.
  .filter((v) => !JSON.stringify(v).includes("\\u0000"))

/** Arrays: 1-D with NULLs, sometimes 2-D, sometimes with non-default lower bounds. */
const arrayOf = (element: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.array(fc.option(element, { nil: null, freq: 4 }), { maxLength: 6 }),
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })).chain(([r, c]) =>
      fc.array(fc.array(fc.option(element, { nil: null }), { minLength: c, maxLength: c }), {
        minLength: r,
        maxLength: r
      })
    ),
    fc
      .tuple(
        fc.array(fc.option(element, { nil: null }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: -5, max: 5 }).filter((x) => x !== 1)
      )
      .map(([els, lb]) => new PgArray(els, [els.length], [lb]))
  )

/** Canonical ranges over integers (discrete types come back as `[a,b)`). */
const intRange = (lo: number, hi: number, wrap: (n: number) => unknown = (n) => n) =>
  fc.oneof(
    fc.constant(PgRange.empty()),
    fc
      .tuple(
        fc.integer({ min: lo, max: hi - 1 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.boolean(),
        fc.boolean()
      )
      .map(
        ([a, len, openLo, openHi]) =>
          new PgRange(openLo ? null : wrap(a), openHi ? null : wrap(Math.min(hi, a + len)), true, false)
      )
  )

const dayString = (d: number) => viaBinary(Oid.date, (w) => w.i32(d))

const multirangeOf = (points: fc.Arbitrary<number[]>, wrap: (n: number) => unknown) =>
  points.map((ps) => {
    const sorted = [...new Set(ps)].sort((a, b) => a - b)
    const out: PgRange[] = []
    // Pairs [p0,p1), [p2,p3)… with p2 > p1 + 0 so ranges never touch (the server would merge them).
    for (let i = 0; i + 1 < sorted.length; i += 3) out.push(new PgRange(wrap(sorted[i]), wrap(sorted[i + 1])))
    return out
  })

const numRange = fc.oneof(
  fc.constant(PgRange.empty()),
  fc
    .tuple(
      fc.integer({ min: -1e6, max: 1e6 }),
      fc.integer({ min: 1, max: 1e6 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      fc.boolean()
    )
    .map(
      ([a, len, li, ui, lInf, uInf]) =>
        new PgRange(lInf ? null : `${a}.5`, uInf ? null : `${a + len}.25`, li, ui)
    )
)

const tsRange = (exact: boolean) =>
  fc
    .tuple(
      fc.integer({ min: -1e12, max: 1e12 }),
      fc.integer({ min: 1, max: 1e9 }),
      fc.boolean(),
      fc.boolean()
    )
    .map(([a, len, li, ui]) =>
      exact
        ? new PgRange(
            new PgTimestamp(BigInt(a) * 1000n + 7n),
            new PgTimestamp(BigInt(a + len) * 1000n),
            li,
            ui
          )
        : new PgRange(new Date(a), new Date(a + len), li, ui)
    )

export const scalarCases: ReadonlyArray<TypeCase> = [
  { sql: "bool", oid: Oid.bool, arb: fc.boolean() },
  {
    sql: "int2",
    oid: Oid.int2,
    arb: fc.oneof(fc.integer({ min: -32768, max: 32767 }), fc.constantFrom(-32768, 32767, 0))
  },
  { sql: "int4", oid: Oid.int4, arb: fc.oneof(fc.integer(), fc.constantFrom(-2147483648, 2147483647, 0)) },
  {
    sql: "int8",
    oid: Oid.int8,
    arb: fc.oneof(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.constantFrom(INT64_MIN, INT64_MAX, 0n))
  },
  { sql: "oid", oid: Oid.oid, arb: fc.oneof(fc.nat(), fc.constantFrom(0, 4294967295)) },
  {
    sql: "float4",
    oid: Oid.float4,
    arb: fc.oneof(
      fc.float(),
      fc.constantFrom(NaN, Infinity, -Infinity, -0, 3.4028234663852886e38, Math.fround(1e-45))
    )
  },
  {
    sql: "float8",
    oid: Oid.float8,
    arb: fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, 5e-324, 0.1))
  },
  { sql: "numeric", oid: Oid.numeric, arb: numericValue },
  { sql: "text", oid: Oid.text, arb: textValue },
  { sql: "varchar", oid: Oid.varchar, arb: textValue },
  // bpchar: trailing blanks are insignificant (the cast to text drops them), so none are generated.
  { sql: "bpchar", oid: Oid.bpchar, arb: textValue.map((s) => s.replace(/ +$/, "")) },
  {
    sql: "name",
    oid: Oid.name,
    arb: fc.string({ unit: "grapheme-ascii", maxLength: 63 }).filter((s) => !s.includes("\u0000"))
  },
  {
    sql: '"char"',
    oid: Oid.char,
    arb: fc.oneof(
      fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
      fc.constant("")
    )
  },
  { sql: "bytea", oid: Oid.bytea, arb: fc.uint8Array({ maxLength: 64 }) },
  { sql: "uuid", oid: Oid.uuid, arb: fc.uuid() },
  { sql: "json", oid: Oid.json, arb: jsonValue },
  { sql: "jsonb", oid: Oid.jsonb, arb: jsonValue },
  { sql: "date", oid: Oid.date, arb: dateValue },
  { sql: "time", oid: Oid.time, arb: timeValue },
  { sql: "timetz", oid: Oid.timetz, arb: timetzValue },
  { sql: "timestamp", oid: Oid.timestamp, arb: dateTimestamp },
  { sql: "timestamptz", oid: Oid.timestamptz, arb: dateTimestamp },
  { sql: "timestamp", oid: Oid.timestamp, arb: exactTimestamp, exact: true },
  { sql: "timestamptz", oid: Oid.timestamptz, arb: exactTimestamp, exact: true },
  { sql: "interval", oid: Oid.interval, arb: intervalValue },
  { sql: "inet", oid: Oid.inet, arb: inetValue(false) },
  { sql: "cidr", oid: Oid.cidr, arb: inetValue(true) }
]

export const arrayCases: ReadonlyArray<TypeCase> = scalarCases
  .filter((c) => c.sql !== "json" && c.sql !== "jsonb")
  .map((c) => ({ ...c, sql: `${c.sql}[]`, oid: registries.date.get(c.oid)!.arrayOid, arb: arrayOf(c.arb) }))
  .concat([
    { sql: "jsonb[]", oid: 3807, arb: fc.array(fc.option(jsonValue, { nil: null }), { maxLength: 4 }) },
    { sql: "int4range[]", oid: 3905, arb: fc.array(intRange(-1000, 1000), { maxLength: 4 }) }
  ])

export const rangeCases: ReadonlyArray<TypeCase> = [
  { sql: "int4range", oid: Oid.int4range, arb: intRange(-2147483648, 2147483647) },
  { sql: "int8range", oid: Oid.int8range, arb: intRange(-1e15, 1e15, (n) => BigInt(n)) },
  { sql: "numrange", oid: Oid.numrange, arb: numRange },
  { sql: "daterange", oid: Oid.daterange, arb: intRange(-700000, 1000000, dayString) },
  { sql: "tsrange", oid: Oid.tsrange, arb: tsRange(false) },
  { sql: "tstzrange", oid: Oid.tstzrange, arb: tsRange(false) },
  { sql: "tstzrange", oid: Oid.tstzrange, arb: tsRange(true), exact: true },
  {
    sql: "int4multirange",
    oid: Oid.int4multirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { maxLength: 9 }), (n) => n)
  },
  {
    sql: "int8multirange",
    oid: Oid.int8multirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { maxLength: 9 }), (n) => BigInt(n))
  },
  {
    sql: "nummultirange",
    oid: Oid.nummultirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { maxLength: 9 }), (n) => `${n}.5`)
  },
  {
    sql: "datemultirange",
    oid: Oid.datemultirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -700000, max: 1000000 }), { maxLength: 9 }), dayString)
  },
  {
    sql: "tsmultirange",
    oid: Oid.tsmultirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -1e12, max: 1e12 }), { maxLength: 9 }), (n) => new Date(n))
  },
  {
    sql: "tstzmultirange",
    oid: Oid.tstzmultirange,
    arb: multirangeOf(fc.array(fc.integer({ min: -1e12, max: 1e12 }), { maxLength: 9 }), (n) => new Date(n))
  }
]

export const allCases: ReadonlyArray<TypeCase> = [...scalarCases, ...arrayCases, ...rangeCases]

/** A stable label for a case (two cases share a SQL type when the registry mode differs). */
export const label = (c: TypeCase): string => (c.exact ? `${c.sql} (exact)` : c.sql)

/**
 * What decoding gives back for an encoded value: float4 rounds to float4 precision, and NaN
 * compares equal to NaN through toEqual already; everything else is itself.
 */
export const expected = (c: TypeCase, v: unknown): unknown => {
  if (c.oid === Oid.float4 && typeof v === "number") return Math.fround(v)
  return v
}
