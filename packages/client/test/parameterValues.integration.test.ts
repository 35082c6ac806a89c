/**
 * Parameter values against the server, where a value could change without an error: a value
 * whose type JavaScript cannot tell (an array of strings) is read by the server on every run of a
 * cached statement, not only the first; integers beyond 2^53 reach numeric exactly; float4 values
 * out of its range, fractional interval fields, lone surrogates and undefined inside arrays are
 * refused; a "__proto__" column of a wide row stays a column. One connection (`max: 1`), so the
 * second run of a text reuses the statement the first one prepared.
 */
import { expect, layer } from "@effect/vitest"
import { PgClient, type PgClientApi } from "@pgline/client"
import { PgInterval } from "@pgline/codec"
import { PgServer } from "@pgline/testing"
import { Effect, Layer } from "effect"
import { errorOf } from "./support/pipeline.ts"

const client = Layer.unwrap(
  Effect.map(PgServer, (info) => PgClient.layer({ url: info.url, sslmode: "disable", max: 1 }))
).pipe(Layer.provide(PgServer.layer))

/** The rows of the same text and parameters run twice (prepared on the first run, cached after). */
const twice = (pg: PgClientApi, text: string, params: ReadonlyArray<unknown>) =>
  Effect.gen(function* () {
    const first = (yield* pg.query(text, params)).rows
    const second = (yield* pg.query(text, params)).rows
    return { first, second }
  })

