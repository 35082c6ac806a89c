/**
 * What PgSql adds beyond a drop-in, against a real server: one pool behind SqlClient and PgClient,
 * transactions shared both ways (effect/sql statements inside pg.withTransaction, pgline's COPY and
 * statements inside sql.withTransaction), concurrent statements of a transaction pipelined (counted
 * in client flights through the latency proxy), COMMIT answered ROLLBACK, interruption, custom
 * BEGIN texts, pgline's typed error kept as the SqlError's cause, connection failures, spans with
 * the database attributes, back-pressured streams, and reactive queries invalidated at commit.
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import { PgClient, type PgClientApi } from "@pgline/client"
import { LatencyProxy, PgServer, withProxyUrl } from "@pgline/testing"
import { Context, Effect, Exit, Fiber, Layer, Option, Queue, Stream, Tracer } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { SqlError } from "effect/sql/SqlError"
import { PgSql } from "../src/index.ts"

let apps = 0

/** PgSql over a fresh pool to the test server (or `url`), with both services, closed with the scope. */
const open = (settings: Exclude<PgSql.PgSqlOptions, string> = {}) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    const app = `pgline_sql_test_${process.pid}_${++apps}`
    const ctx = yield* Layer.build(
      Layer.merge(
        PgSql.layer({ url: info.url, sslmode: "disable", applicationName: app, ...settings }),
        Reactivity.layer
      )
    )
    return {
      sql: Context.get(ctx, SqlClient.SqlClient),
      pg: Context.get(ctx, PgClient),
      reactivity: Context.get(ctx, Reactivity.Reactivity),
      app
    }
  })

