/**
 * Hermetic tests of the type codecs: byte vectors worked out by hand from the send/recv functions
 * in src/backend/utils/adt/*.c (not captured from another driver), text forms as the server's
 * *out functions print them, and the edge values (integer limits, -0, NaN, infinities, 1000-digit
 * numerics, the first and last timestamp, BC dates, arrays with hostile elements, empty ranges).
 */
import { describe, expect, it } from "vitest"
import {
  ByteWriter,
  DecodeError,
  encodeBinary,
  Oid,
  PgArray,
  PgInterval,
  PgRange,
  PgTimestamp,
  TypeEncodeError,
  TypeRegistry
} from "../src/index.ts"

const hex = (s: string): Uint8Array => {
  const t = s.replace(/\s+/g, "")
  const out = new Uint8Array(t.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16)
  return out
}
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const utf8 = (s: string) => new TextEncoder().encode(s)

const reg = new TypeRegistry()
const exact = new TypeRegistry({ timestamps: "exact" })
const w = new ByteWriter(16)

/** Encodes with the registry's codec for `oid`, binary. */
const bin = (oid: number, v: unknown, r: TypeRegistry = reg): string => toHex(encodeBinary(r.get(oid)!, v, w))
/** Decodes binary from the middle of a larger buffer, so offsets are exercised. */
const unbin = (oid: number, h: string, r: TypeRegistry = reg): unknown => {
  const b = hex("aabb" + h.replace(/\s+/g, "") + "ccdd")
  return r.decode(oid, 1, b, 2, b.length - 2)
}
const untext = (oid: number, s: string, r: TypeRegistry = reg): unknown => {
  const b = utf8(`xy${s}z`)
  return r.decode(oid, 0, b, 2, b.length - 1)
}
const text = (oid: number, v: unknown, r: TypeRegistry = reg): string => r.get(oid)!.textEncode(v)

describe("integers, oid, bool", () => {
  it("int2/int4/int8 limits in both formats", () => {
    expect(bin(Oid.int2, -32768)).toBe("8000")
    expect(bin(Oid.int2, 32767)).toBe("7fff")
    expect(unbin(Oid.int2, "8000")).toBe(-32768)
    expect(bin(Oid.int4, -1)).toBe("ffffffff")
    expect(unbin(Oid.int4, "80000000")).toBe(-2147483648)
    expect(untext(Oid.int4, "-2147483648")).toBe(-2147483648)
    expect(bin(Oid.int8, 2n ** 63n - 1n)).toBe("7fffffffffffffff")
    expect(unbin(Oid.int8, "8000000000000000")).toBe(-(2n ** 63n))
    expect(untext(Oid.int8, "-9223372036854775808")).toBe(-(2n ** 63n))
    expect(text(Oid.int8, 42)).toBe("42")
    expect(unbin(Oid.oid, "ffffffff")).toBe(4294967295)
    expect(bin(Oid.oid, 4294967295)).toBe("ffffffff")
  })

  it("rejects out-of-range and non-integer input with TypeEncodeError", () => {
    expect(() => bin(Oid.int2, 32768)).toThrow(TypeEncodeError)
    expect(() => bin(Oid.int4, 1.5)).toThrow(TypeEncodeError)
    expect(() => bin(Oid.int8, 2n ** 63n)).toThrow(TypeEncodeError)
    expect(() => bin(Oid.int4, "12a")).toThrow(TypeEncodeError)
  })

  it("int8 as number refuses to round, as string keeps every digit", () => {
    const num = new TypeRegistry({ int8: "number" })
    expect(unbin(Oid.int8, "001fffffffffffff", num)).toBe(2 ** 53 - 1)
    expect(unbin(Oid.int8, "ffe0000000000001", num)).toBe(-(2 ** 53 - 1))
    expect(() => unbin(Oid.int8, "0020000000000000", num)).toThrow(DecodeError)
    expect(() => unbin(Oid.int8, "ffe0000000000000", num)).toThrow(DecodeError)
    expect(() => untext(Oid.int8, "9007199254740993", num)).toThrow(DecodeError)
    const str = new TypeRegistry({ int8: "string" })
    expect(unbin(Oid.int8, "7fffffffffffffff", str)).toBe("9223372036854775807")
  })

  it("bool", () => {
    expect(bin(Oid.bool, true)).toBe("01")
    expect(unbin(Oid.bool, "00")).toBe(false)
    expect(untext(Oid.bool, "t")).toBe(true)
    expect(text(Oid.bool, false)).toBe("f")
    expect(() => untext(Oid.bool, "x")).toThrow(DecodeError)
  })
})

