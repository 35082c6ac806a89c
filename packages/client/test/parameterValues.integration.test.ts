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
import { PgInterval, PgRange } from "@pgline/codec"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import { Effect, Layer } from "effect"
import { connectTo, errorOf, within } from "./support/pipeline.ts"

const client = Layer.unwrap(
  Effect.map(PgServer, (info) => PgClient.layer({ url: info.url, sslmode: "disable", max: 1 }))
).pipe(Layer.provideMerge(PgServer.layer))

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

  it.effect("strings next to Dates or numbers in an array mean what they mean as strings alone", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("set timezone = 'America/St_Johns'")
      // A zone-less timestamptz string is the session's local time when alone; next to a Date (the
      // array then goes in binary) it cannot be read so, and is refused instead of read as UTC.
      const alone = yield* pg.query<{ v: string }>("select ($1::timestamptz[])[1]::text as v", [
        ["2024-01-01 12:00:00"]
      ])
      expect(alone.rows).toEqual([{ v: "2024-01-01 12:00:00-03:30" }])
      for (const mixed of [
        [new Date(0), "2024-01-01 12:00:00"],
        new PgRange<unknown>(new Date(0), "2024-01-01 12:00:00")
      ]) {
        const error = yield* errorOf(pg.query("select $1 as v", [mixed]))
        expect(error._tag).toBe("ParameterError")
        expect(error.message).toContain("has no UTC offset")
      }
      // With an offset it is exact next to a Date too.
      const zoned = yield* pg.query<{ v: string }>("select ($1::timestamptz[])[2]::text as v", [
        [new Date(0), "2024-01-01 12:00:00+02"]
      ])
      expect(zoned.rows).toEqual([{ v: "2024-01-01 06:30:00-03:30" }])
      // Spellings the server accepts read as the server reads them alone (lower-case t and z, no
      // seconds, the infinities in any case, more than six fraction digits).
      const spellings = [
        "2024-01-01t10:00:00z",
        "2024-01-01 10:00Z",
        "Infinity",
        "-INFINITY",
        "2024-01-01 10:00:00.1234567+00"
      ]
      const nextToDate = yield* pg.query<{ v: ReadonlyArray<string> }>(
        "select array(select x::text from unnest($1::timestamptz[]) with ordinality as u(x, i) where i > 1 order by i) as v",
        [[new Date(0), ...spellings]]
      )
      const asStrings = yield* pg.query<{ v: ReadonlyArray<string> }>(
        "select array(select x::text from unnest($1::timestamptz[]) as u(x)) as v",
        [spellings]
      )
      expect(nextToDate.rows[0]!.v).toEqual(asStrings.rows[0]!.v)
      // Bound to a timestamp[] (a prepared statement's type), a zone is ignored, as the server does.
      const stamps = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const statement = yield* conn.prepare(
            "select ($1::timestamp[])[2]::text as w, $2::timestamp::text as s"
          )
          return (yield* statement.execute([
            [new Date(0), "2024-01-01 12:00:00+02"],
            "2024-01-01 12:00:00+02"
          ])).rows
        })
      )
      expect(stamps).toEqual([{ w: "2024-01-01 12:00:00", s: "2024-01-01 12:00:00" }])
      // The server's special float spellings, any case, next to a number.
      const floats = yield* pg.query<{ v: ReadonlyArray<number> }>("select $1::float8[] as v", [
        [1.5, "NaN", "infinity", "-inf", "+Infinity", "INF"]
      ])
      expect(floats.rows).toEqual([{ v: [1.5, Number.NaN, Infinity, -Infinity, Infinity, Infinity] }])
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
      // Into jsonb, on the statement's first run (held for its description) and on later runs
      // alike, in an array or an object; a backslash before "ud800" in a string is no surrogate.
      yield* pg.query("select $1::jsonb as v /* surrogate */", [["ok"]])
      for (const value of [["a\ud800"], { k: "\udfff" }]) {
        const json = yield* errorOf(pg.query("select $1::jsonb as v /* surrogate */", [value]))
        expect(json._tag).toBe("ParameterError")
        expect(json.message).toContain("lone UTF-16 surrogate")
      }
      const first = yield* errorOf(pg.query("select $1::jsonb as v /* surrogate, first */", [["a\ud800"]]))
      expect(first._tag).toBe("ParameterError")
      expect((yield* pg.query("select $1::jsonb as v", [["\\ud800"]])).rows).toEqual([{ v: ["\\ud800"] }])
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
        // On the unnamed statement (prepare: false) nothing waits: the array literal every time.
        for (let i = 0; i < 2; i++) {
          const unnamed = yield* pg.query("select $1::jsonb as v, $2::text[] as t", [[], ["x"]], {
            prepare: false
          })
          expect(unnamed.rows).toEqual([{ v: {}, t: ["x"] }])
        }
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
      // A batch whose held statement fails at its Parse, larger than the pipeline's pending bytes:
      // rows queued after the failure is known are skipped at once, and nothing waits for good.
      const batch = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipelineWith({ maxPendingBytes: 4096 })
          const rows = Array.from({ length: 2000 }, (_, i) => [[`value ${i}`]])
          const many = yield* p.executeMany("selec $1::jsonb as v /* batch */", rows)
          const sync = yield* Effect.flip(within(10_000)(p.sync))
          return { sync: sync._tag, many: (yield* Effect.flip(within(10_000)(many)))._tag }
        })
      )
      expect(batch).toEqual({ sync: "SyntaxError", many: "SyntaxError" })
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

  it.effect("an array the parameter's codec refuses goes as text for the server, on every run alike", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.script("drop type if exists held_mood; create type held_mood as enum ('sad', 'ok')")
      const type = (yield* pg.query<{ oid: number; arr: number }>(
        "select oid::int as oid, typarray::int as arr from pg_type where typname = 'held_mood'"
      )).rows[0]!
      pg.types.registerEnum({ name: "held_mood", oid: type.oid, arrayOid: type.arr, labels: ["sad", "ok"] })
      // An array where the enum's codec wants a label: the server reads "{sad}" and refuses it,
      // on the first run (held for the description) as on the next.
      for (let i = 0; i < 2; i++) {
        const error = yield* errorOf(pg.query("select $1::held_mood as m", [["sad"]]))
        expect(error._tag).toBe("InvalidTextRepresentation")
        // A batch checks its statements before writing any: the same reading there.
        const batch = yield* errorOf(
          pg.all([pg.sql`select ${["sad"]}::held_mood as m /* all */`, pg.sql`select 1 as one`])
        )
        expect(batch._tag).toBe("InvalidTextRepresentation")
      }
      // Inside a transaction both runs leave it failed alike (the server refused the value).
      yield* pg.query("create temp table held_moods (m held_mood)")
      for (let i = 0; i < 2; i++) {
        const outcome = yield* Effect.exit(
          pg.withTransaction(
            Effect.gen(function* () {
              yield* pg.query("insert into held_moods values ('ok')")
              const refused = yield* Effect.flip(
                pg.query("insert into held_moods values ($1) /* tx */", [["ok"]])
              )
              expect(refused._tag).toBe("InvalidTextRepresentation")
              yield* pg.query("insert into held_moods values ('sad')")
            })
          )
        )
        expect(outcome).toMatchObject({ _tag: "Failure" })
        expect(String(outcome)).toContain("InFailedSqlTransaction")
      }
      // In a pipeline transaction nothing of the block is committed.
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
      expect(tx._tag).toBe("InvalidTextRepresentation")
      expect((yield* pg.query("select count(*)::int as n from held_moods")).rows).toEqual([{ n: 0 }])
      expect((yield* pg.query("select $1::held_mood as m", ["ok"])).rows).toEqual([{ m: "ok" }])
    })
  )

  it.effect("held Binds: values are read when queued, not when the description arrives", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const tags = ["a", "b"]
      const rows = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const h = yield* p.execute("select $1::text[] as t, $2::jsonb as j /* mutated */", [tags, { tags }])
          tags[0] = "changed"
          return (yield* h).rows
        })
      )
      expect(rows).toEqual([{ t: ["a", "b"], j: { tags: ["a", "b"] } }])
      // A generator that reuses one array for every row.
      yield* pg.query("create temp table held_rows (n int, tags text[])")
      function* reused() {
        const row: [number, Array<string>] = [0, [""]]
        for (let n = 0; n < 3; n++) {
          row[0] = n
          row[1][0] = `t${n}`
          yield row
        }
      }
      yield* pg.withPipeline((p) =>
        Effect.flatMap(p.executeMany("insert into held_rows values ($1, $2)", reused()), (h) => h)
      )
      const stored = (yield* pg.query<{ tags: Array<string> }>("select tags from held_rows order by n")).rows
      expect(stored.map((r) => r.tags)).toEqual([["t0"], ["t1"], ["t2"]])
    })
  )

  it.effect(
    "values bound to a statement prepared by name before its description are encoded for its types",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgClient
        // p.prepare declares no types: float4 was read from float8's bytes (2 as 2.8e-45), int8 and
        // date were refused with protocol errors.
        const cases: ReadonlyArray<readonly [string, unknown, unknown]> = [
          ["float4", 2, 2],
          ["int8", 1, 1n],
          ["int2", 3, 3],
          ["numeric", 1.5, "1.5"],
          ["numeric", 2n ** 70n, (2n ** 70n).toString()],
          ["date", new Date(Date.UTC(2024, 0, 2)), "2024-01-02"],
          ["bytea", new Uint8Array([1, 2]), new Uint8Array([1, 2])],
          ["jsonb", ["x"], ["x"]],
          ["jsonb", { b: Buffer.from("hi") }, { b: { type: "Buffer", data: [104, 105] } }],
          ["jsonb", Object.defineProperty({ a: 1 }, "toJSON", { value: () => "hidden" }), "hidden"]
        ]
        for (const [type, value, expected] of cases) {
          const name = `held_named_${type}`
          // Before the description (held), then after it: the same result.
          const { first, later } = yield* pg.withPipeline((p) =>
            Effect.gen(function* () {
              yield* p.prepare(`select $1::${type} as v`, { name })
              const h = yield* p.executePrepared(name, [value])
              yield* within(10_000)(p.sync)
              const again = yield* p.executePrepared(name, [value])
              yield* p.close(name)
              return { first: (yield* within(10_000)(h)).rows, later: (yield* within(10_000)(again)).rows }
            })
          )
          expect({ type, first, later }).toEqual({ type, first: [{ v: expected }], later: [{ v: expected }] })
        }
        // A value its type refuses: ParameterError both times; held, it fails the rest of its
        // segment (queued already) as a failed statement would.
        const refused = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.prepare("select $1::bool as v", { name: "held_named_bool" })
            const h = yield* p.executePrepared("held_named_bool", [1])
            const after = yield* p.execute("select 2 as two")
            const sync = yield* Effect.flip(within(10_000)(p.sync))
            return {
              sync: sync._tag,
              h: (yield* Effect.flip(h))._tag,
              after: yield* Effect.flip(after)
            }
          })
        )
        expect(refused).toMatchObject({
          sync: "ParameterError",
          h: "ParameterError",
          after: { _tag: "PipelineAborted", index: 1, failedTag: "ParameterError" }
        })
        // Described by now (the name stays for the connection's life): refused before it is sent.
        const laterRefused = yield* errorOf(
          pg.withPipeline((p) =>
            Effect.gen(function* () {
              yield* p.prepare("select $1::bool as v /* again */", { name: "held_named_bool_2" })
              yield* within(10_000)(p.sync)
              return yield* p.executePrepared("held_named_bool_2", [1])
            })
          )
        )
        expect(laterRefused._tag).toBe("ParameterError")
        // A value that cannot become JSON (a bigint inside) fails its statement, not the connection.
        const unjson = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.prepare("select $1::jsonb as v", { name: "held_named_unjson" })
            const h = yield* p.executePrepared("held_named_unjson", [{ cents: 5n }])
            yield* Effect.exit(within(10_000)(p.sync))
            return (yield* Effect.flip(h))._tag
          })
        )
        expect(unjson).toBe("ParameterError")
        // One that cannot even be copied when queued (it refers to itself): refused, nothing sent.
        const cyclic: Record<string, unknown> = { a: 1 }
        cyclic.self = cyclic
        const copied = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.prepare("select $1::jsonb as v", { name: "held_named_cyclic" })
            const refused = yield* Effect.flip(p.executePrepared("held_named_cyclic", [cyclic]))
            const next = yield* p.execute("select 2 as two")
            return { refused: refused._tag, next: (yield* within(10_000)(next)).rows }
          })
        )
        expect(copied).toEqual({ refused: "ParameterError", next: [{ two: 2 }] })
        // The name still belongs to an older statement without parameters (the new Parse refused
        // as a duplicate): what is bound by name in a later segment waits for that answer and is
        // refused, so the older statement never runs.
        yield* pg.query("create temp table held_dup (n int)")
        const dup = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.prepare("insert into held_dup values (1)", { name: "held_dup" })
            yield* within(10_000)(p.sync)
            const again = yield* p.prepare("select $1::jsonb as v", { name: "held_dup" })
            yield* p.sendSync
            const bound = yield* p.executePrepared("held_dup", [{ cents: 5n }])
            yield* Effect.exit(within(10_000)(p.sync))
            return { again: (yield* Effect.flip(again))._tag, bound: (yield* Effect.flip(bound))._tag }
          })
        )
        expect(dup).toEqual({ again: "DuplicatePreparedStatement", bound: "StatementRejected" })
        expect((yield* pg.query("select count(*)::int as n from held_dup")).rows).toEqual([{ n: 0 }])
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      })
  )

  it.effect("held Binds: queued after its segment's failure is known, nothing waits for good", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const status = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const fails = yield* p.execute("select 1/0 as x")
          expect((yield* Effect.flip(within(10_000)(fails)))._tag).toBe("DivisionByZero")
          // Let the connection take in the error before the next statement (a real wait).
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
          const held = yield* p.execute("select $1::jsonb as v /* after the failure */", [["a"]])
          const status = yield* within(10_000)(p.sync)
          expect((yield* Effect.flip(within(10_000)(held)))._tag).toBe("PipelineAborted")
          return status
        })
      )
      expect(status).toBe("I")
    })
  )

  it.effect("held Binds cost one round trip more, on a statement's first run on the connection only", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 2 })
        const pg = yield* connectTo(withProxyUrl(info.url, proxy))
        const flightsOf = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const before = proxy.stats().clientFlights
            yield* effect
            return proxy.stats().clientFlights - before
          })
        const held = pg.query("select $1::jsonb as v /* round trips */", [[]])
        expect(yield* flightsOf(held)).toBe(2)
        expect(yield* flightsOf(held)).toBe(1)
        // A new text whose values its Parse types is not held.
        expect(yield* flightsOf(pg.query("select $1::text as v /* round trips */", ["a"]))).toBe(1)
        // In a pipeline, each held statement new to the connection adds one.
        const batch = pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.execute("select $1::jsonb as a /* batch */", [["x"]])
            yield* p.execute("select 1 as one")
            yield* p.execute("select $1::json as b /* batch */", [[]])
          })
        )
        expect(yield* flightsOf(batch)).toBe(3)
        expect(yield* flightsOf(batch)).toBe(1)
      })
    )
  )

  it.effect("a batch whose held value cannot be copied is refused whole, nothing of it sent", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create temp table held_batch (n int)")
      // An array of strings (held on a first run) whose own toJSON is a getter that throws.
      const odd = Object.defineProperty(["a"], "toJSON", {
        get() {
          throw new Error("toJSON getter")
        }
      })
      const refused = yield* errorOf(
        pg.all([pg.sql`insert into held_batch values (1)`, pg.sql`select ${odd}::text[] as v /* batch */`])
      )
      expect(refused._tag).toBe("ParameterError")
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      expect((yield* pg.query("select count(*)::int as n from held_batch")).rows).toEqual([{ n: 0 }])
    })
  )
})
