/**
 * pgline behind PgBouncer (Debian's, started by @pgline/testing in front of the test server).
 *
 * Transaction mode, with `prepare: false` (this PgBouncer does not track named prepared
 * statements, and server connections are shared between clients): queries, the sql template,
 * pipelines of several segments, pg.all, withTransaction with savepoints, streams, COPY, scripts,
 * and cancellation through the pooler; many clients at once on two server connections. Session
 * mode: named statements (the default), pipelines and LISTEN work as on a direct connection.
 */
import { expect, layer } from "@effect/vitest"
import { PgClient, type PgClientApi } from "@pgline/client"
import { PgBouncer, type PgBouncerInfo, PgServer } from "@pgline/testing"
import { ConfigProvider, Context, Effect, Fiber, Layer, Stream } from "effect"
import { errorOf, within } from "./support/pipeline.ts"

/** A client of the bouncer (PG* variables ignored), closed with the test's scope. */
const bouncerClient = (
  bouncer: PgBouncerInfo,
  settings: { readonly prepare?: boolean; readonly max?: number } = {}
) =>
  Effect.map(
    Layer.build(PgClient.layer({ url: bouncer.url, ...settings })).pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
    ),
    (ctx) => Context.get(ctx, PgClient)
  )

const count = (pg: PgClientApi, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

// Installing pgbouncer (apt-get, when missing) happens while the layer is built, under its timeout.
const ServerAndBouncer = Layer.merge(PgServer.layer, Layer.effectDiscard(PgBouncer.ensureInstalled()))

layer(ServerAndBouncer, { timeout: 600_000, excludeTestServices: true })("PgBouncer", (it) => {
  it.effect(
    "transaction mode, prepare: false: queries, pipelines, pg.all, transactions, streams, COPY, scripts",
    () =>
      Effect.gen(function* () {
        const server = yield* PgServer
        const bouncer = yield* PgBouncer.start(server, { poolMode: "transaction" })
        expect(bouncer.version).toMatch(/PgBouncer/i)
        const pg = yield* bouncerClient(bouncer, { prepare: false, max: 4 })
        yield* pg.query("create table pb_tx (id int primary key, v text)")
        // The same texts again and again: with named statements they would collide on shared server connections.
        for (let i = 0; i < 20; i++) yield* pg.sql`insert into pb_tx values (${i}, ${`v${i}`})`
        const pipelined = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            const handles: Array<Effect.Effect<unknown, unknown>> = []
            for (let segment = 0; segment < 5; segment++) {
              for (let i = 0; i < 10; i++)
                handles.push(
                  yield* p.execute(pg.sql`select v from pb_tx where id = ${(segment * 10 + i) % 20}`)
                )
              yield* p.sync
            }
            return yield* Effect.all(handles)
          })
        )
        expect(pipelined.length).toBe(50)
        const both = yield* pg.all({
          a: pg.sql`select count(*)::int as n from pb_tx`,
          b: pg.sql`select ${"x"}::text as x`
        })
        expect(both.a.rows).toEqual([{ n: 20 }])
        yield* Effect.exit(
          pg.withTransaction(
            Effect.gen(function* () {
              yield* pg.sql`insert into pb_tx values (100, 'kept')`
              yield* Effect.exit(
                pg.withTransaction(
                  Effect.andThen(pg.sql`insert into pb_tx values (101, 'undone')`, Effect.fail("inner"))
                )
              )
              return yield* Effect.fail("outer" as const)
            })
          )
        )
        expect(yield* count(pg, "pb_tx")).toBe(20)
        yield* pg.withTransaction(
          Effect.all(
            [pg.sql`insert into pb_tx values (200, 'a')`, pg.sql`insert into pb_tx values (201, 'b')`],
            {
              concurrency: "unbounded"
            }
          )
        )
        expect(yield* count(pg, "pb_tx")).toBe(22)
        const streamed = yield* Stream.runCollect(
          pg.stream("select id from pb_tx order by id", { chunkSize: 5 })
        )
        expect(streamed.length).toBe(22)
        const copied = yield* pg.copyFrom("copy pb_tx from stdin", Stream.make("300\tc1\n301\tc2\n"))
        expect(copied.rowCount).toBe(2)
        const out = Buffer.concat(
          yield* Stream.runCollect(
            pg.copyTo("copy (select id from pb_tx where id >= 300 order by id) to stdout")
          )
        )
        expect(out.toString()).toBe("300\n301\n")
        const script = yield* pg.script("select 1 as one; select 2 as two")
        expect(script.map((r) => r.rows[0])).toEqual([{ one: 1 }, { two: 2 }])
      })
  )

  it.effect("transaction mode, prepare: false: 8 clients × 4 fibers share 2 server connections", () =>
    Effect.gen(function* () {
      const server = yield* PgServer
      const bouncer = yield* PgBouncer.start(server, { poolMode: "transaction", poolSize: 2 })
      const clients = yield* Effect.all(
        Array.from({ length: 8 }, () => bouncerClient(bouncer, { prepare: false, max: 2 }))
      )
      const sums = yield* Effect.all(
        clients.flatMap((pg, c) =>
          Array.from({ length: 4 }, (_, f) =>
            Effect.gen(function* () {
              let sum = 0
              for (let i = 0; i < 25; i++) {
                const r = yield* pg.query<{ v: number }>("select $1::int + $2::int as v", [c * 100 + f, i])
                sum += r.rows[0]!.v
              }
              const pipelined = yield* pg.all(
                Array.from({ length: 5 }, (_, i) => pg.sql`select ${i}::int as v`)
              )
              return sum + pipelined.reduce((a, r) => a + (r.rows[0]!["v"] as number), 0)
            })
          )
        ),
        { concurrency: "unbounded" }
      )
      const expected = clients.flatMap((_, c) =>
        Array.from({ length: 4 }, (_, f) => 25 * (c * 100 + f) + 300 + 10)
      )
      expect(sums).toEqual(expected)
    })
  )

  it.effect("cancellation through the pooler: an interrupted pg_sleep stops, the client goes on", () =>
    Effect.gen(function* () {
      const server = yield* PgServer
      const bouncer = yield* PgBouncer.start(server, { poolMode: "transaction" })
      const pg = yield* bouncerClient(bouncer, { prepare: false, max: 1 })
      const observer = yield* bouncerClient(bouncer, { prepare: false, max: 1 })
      const fiber = yield* Effect.forkChild(pg.query("select pg_sleep(30)"))
      // Wait until the server runs it (seen through the bouncer from another client).
      for (let i = 0; i < 200; i++) {
        const active = yield* observer.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where state = 'active' and query = 'select pg_sleep(30)'"
        )
        if (active.rows[0]!.n > 0) break
        yield* Effect.sleep(25)
      }
      const started = Date.now()
      yield* within(15_000)(Fiber.interrupt(fiber))
      expect(Date.now() - started).toBeLessThan(15_000)
      expect((yield* within(10_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      // The bouncer survived the cancel (PgBouncer 1.18 crashed when the cancel connection half-closed early).
      expect(bouncer.log()).not.toContain("FATAL")
      const still = yield* observer.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where state = 'active' and query = 'select pg_sleep(30)'"
      )
      expect(still.rows[0]!.n).toBe(0)
    })
  )

  it.effect("session mode: named statements, pipelines, LISTEN and session state work as directly", () =>
    Effect.gen(function* () {
      const server = yield* PgServer
      const bouncer = yield* PgBouncer.start(server, { poolMode: "session" })
      const pg = yield* bouncerClient(bouncer, { max: 2 })
      for (let i = 0; i < 3; i++) {
        const rows = yield* pg.withPipeline((p) =>
          Effect.all(
            Array.from({ length: 10 }, (_, j) => Effect.flatten(p.execute(pg.sql`select ${j}::int as j`)))
          )
        )
        expect(rows.map((r) => r.rows[0]!["j"])).toEqual(Array.from({ length: 10 }, (_, j) => j))
      }
      const got = yield* Effect.scoped(
        Effect.gen(function* () {
          const notifications = yield* pg.listenScoped("pb_session")
          yield* pg.notify("pb_session", "through the bouncer")
          return yield* notifications.pipe(Stream.take(1), Stream.runCollect)
        })
      )
      expect(got.map((n) => n.payload)).toEqual(["through the bouncer"])
      const tz = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("set timezone = 'Asia/Tokyo'")
          return (yield* conn.query<{ tz: string }>("select current_setting('timezone') as tz")).rows[0]!.tz
        })
      )
      expect(tz).toBe("Asia/Tokyo")
    })
  )

  it.effect("a typed error through the bouncer keeps its class; the client stays usable", () =>
    Effect.gen(function* () {
      const server = yield* PgServer
      const bouncer = yield* PgBouncer.start(server, { poolMode: "transaction" })
      const pg = yield* bouncerClient(bouncer, { prepare: false, max: 1 })
      const missing = yield* errorOf(pg.query("select * from pb_missing"))
      expect(missing._tag).toBe("UndefinedTable")
      const aborted = yield* errorOf(pg.all([pg.sql`select 1/0`, pg.sql`select 1`]))
      expect(aborted._tag).toBe("DivisionByZero")
      expect((yield* pg.query("select 2 as two")).rows).toEqual([{ two: 2 }])
    })
  )
})