describe("floats", () => {
  it("float8 bit patterns, NaN, ±Infinity, -0", () => {
    expect(bin(Oid.float8, 1)).toBe("3ff0000000000000")
    expect(bin(Oid.float8, -0)).toBe("8000000000000000")
    expect(Object.is(unbin(Oid.float8, "8000000000000000"), -0)).toBe(true)
    expect(unbin(Oid.float8, "7ff8000000000000")).toBeNaN()
    expect(unbin(Oid.float8, "fff0000000000000")).toBe(-Infinity)
    expect(untext(Oid.float8, "Infinity")).toBe(Infinity)
    expect(Object.is(untext(Oid.float8, "-0"), -0)).toBe(true)
    expect(text(Oid.float8, -0)).toBe("-0")
    expect(text(Oid.float8, NaN)).toBe("NaN")
    expect(untext(Oid.float8, "1e+308")).toBe(1e308)
  })

  it("float4 text and binary agree on float4 precision", () => {
    expect(bin(Oid.float4, 1.5)).toBe("3fc00000")
    expect(untext(Oid.float4, "1.1")).toBe(Math.fround(1.1))
    expect(unbin(Oid.float4, "3f8ccccd")).toBe(Math.fround(1.1))
    expect(unbin(Oid.float4, "7f800000")).toBe(Infinity)
  })
})

describe("numeric", () => {
  it("binary layout: ndigits, weight, sign, dscale, base-10000 digits", () => {
    expect(bin(Oid.numeric, "12345.6789")).toBe("0003" + "0001" + "0000" + "0004" + "0001" + "0929" + "1a85")
    expect(unbin(Oid.numeric, "0003 0001 0000 0004 0001 0929 1a85")).toBe("12345.6789")
    expect(bin(Oid.numeric, "-0.0001")).toBe("0001" + "ffff" + "4000" + "0004" + "0001")
    expect(unbin(Oid.numeric, "0001 ffff 4000 0004 0001")).toBe("-0.0001")
    expect(bin(Oid.numeric, "0.00")).toBe("0000 0000 0000 0002".replace(/ /g, ""))
    expect(unbin(Oid.numeric, "0000 0000 0000 0002")).toBe("0.00")
    expect(bin(Oid.numeric, "10000")).toBe("0001 0001 0000 0000 0001".replace(/ /g, ""))
    expect(unbin(Oid.numeric, "0001 0001 0000 0000 0001")).toBe("10000")
    expect(bin(Oid.numeric, "1.5e3")).toBe(bin(Oid.numeric, "1500"))
  })

  it("NaN and ±Infinity", () => {
    expect(bin(Oid.numeric, "NaN")).toBe("00000000c0000000")
    expect(bin(Oid.numeric, Infinity)).toBe("00000000d0000000")
    expect(bin(Oid.numeric, "-Infinity")).toBe("00000000f0000000")
    expect(unbin(Oid.numeric, "00000000c0000000")).toBe("NaN")
    expect(unbin(Oid.numeric, "00000000d0000000")).toBe("Infinity")
    expect(unbin(Oid.numeric, "00000000f0000000")).toBe("-Infinity")
  })

  it("digits past dscale are truncated as numeric_recv does; bad digits and signs are DecodeErrors", () => {
    expect(unbin(Oid.numeric, "0002 0000 0000 0002 0001 1388")).toBe("1.50")
    expect(() => unbin(Oid.numeric, "0001 0000 0000 0000 2710")).toThrow(DecodeError)
    expect(() => unbin(Oid.numeric, "0000 0000 1234 0000")).toThrow(DecodeError)
    expect(() => unbin(Oid.numeric, "0001 0000")).toThrow(DecodeError)
  })

  it("1000-digit values and tiny scales round-trip exactly", () => {
    const big = "9".repeat(600) + "." + "1234567890".repeat(40)
    const codec = reg.get(Oid.numeric)!
    const enc = encodeBinary(codec, big, w)
    expect(codec.binaryDecode!(enc, 0, enc.length)).toBe(big)
    const small = "-0." + "0".repeat(999) + "1"
    const e2 = encodeBinary(codec, small, w)
    expect(codec.binaryDecode!(e2, 0, e2.length)).toBe(small)
    expect(text(Oid.numeric, 123n)).toBe("123")
    expect(() => text(Oid.numeric, "12..3")).toThrow(TypeEncodeError)
  })
})

