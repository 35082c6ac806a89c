/**
 * The per-connection prepared-statement cache: texts are prepared once and reused (visible in
 * pg_prepared_statements), the cache is bounded (least recently used statements are closed on the
 * server), and "cached plan must not change result type" (0A000) after a schema change is handled
 * by preparing again when that is safe (outside a transaction block), but surfaces inside one.
 * One connection (`max: 1`): the cache is per connection.
 */
import { expect, layer } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Layer } from "effect"

const client = Layer.unwrap(
  Effect.map(PgServer, (info) =>
    PgClient.layer({ url: info.url, sslmode: "disable", statementCacheSize: 4, max: 1 })
  )
).pipe(Layer.provide(PgServer.layer))

const prepared = Effect.flatMap(PgClient, (pg) =>
  Effect.map(
    pg.query<{ statement: string }>("select statement from pg_prepared_statements order by prepare_time"),
    (r) => r.rows.map((row) => row.statement)
  )
)

layer(client, { timeout: 60_000 })("statement cache", (it) => {
  it.effect("prepares a text once and reuses it", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      for (let i = 0; i < 5; i++)
        expect((yield* pg.query("select $1::int + 1 as v", [i])).rows).toEqual([{ v: i + 1 }])
      const statements = yield* prepared
      expect(statements.filter((s) => s === "select $1::int + 1 as v")).toHaveLength(1)
    })
  )

  it.effect("stays within its bound, closing the least recently used statements", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      for (let i = 0; i < 20; i++) expect((yield* pg.query(`select ${i} as v`)).rows).toEqual([{ v: i }])
      const statements = yield* prepared
      // The bound (4) plus the catalogue query itself, which is prepared as it runs.
      expect(statements.length).toBeLessThanOrEqual(5)
      expect(statements).toContain("select 19 as v")
      expect(statements).not.toContain("select 0 as v")
    })
  )

  it.effect("re-prepares after a result-type change outside a transaction, surfaces it inside one", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create table shape (a int)")
      yield* pg.query("insert into shape values (1)")
      expect((yield* pg.query("select * from shape")).rows).toEqual([{ a: 1 }])
      yield* pg.query("alter table shape add column b text default 'x'")
      expect((yield* pg.query("select * from shape")).rows).toEqual([{ a: 1, b: "x" }])

      yield* pg.query("alter table shape add column c int default 3")
      // Inside a transaction block the statement cannot be redone (it may have been one of many).
      const error = yield* Effect.flip(pg.withTransaction(pg.query("select * from shape")))
      expect(error._tag).toBe("FeatureNotSupported")
      expect((yield* pg.query("select * from shape")).rows).toEqual([{ a: 1, b: "x", c: 3 }])
    })
  )

  it.effect("query with prepare: false uses the unnamed statement: nothing cached, fresh after DDL", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create table shape_unnamed (a int)")
      yield* pg.query("insert into shape_unnamed values (1)")
      const text = "select * from shape_unnamed where a = $1"
      const once = { prepare: false } as const
      expect((yield* pg.query(text, [1], once)).rows).toEqual([{ a: 1 }])
      expect((yield* pg.queryValues(text, [1], once)).rows).toEqual([[1]])
      expect(yield* prepared).not.toContain(text)
      // Inside a transaction, after DDL that changes the columns, the unnamed statement is planned
      // afresh (a cached one fails with 0A000 there: the test above).
      const inTx = yield* pg.withTransaction(
        Effect.gen(function* () {
          const before = (yield* pg.query(text, [1], once)).rows
          yield* pg.query("alter table shape_unnamed add column b text default 'x'")
          const after = (yield* pg.query(text, [1], once)).rows
          const values = (yield* pg.queryValues(text, [1], once)).rows
          return { before, after, values }
        })
      )
      expect(inTx).toEqual({ before: [{ a: 1 }], after: [{ a: 1, b: "x" }], values: [[1, "x"]] })
      expect(yield* prepared).not.toContain(text)
      // A cached text run once with prepare: false keeps its cached statement.
      expect((yield* pg.query(text, [1])).rows).toEqual([{ a: 1, b: "x" }])
      expect((yield* pg.query(text, [1], once)).rows).toEqual([{ a: 1, b: "x" }])
      expect((yield* prepared).filter((s) => s === text)).toHaveLength(1)
    })
  )

  it.effect(
    "a parameter type changed by DDL: the cached statement is prepared afresh and the insert works",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgClient
        yield* pg.query("create table ddl_param (a int)")
        yield* pg.query("insert into ddl_param values ($1)", ["1"])
        yield* pg.query("alter table ddl_param alter column a type text")
        // The cached statement resolved $1 as int4; the column is text now (42804 if reused as is).
        yield* pg.query("insert into ddl_param values ($1)", ["2"])
        expect((yield* pg.query("select a from ddl_param order by a")).rows).toEqual([{ a: "1" }, { a: "2" }])
      })
  )

  it.effect("a statement that ran is never sent again, whatever SQLSTATE it failed with", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      // A side effect a rollback does not undo (a sequence), then an error raised while the
      // statement runs with the SQLSTATEs of a stale cached statement (and one other).
      yield* pg.query("create sequence ran_calls")
      yield* pg.query(`create function ran_then_fail(code text) returns int language plpgsql as $$
        begin perform nextval('ran_calls'); raise exception 'failed with %', code using errcode = code; end $$`)
      const codes = ["42804", "26000", "42804", "0A000", "22012"]
      const tags: Array<string> = []
      for (const code of codes)
        tags.push((yield* Effect.flip(pg.query("select ran_then_fail($1)", [code])))._tag)
      expect(tags).toEqual([
        "DatatypeMismatch",
        "InvalidSqlStatementName",
        "DatatypeMismatch",
        "FeatureNotSupported",
        "DivisionByZero"
      ])
      // The function ran once per call.
      expect((yield* pg.query("select last_value::int as n from ran_calls")).rows).toEqual([
        { n: codes.length }
      ])
    })
  )

  it.effect("statements the server dropped (DEALLOCATE ALL) are prepared again on their next use", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      expect((yield* pg.query("select $1::int + 1 as v", [1])).rows).toEqual([{ v: 2 }])
      yield* pg.query("deallocate all")
      expect((yield* pg.query("select $1::int + 1 as v", [2])).rows).toEqual([{ v: 3 }])
    })
  )

  it.effect("in a pipeline a stale statement fails once, then is prepared afresh", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create table ddl_pipe (a int)")
      yield* pg.query("insert into ddl_pipe values (1)")
      const read = pg.withPipeline((p) => Effect.flatMap(p.execute("select * from ddl_pipe"), (h) => h))
      expect((yield* read).rows).toEqual([{ a: 1 }])
      yield* pg.query("alter table ddl_pipe add column b int default 2")
      expect((yield* Effect.flip(read))._tag).toBe("FeatureNotSupported")
      expect((yield* read).rows).toEqual([{ a: 1, b: 2 }])
    })
  )

  it.effect("failed, stale and skipped-close statements leave nothing prepared behind on the server", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const count = Effect.map(
        pg.query<{ n: number }>("select count(*)::int as n from pg_prepared_statements"),
        (r) => r.rows[0]!.n
      )
      yield* pg.query("create table leak_uniq (id int primary key)")
      yield* pg.query("insert into leak_uniq values (1)")
      // Distinct statements that fail while they run (a unique violation), and one text failing
      // again and again (it stays cached: it is still good).
      for (let i = 0; i < 30; i++)
        expect((yield* Effect.flip(pg.query(`insert into leak_uniq values (1) -- ${i}`)))._tag).toBe(
          "UniqueViolation"
        )
      for (let i = 0; i < 10; i++)
        expect((yield* Effect.flip(pg.query("insert into leak_uniq values ($1)", [1])))._tag).toBe(
          "UniqueViolation"
        )
      expect(yield* count).toBeLessThanOrEqual(5)
      // A cached statement gone stale with every DDL: the stale one is closed, not only forgotten.
      yield* pg.query("create table leak_stale (x int)")
      for (const type of ["bigint", "text", "int", "numeric", "bigint", "text"]) {
        yield* pg.query(`alter table leak_stale alter column x type ${type} using x::${type}`)
        yield* pg.query("select x from leak_stale")
      }
      expect(yield* count).toBeLessThanOrEqual(5)
      // New statements refused inside an aborted transaction block evict good ones, whose Close
      // the server skips with the rest of the segment: sent again after the block.
      yield* Effect.flip(
        pg.withTransaction(
          Effect.gen(function* () {
            yield* Effect.flip(pg.query("select 1/0"))
            for (let i = 0; i < 20; i++) yield* Effect.flip(pg.query(`select ${i} as aborted`))
            return yield* Effect.fail("rolled back")
          })
        )
      )
      yield* pg.query("select 1 as after_block")
      expect(yield* count).toBeLessThanOrEqual(5)
    })
  )

  it.effect(
    "a cached statement refused at Bind after a column's type changed is prepared afresh next time",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgClient
        yield* pg.query("create table bind_refused (x int)")
        yield* pg.query("insert into bind_refused values (5)")
        // The untyped string parameter is inferred as int4 while x is an int.
        const text = "select count(*)::int as n from bind_refused where x = $1"
        expect((yield* pg.query(text, ["5"])).rows).toEqual([{ n: 1 }])
        expect((yield* pg.query(text, ["5"])).rows).toEqual([{ n: 1 }])
        yield* pg.query("alter table bind_refused alter column x type text")
        // The cached statement compares text = integer now: refused once, then prepared afresh.
        expect((yield* Effect.flip(pg.query(text, ["5"])))._tag).toBe("UndefinedFunction")
        expect((yield* pg.query(text, ["5"])).rows).toEqual([{ n: 1 }])
        expect((yield* pg.query(text, ["5"])).rows).toEqual([{ n: 1 }])
      })
  )

  it.effect("FETCH is described afresh each time: a cursor declared again with other columns", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const rows = yield* pg.withTransaction(
        Effect.gen(function* () {
          yield* pg.query("declare c cursor for select 1 as a")
          const first = (yield* pg.query("fetch 1 from c")).rows
          yield* pg.query("close c")
          yield* pg.query("declare c cursor for select 'x' as b, 2 as d")
          const second = (yield* pg.query("fetch 1 from c")).rows
          return [first, second]
        })
      )
      expect(rows).toEqual([[{ a: 1 }], [{ b: "x", d: 2 }]])
    })
  )
})

