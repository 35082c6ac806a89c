/**
 * pg.script against a real server: the simple-query protocol for several statements (one result
 * per statement), errors naming the failing statement, the server's implicit-transaction rules for
 * a multi-statement string, parameters and COPY refused before anything is sent, a block left
 * open on a shared connection refused and rolled back, and interruption.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientApi } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { errorOf, within } from "./support/pipeline.ts"
import { backendsOf, eventually, poolClient, untilRunning } from "./support/pool.ts"

const count = (pg: PgClientApi, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("script", (it) => {
  it.effect("one QueryResult per statement, in order, with rows, commands and counts", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const results = yield* pg.script(`
        create table sc_basic (v int, t text);
        -- a comment between statements; an empty statement next
        ;
        insert into sc_basic values (1, 'a;b'), (2, $$x;y$$);
        select v, t from sc_basic order by v;
        update sc_basic set t = 'z' where v = 2;
        select 'done' as status
      `)
      expect(results.map((r) => r.command)).toEqual(["CREATE", "INSERT", "SELECT", "UPDATE", "SELECT"])
      expect(results[1]!.rowCount).toBe(2)
      expect(results[2]!.rows).toEqual([
        { v: 1, t: "a;b" },
        { v: 2, t: "x;y" }
      ])
      expect(results[2]!.fields.map((f) => f.name)).toEqual(["v", "t"])
      expect(results[3]!.rowCount).toBe(1)
      expect(results[4]!.rows).toEqual([{ status: "done" }])
      expect(yield* pg.script("")).toEqual([])
      expect(yield* pg.script("  -- nothing but a comment\n ")).toEqual([])
    })
  )

  it.effect("a failing statement: ScriptFailed with its index, the typed server error, earlier results", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table sc_fail (v int primary key)")
      const error = yield* errorOf(
        pg.script(
          "insert into sc_fail values (1); select v from sc_fail; insert into sc_fail values (1); select 2"
        )
      )
      expect(error._tag).toBe("ScriptFailed")
      if (error._tag !== "ScriptFailed") return
      expect(error.index).toBe(2)
      expect(error.error._tag).toBe("UniqueViolation")
      expect(error.error.code).toBe("23505")
      expect(error.results.map((r) => r.command)).toEqual(["INSERT", "SELECT"])
      expect(error.results[1]!.rows).toEqual([{ v: 1 }])
      expect(error.message).toContain("statement 2")
      // Without transaction control the string is one implicit transaction: nothing of it is kept.
      expect(yield* count(pg, "sc_fail")).toBe(0)
      // The connection is usable and outside any block.
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
    })
  )

  it.effect("COMMIT inside the script keeps what came before it when a later statement fails", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table sc_commit (v int)")
      const error = yield* errorOf(
        pg.script(
          "insert into sc_commit values (1); commit; insert into sc_commit values (2); select * from sc_missing"
        )
      )
      expect(error._tag).toBe("ScriptFailed")
      if (error._tag === "ScriptFailed") {
        expect(error.error._tag).toBe("UndefinedTable")
        expect(error.index).toBe(3)
      }
      expect((yield* pg.query("select v from sc_commit order by v")).rows).toEqual([{ v: 1 }])
    })
  )

  it.effect(
    "a whole BEGIN … COMMIT script on a shared connection is fine; one left open is refused and rolled back",
    () =>
      Effect.gen(function* () {
        const { pg, app } = yield* poolClient({ max: 1 })
        const observer = (yield* poolClient({ max: 1 })).pg
        yield* pg.query("create table sc_block (v int)")
        yield* pg.script("begin; insert into sc_block values (1); commit")
        expect(yield* count(pg, "sc_block")).toBe(1)
        const error = yield* errorOf(pg.script("begin; insert into sc_block values (2)"))
        expect(error._tag).toBe("StatementRejected")
        if (error._tag === "StatementRejected") expect(error.reason).toBe("TransactionControl")
        expect(yield* count(pg, "sc_block")).toBe(1)
        yield* eventually(
          Effect.map(backendsOf(observer, app), (rows) => rows.every((r) => r.state === "idle")),
          5_000,
          "the client's backend idle, outside any block"
        )
      })
  )

  it.effect(
    "on a reserved connection a script may leave session state and a block for later statements",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        yield* pg.query("create table sc_reserve (v int)")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.script(
              "create temp table sc_tmp (v int); insert into sc_tmp values (7); begin; insert into sc_reserve values (1)"
            )
            expect((yield* conn.query("select v from sc_tmp")).rows).toEqual([{ v: 7 }])
            yield* conn.query("commit")
          })
        )
        expect(yield* count(pg, "sc_reserve")).toBe(1)
      })
  )

  it.effect("inside withTransaction the script is part of the transaction (rolled back with it)", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table sc_tx (v int)")
      const exit = yield* Effect.exit(
        pg.withTransaction(
          Effect.andThen(
            pg.script("insert into sc_tx values (1); insert into sc_tx values (2)"),
            Effect.fail("abort" as const)
          )
        )
      )
      expect(exit._tag).toBe("Failure")
      expect(yield* count(pg, "sc_tx")).toBe(0)
      yield* pg.withTransaction(pg.script("insert into sc_tx values (3)"))
      expect(yield* count(pg, "sc_tx")).toBe(1)
    })
  )

  it.effect("parameters and COPY are refused before anything is sent", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table sc_refused (v int)")
      const params = yield* errorOf(pg.script(pg.sql`insert into sc_refused values (${1})`))
      expect(params._tag === "StatementRejected" && params.reason).toBe("ParametersInScript")
      const copyIn = yield* errorOf(
        pg.script("insert into sc_refused values (1); copy sc_refused from stdin")
      )
      expect(copyIn._tag === "StatementRejected" && copyIn.reason).toBe("CopyInQuery")
      expect(copyIn.message).toContain("copyFrom")
      const copyOut = yield* errorOf(pg.script("copy sc_refused to stdout; select 1"))
      expect(copyOut._tag === "StatementRejected" && copyOut.reason).toBe("CopyInQuery")
      // Nothing of the refused scripts ran.
      expect(yield* count(pg, "sc_refused")).toBe(0)
      // A statement without parameters built with sql works.
      expect((yield* pg.script(pg.sql`select 5 as five`))[0]!.rows).toEqual([{ five: 5 }])
    })
  )

  it.effect("a server-side COPY from a file is not the copy protocol and runs", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const results = yield* pg.script(
        "create table sc_prog (v text); copy sc_prog from program 'echo hello'; select v from sc_prog"
      )
      expect(results[2]!.rows).toEqual([{ v: "hello" }])
    })
  )

  it.effect("interrupting a running script cancels it; the connection is usable afterwards", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table sc_interrupt (v int)")
      const started = Date.now()
      const exit = yield* Effect.exit(
        Effect.raceFirst(
          pg.script("insert into sc_interrupt values (1); select pg_sleep(30)"),
          Effect.andThen(untilRunning(observer, app, "pg_sleep"), Effect.fail("stop" as const))
        )
      )
      expect(exit._tag).toBe("Failure")
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(yield* within(10_000)(count(pg, "sc_interrupt"))).toBe(0)
    })
  )

  it.effect("results are decoded in the server's text format, typed like query's", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const [r] = yield* pg.script(
        "select 1::int4 as i, 2::int8 as b, true as t, 'x'::text as s, null::int as n, '{1,2}'::int[] as a, '{\"k\":1}'::jsonb as j"
      )
      const q = yield* pg.query(
        "select 1::int4 as i, 2::int8 as b, true as t, 'x'::text as s, null::int as n, '{1,2}'::int[] as a, '{\"k\":1}'::jsonb as j"
      )
      expect(r!.rows).toEqual(q.rows)
    })
  )
})