describe("character types, bytea, uuid, json", () => {
  it("text keeps a leading BOM and decodes UTF-8 from a slice", () => {
    expect(unbin(Oid.text, toHex(utf8("\ufeffhé 😀")))).toBe("\ufeffhé 😀")
    expect(bin(Oid.varchar, "é")).toBe("c3a9")
    expect(untext(Oid.bpchar, "ab  ")).toBe("ab  ")
    expect(untext(Oid.name, "pg_class")).toBe("pg_class")
  })

  it('"char" maps byte 0 to "" and high bytes to \\ooo in text', () => {
    expect(unbin(Oid.char, "00")).toBe("")
    expect(unbin(Oid.char, "61")).toBe("a")
    expect(unbin(Oid.char, "e9")).toBe("\u00e9")
    expect(untext(Oid.char, "\\351")).toBe("\u00e9")
    expect(text(Oid.char, "\u00e9")).toBe("\\351")
    expect(bin(Oid.char, "")).toBe("00")
  })

  it("bytea: hex and escape text formats, raw binary", () => {
    expect(untext(Oid.bytea, "\\x00ff10")).toEqual(hex("00ff10"))
    expect(untext(Oid.bytea, "\\x")).toEqual(new Uint8Array(0))
    expect(untext(Oid.bytea, "a\\\\b\\000\\377")).toEqual(hex("615c6200ff"))
    expect(text(Oid.bytea, hex("00ff"))).toBe("\\x00ff")
    expect(() => untext(Oid.bytea, "\\xzz")).toThrow(DecodeError)
    expect(() => untext(Oid.bytea, "a\\9")).toThrow(DecodeError)
    const src = hex("aa0102bb")
    const out = reg.decode(Oid.bytea, 1, src, 1, 3) as Uint8Array
    src[1] = 9
    expect(out).toEqual(hex("0102"))
  })

  it("uuid", () => {
    const u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    expect(bin(Oid.uuid, u)).toBe("a0eebc999c0b4ef8bb6d6bb9bd380a11")
    expect(bin(Oid.uuid, "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}")).toBe("a0eebc999c0b4ef8bb6d6bb9bd380a11")
    expect(unbin(Oid.uuid, "a0eebc999c0b4ef8bb6d6bb9bd380a11")).toBe(u)
    expect(() => bin(Oid.uuid, "nope")).toThrow(TypeEncodeError)
  })

  it("json and jsonb (version byte 1)", () => {
    expect(bin(Oid.jsonb, { a: 1 })).toBe("01" + toHex(utf8('{"a":1}')))
    expect(unbin(Oid.jsonb, "01" + toHex(utf8('{"a":[1,null]}')))).toEqual({ a: [1, null] })
    expect(() => unbin(Oid.jsonb, "02" + toHex(utf8("1")))).toThrow(DecodeError)
    expect(unbin(Oid.json, toHex(utf8('"x"')))).toBe("x")
    expect(() => untext(Oid.json, "{")).toThrow(DecodeError)
    expect(() => bin(Oid.json, 1n)).toThrow(TypeEncodeError)
    expect(() => bin(Oid.json, undefined)).toThrow(TypeEncodeError)
  })
})

