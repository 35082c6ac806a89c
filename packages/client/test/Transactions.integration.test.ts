/**
 * Transactions and connection state against a real server: withTransaction (one connection for
 * the effect and the fibers it forks, concurrent statements pipelined, COMMIT / ROLLBACK on every
 * kind of exit, savepoints, a COMMIT answered ROLLBACK, options), transaction control refused on
 * shared connections, reserve, pipelineTransaction rolling back, pipelines joining, and no
 * connection going back to the pool inside a transaction block (checked in pg_stat_activity).
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientApi, Pipeline } from "@pgline/client"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import { Cause, Deferred, Effect, Exit, Fiber, Logger, Scope, Stream } from "effect"
import { errorOf, within } from "./support/pipeline.ts"
import { backendsOf, eventually, poolClient, untilRunning } from "./support/pool.ts"

const count = (pg: PgClientApi, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

/** No backend of the client is inside a transaction block (waits for the pool's clean-up). */
const noOpenBlock = (observer: PgClientApi, app: string) =>
  eventually(
    Effect.map(backendsOf(observer, app), (rows) => rows.every((r) => r.state === "idle")),
    5_000,
    "every backend idle, none in a transaction block"
  )

class AppError {
  readonly _tag = "AppError"
}

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("transactions", (it) => {
  it.effect("a first statement the client refuses before sending, caught, leaves the block usable", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table tx_first_refused (v int)")
      // The BEGIN goes with the block's first statement: refused, neither was sent, and the next
      // statement sends the BEGIN (it used to fail with the refusal, and so did the COMMIT).
      yield* pg.withTransaction(
        Effect.gen(function* () {
          const refused = yield* Effect.flip(pg.query("select $1::int as v", [undefined]))
          expect(refused._tag).toBe("ParameterError")
          const invalidDate = yield* Effect.flip(
            pg.query("select $1::timestamptz as t", [new Date("garbage")])
          )
          expect(["ParameterError", "StatementRejected"]).toContain(invalidDate._tag)
          yield* pg.query("insert into tx_first_refused values (1)")
        })
      )
      expect((yield* pg.query("select v from tx_first_refused")).rows).toEqual([{ v: 1 }])
    })
  )

  it.effect(
    "a pipeline transaction whose body throws is undone; the connection's own COMMIT works after",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table tx_thrower (v int)")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* pg.reserve
            const pid = (yield* c.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
            const thrown = yield* Effect.exit(
              c.pipelineTransaction((): Effect.Effect<void> => {
                throw new Error("a bug in the body")
              })
            )
            expect(Exit.isFailure(thrown) && Cause.hasDies(thrown.cause)).toBe(true)
            // No block was left open.
            expect(
              (yield* c.query<{ s: string | null }>("select pg_current_xact_id_if_assigned()::text as s"))
                .rows
            ).toEqual([{ s: null }])
            yield* c.query("begin")
            yield* c.query("insert into tx_thrower values (1)")
            yield* c.query("commit")
            yield* c.withTransaction(c.query("insert into tx_thrower values (2)"))
            expect((yield* c.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid).toBe(pid)
          })
        )
        expect((yield* pg.query("select v from tx_thrower order by v")).rows).toEqual([{ v: 1 }, { v: 2 }])
      })
  )

  it.effect("a second fiber's top-level block on a connection whose block has not begun yet is refused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table tx_two (v int)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const c = yield* pg.reserve
          // A's BEGIN goes out with its first statement, after the sleep.
          const a = yield* Effect.forkChild(
            c.withTransaction(Effect.andThen(Effect.sleep(200), c.query("insert into tx_two values (1)")))
          )
          yield* Effect.sleep(50)
          const b = yield* Effect.flip(c.withTransaction(c.query("insert into tx_two values (2)")))
          expect(b).toMatchObject({ _tag: "StatementRejected", reason: "TransactionControl" })
          const bp = yield* Effect.flip(
            c.pipelineTransaction((p) => p.execute("insert into tx_two values (3)"))
          )
          expect(bp).toMatchObject({ _tag: "StatementRejected", reason: "TransactionControl" })
          yield* Fiber.join(a)
          // Started once A's BEGIN is answered, B's block is a savepoint inside A's (documented):
          // it succeeds, and A's failure takes it along.
          const a2 = yield* Effect.forkChild(
            Effect.flip(
              c.withTransaction(
                Effect.andThen(
                  c.query("insert into tx_two values (4)"),
                  Effect.andThen(Effect.sleep(300), Effect.fail("A fails" as const))
                )
              )
            )
          )
          yield* Effect.sleep(100)
          yield* c.withTransaction(c.query("insert into tx_two values (5)"))
          expect(yield* Fiber.join(a2)).toBe("A fails")
        })
      )
      expect((yield* pg.query("select v from tx_two")).rows).toEqual([{ v: 1 }])
    })
  )

  it.effect(
    "COMMIT, ROLLBACK and the like inside a transaction block are refused by every path; savepoints work",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        yield* pg.query("create table tx_ender (v int)")
        const insert = (v: number) => pg.query("insert into tx_ender values ($1)", [v])
        const enders = [
          "commit",
          "ROLLBACK",
          "end",
          "abort",
          "commit and chain",
          "rollback work",
          "prepare transaction 'x'"
        ]
        const tags: Array<string> = []
        const refused = <A, E>(self: Effect.Effect<A, E>) =>
          Effect.flatMap(errorOf(self), (e) =>
            Effect.sync(() =>
              tags.push(`${(e as { _tag: string })._tag}/${(e as { reason?: string }).reason}`)
            )
          )
        const failed = yield* Effect.flip(
          pg.withTransaction(
            Effect.gen(function* () {
              yield* insert(1)
              for (const text of enders) yield* refused(pg.query(text))
              yield* refused(pg.script("insert into tx_ender values (2); commit"))
              yield* refused(pg.all([pg.sql`insert into tx_ender values (3)`, pg.sql`commit`]))
              yield* refused(Stream.runCollect(pg.stream("commit")))
              yield* refused(Effect.scoped(Effect.flatMap(pg.pipeline, (p) => p.execute("commit"))))
              // Savepoints stay inside the block.
              yield* pg.query("savepoint s1")
              yield* insert(4)
              yield* pg.query("rollback to savepoint s1")
              yield* pg.query("release savepoint s1")
              yield* insert(5)
              return yield* Effect.fail("undo" as const)
            })
          )
        )
        expect(failed).toBe("undo")
        expect(tags).toHaveLength(enders.length + 4)
        for (const tag of tags) expect(tag).toBe("StatementRejected/TransactionControl")
        // Everything was rolled back with the block: nothing ran outside it.
        expect((yield* pg.query("select count(*)::int as n from tx_ender")).rows).toEqual([{ n: 0 }])
        // The same in a pipeline transaction: its execute and the fiber's own queries.
        const inPipeline = yield* Effect.flip(
          pg.pipelineTransaction((p) =>
            Effect.gen(function* () {
              yield* p.execute("insert into tx_ender values (6)")
              yield* refused(p.execute("commit"))
              yield* refused(p.executeMany("rollback", [[]]))
              yield* p.sync
              yield* refused(pg.query("commit"))
              return yield* Effect.fail("undo" as const)
            })
          )
        )
        expect(inPipeline).toBe("undo")
        expect(tags).toHaveLength(enders.length + 7)
        expect((yield* pg.query("select count(*)::int as n from tx_ender")).rows).toEqual([{ n: 0 }])
        // Statements prepared by name (in the block, or earlier on a reserved connection), and a
        // pipeline the fiber opened before the block: checked by their text too.
        const enderRuns = <A, E>(self: Effect.Effect<A, E>) =>
          Effect.flip(
            pg.withTransaction(
              Effect.andThen(insert(8), Effect.andThen(refused(self), Effect.fail("undo" as const)))
            )
          )
        yield* enderRuns(Effect.flatMap(pg.prepare("commit"), (s) => s.execute()))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* pg.reserve
            const early = yield* c.prepare("commit", { name: "finish" })
            yield* Effect.flip(
              c.withTransaction(
                Effect.andThen(
                  c.query("insert into tx_ender values (9)"),
                  Effect.andThen(refused(early.execute()), Effect.fail("undo" as const))
                )
              )
            )
            yield* Effect.flip(
              c.pipelineTransaction((p) =>
                Effect.andThen(
                  p.execute("insert into tx_ender values (10)"),
                  Effect.andThen(refused(p.executePrepared("finish")), Effect.fail("undo" as const))
                )
              )
            )
            // A harmless statement whose name reads like a keyword runs.
            yield* c.prepare("select 42 as v", { name: "end" })
            const named = yield* c.pipelineTransaction((p) =>
              Effect.flatMap(p.executePrepared("end"), (h) => h)
            )
            expect(named.rows).toEqual([{ v: 42 }])
          })
        )
        yield* Effect.flip(
          pg.withPipeline((p) =>
            pg.withTransaction(
              Effect.andThen(
                insert(11),
                Effect.andThen(
                  refused(Effect.flatMap(p.execute("commit"), (h) => h)),
                  Effect.fail("undo" as const)
                )
              )
            )
          )
        )
        expect(tags).toHaveLength(enders.length + 11)
        for (const tag of tags) expect(tag).toBe("StatementRejected/TransactionControl")
        expect((yield* pg.query("select count(*)::int as n from tx_ender")).rows).toEqual([{ n: 0 }])
        // ROLLBACK TO in every spelling stays inside the block.
        yield* pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("savepoint a")
            for (const back of [
              "rollback work to savepoint a",
              "ROLLBACK TRANSACTION TO SAVEPOINT a",
              "rollback -- back\n to savepoint a",
              "rollback /* back */ to a"
            ])
              yield* pg.query(back)
          })
        )
        // A withTransaction that is a savepoint in a block the user began on a reserved connection.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* pg.reserve
            yield* c.query("begin")
            yield* Effect.flip(
              c.withTransaction(
                Effect.andThen(
                  c.query("insert into tx_ender values (12)"),
                  Effect.andThen(refused(c.query("commit")), Effect.fail("undo" as const))
                )
              )
            )
            yield* c.query("rollback")
          })
        )
        expect(tags).toHaveLength(enders.length + 12)
        expect((yield* pg.query("select count(*)::int as n from tx_ender")).rows).toEqual([{ n: 0 }])
        // Outside a block, on a connection of one's own, they are the user's to send.
        yield* Effect.scoped(
          Effect.flatMap(pg.reserve, (c) =>
            Effect.andThen(
              c.query("begin"),
              Effect.andThen(c.query("insert into tx_ender values (7)"), c.query("commit"))
            )
          )
        )
        expect((yield* pg.query("select count(*)::int as n from tx_ender")).rows).toEqual([{ n: 1 }])
      })
  )

  it.effect("withTransaction: the effect and its child fibers share one connection and one transaction", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 4 })
      yield* pg.query("create table tx_commit (v int)")
      const seen = yield* pg.withTransaction(
        Effect.all(
          Array.from({ length: 20 }, (_, i) =>
            Effect.map(
              pg.query<{ pid: number; xid: string }>(
                "insert into tx_commit values ($1) returning pg_backend_pid() as pid, txid_current()::text as xid",
                [i]
              ),
              (r) => r.rows[0]!
            )
          ),
          { concurrency: "unbounded" }
        )
      )
      expect(new Set(seen.map((s) => s.pid)).size).toBe(1)
      expect(new Set(seen.map((s) => s.xid)).size).toBe(1)
      expect(yield* count(pg, "tx_commit")).toBe(20)
    })
  )

  it.effect(
    "nothing of an open transaction is visible outside it until COMMIT; forked fibers are inside",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 4 })
        const observer = (yield* poolClient({ max: 1 })).pg
        yield* pg.query("create table tx_visible (v int)")
        const seen = yield* pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("insert into tx_visible values (1)")
            // A fiber forked inside the transaction inherits it: same connection, sees the row.
            const forked = yield* Effect.forkChild(count(pg, "tx_visible")).pipe(Effect.flatMap(Fiber.join))
            return {
              forked,
              own: yield* count(pg, "tx_visible"),
              outside: yield* count(observer, "tx_visible")
            }
          })
        )
        expect(seen).toEqual({ forked: 1, own: 1, outside: 0 })
        expect(yield* count(observer, "tx_visible")).toBe(1)
      })
  )

  it.effect("statements issued concurrently inside a transaction share round trips", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 10 })
      const { pg } = yield* poolClient({ url: withProxyUrl(info.url, proxy), max: 2 })
      yield* pg.query("create table tx_pipelined (v int)")
      const flights = yield* pg.withTransaction(
        Effect.gen(function* () {
          const before = proxy.stats().clientFlights
          yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => pg.query("insert into tx_pipelined values ($1)", [i])),
            { concurrency: "unbounded" }
          )
          return proxy.stats().clientFlights - before
        })
      )
      // 20 statements, each with its own Sync: one or two flights, not twenty.
      expect(flights).toBeLessThanOrEqual(3)
      expect(yield* count(pg, "tx_pipelined")).toBe(20)
    })
  )

  it.effect(
    "BEGIN goes out with the first statement: k statements in a block cost k + 1 round trips, none without statements",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 5 })
        const { pg } = yield* poolClient({ url: withProxyUrl(info.url, proxy), max: 1 })
        yield* pg.query("create table tx_begin_first (v int)")
        const flightsOf = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const before = proxy.stats().clientFlights
            const value = yield* effect
            return { value, flights: proxy.stats().clientFlights - before }
          })
        const insert = (v: number) =>
          pg.query<{ xid: string }>(
            "insert into tx_begin_first values ($1) returning txid_current()::text as xid",
            [v]
          )
        for (const k of [1, 2, 3]) {
          const { value, flights } = yield* flightsOf(
            pg.withTransaction(
              Effect.forEach(
                Array.from({ length: k }, (_, i) => i),
                (i) => insert(i)
              )
            )
          )
          expect({ k, flights }).toEqual({ k, flights: k + 1 })
          // One transaction: every statement saw the same xid.
          expect(new Set(value.map((r) => r.rows[0]!.xid)).size).toBe(1)
        }
        expect(yield* count(pg, "tx_begin_first")).toBe(6)
        const empty = yield* flightsOf(pg.withTransaction(Effect.succeed("nothing ran")))
        expect(empty).toEqual({ value: "nothing ran", flights: 0 })
        // A failing body that ran no statement: nothing to roll back, no round trip either.
        const failed = yield* flightsOf(Effect.flip(pg.withTransaction(Effect.fail(new AppError()))))
        expect(failed.value).toBeInstanceOf(AppError)
        expect(failed.flights).toBe(0)
        // The first statement fails: BEGIN ran, the block is rolled back (one more round trip).
        const bad = yield* flightsOf(Effect.flip(pg.withTransaction(pg.query("select 1/0"))))
        expect(bad.value._tag).toBe("DivisionByZero")
        expect(bad.flights).toBe(2)
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      })
  )

  it.effect(
    "a forked fiber still waiting for BEGIN's answer when the block's effect ends gets TransactionEnded; its statement never runs",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table tx_outlived (v int)")
        const insert = (v: number) => pg.query("insert into tx_outlived values ($1)", [v])
        const [first, second] = yield* pg.withTransaction(
          Effect.gen(function* () {
            // Started at once: the first carries BEGIN, the second waits for its answer; the block's
            // effect returns before either is answered.
            const first = yield* Effect.forkDetach(insert(1), { startImmediately: true })
            const second = yield* Effect.forkDetach(insert(2), { startImmediately: true })
            return [first, second] as const
          })
        )
        expect((yield* Fiber.await(first))._tag).toBe("Success")
        const late = yield* Fiber.await(second)
        expect(late._tag).toBe("Failure")
        expect(Cause.squash((late as Exit.Failure<unknown, { _tag: string }>).cause)).toMatchObject({
          _tag: "StatementRejected",
          reason: "TransactionEnded"
        })
        // The first committed with the block; the second never ran, in it or after it.
        expect((yield* pg.query("select v from tx_outlived order by v")).rows).toEqual([{ v: 1 }])
      })
  )

  it.effect("ROLLBACK on failure, defect, interruption and timeout; the connection is clean after each", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table tx_rollback (v text)")
      const insert = (v: string) => pg.query("insert into tx_rollback values ($1)", [v])
      // Failure with an application error.
      const failed = yield* Effect.flip(
        pg.withTransaction(Effect.andThen(insert("failure"), Effect.fail(new AppError())))
      )
      expect(failed).toBeInstanceOf(AppError)
      // A defect.
      const died = yield* Effect.exit(
        pg.withTransaction(Effect.andThen(insert("defect"), Effect.die("boom")))
      )
      expect(Exit.hasDies(died)).toBe(true)
      // Interruption while a statement of the body runs.
      const fiber = yield* Effect.forkChild(
        pg.withTransaction(
          Effect.andThen(insert("interrupted"), pg.query("select pg_sleep(30) as tx_interrupt_sleep"))
        )
      )
      yield* untilRunning(observer, app, "tx_interrupt_sleep")
      yield* within(5_000)(Fiber.interrupt(fiber))
      // A timeout around the transaction.
      const timedOut = yield* Effect.flip(
        Effect.timeout(
          pg.withTransaction(Effect.andThen(insert("timeout"), pg.query("select pg_sleep(30)"))),
          300
        )
      )
      expect(timedOut._tag).toBe("TimeoutError")
      expect(yield* count(pg, "tx_rollback")).toBe(0)
      yield* noOpenBlock(observer, app)
      // And the pool's connections work as before.
      yield* pg.withTransaction(insert("kept"))
      expect((yield* pg.query("select v from tx_rollback")).rows).toEqual([{ v: "kept" }])
    })
  )

  it.effect("interrupted while waiting for BEGIN's answer: rolled back, the connection reusable", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table tx_begin_lock (v int)")
      // Hold a lock so the body's first statement blocks; interrupt at several points in a row.
      for (const delay of [0, 1, 5, 20]) {
        const fiber = yield* Effect.forkChild(
          pg.withTransaction(pg.query("insert into tx_begin_lock values (1)"))
        )
        yield* Effect.sleep(delay)
        yield* within(5_000)(Fiber.interrupt(fiber))
      }
      yield* noOpenBlock(observer, app)
      // Each run either committed whole or not at all.
      const n = yield* count(pg, "tx_begin_lock")
      expect(n).toBeGreaterThanOrEqual(0)
      expect(n).toBeLessThanOrEqual(4)
      yield* pg.withTransaction(pg.query("insert into tx_begin_lock values (2)"))
      expect(yield* count(pg, "tx_begin_lock")).toBe(n + 1)
    })
  )

  it.effect("nested withTransaction is a savepoint: an inner failure undoes only the inner work", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table tx_nested (v text)")
      const insert = (v: string) => pg.query("insert into tx_nested values ($1)", [v])
      yield* pg.withTransaction(
        Effect.gen(function* () {
          yield* insert("outer")
          const inner = yield* Effect.flip(
            pg.withTransaction(Effect.andThen(insert("inner"), Effect.fail(new AppError())))
          )
          expect(inner).toBeInstanceOf(AppError)
          yield* pg.withTransaction(insert("inner kept"))
          // A server error inside a savepoint: the enclosing transaction goes on.
          const divided = yield* Effect.flip(pg.withTransaction(pg.query("select 1/0")))
          expect(divided._tag).toBe("DivisionByZero")
          yield* insert("after")
        })
      )
      expect((yield* pg.query("select v from tx_nested order by v")).rows.map((r) => r["v"])).toEqual([
        "after",
        "inner kept",
        "outer"
      ])
    })
  )

  it.effect("concurrent savepoints of sibling fibers do not undo each other", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table tx_siblings (v int)")
      yield* pg.withTransaction(
        Effect.all(
          Array.from({ length: 10 }, (_, i) =>
            Effect.ignore(
              pg.withTransaction(
                Effect.andThen(
                  pg.query("insert into tx_siblings values ($1)", [i]),
                  i % 2 === 0 ? Effect.fail(new AppError()) : Effect.void
                )
              )
            )
          ),
          { concurrency: "unbounded" }
        )
      )
      expect((yield* pg.query("select v from tx_siblings order by v")).rows.map((r) => r["v"])).toEqual([
        1, 3, 5, 7, 9
      ])
    })
  )

  it.effect("a COMMIT the server answers with ROLLBACK is a typed failure", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table tx_failed_block (v int)")
      const error = yield* errorOf(
        pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("insert into tx_failed_block values (1)")
            // The error is caught, but the block has failed: COMMIT can only roll back.
            yield* Effect.ignore(pg.query("select 1/0"))
          })
        )
      )
      expect(error).toMatchObject({ _tag: "StatementRejected", reason: "TransactionRolledBack" })
      expect(yield* count(pg, "tx_failed_block")).toBe(0)
      yield* noOpenBlock(observer, app)
    })
  )

  it.effect("pipelineTransaction: a COMMIT the server answers with ROLLBACK is a typed failure", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table tx_failed_pipeline (v int)")
      const error = yield* errorOf(
        pg.pipelineTransaction((p) =>
          Effect.gen(function* () {
            yield* p.execute("insert into tx_failed_pipeline values (1)")
            yield* p.execute("select 1/0")
            // The segment's error is caught at its sync; the block has failed all the same.
            yield* Effect.ignore(p.sync)
          })
        )
      )
      expect(error).toMatchObject({ _tag: "StatementRejected", reason: "TransactionRolledBack" })
      expect(yield* count(pg, "tx_failed_pipeline")).toBe(0)
      yield* noOpenBlock(observer, app)
    })
  )

  it.effect("options: isolation level, read only, deferrable", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const isolation = yield* pg.withTransaction(pg.query("show transaction_isolation"), {
        isolation: "serializable",
        readOnly: true,
        deferrable: true
      })
      expect(isolation.rows).toEqual([{ transaction_isolation: "serializable" }])
      const readOnly = yield* errorOf(
        pg.withTransaction(pg.query("create table tx_never (v int)"), { readOnly: true })
      )
      expect(readOnly._tag).toBe("ReadOnlySqlTransaction")
      const repeatable = yield* pg.withTransaction(pg.query("show transaction_isolation"), {
        isolation: "repeatable read"
      })
      expect(repeatable.rows).toEqual([{ transaction_isolation: "repeatable read" }])
    })
  )

  it.effect("transaction control on a shared connection is refused before anything is sent", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      for (const text of [
        "begin",
        "  BEGIN ISOLATION LEVEL SERIALIZABLE",
        "start transaction",
        "commit",
        "end",
        "rollback",
        "abort",
        "savepoint s",
        "release savepoint s",
        "/* hidden */ begin",
        ";begin",
        " ; /* x */ ; start transaction",
        "prepare transaction 'x'"
      ]) {
        expect(yield* errorOf(pg.query(text))).toMatchObject({
          _tag: "StatementRejected",
          reason: "TransactionControl"
        })
      }
      expect((yield* errorOf(pg.all([pg.sql`begin`, pg.sql`select 1`])))._tag).toBe("StatementRejected")
      // Not transaction control: prepared statements, COMMIT PREPARED of another session's work.
      yield* pg.query("prepare tx_named as select 1")
      expect((yield* errorOf(pg.query("commit prepared 'no_such_gid'")))._tag).toBe("UndefinedObject")
      // Allowed where the connection is the caller's: reserve, pipelines, withTransaction.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("begin")
          yield* conn.query("savepoint s")
          yield* conn.query("rollback to savepoint s")
          yield* conn.query("commit")
        })
      )
      yield* pg.withPipeline((p) =>
        Effect.all([p.execute("begin"), p.execute("select 1"), p.execute("commit")])
      )
      yield* pg.withTransaction(pg.query("savepoint inner_mark"))
    })
  )

  it.effect(
    "withTransaction inside withPipeline: statements of fibers it forks run in it, concurrently",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        yield* pg.query("create table tx_in_pipeline (v int)")
        const xids = yield* within(10_000)(
          pg.withPipeline(() =>
            pg.withTransaction(
              Effect.gen(function* () {
                const inserted = yield* Effect.all(
                  [1, 2, 3].map((v) =>
                    pg.query<{ x: string }>(
                      "insert into tx_in_pipeline values ($1) returning pg_current_xact_id()::text as x",
                      [v]
                    )
                  ),
                  { concurrency: "unbounded" }
                )
                // A savepoint from forked fibers too.
                yield* Effect.all(
                  [
                    pg.withTransaction(pg.query("insert into tx_in_pipeline values (4)")),
                    pg.query("select 1")
                  ],
                  { concurrency: 2 }
                )
                return inserted.map((r) => r.rows[0]!.x)
              })
            )
          )
        )
        expect(new Set(xids).size).toBe(1)
        expect((yield* pg.query("select v from tx_in_pipeline order by v")).rows).toEqual([
          { v: 1 },
          { v: 2 },
          { v: 3 },
          { v: 4 }
        ])
      })
  )

  it.effect(
    "pg.query inside pipelineTransaction's body belongs to it: refused mid-segment, in the block after a sync",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table tx_body_query (v int)")
        const refused = yield* errorOf(
          within(5_000)(
            pg.pipelineTransaction((p) =>
              Effect.andThen(p.execute("insert into tx_body_query values (1)"), pg.query("select 1"))
            )
          )
        )
        expect(refused).toMatchObject({ _tag: "StatementRejected", reason: "PipelineOpen" })
        const [inPipeline, inQuery] = yield* within(5_000)(
          pg.pipelineTransaction((p) =>
            Effect.gen(function* () {
              const first = yield* p.execute<{ x: string }>(
                "insert into tx_body_query values (2) returning pg_current_xact_id()::text as x"
              )
              yield* p.sync
              const second = yield* pg.query<{ x: string }>(
                "insert into tx_body_query values (3) returning pg_current_xact_id()::text as x"
              )
              return [(yield* first).rows[0]!.x, second.rows[0]!.x]
            })
          )
        )
        expect(inQuery).toBe(inPipeline)
        expect((yield* pg.query("select v from tx_body_query order by v")).rows).toEqual([{ v: 2 }, { v: 3 }])
      })
  )

  it.effect(
    "withTransaction inside withPipeline: forked fibers' scripts, streams, prepares, pipelines never wait for good",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2, acquireTimeout: 3_000 })
        const cases: Record<string, Effect.Effect<unknown, unknown>> = {
          script: pg.script("select 1"),
          prepare: Effect.flatMap(pg.prepare("select 1 as one"), (s) => s.execute([])),
          stream: Stream.runCollect(pg.stream("select 1")),
          copyTo: Stream.runCollect(pg.copyTo("copy (select 1) to stdout")),
          pipeline: Effect.scoped(Effect.flatMap(pg.pipeline, (p) => p.execute("select 1"))),
          pipelineTransaction: pg.pipelineTransaction((p) => p.execute("select 1"))
        }
        const outcomes: Record<string, string> = {}
        for (const [name, effect] of Object.entries(cases)) {
          const exit = yield* Effect.exit(
            within(10_000)(
              pg.withPipeline(() =>
                pg.withTransaction(
                  Effect.andThen(pg.query("select 1"), Effect.all([effect, effect], { concurrency: 2 }))
                )
              )
            )
          )
          const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
          outcomes[name] = error === undefined ? "done" : ((error as { _tag?: string })._tag ?? String(error))
        }
        // Statements run as the transaction's; what needs the connection to itself is refused.
        expect(outcomes).toEqual({
          script: "done",
          prepare: "done",
          stream: "StatementRejected",
          copyTo: "StatementRejected",
          pipeline: "StatementRejected",
          pipelineTransaction: "StatementRejected"
        })
      })
  )

  it.effect(
    "a pipelineTransaction on a reserved connection inside a pool pipeline gives the fiber back to that pipeline",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 3 })
        yield* pg.query("create table tx_nested_owner (v text)")
        const exit = yield* Effect.exit(
          pg.withPipeline((p) =>
            Effect.gen(function* () {
              yield* p.execute("begin")
              yield* p.execute("insert into tx_nested_owner values ('before')")
              yield* p.sync
              yield* Effect.scoped(
                Effect.flatMap(pg.reserve, (reserved) =>
                  reserved.pipelineTransaction((q) => q.execute("select 1"))
                )
              )
              // Still this pipeline's: inside its block, rolled back with it.
              yield* pg.query("insert into tx_nested_owner values ('after')")
              return yield* Effect.fail("roll back")
            })
          )
        )
        expect(Exit.isFailure(exit)).toBe(true)
        expect((yield* pg.query("select v from tx_nested_owner")).rows).toEqual([])
      })
  )

  it.effect("onCommit follows the commit: also when interrupted while COMMIT is in flight", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 3 })
      yield* pg.query("create table tx_on_commit (v int)")
      // COMMIT runs a deferred trigger that waits for an advisory lock the test holds.
      yield* pg.query(`create function tx_on_commit_wait() returns trigger language plpgsql as $$
        begin perform pg_advisory_xact_lock(7301); return null; end $$`)
      yield* pg.query(`create constraint trigger tx_on_commit_wait after insert on tx_on_commit
        deferrable initially deferred for each row execute function tx_on_commit_wait()`)
      const calls: Array<string> = []
      const onCommit = (name: string) => () => {
        calls.push(name)
      }
      yield* Effect.scoped(
        Effect.gen(function* () {
          const holder = yield* pg.reserve
          yield* holder.query("select pg_advisory_lock(7301)")
          const fiber = yield* Effect.forkChild(
            pg.withTransaction(pg.query("insert into tx_on_commit values (1)"), {
              onCommit: onCommit("interrupted")
            })
          )
          yield* eventually(
            Effect.map(
              holder.query<{ n: number }>(
                "select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = 7301 and not granted"
              ),
              (r) => r.rows[0]!.n > 0
            ),
            10_000,
            "COMMIT waits for the lock"
          )
          const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber), { startImmediately: true })
          yield* holder.query("select pg_advisory_unlock(7301)")
          yield* Fiber.join(interrupting)
          expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
        })
      )
      // Not called: a rollback, a COMMIT answered ROLLBACK; called: a released savepoint, an empty block.
      yield* Effect.exit(pg.withTransaction(Effect.fail("no"), { onCommit: onCommit("failed") }))
      yield* Effect.exit(
        pg.withTransaction(Effect.ignore(pg.query("select 1/0")), { onCommit: onCommit("rolled back") })
      )
      yield* pg.withTransaction(
        pg.withTransaction(pg.query("insert into tx_on_commit values (2)"), {
          onCommit: onCommit("savepoint")
        }),
        { onCommit: onCommit("outer") }
      )
      yield* pg.withTransaction(Effect.void, { onCommit: onCommit("empty") })
      expect(calls).toEqual(["interrupted", "savepoint", "outer", "empty"])
      expect((yield* pg.query("select v from tx_on_commit order by v")).rows).toEqual([{ v: 1 }, { v: 2 }])
    })
  )

  it.effect(
    "a pipeline opened inside withTransaction ends with it, even when the caller's Scope lives on",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table tx_pipe_outlives (v text)")
        yield* Effect.scoped(
          Effect.gen(function* () {
            let p: Pipeline | undefined
            yield* pg.withTransaction(
              Effect.gen(function* () {
                p = yield* pg.pipeline
                // Not synced by the block: the transaction's end syncs it before COMMIT.
                yield* p.execute("insert into tx_pipe_outlives values ('in tx')")
              })
            )
            expect(yield* errorOf(p!.execute("select 1"))).toMatchObject({
              _tag: "StatementRejected",
              reason: "PipelineClosed"
            })
            // Another fiber's transaction takes the pool's only connection and will roll back.
            const inTransaction = yield* Deferred.make<void>()
            const finish = yield* Deferred.make<void>()
            const other = yield* Effect.forkChild(
              pg.withTransaction(
                Effect.gen(function* () {
                  yield* pg.query("insert into tx_pipe_outlives values ('other, rolled back')")
                  yield* Deferred.succeed(inTransaction, undefined)
                  yield* Deferred.await(finish)
                  return yield* Effect.fail("roll back")
                })
              )
            )
            yield* Deferred.await(inTransaction)
            // This fiber's next statement waits for the connection instead of joining that block.
            const mine = yield* Effect.forkChild(pg.query("insert into tx_pipe_outlives values ('after')"))
            yield* Effect.sleep(100)
            yield* Deferred.succeed(finish, undefined)
            expect(Exit.isFailure(yield* Fiber.await(other))).toBe(true)
            expect((yield* within(5_000)(Fiber.join(mine))).command).toBe("INSERT")
          })
        )
        expect((yield* pg.query("select v from tx_pipe_outlives order by v")).rows).toEqual([
          { v: "after" },
          { v: "in tx" }
        ])
      })
  )

  it.effect("a pipeline whose Scope outlives its reserved connection: the pool closes that connection", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          let p: Pipeline | undefined
          let reservedPid = 0
          const outer = yield* Effect.scope
          yield* Effect.scoped(
            Effect.gen(function* () {
              const conn = yield* pg.reserve
              reservedPid = conn.processId
              p = yield* Effect.provideService(conn.pipeline, Scope.Scope, outer)
            })
          )
          // The lease ended while the pipeline still held the connection: the pool closes it
          // rather than hand it on, so what the pipeline sends next fails.
          yield* eventually(
            Effect.map(Effect.exit(p!.execute("select 1")), (exit) => Exit.isFailure(exit)),
            10_000,
            "the stale pipeline's connection closed"
          )
          expect((yield* errorOf(p!.execute("select 1")))._tag).toBe("ConnectionLost")
          // Another fiber's lease is a new connection.
          const next = yield* Fiber.join(
            yield* Effect.forkChild(
              pg.withTransaction(pg.query<{ pid: number }>("select pg_backend_pid() as pid"))
            )
          )
          expect(next.rows[0]!.pid).not.toBe(reservedPid)
        })
      )
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
    })
  )

  it.effect("200 fibers: failing transactions and plain inserts never capture each other's writes", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 10 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table tx_capture (kind text, n int)")
      const results = yield* within(60_000)(
        Effect.all(
          Array.from({ length: 200 }, (_, i) =>
            i % 2 === 0
              ? Effect.exit(
                  pg.withTransaction(
                    Effect.gen(function* () {
                      yield* pg.query("insert into tx_capture values ('tx', $1)", [i])
                      yield* pg.query("select pg_sleep(0.001)")
                      return yield* Effect.fail(new AppError())
                    })
                  )
                )
              : Effect.exit(pg.query("insert into tx_capture values ('plain', $1)", [i]))
          ),
          { concurrency: "unbounded" }
        )
      )
      expect(results.filter(Exit.isSuccess)).toHaveLength(100)
      const rows = (yield* pg.query<{ kind: string; n: number }>(
        "select kind, count(*)::int as n from tx_capture group by kind"
      )).rows
      expect(rows).toEqual([{ kind: "plain", n: 100 }])
      yield* noOpenBlock(observer, app)
    })
  )

  it.effect("reserve: session state stays on the reserved connection; a block left open is rolled back", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 2 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table reserve_probe (v int)")
      const pid = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("set application_name = 'reserved_probe'")
          yield* conn.query("create temporary table reserve_temp (v int)")
          yield* conn.query("select pg_advisory_lock(42)")
          const shown = yield* conn.query("show application_name")
          expect(shown.rows).toEqual([{ application_name: "reserved_probe" }])
          const locks = yield* conn.query<{ n: number }>(
            "select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
          )
          expect(locks.rows).toEqual([{ n: 1 }])
          yield* conn.query("select pg_advisory_unlock(42)")
          yield* conn.query("reset application_name")
          // Left open on purpose: the scope's end must roll it back.
          yield* conn.query("begin")
          yield* conn.query("insert into reserve_probe values (1)")
          expect(conn.processId).toBeGreaterThan(0)
          return conn.processId
        })
      )
      expect(yield* count(pg, "reserve_probe")).toBe(0)
      yield* noOpenBlock(observer, app)
      expect((yield* backendsOf(observer, app)).map((r) => r.pid)).toContain(pid)
    })
  )

  it.effect(
    "withTransaction on a reserved connection: a transaction, or a savepoint in a block begun by hand",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        yield* pg.query("create table reserve_tx (v text)")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            // pg's statements inside conn's transaction go to conn (the transaction's connection).
            const pids = yield* conn.withTransaction(
              Effect.all([
                conn.query("select pg_backend_pid() as pid"),
                pg.query("select pg_backend_pid() as pid")
              ])
            )
            expect(pids[1].rows).toEqual(pids[0].rows)
            expect(pids[0].rows).toEqual([{ pid: conn.processId }])
            yield* conn.query("begin")
            yield* conn.query("insert into reserve_tx values ('outer')")
            const failed = yield* Effect.flip(
              conn.withTransaction(
                Effect.andThen(
                  conn.query("insert into reserve_tx values ('inner')"),
                  Effect.fail(new AppError())
                )
              )
            )
            expect(failed).toBeInstanceOf(AppError)
            yield* conn.query("commit")
          })
        )
        expect((yield* pg.query("select v from reserve_tx")).rows).toEqual([{ v: "outer" }])
      })
  )

  it.effect("a reserved connection refuses statements after its scope", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const conn = yield* Effect.scoped(pg.reserve)
      expect(yield* errorOf(conn.query("select 1"))).toMatchObject({
        _tag: "StatementRejected",
        reason: "Released"
      })
    })
  )

  it.effect(
    "a pipeline scope that ends inside a block is rolled back; the README transfer pattern is safe",
    () =>
      Effect.gen(function* () {
        const { pg, app } = yield* poolClient({ max: 1 })
        const observer = (yield* poolClient({ max: 1 })).pg
        yield* pg.query("create table pipe_block (id int primary key, balance int check (balance >= 0))")
        yield* pg.query("insert into pipe_block values (1, 0), (2, 0)")
        // begin; a failing update; update; commit; one sync: the failed block must not outlive it.
        const commit = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            yield* p.execute("begin")
            yield* p.execute("update pipe_block set balance = balance - 100 where id = 1")
            yield* p.execute("update pipe_block set balance = balance + 100 where id = 2")
            const commit = yield* p.execute("commit")
            yield* Effect.ignore(p.sync)
            return yield* Effect.exit(commit)
          })
        )
        expect(Exit.isFailure(commit)).toBe(true)
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
        // A block opened and never ended.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            yield* p.execute("begin")
            yield* p.execute("update pipe_block set balance = 7 where id = 1")
            yield* p.sync
          })
        )
        expect((yield* pg.query("select balance from pipe_block where id = 1")).rows).toEqual([
          { balance: 0 }
        ])
        yield* noOpenBlock(observer, app)
      })
  )

  it.effect("pipelineTransaction rolls back when its body fails or is interrupted", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table ptx (v text)")
      const failed = yield* Effect.flip(
        pg.pipelineTransaction((p) =>
          Effect.andThen(p.execute("insert into ptx values ('app error')"), Effect.fail(new AppError()))
        )
      )
      expect(failed).toBeInstanceOf(AppError)
      const fiber = yield* Effect.forkChild(
        pg.pipelineTransaction((p) =>
          Effect.gen(function* () {
            yield* p.execute("insert into ptx values ('interrupted')")
            const h = yield* p.execute("select pg_sleep(30) as ptx_sleep")
            return yield* h
          })
        )
      )
      yield* untilRunning(observer, app, "ptx_sleep")
      yield* within(10_000)(Fiber.interrupt(fiber))
      yield* noOpenBlock(observer, app)
      // Later plain writes commit (they do not land in a forgotten block).
      yield* pg.query("insert into ptx values ('later')")
      expect((yield* observer.query("select v from ptx")).rows).toEqual([{ v: "later" }])
    })
  )

  it.effect(
    "inside a transaction, pipelineTransaction is a savepoint and pipelines use the transaction's connection",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 3 })
        yield* pg.query("create table ptx_nested (v text)")
        yield* pg.withTransaction(
          Effect.gen(function* () {
            const outer = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
            yield* pg.query("insert into ptx_nested values ('outer')")
            const failed = yield* Effect.flip(
              pg.pipelineTransaction((p) =>
                Effect.andThen(
                  p.execute("insert into ptx_nested values ('savepoint')"),
                  p.execute("select 1/0")
                )
              )
            )
            expect(failed._tag).toBe("DivisionByZero")
            const inPipeline = yield* pg.withPipeline((p) =>
              Effect.flatMap(p.execute("select pg_backend_pid() as pid"), (h) => Effect.succeed(h))
            )
            expect((yield* inPipeline).rows).toEqual([{ pid: outer }])
            yield* pg.pipelineTransaction((p) => p.execute("insert into ptx_nested values ('kept')"))
          })
        )
        expect((yield* pg.query("select v from ptx_nested order by v")).rows.map((r) => r["v"])).toEqual([
          "kept",
          "outer"
        ])
      })
  )

  it.effect("pipelines join: pg.pipeline, pg.all and pipelineTransaction inside an open pipeline", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table pipe_join (v text)")
      const out = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const pid = yield* p.execute("select pg_backend_pid() as pid")
          const inner = yield* Effect.scoped(
            Effect.gen(function* () {
              const q = yield* pg.pipeline
              return yield* q.execute("insert into pipe_join values ('joined')")
            })
          )
          expect((yield* inner).rowCount).toBe(1)
          const both = yield* pg.all({
            a: pg.sql`select pg_backend_pid() as pid`,
            b: pg.sql`insert into pipe_join values ('all')`
          })
          yield* pg.pipelineTransaction((t) => t.execute("insert into pipe_join values ('transaction')"))
          return {
            pid: (yield* pid).rows[0]!["pid"],
            allPid: both.a.rows[0]!["pid"],
            inserted: both.b.rowCount
          }
        })
      )
      expect(out.allPid).toBe(out.pid)
      expect(out.inserted).toBe(1)
      expect((yield* pg.query("select v from pipe_join order by v")).rows.map((r) => r["v"])).toEqual([
        "all",
        "joined",
        "transaction"
      ])
    })
  )

  it.effect("withPipeline fails with an error nobody read; a bare pipeline scope logs it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const unread = yield* errorOf(pg.withPipeline((p) => Effect.asVoid(p.execute("select 1/0"))))
      expect(unread._tag).toBe("DivisionByZero")
      const logged: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logged.push(String(Array.isArray(message) ? message.join(" ") : message))
      })
      yield* Effect.scoped(Effect.flatMap(pg.pipeline, (p) => p.execute("select 1/0"))).pipe(
        Effect.provide(Logger.layer([capture]))
      )
      expect(logged.some((m) => m.includes("DivisionByZero"))).toBe(true)
    })
  )
})
