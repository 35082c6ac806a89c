/**
 * Named prepared statements (pg.prepare) against a real server: the description (parameter types,
 * result fields), execution by name, SQL-level visibility (pg_prepared_statements, EXECUTE),
 * describe again, close, a duplicate name, where a named statement may live (reserve,
 * withTransaction; refused on the shared pool), and the pool closing a lease's named statements
 * before the connection is reused. (The driver's own cached statements, named pgline_N, are
 * left out of the pg_prepared_statements checks.)
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { within } from "./support/pipeline.ts"
import { poolClient } from "./support/pool.ts"

/** A StatementRejected's reason, or any other error's tag. */
const reasonOf = (e: { readonly _tag: string }): string =>
  e._tag === "StatementRejected" ? (e as unknown as { readonly reason: string }).reason : e._tag

const INT4 = 23
const TEXT = 25

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("named prepared statements", (it) => {
  it.effect("prepare describes, execute binds by name, SQL sees it, close frees the name", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table prep_items (id int primary key, name text not null)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const ins = yield* conn.prepare("insert into prep_items values ($1, $2) returning id, name", {
            name: "ins_item"
          })
          expect(ins.name).toBe("ins_item")
          expect(ins.parameterTypes).toEqual([INT4, TEXT])
          expect(ins.fields.map((f) => [f.name, f.typeOid])).toEqual([
            ["id", INT4],
            ["name", TEXT]
          ])
          expect((yield* ins.execute([1, "one"])).rows).toEqual([{ id: 1, name: "one" }])
          expect((yield* ins.execute(["2", "two"])).rows).toEqual([{ id: 2, name: "two" }])
          // The protocol-level statement is the session's: pg_prepared_statements and EXECUTE see it.
          const listed = yield* conn.query<{ name: string; from_sql: boolean }>(
            "select name, from_sql from pg_prepared_statements where name not like 'pgline%'"
          )
          expect(listed.rows).toEqual([{ name: "ins_item", from_sql: false }])
          expect((yield* conn.query("execute ins_item(3, 'three')")).rows).toEqual([{ id: 3, name: "three" }])
          // Describe again: the same description, from the server.
          const again = yield* ins.describe
          expect(again.parameterTypes).toEqual([INT4, TEXT])
          expect(again.fields.map((f) => f.name)).toEqual(["id", "name"])
          // A statement without results has no fields.
          const del = yield* conn.prepare("delete from prep_items where id = $1")
          expect(del.name).toMatch(/^pgline_named_\d+$/)
          expect(del.fields).toEqual([])
          expect((yield* del.execute([3])).rowCount).toBe(1)
          // Closed: gone from the server, refused here, and the name can be used again.
          yield* ins.close
          const closed = yield* Effect.flip(ins.execute([4, "four"]))
          expect(closed).toMatchObject({ _tag: "StatementRejected", reason: "Closed" })
          const after = yield* conn.query("select name from pg_prepared_statements where name = 'ins_item'")
          expect(after.rows).toEqual([])
          const reused = yield* conn.prepare("select $1::int * 2 as double", { name: "ins_item" })
          expect((yield* reused.execute([21])).rows).toEqual([{ double: 42 }])
        })
      )
      expect((yield* pg.query("select count(*)::int as n from prep_items")).rows).toEqual([{ n: 2 }])
    })
  )

  it.effect("a duplicate name is the server's DuplicatePreparedStatement; the first stays usable", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const first = yield* conn.prepare("select 1 as one", { name: "dup" })
          const second = yield* Effect.flip(conn.prepare("select 2 as two", { name: "dup" }))
          expect(second._tag).toBe("DuplicatePreparedStatement")
          expect((yield* first.execute()).rows).toEqual([{ one: 1 }])
          // A text the server cannot parse: its error, nothing named.
          const bad = yield* Effect.flip(conn.prepare("selec 1", { name: "bad" }))
          expect(bad._tag).toBe("SyntaxError")
          const listed = yield* conn.query(
            "select name from pg_prepared_statements where name not like 'pgline%' order by name"
          )
          expect(listed.rows).toEqual([{ name: "dup" }])
          // Too many values: refused before anything is sent.
          const extra = yield* Effect.flip(first.execute([1]))
          expect(extra._tag).toBe("ParameterError")
        })
      )
    })
  )

  it.effect("refused on the shared pool and for the driver's own names; works inside withTransaction", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const shared = yield* Effect.flip(pg.prepare("select 1"))
      expect(shared).toMatchObject({ _tag: "StatementRejected", reason: "SharedConnection" })
      const own = yield* Effect.scoped(
        Effect.flatMap(pg.reserve, (c) => Effect.flip(c.prepare("select 1", { name: "pgline_1" })))
      )
      expect(own).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
      const inTx = yield* pg.withTransaction(
        Effect.gen(function* () {
          const s = yield* pg.prepare("select $1::text || '!' as shout", { name: "shout" })
          return (yield* s.execute(["hey"])).rows
        })
      )
      expect(inTx).toEqual([{ shout: "hey!" }])
    })
  )

  it.effect("the pool closes a lease's named statements before the connection is reused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const pids = new Set<number>()
      for (let round = 0; round < 2; round++) {
        const seen = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            pids.add(conn.processId)
            const before = yield* conn.query<{ name: string }>(
              "select name from pg_prepared_statements where name not like 'pgline%'"
            )
            // Prepared each round under the same name: it would fail with 42P05 had it been left.
            const s = yield* conn.prepare("select $1::int + 1 as next", { name: "kept_by_lease" })
            expect((yield* s.execute([round])).rows).toEqual([{ next: round + 1 }])
            return before.rows
          })
        )
        expect(seen).toEqual([])
      }
      expect(pids.size).toBe(1)
    })
  )

  it.effect("inside a pipeline: Parse, executions by name, Describe and Close in one segment", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const p = yield* conn.pipeline
          const prepared = yield* p.prepare("select $1::int + $2::int as sum", { name: "adder" })
          // Executed by name before the description has come back (values as text, like psql's \bind_named).
          const after = yield* p.prepare("select $1::text as echoed", { name: "echo" })
          yield* p.sync
          const adder = yield* prepared
          const a = yield* p.execute(adder, ["1", "2"])
          const b = yield* p.execute(adder, [40, 2])
          const described = yield* p.describe(adder)
          const closed = yield* p.close(adder)
          const status = yield* p.sync
          const echo = yield* after
          return {
            types: adder.parameterTypes,
            a: (yield* a).rows,
            b: (yield* b).rows,
            describedFields: (yield* described).fields.map((f) => f.name),
            closed: yield* closed,
            status,
            echo: (yield* echo.execute(["x"])).rows,
            gone: (yield* Effect.flip(adder.execute([1, 1])))._tag
          }
        })
      )
      expect(out).toEqual({
        types: [23, 23],
        a: [{ sum: 3 }],
        b: [{ sum: 42 }],
        describedFields: ["sum"],
        closed: undefined,
        status: "I",
        echo: [{ echoed: "x" }],
        gone: "StatementRejected"
      })
    })
  )

  it.effect(
    "preparing a taken name again in a pipeline: refused by the server, nothing runs the older statement",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const p = yield* conn.pipeline
            yield* p.prepare("select $1::float4 as v", { name: "taken" })
            yield* within(10_000)(p.sync)
            // Bound in a later segment, before the answer: it waits for it, and as the new Parse
            // failed it is refused (the name's older statement is not what was asked for), failing
            // the rest of its segment.
            const again = yield* p.prepare("select $1::int8 as v, 2 as w", { name: "taken" })
            yield* p.sendSync
            const across = yield* p.executePrepared("taken", [2])
            const afterAcross = yield* p.execute("select 1 as one")
            yield* p.sendSync
            // In the same segment: the new Parse's failure skips the execution.
            const again2 = yield* p.prepare("select $1::int8 as v, 2 as w", { name: "taken" })
            const skipped = yield* p.executePrepared("taken", [3])
            yield* Effect.exit(within(10_000)(p.sync))
            // Answered: the name is the older statement's again.
            const later = yield* within(10_000)(Effect.flatten(p.executePrepared("taken", [4])))
            const acrossError = yield* Effect.flip(within(10_000)(across))
            return {
              again: (yield* Effect.flip(again))._tag,
              across: {
                tag: acrossError._tag,
                reason: "reason" in acrossError ? acrossError.reason : undefined
              },
              afterAcross: (yield* Effect.flip(afterAcross))._tag,
              again2: (yield* Effect.flip(again2))._tag,
              skipped: (yield* Effect.flip(skipped))._tag,
              later: later.rows,
              listed: (yield* within(10_000)(
                Effect.flatten(p.execute("select statement from pg_prepared_statements where name = 'taken'"))
              )).rows
            }
          })
        )
        expect(out).toEqual({
          again: "DuplicatePreparedStatement",
          across: { tag: "StatementRejected", reason: "PrepareFailed" },
          afterAcross: "PipelineAborted",
          again2: "DuplicatePreparedStatement",
          skipped: "PipelineAborted",
          later: [{ v: 4 }],
          listed: [{ statement: "select $1::float4 as v" }]
        })
      })
  )

  it.effect(
    "a name prepared again while its earlier Parse is unanswered: each Bind runs the statement asked for",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const p = yield* conn.pipeline
            const bad = yield* p.prepare("selec $1::int as v", { name: "pending" })
            yield* p.sendSync
            // Queued before the first Parse's answer: the name is free on the server by then.
            const good = yield* p.prepare("select $1::int * 10 as v", { name: "pending" })
            const same = yield* p.executePrepared("pending", [1])
            yield* p.sendSync
            const next = yield* p.executePrepared("pending", ["2"])
            const described = yield* p.describe(yield* within(10_000)(good))
            yield* within(10_000)(p.sync)
            return {
              bad: (yield* Effect.flip(bad))._tag,
              same: (yield* same).rows,
              next: (yield* next).rows,
              described: (yield* described).fields.map((f) => f.name)
            }
          })
        )
        expect(out).toEqual({ bad: "SyntaxError", same: [{ v: 10 }], next: [{ v: 20 }], described: ["v"] })
      })
  )

  it.effect("after SQL DEALLOCATE, preparing the name again and binding it reads the new statement", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const p = yield* conn.pipeline
          yield* p.prepare("select 1::int4 as a", { name: "gone" })
          yield* p.prepare("select 2::int4 as a", { name: "gone2" })
          yield* within(10_000)(p.sync)
          yield* p.execute("deallocate gone")
          yield* p.execute("deallocate gone2")
          yield* within(10_000)(p.sync)
          // The client still has a record of each name; the server has none.
          yield* p.prepare("select 'abcd'::text as a", { name: "gone" })
          const same = yield* p.executePrepared("gone")
          yield* p.prepare("select 'hello'::text as b, 2::int4 as c", { name: "gone2" })
          yield* p.sendSync
          const across = yield* p.executePrepared("gone2")
          yield* within(10_000)(p.sync)
          return { same: (yield* same).rows, across: (yield* across).rows }
        })
      )
      expect(out).toEqual({ same: [{ a: "abcd" }], across: [{ b: "hello", c: 2 }] })
    })
  )

  it.effect(
    "a Close queued while the name's re-prepare is unanswered closes whichever statement the name keeps",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const first = yield* conn.prepare("select 1::int4 as a", { name: "close_pending" })
            const p = yield* conn.pipeline
            // Refused by the server (the name is taken): the name falls back to the first statement,
            // which the Close, queued before that answer, then closes.
            const again = yield* p.prepare("select 'x'::text as a", { name: "close_pending" })
            yield* p.sendSync
            const closed = yield* p.close("close_pending")
            const afterClose = yield* Effect.flip(p.executePrepared("close_pending"))
            yield* Effect.exit(within(10_000)(p.sync))
            const byName = yield* Effect.flip(p.executePrepared("close_pending"))
            const byHandle = yield* Effect.flip(p.execute(first))
            const listed = yield* within(10_000)(
              Effect.flatten(
                p.execute("select name from pg_prepared_statements where name = 'close_pending'")
              )
            )
            return {
              again: (yield* Effect.flip(again))._tag,
              closed: yield* within(10_000)(closed),
              afterClose: reasonOf(afterClose),
              byName: reasonOf(byName),
              byHandle: reasonOf(byHandle),
              listed: listed.rows
            }
          })
        )
        expect(out).toEqual({
          again: "DuplicatePreparedStatement",
          closed: undefined,
          afterClose: "Closed",
          byName: "Closed",
          byHandle: "Closed",
          listed: []
        })
      })
  )

  it.effect(
    "SQL DEALLOCATE and DISCARD ALL drop named statements: bound by name afterwards, refused, never misread",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const one = yield* conn.prepare("select 1::int4 as a", { name: "dropped_one" })
            const kept = yield* conn.prepare("select 2::int4 as a", { name: "dropped_kept" })
            const p = yield* conn.pipeline
            // Queued before the DEALLOCATE's answer, an SQL PREPARE takes the name again: binding it
            // by name now would run that text statement and read it as the int4 one.
            const failed = yield* p.execute("deallocate no_such_statement")
            yield* p.sendSync
            yield* p.execute("deallocate dropped_one")
            yield* p.execute("prepare dropped_one as select 'abcd'::text as a")
            yield* p.sendSync
            const byName = yield* Effect.flip(p.executePrepared("dropped_one"))
            const byHandle = yield* Effect.flip(p.execute(one))
            yield* within(10_000)(p.sync)
            // A DEALLOCATE that failed dropped nothing: the other statement still runs.
            const stillKept = (yield* within(10_000)(Effect.flatten(p.execute(kept)))).rows
            yield* within(10_000)(p.sync)
            // Alone in its segment (with others there it is refused: an implicit transaction block).
            yield* p.execute("discard all")
            const afterDiscard = yield* Effect.flip(p.execute(kept))
            yield* within(10_000)(p.sync)
            const listed = yield* within(10_000)(
              Effect.flatten(p.execute("select count(*)::int as n from pg_prepared_statements"))
            )
            return {
              failed: (yield* Effect.flip(failed))._tag,
              byName: reasonOf(byName),
              byHandle: reasonOf(byHandle),
              stillKept,
              afterDiscard: reasonOf(afterDiscard),
              listed: listed.rows
            }
          })
        )
        expect(out).toEqual({
          failed: "InvalidSqlStatementName",
          byName: "Closed",
          byHandle: "Closed",
          stillKept: [{ a: 2 }],
          afterDiscard: "Closed",
          listed: [{ n: 1 }]
        })
      })
  )

  it.effect("a script that deallocates a named statement drops it for the client too", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const s = yield* conn.prepare("select 1::int4 as a", { name: "script_dropped" })
          const t = yield* conn.prepare("select 2::int4 as a", { name: "script_kept" })
          yield* conn.script(
            "select 1; deallocate script_dropped; prepare script_dropped as select 'x'::text as a"
          )
          const dropped = yield* Effect.flip(s.execute())
          return {
            dropped: reasonOf(dropped),
            kept: (yield* t.execute()).rows
          }
        })
      )
      expect(out).toEqual({ dropped: "Closed", kept: [{ a: 2 }] })
    })
  )

  it.effect("SQL DEALLOCATE of a name over 63 bytes drops the statement its first 63 bytes name", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const name = "long_name_".padEnd(63, "x")
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const s = yield* conn.prepare("select 1::int4 as a", { name })
          // The server cuts the name (with a NOTICE) and drops `name`; a text statement takes it.
          yield* conn.query(`deallocate ${name}yyyyyyy`)
          yield* conn.query(`prepare ${name} as select 'abcd'::text as a`)
          const dropped = yield* Effect.flip(s.execute())
          const p = yield* conn.pipeline
          const byName = yield* Effect.flip(p.executePrepared(name))
          yield* within(10_000)(p.sync)
          return { dropped: reasonOf(dropped), byName: reasonOf(byName) }
        })
      )
      expect(out).toEqual({ dropped: "Closed", byName: "Closed" })
    })
  )

  it.effect(
    "while a second Close of a name is unanswered the name cannot be bound, the first one skipped",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const p = yield* conn.pipeline
            yield* p.prepare("select $1::int * 10 as v", { name: "closed_twice" })
            yield* within(10_000)(p.sync)
            yield* p.execute("select 1 / 0 as q")
            yield* p.close("closed_twice")
            const first = yield* p.sendSync
            yield* p.close("closed_twice")
            yield* Effect.exit(within(10_000)(first))
            const run = yield* Effect.flip(p.executePrepared("closed_twice", [3]))
            const after = yield* p.execute("select 2 as two")
            yield* within(10_000)(p.sync)
            return {
              run: reasonOf(run),
              after: (yield* after).rows
            }
          })
        )
        expect(out).toEqual({ run: "Closed", after: [{ two: 2 }] })
      })
  )

  it.effect(
    "SQL that drops statements, read through comments; a script in flight; names over 63 bytes refused",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const out = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            const a = yield* conn.prepare("select 1::int4 as a", { name: "cm_a" })
            const b = yield* conn.prepare("select 2::int4 as a", { name: "cm_b" })
            // Only cm_a goes: cm_b stays bindable (and on the server).
            yield* conn.query("deallocate /* x */ cm_a -- only this one")
            const aGone = yield* Effect.flip(a.execute())
            const bRows = (yield* b.execute()).rows
            // A comment between DISCARD and ALL hides nothing.
            yield* conn.query("discard /* c */ all")
            yield* conn.query("prepare cm_b as select 'abcd'::text as a")
            const bGone = yield* Effect.flip(b.execute())
            // A script still running when the statement is queued: the name is not bound meanwhile.
            const c = yield* conn.prepare("select 3::int4 as a", { name: "cm_c" })
            const [, raced] = yield* Effect.all(
              [
                conn.script(
                  "select pg_sleep(0.05); deallocate cm_c; prepare cm_c as select 'efgh'::text as a"
                ),
                Effect.flip(c.execute())
              ],
              { concurrency: "unbounded" }
            )
            const long = yield* Effect.flip(conn.prepare("select 1", { name: "n".repeat(64) }))
            return {
              aGone: reasonOf(aGone),
              bRows,
              bGone: reasonOf(bGone),
              raced: reasonOf(raced),
              long: reasonOf(long),
              fine: (yield* conn.prepare("select 4 as a", { name: "n".repeat(63) })).name.length
            }
          })
        )
        expect(out).toEqual({
          aGone: "Closed",
          bRows: [{ a: 2 }],
          bGone: "Closed",
          raced: "Closed",
          long: "InvalidText",
          fine: 63
        })
      })
  )

  it.effect("a Close the server skips leaves the statement usable, and the lease's end closes it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const first = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const s = yield* conn.prepare("select 'kept' as v", { name: "skipped_close" })
          const p = yield* conn.pipeline
          const failing = yield* p.execute("select 1/0 as v")
          const closed = yield* p.close(s)
          const status = yield* Effect.exit(within(10_000)(p.sync))
          // The name still holds it on the server: preparing the name again is refused there, and
          // what is bound by name in a later segment meanwhile is refused too, not run against it.
          yield* p.prepare("select 'other' as v, 2 as w", { name: "skipped_close" })
          yield* p.sendSync
          const bound = yield* p.executePrepared("skipped_close")
          yield* Effect.exit(within(10_000)(p.sync))
          const boundError = yield* Effect.flip(bound)
          return {
            failing: (yield* Effect.flip(failing))._tag,
            closed: (yield* Effect.flip(closed))._tag,
            status: status._tag,
            bound: { tag: boundError._tag, reason: "reason" in boundError ? boundError.reason : undefined },
            after: (yield* within(10_000)(Effect.flatten(p.executePrepared("skipped_close")))).rows,
            pid: conn.processId
          }
        })
      )
      expect(first).toMatchObject({
        failing: "DivisionByZero",
        closed: "PipelineAborted",
        bound: { tag: "StatementRejected", reason: "PrepareFailed" },
        after: [{ v: "kept" }]
      })
      const second = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const listed = yield* conn.query(
            "select name from pg_prepared_statements where name = 'skipped_close'"
          )
          const again = yield* conn.prepare("select 'again' as v", { name: "skipped_close" })
          return { pid: conn.processId, listed: listed.rows, rows: (yield* again.execute()).rows }
        })
      )
      expect(second).toEqual({ pid: first.pid, listed: [], rows: [{ v: "again" }] })
    })
  )

  it.effect("a Parse that fails in a pipeline aborts the rest of its segment, typed", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const p = yield* conn.pipeline
          const bad = yield* p.prepare("select * from no_such_table_for_prepare", { name: "bad_one" })
          const next = yield* p.execute("select 1 as one")
          yield* Effect.exit(p.sync)
          const badError = yield* Effect.flip(bad)
          const nextError = yield* Effect.flip(next)
          const listed = yield* conn.query("select name from pg_prepared_statements where name = 'bad_one'")
          return { bad: badError._tag, next: nextError._tag, listed: listed.rows }
        })
      )
      expect(out).toEqual({ bad: "UndefinedTable", next: "PipelineAborted", listed: [] })
    })
  )

  it.effect("sendSync ends a segment without waiting; its effect gives the sync's answer later", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          const p = yield* conn.pipeline
          const a = yield* p.execute("select 1 / $1::int as q", [0])
          const first = yield* p.sendSync
          // A new segment: the failure above does not abort it.
          const b = yield* p.execute("select 2 as two")
          const second = yield* p.sendSync
          const firstAnswer = yield* Effect.flip(first)
          return {
            a: (yield* Effect.flip(a))._tag,
            firstAnswer: firstAnswer._tag,
            b: (yield* b).rows,
            second: yield* second
          }
        })
      )
      expect(out).toEqual({
        a: "DivisionByZero",
        firstAnswer: "DivisionByZero",
        b: [{ two: 2 }],
        second: "I"
      })
    })
  )

  it.effect(
    "describePortal: a declared cursor's fields, directly and inside a pipeline; an unknown one is 34000",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        const shared = yield* Effect.flip(pg.describePortal("c"))
        expect(shared).toMatchObject({ _tag: "StatementRejected", reason: "SharedConnection" })
        const out = yield* pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("declare c cursor for select 1::int as a, 'x'::text as b, now() as c")
            const direct = yield* pg.describePortal("c")
            const piped = yield* pg.withPipeline((p) =>
              Effect.gen(function* () {
                const handle = yield* p.describePortal("c")
                const after = yield* p.execute("select 2 as two")
                yield* p.sync
                return { fields: yield* handle, after: (yield* after).rows }
              })
            )
            return { direct, piped }
          })
        )
        expect(out.direct.map((f) => [f.name, f.typeOid])).toEqual([
          ["a", INT4],
          ["b", TEXT],
          ["c", 1184]
        ])
        expect(out.piped).toEqual({ fields: out.direct, after: [{ two: 2 }] })
        const unknown = yield* Effect.scoped(
          Effect.flatMap(pg.reserve, (conn) => Effect.flip(conn.describePortal("nope")))
        )
        expect(unknown._tag).toBe("InvalidCursorName")
      })
  )
})