describe("date and time", () => {
  it("date: days since 2000-01-01, BC, infinities", () => {
    expect(bin(Oid.date, "2000-01-01")).toBe("00000000")
    expect(unbin(Oid.date, "ffffffff")).toBe("1999-12-31")
    // Julian day 0 is 4714-11-24 BC; 2000-01-01 is Julian day 2451545.
    expect(unbin(Oid.date, (-2451545 >>> 0).toString(16))).toBe("4714-11-24 BC")
    expect(bin(Oid.date, "4714-11-24 BC")).toBe((-2451545 >>> 0).toString(16))
    expect(bin(Oid.date, "4713-01-01 BC")).toBe(bin(Oid.date, new Date(Date.UTC(-4712, 0, 1))))
    expect(unbin(Oid.date, "7fffffff")).toBe("infinity")
    expect(unbin(Oid.date, "80000000")).toBe("-infinity")
    expect(text(Oid.date, "0001-01-01 BC")).toBe("0001-01-01 BC")
    expect(() => bin(Oid.date, "2023-02-29")).toThrow(TypeEncodeError)
    // DATE_END_JULIAN (src/include/datatype/timestamp.h) is 2147483494, the Julian day of 5874898-01-01.
    expect(bin(Oid.date, "5874897-12-31")).toBe((2147483494 - 1 - 2451545).toString(16))
  })

  it("timestamptz as Date: µs truncated toward -∞, infinities as ±Infinity", () => {
    expect(unbin(Oid.timestamptz, "0000000000000000")).toEqual(new Date("2000-01-01T00:00:00Z"))
    // -1 µs is 1999-12-31T23:59:59.999999, which floors to .999.
    expect(unbin(Oid.timestamptz, "ffffffffffffffff")).toEqual(new Date("1999-12-31T23:59:59.999Z"))
    expect(unbin(Oid.timestamptz, "7fffffffffffffff")).toBe(Infinity)
    expect(unbin(Oid.timestamptz, "8000000000000000")).toBe(-Infinity)
    expect(bin(Oid.timestamptz, new Date("2000-01-01T00:00:01.5Z"))).toBe("000000000016e360")
    expect(untext(Oid.timestamptz, "2024-02-29 12:34:56.789123+05:30")).toEqual(
      new Date("2024-02-29T07:04:56.789Z")
    )
    expect(untext(Oid.timestamptz, "1900-01-01 00:00:00+00:53:28")).toEqual(
      new Date(Date.UTC(1899, 11, 31, 23, 6, 32))
    )
    expect(untext(Oid.timestamp, "0044-03-15 12:00:00 BC")).toEqual(new Date(Date.UTC(-43, 2, 15, 12)))
    expect(untext(Oid.timestamptz, "infinity")).toBe(Infinity)
    expect(text(Oid.timestamptz, new Date("2024-01-02T03:04:05.006Z"))).toBe("2024-01-02 03:04:05.006+00")
    expect(text(Oid.timestamp, -Infinity)).toBe("-infinity")
  })

  it("beyond Date's range is a DecodeError that names the exact mode", () => {
    // END_TIMESTAMP in src/include/datatype/timestamp.h: 294277-01-01 = 9223371331200000000 µs.
    const last = (9223371331200000000n - 1n).toString(16)
    expect(() => unbin(Oid.timestamptz, last)).toThrow(/exact/)
    expect(() => untext(Oid.timestamp, "294276-12-31 23:59:59.999999")).toThrow(DecodeError)
  })

  it("exact timestamps keep microseconds and the whole range", () => {
    const last = 9223371331200000000n - 1n
    const t = unbin(Oid.timestamptz, last.toString(16), exact) as PgTimestamp
    expect(t.micros).toBe(last)
    expect(t.toISOString()).toBe("+294276-12-31T23:59:59.999999Z")
    expect(untext(Oid.timestamptz, "294276-12-31 23:59:59.999999+00", exact)).toEqual(t)
    expect(text(Oid.timestamptz, t, exact)).toBe("294276-12-31 23:59:59.999999+00")
    const first = untext(Oid.timestamp, "4714-11-24 00:00:00 BC", exact) as PgTimestamp
    expect(first.micros).toBe(-2451545n * 86400000000n)
    expect(text(Oid.timestamp, first, exact)).toBe("4714-11-24 00:00:00 BC")
    expect(unbin(Oid.timestamp, "7fffffffffffffff", exact)).toEqual(PgTimestamp.infinity)
    expect(untext(Oid.timestamp, "2000-01-01 00:00:00.000001", exact)).toEqual(new PgTimestamp(1n))
    expect(PgTimestamp.fromDate(new Date("2000-01-01T00:00:00.002Z")).micros).toBe(2000n)
    expect(new PgTimestamp(-1n).toDate()).toEqual(new Date("1999-12-31T23:59:59.999Z"))
  })

  it("time and timetz (zone is stored west-positive)", () => {
    expect(unbin(Oid.time, "0000000000000000")).toBe("00:00:00")
    expect(unbin(Oid.time, (86400000000).toString(16).padStart(16, "0"))).toBe("24:00:00")
    expect(bin(Oid.time, "12:34:56.789")).toBe((45296789000).toString(16).padStart(16, "0"))
    expect(unbin(Oid.time, (45296000001).toString(16).padStart(16, "0"))).toBe("12:34:56.000001")
    expect(bin(Oid.timetz, "00:00:01+05:30")).toBe("00000000000f4240" + (-19800 >>> 0).toString(16))
    expect(unbin(Oid.timetz, "00000000000f4240" + "00004ec0")).toBe("00:00:01-05:36")
    expect(unbin(Oid.timetz, "0000000000000000" + "fffffffe")).toBe("00:00:00+00:00:02")
    expect(() => bin(Oid.time, "25:00:00")).toThrow(TypeEncodeError)
  })

  it("interval: {months, days, microseconds}, text styles, infinities", () => {
    expect(bin(Oid.interval, new PgInterval(1, 2, 3_000_000n))).toBe(
      "00000000002dc6c0" + "00000002" + "00000001"
    )
    expect(unbin(Oid.interval, "00000000002dc6c0 00000002 00000001")).toEqual(
      new PgInterval(1, 2, 3_000_000n)
    )
    expect(untext(Oid.interval, "1 year 2 mons -3 days +04:05:06.789")).toEqual(
      new PgInterval(14, -3, 14706789000n)
    )
    expect(untext(Oid.interval, "-00:00:00.000001")).toEqual(new PgInterval(0, 0, -1n))
    expect(untext(Oid.interval, "@ 1 year 2 mons 3 days 4 hours 5 mins 6.5 secs ago")).toEqual(
      new PgInterval(-14, -3, -14706500000n)
    )
    expect(untext(Oid.interval, "P1Y2M3DT4H5M6.5S")).toEqual(new PgInterval(14, 3, 14706500000n))
    expect(untext(Oid.interval, "2562047788:00:54.775807")).toEqual(new PgInterval(0, 0, 2n ** 63n - 1n))
    expect(untext(Oid.interval, "infinity")).toBe(PgInterval.infinity)
    expect(unbin(Oid.interval, "8000000000000000 80000000 80000000")).toEqual(PgInterval.negativeInfinity)
    expect(text(Oid.interval, new PgInterval(-14, 3, -1n))).toBe("-14 mons 3 days -00:00:00.000001")
    expect(text(Oid.interval, { months: 0, days: 0, microseconds: 0 })).toBe("0 mons 0 days 00:00:00")
    expect(() => untext(Oid.interval, "3 fortnights")).toThrow(DecodeError)
  })
})

