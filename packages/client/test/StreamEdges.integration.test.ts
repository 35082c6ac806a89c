/**
 * pg.stream at its edges against a real server: stopping early inside a transaction block (no
 * cancel, which would abort the block), a second stream or COPY opened by the fiber that holds the
 * connection for a stream (refused, not deadlocked), a decode failure while a later chunk is on
 * the way (no row after the bad one), and a cached statement gone stale with DDL (prepared again,
 * as pg.query does).
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientApi } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Deferred, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { refusingEnum } from "./support/codecs.ts"
import { errorOf, within } from "./support/pipeline.ts"
import { poolClient } from "./support/pool.ts"

const count = (pg: Pick<PgClientApi, "query">, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

/** ~1 ms a row: the chunk asked for while the first is read is still running when the take stops. */
const slowRows = "select g, pg_sleep(0.001) from generate_series(1, 1000) g"

layer(PgServer.layer, { timeout: 180_000, excludeTestServices: true })("stream edges", (it) => {
  it.effect(
    "transaction control streamed on the pool is refused as pg.query refuses it; on reserve it runs",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        for (const text of ["begin", "commit", "savepoint s"]) {
          const refused = yield* errorOf(Stream.runCollect(pg.stream(text)))
          expect(refused).toMatchObject({ _tag: "StatementRejected", reason: "TransactionControl" })
        }
        // On a reserved connection it is the user's: the block is open (its start is not the statement's).
        const inBlock = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* Stream.runDrain(conn.stream("begin"))
            yield* conn.query("select pg_sleep(0.01)")
            const rows = (yield* conn.query<{ fresh: boolean }>(
              "select transaction_timestamp() = statement_timestamp() as fresh"
            )).rows
            yield* Stream.runDrain(conn.stream("rollback"))
            return rows
          })
        )
        expect(inBlock).toEqual([{ fresh: false }])
      })
  )

  it.effect("stopping early inside a transaction block leaves the block usable (no cancel)", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table se_tx (v int)")
      const took = yield* within(20_000)(
        pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("insert into se_tx values (1)")
            const first = yield* Stream.runCollect(
              pg.stream<{ g: number }>(slowRows, { chunkSize: 100 }).pipe(Stream.take(1))
            )
            yield* pg.query("insert into se_tx values (2)")
            return first.map((r) => r.g)
          })
        )
      )
      expect(took).toEqual([1])
      expect(yield* count(pg, "se_tx")).toBe(2)
      // A block begun by hand on a reserved connection is a transaction block as well.
      const inBlock = yield* within(20_000)(
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("begin")
            yield* conn.query("insert into se_tx values (3)")
            yield* Stream.runCollect(conn.stream(slowRows, { chunkSize: 100 }).pipe(Stream.take(2)))
            yield* conn.query("insert into se_tx values (4)")
            yield* conn.query("commit")
            return yield* count(conn, "se_tx")
          })
        )
      )
      expect(inBlock).toBe(4)
    })
  )

  it.effect("a second stream or COPY from the fiber holding the connection is refused, not deadlocked", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      const nested = yield* errorOf(
        pg.withTransaction(
          Stream.runCollect(
            pg
              .stream<{ g: number }>("select g from generate_series(1, 3) g")
              .pipe(Stream.flatMap((r) => pg.stream(pg.sql`select ${r.g}::int * 10 as h`)))
          )
        )
      )
      expect(nested._tag === "StatementRejected" && nested.reason).toBe("StreamOpen")
      const copy = yield* errorOf(
        pg.withTransaction(
          Stream.runForEach(pg.stream("select 1 as one"), () =>
            Stream.runCollect(pg.copyTo("copy (select 1) to stdout"))
          )
        )
      )
      expect(copy._tag === "StatementRejected" && copy.reason).toBe("StreamOpen")
      const reserved = yield* errorOf(
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            return yield* Stream.runCollect(
              conn
                .stream<{ g: number }>("select g from generate_series(1, 3) g")
                .pipe(Stream.flatMap(() => conn.stream("select 2 as two")))
            )
          })
        )
      )
      expect(reserved._tag === "StatementRejected" && reserved.reason).toBe("StreamOpen")
      const copyIn = yield* errorOf(
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* conn.query("create temp table se_nested (v int)")
            return yield* Stream.runForEach(conn.stream("select 1 as one"), () =>
              conn.copyFrom("copy se_nested from stdin", Stream.make("1\n"))
            )
          })
        )
      )
      expect(copyIn._tag === "StatementRejected" && copyIn.reason).toBe("StreamOpen")
      // Outside a transaction the nested stream reads from another connection of the pool.
      const sums = yield* within(10_000)(
        Stream.runCollect(
          pg
            .stream<{ g: number }>("select g from generate_series(1, 3) g")
            .pipe(Stream.flatMap((r) => pg.stream<{ h: number }>(pg.sql`select ${r.g}::int * 10 as h`)))
        )
      )
      expect(sums.map((r) => r.h)).toEqual([10, 20, 30])
    })
  )

  it.effect(
    "a copyFrom source that runs statements on the copy's connection is refused, not deadlocked",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 2 })
        yield* pg.query("create table se_source (v int)")
        // The source asks the server for each value: on the connection the COPY holds.
        const source = Stream.mapEffect(Stream.make(1, 2), (n) =>
          Effect.map(
            pg.query<{ line: string }>("select $1::int::text || e'\\n' as line", [n]),
            (r) => r.rows[0]!.line
          )
        )
        const inTransaction = yield* errorOf(
          within(10_000)(pg.withTransaction(pg.copyFrom("copy se_source from stdin", source)))
        )
        expect(inTransaction._tag === "StatementRejected" && inTransaction.reason).toBe("StreamOpen")
        const reserved = yield* errorOf(
          within(10_000)(
            Effect.scoped(
              Effect.gen(function* () {
                const conn = yield* pg.reserve
                const fromConn = Stream.mapEffect(Stream.make(1), () => conn.query("select 1"))
                return yield* conn.copyFrom(
                  "copy se_source from stdin",
                  Stream.map(fromConn, () => "1\n")
                )
              })
            )
          )
        )
        expect(reserved._tag === "StatementRejected" && reserved.reason).toBe("StreamOpen")
        expect((yield* pg.query("select count(*)::int as n from se_source")).rows).toEqual([{ n: 0 }])
        // On the pool the source's statements take another connection.
        expect((yield* within(10_000)(pg.copyFrom("copy se_source from stdin", source))).rowCount).toBe(2)
      })
  )

  it.effect("a decode failure while the next chunk is on the way: no row after the bad one", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* refusingEnum(pg, "se_mood")
      const seen: Array<number> = []
      // Chunk 1 (rows 1-200) holds the bad row 150; chunk 2 (rows 201-400, ~400 ms) is asked for
      // while chunk 1 is read, and arrives while the consumer is slowly working through 129-149.
      const error = yield* errorOf(
        Stream.runForEach(
          pg.stream<{ g: number }>(
            "select g, (case when g = 150 then 'cross' else 'calm' end)::se_mood as mood, case when g > 200 then pg_sleep(0.002) end as s from generate_series(1, 400) g",
            { chunkSize: 200 }
          ),
          (row) =>
            Effect.andThen(
              Effect.sync(() => seen.push(row.g)),
              row.g > 128 ? Effect.sleep(40) : Effect.void
            )
        )
      )
      expect(error._tag).toBe("ResultDecodeError")
      expect(seen.length).toBe(149)
      expect(Math.max(...seen)).toBe(149)
      expect((yield* pg.query("select 9 as nine")).rows).toEqual([{ nine: 9 }])
    })
  )

  it.effect("a connection lost while the consumer works and no chunk is asked for fails the stream", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      for (const kill of ["terminate", "layer"] as const) {
        const layerScope = yield* Scope.make()
        const scoped =
          kill === "layer"
            ? (yield* Scope.provide(layerScope)(poolClient({ max: 1, closeTimeout: 100 }))).pg
            : pg
        const started = yield* Deferred.make<number>()
        const release = yield* Deferred.make<void>()
        const seen: Array<number> = []
        const consumer = yield* Effect.forkChild(
          Effect.flip(
            within(20_000)(
              Stream.runForEach(
                scoped.stream<{ g: number; pid: number }>(
                  "select g, pg_backend_pid() as pid from generate_series(1, 100000) g",
                  { chunkSize: 10 }
                ),
                (row) =>
                  Effect.gen(function* () {
                    seen.push(row.g)
                    if (row.g === 1) {
                      yield* Deferred.succeed(started, row.pid)
                      yield* Deferred.await(release)
                    }
                  })
              )
            )
          )
        )
        const pid = yield* Deferred.await(started)
        // The chunk asked for while the first is read has arrived: nothing is in flight any more.
        yield* Effect.sleep(300)
        if (kill === "terminate") yield* pg.query("select pg_terminate_backend($1::int)", [pid])
        else yield* Effect.forkChild(Scope.close(layerScope, Exit.void))
        yield* Effect.sleep(300)
        yield* Deferred.succeed(release, undefined)
        const error = yield* Fiber.join(consumer)
        expect(["ConnectionLost", "AdminShutdown"]).toContain(error._tag)
        // The rows already read arrived first, in order, and then the failure.
        expect(seen.length).toBeGreaterThan(1)
        expect(seen).toEqual(seen.map((_, i) => i + 1))
      }
    })
  )

  it.effect(
    "two streams of one reserved connection: merged they read every row; zipped they wait for each other until interrupted",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* Effect.scoped(
          Effect.gen(function* () {
            const c = yield* pg.reserve
            const a = c.stream<{ g: number }>("select g from generate_series(1, 3000) g", { chunkSize: 100 })
            const b = c.stream<{ g: number }>("select -g as g from generate_series(1, 3000) g", {
              chunkSize: 100
            })
            const merged = yield* within(20_000)(Stream.runCollect(Stream.merge(a, b)))
            expect(merged.length).toBe(6000)
            expect(merged.reduce((sum, r) => sum + r.g, 0)).toBe(0)
            const zipped = yield* Effect.exit(Effect.timeout(Stream.runCollect(Stream.zip(a, b)), 1_000))
            expect(Exit.isFailure(zipped) && String(zipped.cause)).toContain("TimeoutError")
            // Interrupted, both streams let go of the connection: it serves again.
            expect((yield* within(10_000)(c.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
          })
        )
      })
  )

  it.effect("chunkSize up to 2^31 - 1 (every row in one chunk) reads the rows; beyond is refused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const text = "select g, g + 1 as h, 'x' || g as t, g::float8 as f from generate_series(1, 5000) g"
      const rows = yield* Stream.runCollect(pg.stream<{ g: number }>(text, { chunkSize: 2 ** 31 - 1 }))
      expect(rows.map((r) => r.g)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1))
      const exit = yield* Effect.exit(Stream.runCollect(pg.stream(text, { chunkSize: 2 ** 31 })))
      expect(String(exit)).toContain("chunkSize must be an integer from 1 to 2^31 - 1")
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
    })
  )

  it.effect("a cached statement gone stale with DDL is prepared again, as pg.query does", () =>
    Effect.gen(function* () {
      // One connection: the stream's text is cached on it.
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table se_stale (a int)")
      yield* pg.query("insert into se_stale values (1)")
      expect(yield* Stream.runCollect(pg.stream("select * from se_stale"))).toEqual([{ a: 1 }])
      yield* pg.query("alter table se_stale add column b int")
      expect(yield* Stream.runCollect(pg.stream("select * from se_stale"))).toEqual([{ a: 1, b: null }])
      // Inside a transaction block the failed statement has aborted the block: no retry there.
      yield* pg.query("alter table se_stale add column c int")
      const inBlock = yield* errorOf(
        pg.withTransaction(Stream.runCollect(pg.stream("select * from se_stale")))
      )
      expect(inBlock._tag).toBe("FeatureNotSupported")
      expect(yield* Stream.runCollect(pg.stream("select * from se_stale"))).toEqual([
        { a: 1, b: null, c: null }
      ])
    })
  )
})
