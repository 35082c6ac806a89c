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
import { errorOf, within } from "./support/pipeline.ts"

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
        // The first run waits for the statement's description: [] is a JSON array on every run.
        const empty = yield* twice(pg, "select $1::jsonb as v", [[]])
        expect(empty).toEqual({ first: [{ v: [] }], second: [{ v: [] }] })
        const strings = yield* twice(pg, "select $1::json as v", [["a", null]])
        expect(strings).toEqual({ first: [{ v: ["a", null] }], second: [{ v: ["a", null] }] })
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

  it.effect("held Binds: JSON arrays into a jsonb column alike on every run, in a pipeline in order", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create temp table held_log (n serial primary key, v jsonb not null)")
      // A fresh text each time: into a jsonb column (no cast) an array of strings is JSON.
      const first = yield* pg.query("insert into held_log (v) values ($1) returning v", [["a", "b"]])
      expect(first.rows).toEqual([{ v: ["a", "b"] }])
      // Two texts never seen, each held for its description, plain statements and a batch of the
      // first text queued behind them: everything runs in the order queued, values as JSON.
      const insert = "insert into held_log (v) values ($1) /* one */"
      const status = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const a = yield* p.execute(insert, [[]])
          yield* p.execute("insert into held_log (v) values ('1')")
          const b = yield* p.execute("insert into held_log (v) values ($1::jsonb) /* two */", [["c"]])
          const many = yield* p.executeMany(insert, [[["d"]], ['"s"'], [[]], [[null]]])
          const status = yield* within(10_000)(p.sync)
          expect((yield* a).rowCount).toBe(1)
          expect((yield* b).rowCount).toBe(1)
          expect(yield* many).toEqual({ rowCount: 4, statements: 4 })
          return status
        })
      )
      expect(status).toBe("I")
      const rows = (yield* pg.query<{ v: unknown }>("select v from held_log order by n")).rows
      expect(rows.map((r) => r.v)).toEqual([["a", "b"], [], 1, ["c"], ["d"], "s", [], [null]])
    })
  )

  it.effect("held Binds: a failure before one, or in its own Parse, skips it without a hang", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      // The segment failed before the held statement: the server skips its Parse and Describe.
      yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const fails = yield* p.execute("select 1/0 as x")
          const held = yield* p.execute("select $1::jsonb as v /* skipped */", [["x"]])
          const after = yield* p.execute("select 2 as two")
          expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("DivisionByZero")
          expect((yield* Effect.flip(fails))._tag).toBe("DivisionByZero")
          expect((yield* Effect.flip(held))._tag).toBe("PipelineAborted")
          expect((yield* Effect.flip(after))._tag).toBe("PipelineAborted")
        })
      )
      // The text was forgotten with its skipped Parse: its next run prepares it and reads JSON.
      const again = yield* pg.query("select $1::jsonb as v /* skipped */", [["x"]])
      expect(again.rows).toEqual([{ v: ["x"] }])
      // The held statement's own Parse fails: it gets the server's error, what follows is skipped.
      yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const held = yield* p.execute("selec $1::jsonb as v", [[]])
          const after = yield* p.execute("select 2 as two")
          expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("SyntaxError")
          expect((yield* Effect.flip(held))._tag).toBe("SyntaxError")
          expect((yield* Effect.flip(after))._tag).toBe("PipelineAborted")
        })
      )
      // The connection serves on.
      expect((yield* pg.query("select $1::jsonb as v /* later */", [[]])).rows).toEqual([{ v: [] }])
    })
  )

  it.effect(
    "held Binds: a value the parameter's codec refuses fails as ParameterError and skips the rest",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgClient
        yield* pg.script("drop type if exists held_mood; create type held_mood as enum ('sad', 'ok')")
        const type = (yield* pg.query<{ oid: number; arr: number }>(
          "select oid::int as oid, typarray::int as arr from pg_type where typname = 'held_mood'"
        )).rows[0]!
        pg.types.registerEnum({ name: "held_mood", oid: type.oid, arrayOid: type.arr, labels: ["sad", "ok"] })
        // An array where the enum's codec wants a label: refused on the first run as on the next.
        for (let i = 0; i < 2; i++) {
          const error = yield* errorOf(pg.query("select $1::held_mood as m", [["sad"]]))
          expect(error._tag).toBe("ParameterError")
          expect(error.message).toContain("is not a label of enum held_mood")
        }
        // In a pipeline the refused statement ends its segment as a failed one would.
        yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            const held = yield* p.execute("select $1::held_mood as m /* pipelined */", [["ok"]])
            const after = yield* p.execute("select 2 as two")
            // Nobody read the refused handle: the sync reports it.
            expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("ParameterError")
            expect((yield* Effect.flip(held))._tag).toBe("ParameterError")
            expect((yield* Effect.flip(after))._tag).toBe("PipelineAborted")
          })
        )
        // In a pipeline transaction nothing of the block is committed.
        yield* pg.query("create temp table held_moods (m held_mood)")
        const tx = yield* Effect.flip(
          within(10_000)(
            pg.pipelineTransaction((p) =>
              Effect.gen(function* () {
                yield* p.execute("insert into held_moods values ('ok')")
                yield* p.execute("insert into held_moods values ($1) /* in a block */", [["sad"]])
              })
            )
          )
        )
        expect(tx._tag).toBe("ParameterError")
        expect((yield* pg.query("select count(*)::int as n from held_moods")).rows).toEqual([{ n: 0 }])
        expect((yield* pg.query("select $1::held_mood as m", ["ok"])).rows).toEqual([{ m: "ok" }])
      })
  )
})