describe("inet, cidr", () => {
  it("binary layout and network_out formatting", () => {
    expect(bin(Oid.inet, "192.168.0.1/24")).toBe("02180004c0a80001")
    expect(unbin(Oid.inet, "02180004c0a80001")).toBe("192.168.0.1/24")
    expect(unbin(Oid.inet, "02200004c0a80001")).toBe("192.168.0.1")
    expect(bin(Oid.cidr, "10.0.0.0/8")).toBe("020801040a000000")
    expect(unbin(Oid.cidr, "022001040a000001")).toBe("10.0.0.1/32")
    expect(() => bin(Oid.cidr, "10.0.0.1/8")).toThrow(TypeEncodeError)
    const v6 = (h: string) => unbin(Oid.inet, "03800010" + h)
    expect(v6("00000000000000000000000000000001")).toBe("::1")
    expect(v6("00000000000000000000000000000000")).toBe("::")
    expect(v6("20010db8000000000001000000000001")).toBe("2001:db8::1:0:0:1")
    expect(v6("20010db8000100000001000100010001")).toBe("2001:db8:1:0:1:1:1:1")
    expect(v6("00000000000000000000ffff01020304")).toBe("::ffff:1.2.3.4")
    expect(v6("00000000000000000000000001020304")).toBe("::1.2.3.4")
    expect(bin(Oid.inet, "::ffff:1.2.3.4")).toBe("03800010" + "00000000000000000000ffff01020304")
    expect(bin(Oid.inet, "2001:DB8::1/64")).toBe("03400010" + "20010db8000000000000000000000001")
    expect(() => bin(Oid.inet, "1.2.3.256")).toThrow(TypeEncodeError)
    expect(() => unbin(Oid.inet, "07200004c0a80001")).toThrow(DecodeError)
  })
})