layer(
  Layer.unwrap(
    Effect.map(PgServer, (info) =>
      PgClient.layer({ url: info.url, sslmode: "disable", prepare: false, max: 1 })
    )
  ).pipe(Layer.provide(PgServer.layer)),
  { timeout: 60_000 }
)("prepare: false", (it) => {
  it.effect("no named statement is ever prepared; queries, pipelines and transactions work", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* pg.query("create table unnamed (v int)")
      for (let i = 0; i < 3; i++) yield* pg.query("insert into unnamed values ($1)", [i])
      const viaPipeline = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          const h = yield* p.executeMany("insert into unnamed values ($1)", [[10], [11]])
          const sum = yield* p.execute("select sum(v)::int as s from unnamed")
          yield* p.sync
          return [(yield* h).rowCount, (yield* sum).rows]
        })
      )
      expect(viaPipeline).toEqual([2, [{ s: 24 }]])
      yield* pg.pipelineTransaction((p) => p.execute("insert into unnamed values (100)"))
      expect(yield* prepared).toEqual([])
      expect((yield* pg.query("select count(*)::int as n from unnamed")).rows).toEqual([{ n: 6 }])
    })
  )

  it.effect("query with prepare: true prepares nothing on a prepare: false layer", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const text = "select $1::int * 2 as v"
      for (let i = 0; i < 3; i++)
        expect((yield* pg.query(text, [i], { prepare: true })).rows).toEqual([{ v: 2 * i }])
      expect((yield* pg.queryValues(text, [4], { prepare: true })).rows).toEqual([[8]])
      expect(yield* prepared).toEqual([])
    })
  )
})
