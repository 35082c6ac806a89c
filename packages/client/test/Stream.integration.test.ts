/**
 * pg.stream against a real server: 1,000,000 rows checked by exact count and checksums, bounded
 * read-ahead with a slow consumer (a sequence advanced per produced row shows how far the server
 * got), early stop closing the portal, an error mid-stream after the rows before it, interruption,
 * and streams inside withTransaction, on reserve, with `prepare: false`, and the refusals.
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientApi } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Fiber, Stream } from "effect"
import { refusingEnum } from "./support/codecs.ts"
import { errorOf, within } from "./support/pipeline.ts"
import { backendsOf, eventually, poolClient, untilRunning } from "./support/pool.ts"

const lastValue = (pg: PgClientApi, sequence: string) =>
  Effect.map(pg.query<{ v: string }>(`select last_value::text as v from ${sequence}`), (r) =>
    Number(r.rows[0]!.v)
  )

const allIdle = (observer: PgClientApi, app: string) =>
  eventually(
    Effect.map(backendsOf(observer, app), (rows) => rows.every((r) => r.state === "idle")),
    5_000,
    "every backend of the client idle"
  )

layer(PgServer.layer, { timeout: 180_000, excludeTestServices: true })("stream", (it) => {
  it.effect("1,000,000 rows × 3 columns: exact count and checksums against the server's", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const text = "select g, g * 3 as t, md5(g::text) as h from generate_series(1, 1000000) g"
      const expected = (yield* pg.query<{ n: number; s: string; t: string; hx: string; hl: string }>(
        `select count(*)::int as n, sum(g)::text as s, sum(t)::text as t,
                sum(('x' || substr(h, 1, 8))::bit(32)::int::bigint)::text as hx, sum(length(h))::text as hl
           from (${text}) q`
      )).rows[0]!
      let n = 0
      let s = 0n
      let t = 0n
      let hx = 0n
      let hl = 0
      let ordered = true
      yield* Stream.runForEach(pg.stream<{ g: number; t: number; h: string }>(text), (row) =>
        Effect.sync(() => {
          n++
          if (row.g !== n) ordered = false
          s += BigInt(row.g)
          t += BigInt(row.t)
          hx += BigInt(Number.parseInt(row.h.slice(0, 8), 16) | 0)
          hl += row.h.length
        })
      )
      expect(n).toBe(expected.n)
      expect(ordered).toBe(true)
      expect(s.toString()).toBe(expected.s)
      expect(t.toString()).toBe(expected.t)
      expect(hx.toString()).toBe(expected.hx)
      expect(String(hl)).toBe(expected.hl)
    })
  )

  it.effect("a slow consumer: the server produces at most about two chunks ahead of it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create sequence st_ahead")
      const chunkSize = 100
      let consumed = 0
      let furthestAhead = 0
      yield* Stream.runForEach(
        pg.stream<{ v: string }>("select nextval('st_ahead')::text as v from generate_series(1, 2000)", {
          chunkSize
        }),
        () =>
          Effect.gen(function* () {
            consumed++
            if (consumed % 250 === 0) {
              yield* Effect.sleep(20)
              furthestAhead = Math.max(furthestAhead, (yield* lastValue(pg, "st_ahead")) - consumed)
            }
          })
      )
      expect(consumed).toBe(2000)
      // Rows are produced (nextval evaluated) only as chunks are asked for.
      expect(furthestAhead).toBeLessThanOrEqual(2 * chunkSize)
      expect(furthestAhead).toBeGreaterThan(0)
    })
  )

  it.effect("taking the first rows of a huge result stops the query; the connection is usable", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create sequence st_take")
      const first = yield* within(20_000)(
        Stream.runCollect(
          pg
            .stream<{ v: string }>(
              "select nextval('st_take')::text as v from generate_series(1, 10000) a, generate_series(1, 10000) b"
            )
            .pipe(Stream.take(5))
        )
      )
      expect(first.map((r) => Number(r.v))).toEqual([1, 2, 3, 4, 5])
      // The server stopped: it produced at most the chunks asked for (default 1000 rows each).
      expect(yield* lastValue(observer, "st_take")).toBeLessThanOrEqual(2000)
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      yield* allIdle(observer, app)
    })
  )

  it.effect("an error mid-stream fails the stream after every row before it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const seen: Array<number> = []
      const error = yield* errorOf(
        Stream.runForEach(
          pg.stream<{ v: number }>("select 10000 / (5000 - g) as v, g from generate_series(1, 10000) g", {
            chunkSize: 128
          }),
          (row) => Effect.sync(() => seen.push(row.v))
        )
      )
      expect(error._tag).toBe("DivisionByZero")
      expect(seen.length).toBe(4999)
      expect(seen[0]).toBe(Math.trunc(10000 / 4999))
      expect((yield* pg.query("select 2 as two")).rows).toEqual([{ two: 2 }])
    })
  )

  it.effect(
    "a value that cannot be decoded fails the stream typed, naming its column, after the rows before it",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const oid = yield* refusingEnum(pg, "st_mood")
        const seen: Array<number> = []
        const error = yield* errorOf(
          Stream.runForEach(
            pg.stream<{ g: number }>(
              "select g, (case when g = 1500 then 'cross' else 'calm' end)::st_mood as mood from generate_series(1, 3000) g",
              { chunkSize: 400 }
            ),
            (row) => Effect.sync(() => seen.push(row.g))
          )
        )
        expect(error._tag).toBe("ResultDecodeError")
        if (error._tag === "ResultDecodeError") {
          expect(error.column).toBe("mood")
          expect(error.typeOid).toBe(oid)
        }
        // Every row before the bad one arrived, in order; none after it.
        expect(seen.length).toBe(1499)
        expect(seen[1498]).toBe(1499)
        expect((yield* pg.query("select 8 as eight")).rows).toEqual([{ eight: 8 }])
      })
  )

  it.effect("bad SQL fails typed with no rows; several statements and COPY are refused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const missing = yield* errorOf(Stream.runCollect(pg.stream("select * from st_missing")))
      expect(missing._tag).toBe("UndefinedTable")
      const several = yield* errorOf(Stream.runCollect(pg.stream("select 1; select 2")))
      expect(several._tag === "StatementRejected" && several.reason).toBe("MultipleStatements")
      const copy = yield* errorOf(Stream.runCollect(pg.stream("copy (select 1) to stdout")))
      expect(copy._tag === "StatementRejected" && copy.reason).toBe("CopyInQuery")
      const param = yield* errorOf(Stream.runCollect(pg.stream(pg.sql`select ${undefined} as x`)))
      expect(param._tag).toBe("ParameterError")
      expect((yield* pg.query("select 3 as three")).rows).toEqual([{ three: 3 }])
    })
  )

  it.effect("interrupting a stream whose query has not produced a row yet cancels it", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(pg.stream("select pg_sleep(30), g from generate_series(1, 3) g"))
      )
      yield* untilRunning(observer, app, "pg_sleep")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      expect(Date.now() - started).toBeLessThan(10_000)
      expect((yield* within(10_000)(pg.query("select 4 as four"))).rows).toEqual([{ four: 4 }])
      yield* allIdle(observer, app)
    })
  )

  it.effect("interrupting a consumer mid-stream leaves the connection usable", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      let seen = 0
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(pg.stream("select g from generate_series(1, 10000000) g", { chunkSize: 500 }), () =>
          Effect.sync(() => {
            seen++
          }).pipe(Effect.andThen(seen % 1000 === 0 ? Effect.sleep(5) : Effect.void))
        )
      )
      yield* eventually(
        Effect.sync(() => seen > 3000),
        10_000,
        "rows flowing"
      )
      yield* Fiber.interrupt(fiber)
      expect((yield* within(10_000)(pg.query("select 5 as five"))).rows).toEqual([{ five: 5 }])
      yield* allIdle(observer, app)
    })
  )

  it.effect("inside withTransaction the stream reads the transaction's own uncommitted rows", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table st_tx (v int)")
      const seen = yield* pg.withTransaction(
        Effect.gen(function* () {
          yield* pg.query("insert into st_tx select generate_series(1, 2500)")
          const rows = yield* Stream.runCollect(
            pg.stream<{ v: number }>("select v from st_tx order by v", { chunkSize: 100 })
          )
          // A statement of the transaction after the stream ended runs on the same connection.
          yield* pg.query("insert into st_tx values (0)")
          return rows.length
        })
      )
      expect(seen).toBe(2500)
      expect((yield* pg.query<{ n: number }>("select count(*)::int as n from st_tx")).rows[0]!.n).toBe(2501)
    })
  )

  it.effect(
    "a statement of the consuming fiber on the stream's own connection is refused, not deadlocked",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        const error = yield* errorOf(
          pg.withTransaction(
            Stream.runForEach(pg.stream("select g from generate_series(1, 10) g"), () => pg.query("select 1"))
          )
        )
        expect(error._tag === "StatementRejected" && error.reason).toBe("StreamOpen")
        // Outside a transaction the consumer's statements go to another connection of the pool.
        const sums = yield* Stream.runCollect(
          pg
            .stream<{ g: number }>("select g from generate_series(1, 10) g")
            .pipe(
              Stream.mapEffect((row) =>
                Effect.map(pg.query<{ d: number }>("select $1::int * 2 as d", [row.g]), (r) => r.rows[0]!.d)
              )
            )
        )
        expect(sums.reduce((a, b) => a + b, 0)).toBe(110)
      })
  )

  it.effect("on a reserved connection (session state) and in a fiber with a pipeline open", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("create temp table st_temp as select generate_series(1, 3000) as v")
          const rows = yield* Stream.runCollect(
            conn.stream<{ v: number }>("select v from st_temp order by v")
          )
          expect(rows.length).toBe(3000)
          expect(rows[2999]).toEqual({ v: 3000 })
        })
      )
      const refused = yield* errorOf(
        Effect.scoped(
          Effect.gen(function* () {
            yield* pg.pipeline
            return yield* Stream.runCollect(pg.stream("select 1"))
          })
        )
      )
      expect(refused._tag === "StatementRejected" && refused.reason).toBe("PipelineOpen")
    })
  )

  it.effect(
    "prepare: false streams through the unnamed statement; binary and text columns decode alike",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1, prepare: false })
        const text = "select g, g::text as t, g::int8 as b, (g % 2 = 0) as e from generate_series(1, 2345) g"
        for (let round = 0; round < 2; round++) {
          const rows = yield* Stream.runCollect(pg.stream(text, { chunkSize: 1000 }))
          expect(rows).toEqual((yield* pg.query(text)).rows)
        }
      })
  )

  it.effect("a named statement streamed twice: the second run decodes with the cached binary formats", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const statement = pg.sql`select g, g::int8 as b, now()::date as d from generate_series(1, ${1500}::int) g`
      const first = yield* Stream.runCollect(pg.stream(statement, { chunkSize: 700 }))
      const second = yield* Stream.runCollect(pg.stream(statement, { chunkSize: 700 }))
      expect(second).toEqual(first)
      expect(first.length).toBe(1500)
      expect(typeof first[0]!["b"]).toBe("bigint")
    })
  )
})