describe("arrays", () => {
  const intArray = 1007
  const textArray = 1009

  it("binary layout: ndim, has-null flag, element OID, dims/lower bounds, elements", () => {
    expect(bin(intArray, [1, null])).toBe(
      "00000001" + "00000001" + "00000017" + "00000002" + "00000001" + "00000004" + "00000001" + "ffffffff"
    )
    expect(
      unbin(intArray, "00000001 00000001 00000017 00000002 00000001 00000004 00000001 ffffffff")
    ).toEqual([1, null])
    expect(bin(intArray, [])).toBe("00000000" + "00000000" + "00000017")
    expect(unbin(intArray, "00000000 00000000 00000017")).toEqual([])
    expect(() => unbin(intArray, "00000001 00000000 00000019 00000000 00000001")).toThrow(DecodeError)
  })

  it("multi-dimensional and non-default lower bounds", () => {
    const two = unbin(
      intArray,
      "00000002 00000000 00000017 00000002 00000001 00000001 00000001 00000004 00000001 00000004 00000002"
    )
    expect(two).toEqual([[1], [2]])
    const lb = unbin(
      intArray,
      "00000001 00000000 00000017 00000002 00000000 00000004 00000007 00000004 00000008"
    )
    expect(lb).toEqual(new PgArray([7, 8], [2], [0]))
    expect(text(intArray, lb)).toBe("[0:1]={7,8}")
    expect(untext(intArray, "[0:1]={7,8}")).toEqual(lb)
    expect(untext(intArray, "[1:2][1:1]={{1},{2}}")).toEqual([[1], [2]])
    expect(untext(intArray, "{{1,2},{3,NULL}}")).toEqual([
      [1, 2],
      [3, null]
    ])
    expect(
      text(intArray, [
        [1, 2],
        [3, null]
      ])
    ).toBe("{{1,2},{3,NULL}}")
    expect(() => text(intArray, [[1, 2], [3]])).toThrow(TypeEncodeError)
    expect(() => untext(intArray, "{{1,2},{3}}")).toThrow(DecodeError)
    expect(() => untext(intArray, "[0:5]={1}")).toThrow(DecodeError)
  })

  it("quoting: empty, NULL-like, quotes, backslashes, commas, braces, spaces", () => {
    const nasty = ["", "NULL", "null", 'a"b', "a\\b", "a,b", "{x}", " lead", "tail ", "é", null]
    const t = text(textArray, nasty)
    expect(t).toBe('{"","NULL","null","a\\"b","a\\\\b","a,b","{x}"," lead","tail ",é,NULL}')
    expect(untext(textArray, t)).toEqual(nasty)
    expect(untext(textArray, '{ a , "b" ,c\\,d , NULL}')).toEqual(["a", "b", "c,d", null])
    expect(untext(textArray, "{}")).toEqual([])
    expect(untext(textArray, "{{},{}}".replace("{{},{}}", "{}"))).toEqual([])
    expect(() => untext(textArray, '{"a}')).toThrow(DecodeError)
    expect(() => untext(textArray, "{a,}")).toThrow(DecodeError)
  })

  it("arrays of bytea, json (JS arrays are values there), dates, numerics", () => {
    expect(untext(1001, '{"\\\\x00ff",NULL}')).toEqual([hex("00ff"), null])
    expect(text(3807, [{ a: [1, 2] }, [3]])).toBe('{"{\\"a\\":[1,2]}",[3]}')
    expect(untext(3807, '{"{\\"a\\": [1, 2]}","[3]"}')).toEqual([{ a: [1, 2] }, [3]])
    expect(untext(1182, '{2024-01-01,"0001-01-01 BC",infinity}')).toEqual([
      "2024-01-01",
      "0001-01-01 BC",
      "infinity"
    ])
    const codec = reg.get(1231)!
    const e = encodeBinary(codec, ["1.50", null, "NaN"], w)
    expect(codec.binaryDecode!(e, 0, e.length)).toEqual(["1.50", null, "NaN"])
  })
})

