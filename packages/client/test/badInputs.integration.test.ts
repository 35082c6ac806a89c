/**
 * Bad inputs fail typed before anything is sent, and change no data: invalid identifiers and empty
 * `in` lists, `undefined` parameters, lone UTF-16 surrogates, more values than placeholders, more
 * than 65,535 parameters, and a pipeline whose connection is gone. Each case checks the error and
 * that the connection goes on working (nothing half-sent).
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { connect, connectTo, errorOf, rowsOf, waitUntilRunning, within } from "./support/pipeline.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("bad inputs", (it) => {
  it.effect("invalid identifiers and empty IN lists fail the statement typed, wherever it runs", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const { sql } = pg
      const cases = [
        sql`select * from ${sql.id("a\u0000b")}`,
        sql`select * from ${sql.id("")}`,
        sql`select * from ${sql.id([])}`,
        sql`select * from ${sql.id(["public", "bad\u0000"])}`,
        sql`select 1 where 1 in (${sql.in([])})`,
        sql`select 1 where ${sql.fragment`1 in (${sql.in([])})`}`
      ]
      for (const statement of cases) {
        expect(yield* errorOf(statement)).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
        expect(yield* errorOf(pg.all([sql`select 1`, statement]))).toMatchObject({
          _tag: "StatementRejected"
        })
        const inPipeline = yield* Effect.scoped(
          Effect.flatMap(pg.pipeline, (p) => Effect.flip(p.execute(statement)))
        )
        expect(inPipeline).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
      }
      expect(yield* rowsOf(pg, "select 1 as one")).toEqual([{ one: 1 }])
    })
  )

  it.effect("undefined is refused (null is NULL); lone surrogates are refused, never stored as U+FFFD", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table bad_values (v text)")
      expect(yield* errorOf(pg.query("insert into bad_values values ($1)", [undefined]))).toMatchObject({
        _tag: "ParameterError",
        index: 0
      })
      expect(yield* errorOf(pg.query("insert into bad_values values ($1)", ["a\ud800b"]))).toMatchObject({
        _tag: "ParameterError",
        index: 0
      })
      expect(yield* errorOf(pg.query("insert into bad_values values ('a\udc00')"))).toMatchObject({
        _tag: "StatementRejected",
        reason: "InvalidText"
      })
      // In a pipeline, the refused statement is not queued; the segment goes on.
      const kept = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const refused = yield* Effect.flip(p.execute("insert into bad_values values ($1)", [undefined]))
          expect(refused._tag).toBe("ParameterError")
          return yield* p.execute("insert into bad_values values ($1)", [null])
        })
      )
      expect((yield* kept).rowCount).toBe(1)
      // A well-formed astral character is fine.
      yield* pg.query("insert into bad_values values ($1)", ["\u{1F600}"])
      expect(yield* rowsOf(pg, "select v from bad_values order by v nulls first")).toEqual([
        { v: null },
        { v: "\u{1F600}" }
      ])
    })
  )

  it.effect(
    "more values than placeholders are refused; $n inside strings, quotes and comments is not a placeholder",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        expect(yield* errorOf(pg.query("select $1::int as a", [1, 2]))).toMatchObject({
          _tag: "ParameterError",
          index: 1
        })
        expect(yield* errorOf(pg.query("select 1 as a", [1]))).toMatchObject({
          _tag: "ParameterError",
          index: 0
        })
        expect(
          yield* rowsOf(
            pg,
            `select '$2' as s, $1::int as a, "$3" from (select 1 as "$3") t -- $4\n/* $5 */`,
            [7]
          )
        ).toEqual([{ s: "$2", a: 7, $3: 1 }])
        expect(yield* rowsOf(pg, "select $q$ $2 $q$ as s, $1::int + $2::int as a", [1, 2])).toEqual([
          { s: " $2 ", a: 3 }
        ])
        // Fewer values than placeholders: the server's own typed error.
        expect((yield* errorOf(pg.query("select $1::int + $2::int", [1])))._tag).toBe("ProtocolViolation")
        expect(yield* rowsOf(pg, "select 1 as one")).toEqual([{ one: 1 }])
      })
  )

  it.effect("more than 65,535 parameters are refused with a ParameterError that says so", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const values = Array.from({ length: 65_536 }, (_, i) => i)
      const text = `select ${values.map((_, i) => `$${i + 1}::int`).join(" + ")}`
      const error = yield* errorOf(pg.query(text, values))
      expect(error).toMatchObject({ _tag: "ParameterError" })
      expect(error.message).toContain("65535")
    })
  )

  it.effect("a pipeline whose connection is gone refuses new statements at once", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const killer = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const sleeper = yield* p.execute("select pg_sleep(10) as gone_sleep")
          yield* p.flush
          yield* waitUntilRunning(killer, pg.processId, "gone_sleep")
          yield* killer.query("select pg_terminate_backend($1::int)", [pg.processId])
          expect(["AdminShutdown", "ConnectionLost"]).toContain((yield* Effect.flip(sleeper))._tag)
          const refused = yield* within(2_000)(Effect.flip(p.execute("select 1")))
          expect(refused).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
          const many = yield* within(2_000)(Effect.flip(p.executeMany("select $1::int", [[1], [2]])))
          expect(many).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
        })
      )
    })
  )

  it.effect(
    "maxMessageSize: a longer message closes the connection with ProtocolFailure; the pool goes on",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const pg = yield* connectTo(info.url, { maxMessageSize: 1024 * 1024 })
        const error = yield* errorOf(pg.query("select repeat('x', 2000000) as big"))
        expect(error).toMatchObject({ _tag: "ProtocolFailure", reason: "MessageTooLarge" })
        expect(yield* rowsOf(pg, "select length(repeat('x', 500000)) as n")).toEqual([{ n: 500000 }])
      })
  )

  it.effect(
    "COPY FROM STDIN / TO STDOUT through query() is refused typed, never a silent success or a hang",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query("create table copy_target (v int)")
        yield* pg.query("insert into copy_target values (1), (2)")
        for (const text of [
          "copy copy_target from stdin",
          "COPY copy_target TO STDOUT",
          "copy (select * from copy_target) to stdout with (format csv)",
          "/* a comment */ copy copy_target from STDIN"
        ]) {
          expect(yield* within(5_000)(errorOf(pg.query(text)))).toMatchObject({
            _tag: "StatementRejected",
            reason: "CopyInQuery"
          })
        }
        // A server-side file is not the copy protocol: the server answers (here: no such file).
        expect((yield* errorOf(pg.query("copy copy_target from '/nonexistent/stdin'")))._tag).toBe(
          "UndefinedFile"
        )
        expect(yield* rowsOf(pg, "select count(*)::int as n from copy_target")).toEqual([{ n: 2 }])
      })
  )
})