layer(client, { timeout: 60_000 })("parameter values", (it) => {
  it.effect("an array of strings is read by the server on every run, as it reads a string", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("set timezone = 'America/St_Johns'")
      // A time without an offset is the session's local time, on the first run and the second.
      const zoned = yield* twice(pg, "select ($1::timestamptz[])[1]::text as v", [["2024-01-01 12:00:00"]])
      expect(zoned.first).toEqual([{ v: "2024-01-01 12:00:00-03:30" }])
      expect(zoned.second).toEqual(zoned.first)
      // JSON texts in a jsonb[] are JSON, not JSON strings; "true" is a boolean's input syntax.
      const json = yield* twice(pg, "select ($1::jsonb[])[1] as v", [['{"a":1}']])
      expect(json.first).toEqual([{ v: { a: 1 } }])
      expect(json.second).toEqual(json.first)
      const bools = yield* twice(pg, "select $1::bool[] as v", [["true", "f"]])
      expect(bools.first).toEqual([{ v: [true, false] }])
      expect(bools.second).toEqual(bools.first)
      // What the server refuses it refuses on both runs (the codec read "1e39" as Infinity).
      for (let i = 0; i < 2; i++) {
        const error = yield* errorOf(pg.query("select $1::float4[] as v", [["1e39"]]))
        expect(error._tag).toBe("NumericValueOutOfRange")
      }
      yield* pg.query("reset timezone")
    })
  )

  it.effect("an integer beyond 2^53 reaches numeric with every digit; other numbers go as float8", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const values = [2 ** 53, 2 ** 60, -(2 ** 62)]
      const rows = (yield* pg.query<{ v: string }>("select $1::numeric::text as v", [values[0]])).rows
      expect(rows).toEqual([{ v: "9007199254740992" }])
      for (const n of values) {
        const r = (yield* pg.query<{ v: string }>("select $1::numeric::text as v", [n])).rows
        expect(r).toEqual([{ v: BigInt(n).toString() }])
      }
      // Any other number is float8, and the server's casts apply (the README says so): float8 →
      // numeric keeps 15 significant digits, float8 → int4 rounds; a string is exact.
      const cast = (yield* pg.query<{ n: string; i: number; s: string }>(
        "select $1::numeric::text as n, $2::int4 as i, $3::numeric::text as s",
        [0.30000000000000004, 1.5, "0.30000000000000004"]
      )).rows
      expect(cast).toEqual([{ n: "0.3", i: 2, s: "0.30000000000000004" }])
    })
  )

  it.effect("float4 out of its range is refused, not sent as Infinity or 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pg = yield* PgClient
        const conn = yield* pg.reserve
        const statement = yield* conn.prepare("select $1::float4::text as v")
        for (const n of [1e39, -1e39, 1e-50]) {
          const error = yield* errorOf(statement.execute([n]))
          expect(error._tag).toBe("ParameterError")
          expect(error.message).toContain("out of range for float4")
        }
        expect((yield* statement.execute([1.5])).rows).toEqual([{ v: "1.5" }])
        expect((yield* statement.execute([Number.POSITIVE_INFINITY])).rows).toEqual([{ v: "Infinity" }])
      })
    )
  )

  it.effect("fractional interval fields, lone surrogates and undefined inside arrays are refused", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const interval = yield* errorOf(pg.query("select $1::interval as v", [new PgInterval(1.5, 2, 0n)]))
      expect(interval._tag).toBe("ParameterError")
      const surrogate = yield* errorOf(pg.query("select $1::text[] as v", [["a\ud800b"]]))
      expect(surrogate._tag).toBe("ParameterError")
      expect(surrogate.message).toContain("lone UTF-16 surrogate")
      const undefinedElement = yield* errorOf(pg.query("select $1::int4[] as v", [[1, undefined, 3]]))
      expect(undefinedElement._tag).toBe("ParameterError")
      expect(undefinedElement.message).toContain("pass null")
      // A hole reads as undefined.
      // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
      const hole = yield* errorOf(pg.query("select $1::int4[] as v", [[1, , 3]]))
      expect(hole._tag).toBe("ParameterError")
      expect((yield* pg.query("select $1::int4[] as v", [[1, null, 3]])).rows).toEqual([{ v: [1, null, 3] }])
    })
  )

  it.effect("objects JSON would empty are refused as JSON; an invalid Date says so", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      for (const value of [new Map([["a", 1]]), new Set([1]), new Int32Array([1, 2]), new ArrayBuffer(4)]) {
        const error = yield* errorOf(pg.query("select $1::jsonb as v", [value]))
        expect(error._tag).toBe("ParameterError")
        expect(error.message).toContain("JSON would hold none of the contents")
      }
      // An object with toJSON says what it holds.
      const withJson = { toJSON: () => ({ a: 1 }) }
      expect((yield* pg.query("select $1::jsonb as v", [withJson])).rows).toEqual([{ v: { a: 1 } }])
      const invalid = yield* errorOf(pg.query("select $1::timestamptz as v", [new Date(Number.NaN)]))
      expect(invalid._tag).toBe("ParameterError")
      expect(invalid.message).toContain("an invalid Date")
    })
  )

  it.effect("arrays JavaScript cannot type: text for array parameters, the codec for json once known", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pg = yield* PgClient
        // The README's caveat: the first run cannot know the parameter is jsonb.
        const empty = yield* twice(pg, "select $1::jsonb as v", [[]])
        expect(empty).toEqual({ first: [{ v: {} }], second: [{ v: [] }] })
        // Into a scalar type the array literal goes as text every time (the server reads it).
        const literal = yield* twice(pg, "select $1::text as v", [["a", "b"]])
        expect(literal).toEqual({ first: [{ v: "{a,b}" }], second: [{ v: "{a,b}" }] })
        const conn = yield* pg.reserve
        const statement = yield* conn.prepare("select $1::jsonb as v, $2::text[] as t")
        expect(
          (yield* statement.execute([
            ["a", "b"],
            ["x", "y"]
          ])).rows
        ).toEqual([{ v: ["a", "b"], t: ["x", "y"] }])
        expect((yield* statement.execute([[], []])).rows).toEqual([{ v: [], t: [] }])
      })
    )
  )

  it.effect("timestamp columns: a Date becomes the session's wall clock, an ISO string its UTC one", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("set timezone = 'Europe/Berlin'")
      yield* pg.query("create temp table wall (ts timestamp)")
      const instant = new Date("2024-07-01T12:00:00Z")
      // The server casts the timestamptz to Berlin's wall clock (14:00), read back as UTC.
      const viaDate = (yield* pg.query<{ ts: Date }>("insert into wall values ($1) returning ts", [instant]))
        .rows[0]!.ts
      expect(viaDate.getTime() - instant.getTime()).toBe(2 * 3600 * 1000)
      // The text's offset is ignored for a timestamp: its UTC wall clock is stored and read back.
      const viaText = (yield* pg.query<{ ts: Date }>("insert into wall values ($1) returning ts", [
        instant.toISOString()
      ])).rows[0]!.ts
      expect(viaText.toISOString()).toBe(instant.toISOString())
      // A prepared statement knows its parameter is a timestamp: the Date's UTC wall clock.
      const viaPrepared = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("set timezone = 'Europe/Berlin'")
          const insert = yield* conn.prepare("insert into wall values ($1) returning ts")
          return ((yield* insert.execute([instant])).rows[0] as { ts: Date }).ts
        })
      )
      expect(viaPrepared.toISOString()).toBe(instant.toISOString())
      yield* pg.query("reset timezone")
    })
  )

  it.effect("a __proto__ column stays a column in a row too wide for the compiled decoder", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const columns = Array.from({ length: 130 }, (_, i) => `${i} as c${i}`).join(", ")
      const row = (yield* pg.query(`select '{"isAdmin": true}'::jsonb as "__proto__", ${columns}`))
        .rows[0] as Record<string, unknown>
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype)
      expect(Object.hasOwn(row, "__proto__")).toBe(true)
      expect(row["isAdmin"]).toBeUndefined()
      expect(Object.getOwnPropertyDescriptor(row, "__proto__")?.value).toEqual({ isAdmin: true })
      expect(row["c129"]).toBe(129)
    })
  )
})