describe("ranges and multiranges", () => {
  it("range_send layout: flags, then length-prefixed bounds", () => {
    expect(bin(Oid.int4range, new PgRange(1, 4))).toBe("02" + "0000000400000001" + "0000000400000004")
    expect(unbin(Oid.int4range, "02 00000004 00000001 00000004 00000004")).toEqual(new PgRange(1, 4))
    expect(bin(Oid.int4range, PgRange.empty())).toBe("01")
    expect(unbin(Oid.int4range, "01")).toEqual(PgRange.empty())
    expect(bin(Oid.int4range, new PgRange(null, 5, true, true))).toBe("0c" + "0000000400000005")
    expect(bin(Oid.int8range, new PgRange(null, null))).toBe("18")
    expect(unbin(Oid.int8range, "18")).toEqual(new PgRange(null, null))
  })

  it("text: brackets, empty, unbounded, quoted bounds", () => {
    expect(untext(Oid.int4range, "[1,4)")).toEqual(new PgRange(1, 4))
    expect(untext(Oid.int4range, "empty")).toEqual(PgRange.empty())
    expect(untext(Oid.numrange, "(,1.5]")).toEqual(new PgRange(null, "1.5", false, true))
    const ts = untext(Oid.tstzrange, '["2024-01-01 00:00:00+00",infinity)') as PgRange
    expect(ts.lower).toEqual(new Date("2024-01-01T00:00:00Z"))
    expect(ts.upper).toBe(Infinity)
    expect(text(Oid.tstzrange, ts)).toBe('["2024-01-01 00:00:00+00",infinity)')
    expect(text(Oid.daterange, new PgRange("2024-01-01", null))).toBe("[2024-01-01,)")
    expect(() => untext(Oid.int4range, "[1,4")).toThrow(DecodeError)
  })

  it("multiranges", () => {
    const m = [new PgRange(1, 3), new PgRange(5, 7)]
    expect(text(Oid.int4multirange, m)).toBe("{[1,3),[5,7)}")
    expect(untext(Oid.int4multirange, "{[1,3), [5,7)}")).toEqual(m)
    expect(untext(Oid.int4multirange, "{}")).toEqual([])
    expect(bin(Oid.int4multirange, [new PgRange(1, 3)])).toBe(
      "00000001" + "00000011" + "02" + "0000000400000001" + "0000000400000003"
    )
    expect(unbin(Oid.int4multirange, "00000001 00000011 02 00000004 00000001 00000004 00000003")).toEqual([
      new PgRange(1, 3)
    ])
    expect(untext(Oid.datemultirange, '{["2024-01-01","2024-02-01")}')).toEqual([
      new PgRange("2024-01-01", "2024-02-01")
    ])
  })
})