const count = (pg: PgClientApi, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans }
}

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("PgSql", (it) => {
  it.effect("SqlClient and PgClient share one pool: with max 1 both run on the same backend", () =>
    Effect.gen(function* () {
      const { sql, pg } = yield* open({ max: 1 })
      const [viaSql] = yield* sql<{ pid: number }>`select pg_backend_pid() as pid`
      const viaPg = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")
      expect(viaSql!.pid).toBe(viaPg.rows[0]!.pid)
      expect(pg.stats().open).toBe(1)
    })
  )

  it.effect("statements issued concurrently inside sql.withTransaction are pipelined on its connection", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const proxy = yield* LatencyProxy.make({ targetHost: info.host, targetPort: info.port, delayMs: 10 })
      const { sql } = yield* open({ url: withProxyUrl(info.url, proxy), max: 2 })
      yield* sql`create table sql_pipelined (v int)`
      const { flights, seen } = yield* sql.withTransaction(
        Effect.gen(function* () {
          const before = proxy.stats().clientFlights
          const seen = yield* Effect.all(
            Array.from(
              { length: 20 },
              (_, i) =>
                sql<{ pid: number; xid: string }>`insert into sql_pipelined values (${i})
                  returning pg_backend_pid() as pid, txid_current()::text as xid`
            ),
            { concurrency: "unbounded" }
          )
          return { flights: proxy.stats().clientFlights - before, seen: seen.flat() }
        })
      )
      // 20 statements in one transaction: one or two flights, where one statement at a time needs 20.
      expect(flights).toBeLessThanOrEqual(3)
      expect(new Set(seen.map((s) => s.pid)).size).toBe(1)
      expect(new Set(seen.map((s) => s.xid)).size).toBe(1)
      const [{ n }] = (yield* sql<{ n: number }>`select count(*)::int as n from sql_pipelined`) as [
        { n: number }
      ]
      expect(n).toBe(20)
    })
  )

  it.effect(
    "one transaction for both APIs: pgline's COPY, statements and pipelines join sql.withTransaction, and back",
    () =>
      Effect.gen(function* () {
        const { sql, pg } = yield* open({ max: 4 })
        yield* sql`create table sql_shared (v text)`
        // A failing sql.withTransaction takes pgline's COPY and query with it.
        const failed = yield* Effect.flip(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`insert into sql_shared values (${"sql"})`
              yield* pg.copyFrom("copy sql_shared from stdin", Stream.make("copy 1\ncopy 2\n"))
              yield* pg.query("insert into sql_shared values ($1)", ["pg"])
              // pgline's pipelines too: a pipeline and a pipelined transaction (a savepoint here).
              yield* pg.withPipeline((p) => p.execute("insert into sql_shared values ('pipeline')"))
              yield* pg.pipelineTransaction((p) =>
                p.execute("insert into sql_shared values ('pipelined tx')")
              )
              const inside = yield* count(pg, "sql_shared")
              return yield* Effect.fail({ inside })
            })
          )
        )
        expect(failed).toEqual({ inside: 6 })
        expect(yield* count(pg, "sql_shared")).toBe(0)
        // effect/sql statements inside pgline's withTransaction are in it.
        const exit = yield* Effect.exit(
          pg.withTransaction(
            Effect.gen(function* () {
              yield* sql`insert into sql_shared values (${"inside pg tx"})`
              return yield* Effect.fail("stop")
            })
          )
        )
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* count(pg, "sql_shared")).toBe(0)
        // And a committed one keeps both.
        yield* sql.withTransaction(
          Effect.all(
            [sql`insert into sql_shared values (${"a"})`, pg.query("insert into sql_shared values ('b')")],
            {
              concurrency: 2
            }
          )
        )
        expect(yield* count(pg, "sql_shared")).toBe(2)
      })
  )

  it.effect(
    "plain objects go to json/jsonb columns as JSON; JS arrays are PostgreSQL arrays, PgSql.json makes them JSON",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* open()
        yield* sql`create table sql_json (doc jsonb, raw json, tags text[])`
        const doc = { a: 1, list: [1, "two", null], nested: { ok: true } }
        yield* sql`insert into sql_json ${sql.insert({ doc, raw: PgSql.json([1, 2]), tags: ["x", "y"] })}`
        expect(yield* sql`select doc, raw, tags from sql_json`).toEqual([
          { doc, raw: [1, 2], tags: ["x", "y"] }
        ])
        // A bare JS array is bound as a PostgreSQL array (int4[] here), which a json column refuses.
        const refused = yield* Effect.flip(sql`insert into sql_json (raw) values (${[1, 2]})`)
        expect(refused.reason.cause).toMatchObject({ _tag: "DatatypeMismatch" })
        // PgSql.json types the value itself, where the context would not (a bare select).
        expect(yield* sql`select ${PgSql.json("text")} as s, ${PgSql.json(doc)} as d`).toEqual([
          { s: "text", d: doc }
        ])
      })
  )

  it.effect("a COMMIT answered ROLLBACK fails with a SqlError and commits nothing", () =>
    Effect.gen(function* () {
      const { sql, pg } = yield* open()
      yield* sql`create table sql_commit_rollback (v int unique)`
      const error = yield* Effect.flip(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`insert into sql_commit_rollback values (1)`
            // The statement's error is caught: the block is failed, and the body returns normally.
            yield* Effect.ignore(sql`insert into sql_commit_rollback values (1)`)
            return "looks fine"
          })
        )
      )
      expect(error).toBeInstanceOf(SqlError)
      expect((error as SqlError).reason._tag).toBe("UnknownError")
      expect((error as SqlError).reason.cause).toMatchObject({
        _tag: "StatementRejected",
        reason: "TransactionRolledBack"
      })
      expect(yield* count(pg, "sql_commit_rollback")).toBe(0)
    })
  )

  it.effect("interrupting sql.withTransaction rolls back and leaves no backend inside a block", () =>
    Effect.gen(function* () {
      const { sql, pg, app } = yield* open({ max: 2 })
      yield* sql`create table sql_interrupted (v int)`
      const fiber = yield* Effect.forkChild(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`insert into sql_interrupted values (1)`
            yield* sql`select pg_sleep(30)`
          })
        )
      )
      // Wait until the sleep runs (both connections open, the block begun), then interrupt.
      let running = false
      for (let i = 0; i < 500 && !running; i++) {
        const active = yield* pg.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid() and query = 'select pg_sleep(30)' and state = 'active'",
          [app]
        )
        running = active.rows[0]!.n > 0
        if (!running) yield* Effect.sleep(20)
      }
      expect(running).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(yield* count(pg, "sql_interrupted")).toBe(0)
      const states = yield* pg.query<{ state: string }>(
        "select state from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
        [app]
      )
      expect(states.rows.map((r) => r.state)).toEqual(["idle"])
    })
  )

  it.effect(
    "SqlClient.BeginTransaction sets the isolation level and access mode; an unknown text is refused",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* open()
        const modes = yield* sql
          .withTransaction(sql<{
            iso: string
            ro: string
          }>`select current_setting('transaction_isolation') as iso,
          current_setting('transaction_read_only') as ro`)
          .pipe(
            Effect.provideService(SqlClient.BeginTransaction, "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY")
          )
        expect(modes).toEqual([{ iso: "serializable", ro: "on" }])
        const refused = yield* Effect.flip(
          sql
            .withTransaction(sql`select 1`)
            .pipe(Effect.provideService(SqlClient.BeginTransaction, "BEGIN; DROP TABLE x"))
        )
        expect(refused).toBeInstanceOf(SqlError)
        expect((refused as SqlError).message).toContain("unsupported BeginTransaction")
      })
  )

  it.effect("the SqlError's cause is pgline's typed error, so either can be matched", () =>
    Effect.gen(function* () {
      const { sql } = yield* open()
      yield* sql`create table sql_causes (id int primary key)`
      yield* sql`insert into sql_causes values (1)`
      const unique = yield* Effect.flip(sql`insert into sql_causes values (1)`)
      expect(unique.reason._tag).toBe("UniqueViolation")
      expect(unique.reason.cause).toMatchObject({
        _tag: "UniqueViolation",
        code: "23505",
        table: "sql_causes",
        constraint: "sql_causes_pkey"
      })
      const missing = yield* Effect.flip(sql`select * from sql_no_such_table`)
      expect(missing.reason._tag).toBe("SqlSyntaxError")
      expect(missing.reason.cause).toMatchObject({ _tag: "UndefinedTable", code: "42P01" })
      const badParam = yield* Effect.flip(sql`select ${"not a number"}::int`)
      expect(badParam.reason.cause).toMatchObject({ _tag: "InvalidTextRepresentation" })
    })
  )

  it.effect("a terminated backend fails its statement with a ConnectionError; the pool goes on", () =>
    Effect.gen(function* () {
      const { sql, pg } = yield* open({ max: 1 })
      const [{ pid }] = (yield* sql<{ pid: number }>`select pg_backend_pid() as pid`) as [{ pid: number }]
      const killer = (yield* open({ max: 1 })).sql
      const fiber = yield* Effect.forkChild(sql`select pg_sleep(30)`)
      // Terminate once the sleep runs: earlier, the statement might not have left the client,
      // and a statement that cannot have run is retried on a new connection.
      let running = false
      for (let i = 0; i < 500 && !running; i++) {
        const rows = yield* killer<{
          n: number
        }>`select count(*)::int as n from pg_stat_activity where pid = ${pid} and state = 'active' and query = 'select pg_sleep(30)'`
        running = rows[0]!.n > 0
        if (!running) yield* Effect.sleep(20)
      }
      expect(running).toBe(true)
      yield* killer`select pg_terminate_backend(${pid})`
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error.reason._tag).toBe("ConnectionError")
      expect(error.isRetryable).toBe(true)
      expect((error.reason.cause as { _tag: string })._tag).toMatch(/^(AdminShutdown|ConnectionLost)$/)
      // The next statement gets a new connection.
      expect(yield* sql`select 1 as one`).toEqual([{ one: 1 }])
      expect(pg.stats().open).toBe(1)
    })
  )

  it.effect(
    "building the layer fails with a SqlError: AuthenticationError for a wrong password, ConnectionError for no server",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const scram = info.roles!.scram
        const auth = yield* Effect.flip(
          Layer.build(
            PgSql.layer({
              host: info.host,
              port: info.port,
              database: info.database,
              user: scram.user,
              password: "certainly-not-the-password",
              sslmode: "disable"
            })
          )
        )
        expect(auth).toBeInstanceOf(SqlError)
        expect((auth as SqlError).reason._tag).toBe("AuthenticationError")
        expect((auth as SqlError).reason.cause).toMatchObject({ code: "28P01" })
        const nowhere = yield* Effect.flip(
          Layer.build(
            PgSql.layer({
              host: "127.0.0.1",
              port: 1,
              user: "x",
              database: "x",
              sslmode: "disable",
              connectTimeout: 5
            })
          )
        )
        expect((nowhere as SqlError).reason._tag).toBe("ConnectionError")
        expect((nowhere as SqlError).reason.cause).toMatchObject({
          _tag: "PgConnectError",
          reason: "Refused"
        })
      })
  )

  it.effect("statement and transaction spans carry the database attributes", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const { sql } = yield* open({ spanAttributes: { "service.component": "billing" } })
      const { tracer, spans } = recordingTracer()
      yield* sql.withTransaction(sql`select ${1}::int as one`).pipe(Effect.withTracer(tracer))
      const transaction = spans.find((s) => s.name === "sql.transaction")
      const statement = spans.find((s) => s.attributes.get("db.query.text") === "select $1::int as one")
      expect(transaction).toBeDefined()
      expect(statement).toBeDefined()
      for (const span of [transaction!, statement!]) {
        expect(span.attributes.get("db.system.name")).toBe("postgresql")
        expect(span.attributes.get("db.namespace")).toBe(info.database)
        expect(span.attributes.get("server.address")).toBe(info.host)
        expect(span.attributes.get("server.port")).toBe(info.port)
        expect(span.attributes.get("service.component")).toBe("billing")
      }
      expect(Option.getOrUndefined(statement!.parent)).toBe(transaction)
      // Without a tracing backend no sql.transaction span is made: inside the block the current
      // span is the caller's (none here), where a tracer sees the transaction's.
      const inside = sql.withTransaction(
        Effect.map(
          Effect.option(Effect.currentSpan),
          Option.map((s) => s.name)
        )
      )
      expect(yield* inside).toEqual(Option.none())
      expect(yield* inside.pipe(Effect.withTracer(tracer))).toEqual(Option.some("sql.transaction"))
    })
  )

  it.effect(
    "a statement's stream is back-pressured: 200,000 rows by count and sum; taking 5 stops the query",
    () =>
      Effect.gen(function* () {
        const { sql, pg } = yield* open({ max: 1, streamChunkSize: 500 })
        const [count, sum] = yield* sql<{
          i: number
        }>`select i from generate_series(1, 200000) i`.stream.pipe(
          Stream.runFold(
            () => [0, 0] as [number, number],
            ([n, s], row) => [n + 1, s + row.i] as [number, number]
          )
        )
        expect(count).toBe(200_000)
        expect(sum).toBe((200_000 * 200_001) / 2)
        yield* sql`create sequence sql_stream_seq`
        const first = yield* Stream.runCollect(
          Stream.take(
            sql<{ v: number }>`select nextval('sql_stream_seq') as v from generate_series(1, 1000000)`.stream,
            5
          )
        )
        expect(first.map((r) => Number(r.v))).toEqual([1, 2, 3, 4, 5])
        // The portal was closed after its first chunk or two: the server produced at most ~2 chunks.
        const produced = yield* pg.query<{ v: string }>("select last_value::text as v from sql_stream_seq")
        expect(Number(produced.rows[0]!.v)).toBeLessThanOrEqual(1000)
        expect(yield* sql`select 1 as one`).toEqual([{ one: 1 }])
      })
  )

  it.effect("reactive queries run again after a mutation, inside a transaction only once it commits", () =>
    Effect.gen(function* () {
      const { sql, reactivity } = yield* open()
      yield* sql`create table sql_reactive (v int)`
      const results = yield* Queue.unbounded<number>()
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(
          sql.reactive(
            ["sql_reactive"],
            Effect.map(sql<{ n: number }>`select count(*)::int as n from sql_reactive`, (r) => r[0]!.n)
          ),
          (n) => Queue.offer(results, n)
        )
      )
      expect(yield* Queue.take(results)).toBe(0)
      // Reactivity.mutation reads the service from the context: inside withTransaction it is the
      // transaction's, which holds the invalidation until the commit (and drops it on rollback).
      const insert = (v: number) =>
        Reactivity.mutation(sql`insert into sql_reactive values (${v})`, ["sql_reactive"])
      yield* Effect.gen(function* () {
        yield* insert(1)
        expect(yield* Queue.take(results)).toBe(1)
        yield* Effect.ignore(sql.withTransaction(Effect.andThen(insert(2), Effect.fail("rollback"))))
        yield* sql.withTransaction(insert(3))
        expect(yield* Queue.take(results)).toBe(2)
        expect(yield* Queue.size(results)).toBe(0)
      }).pipe(Effect.provideService(Reactivity.Reactivity, reactivity))
      yield* Fiber.interrupt(fiber)
    })
  )
})
