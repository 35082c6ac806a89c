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
})