describe("TypeRegistry", () => {
  it("unknown OIDs decode as text or bytes and never throw", () => {
    const b = utf8("hello")
    expect(reg.decode(999999, 0, b, 0, 5)).toBe("hello")
    expect(reg.decode(999999, 1, b, 1, 3)).toEqual(utf8("el"))
    expect(reg.supportsBinary(999999)).toBe(false)
    expect(reg.supportsBinary(Oid.int4)).toBe(true)
  })

  it("asks for binary results where a binary decoder exists, except for text-valued types", () => {
    expect(reg.resultFormat(Oid.int4)).toBe(1)
    expect(reg.resultFormat(Oid.jsonb)).toBe(1)
    expect(reg.resultFormat(999999)).toBe(0)
    // numeric decodes to its decimal string: the server formats it, the client slices.
    expect(reg.supportsBinary(Oid.numeric)).toBe(true)
    expect(reg.resultFormat(Oid.numeric)).toBe(0)
  })

  it("decoders throw only DecodeError, also for a user codec that throws something else", () => {
    const r = new TypeRegistry()
    r.register({
      name: "boom",
      oid: 70000,
      arrayOid: 0,
      parse: () => {
        throw new TypeError("bad")
      },
      textDecode: () => {
        throw new RangeError("bad")
      },
      textEncode: String
    })
    const err = (() => {
      try {
        r.decoderFor(70000, 0)(utf8("x"), 0, 1)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(DecodeError)
    expect((err as DecodeError)._tag).toBe("DecodeError")
    expect((err as DecodeError).oid).toBe(70000)
    expect(() => reg.decode(Oid.int4, 1, hex("0001"), 0, 2)).toThrow(DecodeError)
  })

  it("enums: passthrough, labels checked on encode, arrays registered", () => {
    const r = new TypeRegistry()
    r.registerEnum({ name: "mood", oid: 90001, arrayOid: 90002, labels: ["sad", "ok", "happy"] })
    expect(r.decode(90001, 1, utf8("ok"), 0, 2)).toBe("ok")
    expect(r.encodeParameter("happy", 90001)).toEqual({ oid: 90001, format: 0, bytes: utf8("happy") })
    expect(() => r.get(90001)!.binaryEncode!("meh", new ByteWriter())).toThrow(TypeEncodeError)
    expect(r.decode(90002, 0, utf8("{sad,ok}"), 0, 8)).toEqual(["sad", "ok"])
    r.registerText({ name: "citext", oid: 90003, arrayOid: 90004 })
    expect(r.decode(90004, 0, utf8('{"A b"}'), 0, 7)).toEqual(["A b"])
  })

  it("registries are independent", () => {
    const a = new TypeRegistry()
    a.registerEnum({ name: "e", oid: 90010, arrayOid: 0, labels: ["x"] })
    expect(a.has(90010)).toBe(true)
    expect(new TypeRegistry().has(90010)).toBe(false)
  })

  it("infers parameter types from JS values", () => {
    expect(reg.inferOid("x")).toBe(0)
    expect(reg.inferOid(null)).toBe(0)
    expect(reg.inferOid(1)).toBe(Oid.int4)
    expect(reg.inferOid(2 ** 31)).toBe(Oid.int8)
    expect(reg.inferOid(1.5)).toBe(Oid.float8)
    expect(reg.inferOid(NaN)).toBe(Oid.float8)
    expect(reg.inferOid(1n)).toBe(Oid.int8)
    expect(reg.inferOid(true)).toBe(Oid.bool)
    expect(reg.inferOid(new Date())).toBe(Oid.timestamptz)
    expect(reg.inferOid(new Uint8Array())).toBe(Oid.bytea)
    expect(reg.inferOid({ a: 1 })).toBe(Oid.jsonb)
    expect(reg.inferOid(new PgInterval(0, 1, 0n))).toBe(Oid.interval)
    expect(reg.inferOid([1, null, 2])).toBe(1007)
    expect(reg.inferOid([[1], [2.5]])).toBe(1022)
    expect(reg.inferOid([1n])).toBe(1016)
    expect(reg.inferOid(["a"])).toBe(0)
    expect(reg.inferOid([])).toBe(0)
    expect(reg.inferOid([{ a: 1 }])).toBe(3807)
    expect(reg.inferOid(new PgRange(1, 10))).toBe(Oid.int4range)
    expect(reg.inferOid(new PgRange(new Date(), null))).toBe(Oid.tstzrange)
    expect(() => reg.inferOid(Symbol("x"))).toThrow(TypeEncodeError)
  })

  it("encodes parameters: binary where possible, strings verbatim as text, NULL", () => {
    expect(reg.encodeParameter(null)).toEqual({ oid: 0, format: 0, bytes: null })
    expect(reg.encodeParameter("42", Oid.int4)).toEqual({ oid: Oid.int4, format: 0, bytes: utf8("42") })
    expect(reg.encodeParameter(7)).toEqual({ oid: Oid.int4, format: 1, bytes: hex("00000007") })
    expect(reg.encodeParameter(7, Oid.int8)).toEqual({
      oid: Oid.int8,
      format: 1,
      bytes: hex("0000000000000007")
    })
    expect(reg.encodeParameter(["a", "b c"])).toEqual({ oid: 0, format: 0, bytes: utf8('{a,"b c"}') })
    expect(reg.encodeParameter(new PgRange("a", "b"))).toEqual({ oid: 0, format: 0, bytes: utf8("[a,b)") })
    expect(reg.encodeParameter(5, 123456)).toEqual({ oid: 123456, format: 0, bytes: utf8("5") })
    expect(() => reg.encodeParameter(1.5, Oid.int4)).toThrow(TypeEncodeError)
  })
})
