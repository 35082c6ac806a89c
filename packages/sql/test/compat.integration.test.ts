/**
 * PgSql against @effect/sql-pg 4.0.5 on the same server: each program below is ordinary effect/sql
 * code (the usage effect/sql's guide and @effect/sql-pg's documentation describe, written afresh:
 * the sql template and its helpers, SqlSchema, SqlResolver, SqlModel repositories, transactions),
 * run once through `PgSql.layer` and once through sql-pg's `PgClient.layer`, each on tables of its
 * own, and the two results compared value by value. Where the two differ on purpose the test
 * asserts both sides of the difference (the package README's table lists them, with why).
 */
import { PgClient as SqlPg } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import {
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Redacted,
  Schema,
  Stream,
  String as Str
} from "effect"
import * as Model from "effect/schema/Model"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as SqlModel from "effect/sql/SqlModel"
import * as SqlResolver from "effect/sql/SqlResolver"
import * as SqlSchema from "effect/sql/SqlSchema"
import { PgSql } from "../src/index.ts"

interface Clients {
  readonly ours: SqlClient.SqlClient
  readonly theirs: SqlClient.SqlClient
  readonly oursCamel: SqlClient.SqlClient
  readonly theirsCamel: SqlClient.SqlClient
}

const camel = {
  transformResultNames: Str.snakeToCamel,
  transformQueryNames: Str.camelToSnake
}

/** Both clients (plain and with name transforms) to the test server, closed with the test's scope. */
const clients = Effect.gen(function* () {
  const info = yield* PgServer
  const build = <A>(l: Layer.Layer<SqlClient.SqlClient | A, unknown>) =>
    Effect.map(Layer.build(l), (ctx) => Context.get(ctx, SqlClient.SqlClient))
  return {
    ours: yield* build(PgSql.layer({ url: info.url, sslmode: "disable" })),
    theirs: yield* build(SqlPg.layer({ url: Redacted.make(info.url) })),
    oursCamel: yield* build(PgSql.layer({ url: info.url, sslmode: "disable", ...camel })),
    theirsCamel: yield* build(SqlPg.layer({ url: Redacted.make(info.url), ...camel }))
  } satisfies Clients
})

/** Runs `program` on both clients, each with its own table prefix, and returns both results. */
const both = <A>(
  c: Clients,
  program: (sql: SqlClient.SqlClient, t: string) => Effect.Effect<A, SqlError | unknown>,
  transforms = false
) =>
  Effect.gen(function* () {
    const ours = yield* program(transforms ? c.oursCamel : c.ours, `ours_${++tables}`)
    const theirs = yield* program(transforms ? c.theirsCamel : c.theirs, `theirs_${++tables}`)
    return { ours, theirs }
  })
let tables = 0

/** A model as effect/sql's guide writes one: an id the database generates (and updates name), the other fields everywhere. */
class Account extends Model.Class<Account>("Account")({
  id: Model.Field({ select: Schema.Number, update: Schema.Number, json: Schema.Number }),
  owner: Schema.String,
  balance: Schema.Number
}) {}

/** The reason tag and what effect/sql code reads of a failure. */
const failureOf = <A>(effect: Effect.Effect<A, SqlError>) =>
  Effect.map(Effect.flip(effect), (e) => ({
    reason: e.reason._tag,
    constraint: (e.reason as { constraint?: string }).constraint,
    retryable: e.isRetryable
  }))

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })(
  "PgSql and @effect/sql-pg agree",
  (it) => {
    it.effect("decoded values of the common types are the same, but for the documented differences", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const common = `select 1::int2 as i2, 2::int4 as i4, 3::int8 as i8, 1.5::float4 as f4, 2.5::float8 as f8,
        1.25::numeric as num, true as b, 'x'::text as t, 'v'::varchar as vc, 'a'::char as ch, 'abc'::name as nm,
        '\\x0102ff'::bytea as ba, '2024-01-02'::date as d, '2024-01-02 03:04:05.678'::timestamp as ts,
        '2024-01-02 03:04:05.678+00'::timestamptz as tstz, '1 day 2 hours'::interval as iv,
        '{"a":1,"s":"é"}'::json as js, '{"b":[1,2,null]}'::jsonb as jsb,
        '11111111-2222-3333-4444-555555555555'::uuid as u, array[1,2]::int4[] as ai,
        array['a',null,'c']::text[] as at, array[1,2]::int8[] as a8, null::int as n, '10.0.0.1'::inet as ip,
        42::oid as o, 'NaN'::float8 as nan, 9007199254740993::int8 as big`
        const { ours, theirs } = yield* both(c, (sql) => sql.unsafe(common))
        expect(ours).toEqual(theirs)
        expect((ours[0] as Record<string, unknown>)["i8"]).toBe(3n)
        // Differences: time of day is text in pgline (sql-pg gives microseconds as a bigint);
        // point and money decode in pgline (sql-pg 4.0.5 fails the whole query on them).
        const time = yield* both(c, (sql) => sql`select '03:04:05.25'::time as tm`)
        expect(time.ours).toEqual([{ tm: "03:04:05.25" }])
        expect(time.theirs).toEqual([{ tm: 11_045_250_000n }])
        const ours2 = yield* c.ours`select '(1,2)'::point as pt, 12.5::money as mo`
        expect(ours2).toEqual([{ pt: "(1,2)", mo: "$12.50" }])
        const theirs2 = yield* failureOf(c.theirs`select '(1,2)'::point as pt`)
        expect(theirs2.reason).toBe("UnknownError")
      })
    )

    it.effect("the differences the README's table lists beyond values: each side's result, asserted", () =>
      Effect.gen(function* () {
        const c = yield* clients
        // timetz, a BC date and regclass: the server's text in pgline, sql-pg's own formats.
        const odd = yield* both(
          c,
          (sql) =>
            sql`select '03:04:05+02'::timetz as tz, '0044-03-15 BC'::date as bc, 'pg_class'::regclass as rc`
        )
        expect(odd.ours).toEqual([{ tz: "03:04:05+02", bc: "0044-03-15 BC", rc: "pg_class" }])
        expect(odd.theirs).toEqual([{ tz: "03:04:05+02:00", bc: "-0043-03-15", rc: 1259 }])
        // A JS array of strings: sent with no type by pgline (the server decides), text[] by sql-pg.
        const names = ["a", "b"]
        const strings = yield* both(c, (sql) =>
          Effect.all({
            unnest: Effect.map(Effect.result(sql`select x from unnest(${names}) as x`), (r) => r._tag),
            coalesce: sql`select coalesce(${names}, null) as v`,
            cast: sql`select x from unnest(${names}::text[]) as x`
          })
        )
        expect(strings.ours).toEqual({
          unnest: "Failure",
          coalesce: [{ v: "{a,b}" }],
          cast: [{ x: "a" }, { x: "b" }]
        })
        expect(strings.theirs).toEqual({
          unnest: "Success",
          coalesce: [{ v: ["a", "b"] }],
          cast: [{ x: "a" }, { x: "b" }]
        })
        // A nested level whose body caught a statement's error: pgline undoes that level only.
        const savepoint = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (v int primary key)`
            const exit = yield* Effect.exit(
              sql.withTransaction(
                Effect.gen(function* () {
                  yield* sql`insert into ${sql(t)} values (1)`
                  yield* Effect.exit(
                    sql.withTransaction(Effect.ignore(sql`insert into ${sql(t)} values (1)`))
                  )
                  yield* Effect.ignore(sql`insert into ${sql(t)} values (3)`)
                })
              )
            )
            return {
              committed: exit._tag === "Success",
              rows: yield* sql`select v from ${sql(t)} order by v`
            }
          })
        )
        expect(savepoint.ours).toEqual({ committed: true, rows: [{ v: 1 }, { v: 3 }] })
        expect(savepoint.theirs).toEqual({ committed: false, rows: [] })
        // Transaction control on the pool, and a value with no placeholder: refused by pgline.
        const refused = yield* both(c, (sql) =>
          Effect.all({
            beginCommit: Effect.map(Effect.result(Effect.andThen(sql`begin`, sql`commit`)), (r) => r._tag),
            extraValue: Effect.map(Effect.result(sql.unsafe("select 1 as a", [1])), (r) => r._tag)
          })
        )
        expect(refused.ours).toEqual({ beginCommit: "Failure", extraValue: "Failure" })
        expect(refused.theirs).toEqual({ beginCommit: "Success", extraValue: "Success" })
        // .raw is each driver's own result; a failed statement's operation is each one's word.
        const raw = yield* both(c, (sql) =>
          Effect.all({
            raw: Effect.map(sql`select 1 as a`.raw, (r) => ({
              tag: "tag" in (r as object),
              oid: "oid" in (r as object)
            })),
            operation: Effect.map(
              Effect.flip(sql`select * from no_such_table_here`),
              (e) => (e.reason as { operation?: string }).operation
            )
          })
        )
        expect(raw.ours).toEqual({ raw: { tag: true, oid: false }, operation: "execute" })
        expect(raw.theirs).toEqual({ raw: { tag: false, oid: true }, operation: "query" })
      })
    )

    it.effect("parameters of every kind go in and come back the same", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const doc = { z: 1, nested: { list: [1, "two", null] } }
        const { ours, theirs } = yield* both(c, (sql) => {
          const json = sql === c.ours ? PgSql.json(doc) : (c.theirs as unknown as SqlPg.PgClient).json(doc)
          return sql`select ${1} as a, ${"x"} as b, ${12345678901234567n}::int8 as c, ${new Date(86_400_123)}::timestamptz as d,
          ${true} as e, ${null}::text as f, ${[1, 2, 3]}::int4[] as g, ${json} as h,
          ${new Uint8Array([0, 255])}::bytea as i, ${"é ü 😀"} as j, ${1.5}::float8 as k, ${"2024-02-03"}::date as l`
        })
        expect(ours).toEqual(theirs)
        expect(ours[0]!["h"]).toEqual(doc)
        expect(ours[0]!["c"]).toBe(12345678901234567n)
      })
    )

    it.effect("insert, update and update-values helpers, in, and, or, identifiers, literal, unsafe", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (id int primary key, name text not null, score int)`
            const one =
              yield* sql`insert into ${sql(t)} ${sql.insert({ id: 1, name: "a", score: 10 })} returning *`
            const many = yield* sql`insert into ${sql(t)} ${sql.insert([
              { id: 2, name: "b", score: 20 },
              { id: 3, name: "c", score: 30 },
              { id: 4, name: "d", score: null }
            ])} returning id`
            const updated =
              yield* sql`update ${sql(t)} set ${sql.update({ id: 1, name: "A", score: 11 }, ["id"])} where id = ${1} returning *`
            const bulk = yield* sql`update ${sql(t)} set name = data.name from ${sql.updateValues(
              [
                { id: 2, name: "B" },
                { id: 3, name: "C" }
              ],
              "data"
            )} where ${sql(t)}.id = data.id::int returning ${sql(t)}.id, ${sql(t)}.name`
            const inList = yield* sql`select id from ${sql(t)} where ${sql.in("id", [1, 3, 4])} order by id`
            const anded =
              yield* sql`select id from ${sql(t)} where ${sql.and([sql`score > ${10}`, sql`name <> ${"B"}`])}`
            const ored =
              yield* sql`select id from ${sql(t)} where ${sql.or([sql`id = ${1}`, sql`score is null`])} order by id`
            const literal = yield* sql`select ${sql.literal("42")}::int as v`
            const unsafe = yield* sql.unsafe<{ n: number }>(
              `select count(*)::int as n from ${t} where id > $1`,
              [1]
            )
            const dotted = yield* sql`select count(*)::int as n from ${sql(`public.${t}`)}`
            const all = yield* sql`select * from ${sql(t)} order by id`
            return {
              one,
              many,
              updated,
              bulk: [...bulk].sort((a, b) => (a["id"] as number) - (b["id"] as number)),
              inList,
              anded,
              ored,
              literal,
              unsafe,
              dotted,
              all
            }
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.all.map((r) => r["name"])).toEqual(["A", "B", "C", "d"])
        expect(ours.inList).toEqual([{ id: 1 }, { id: 3 }, { id: 4 }])
      })
    )

    it.effect("values, raw-free results, statements as streams, and SqlSchema decoding", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const Person = Schema.Struct({ id: Schema.Number, name: Schema.String })
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} as select i as id, 'p' || i as name from generate_series(1, 2500) i`
            const values = yield* sql`select 1 as a, 2 as a, 'x' as b`.values
            const unprepared = yield* sql`select ${5}::int as five`.unprepared
            const streamed = yield* Stream.runCollect(sql`select id, name from ${sql(t)} order by id`.stream)
            const findAll = SqlSchema.findAll({
              Request: Schema.Number,
              Result: Person,
              execute: (below) => sql`select id, name from ${sql(t)} where id < ${below} order by id`
            })
            const findOne = SqlSchema.findOneOption({
              Request: Schema.Number,
              Result: Person,
              execute: (id) => sql`select id, name from ${sql(t)} where id = ${id}`
            })
            return {
              values,
              unprepared,
              streamedCount: streamed.length,
              streamedLast: streamed[streamed.length - 1],
              few: yield* findAll(4),
              found: yield* findOne(7),
              missing: yield* findOne(9999)
            }
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.values).toEqual([[1, 2, "x"]])
        expect(ours.streamedCount).toBe(2500)
      })
    )

    it.effect(".unprepared inside a transaction sees the columns DDL added in it, on both", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (a int)`
            yield* sql`insert into ${sql(t)} values (1)`
            return yield* sql.withTransaction(
              Effect.gen(function* () {
                const before = yield* sql`select * from ${sql(t)}`.unprepared
                yield* sql`alter table ${sql(t)} add column b text default 'x'`
                const after = yield* sql`select * from ${sql(t)}`.unprepared
                const values = yield* sql`select * from ${sql(t)}`.valuesUnprepared
                return { before, after, values }
              })
            )
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.after).toEqual([{ a: 1, b: "x" }])
      })
    )

    it.effect("SqlModel.makeRepository: insert, findById, update, delete on both", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (id serial primary key, owner text not null, balance int not null)`
            const repo = yield* SqlModel.makeRepository(Account, {
              tableName: t,
              spanPrefix: "Account",
              idColumn: "id"
            })
            const ann = yield* repo.insert(Account.insert.make({ owner: "Ann", balance: 10 }))
            const bob = yield* repo.insert(Account.insert.make({ owner: "Bob", balance: 20 }))
            const updated = yield* repo.update(Account.update.make({ id: bob.id, owner: "Bob", balance: 25 }))
            yield* repo.delete(ann.id)
            const gone = yield* Effect.flip(repo.findById(ann.id))
            const found = yield* repo.findById(bob.id)
            return { ann: { ...ann }, updated: { ...updated }, gone: gone._tag, found: { ...found } }
          }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        )
        expect(ours).toEqual(theirs)
        expect(ours).toEqual({
          ann: { id: 1, owner: "Ann", balance: 10 },
          updated: { id: 2, owner: "Bob", balance: 25 },
          gone: "NoSuchElementError",
          found: { id: 2, owner: "Bob", balance: 25 }
        })
      })
    )

    it.effect("SqlResolver batches point lookups into one statement on both", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} as select i as id, 'p' || i as name from generate_series(1, 50) i`
            let statements = 0
            const resolver = SqlResolver.findById({
              Id: Schema.Number,
              Result: Schema.Struct({ id: Schema.Number, name: Schema.String }),
              ResultId: (r) => r.id,
              execute: (ids) => {
                statements++
                return sql`select id, name from ${sql(t)} where ${sql.in("id", ids)}`
              }
            })
            const byId = SqlResolver.request(resolver)
            const found = yield* Effect.all(
              [1, 5, 9, 50].map((id) => byId(id)),
              { concurrency: "unbounded" }
            )
            const batches = statements
            const missing = yield* Effect.flip(byId(77))
            return { found, batches, missing: missing._tag }
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.batches).toBe(1)
      })
    )

    it.effect("transactions: commit, rollback, nested savepoints, afterCommit, visibility", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (v text)`
            const log: Array<string> = []
            const insert = (v: string) => sql`insert into ${sql(t)} values (${v})`
            yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* insert("committed")
                yield* sql.afterCommit(Effect.sync(() => log.push("after commit 1")))
                // A nested transaction that fails: its savepoint is rolled back, the outer goes on.
                yield* Effect.ignore(
                  sql.withTransaction(
                    Effect.gen(function* () {
                      yield* insert("inner, rolled back")
                      yield* sql.afterCommit(Effect.sync(() => log.push("never: inner rolled back")))
                      return yield* Effect.fail("inner failure")
                    })
                  )
                )
                yield* sql.withTransaction(insert("inner, kept"))
                log.push("body done")
              })
            )
            const failed = yield* Effect.flip(
              sql.withTransaction(
                Effect.gen(function* () {
                  yield* insert("rolled back")
                  yield* sql.afterCommit(Effect.sync(() => log.push("never: rolled back")))
                  return yield* Effect.fail("outer failure" as const)
                })
              )
            )
            const rows = yield* sql<{ v: string }>`select v from ${sql(t)} order by v`
            return { log, failed, rows: rows.map((r) => r.v) }
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.rows).toEqual(["committed", "inner, kept"])
        expect(ours.log).toEqual(["body done", "after commit 1"])
      })
    )

    it.effect(
      "name transforms: results snake → camel (nested JSON too), query identifiers camel → snake",
      () =>
        Effect.gen(function* () {
          const c = yield* clients
          const { ours, theirs } = yield* both(
            c,
            (sql, t) =>
              Effect.gen(function* () {
                yield* sql`create table ${sql(t)} (user_id int, display_name text, extra_info jsonb)`
                const extraInfo =
                  sql === c.oursCamel
                    ? PgSql.json({ innerKey: 1 })
                    : (c.theirsCamel as unknown as SqlPg.PgClient).json({ innerKey: 1 })
                yield* sql`insert into ${sql(t)} ${sql.insert({ userId: 1, displayName: "Ann", extraInfo })}`
                const rows = yield* sql`select * from ${sql(t)}`
                const raw = yield* sql`select * from ${sql(t)}`.withoutTransform
                return { rows, raw }
              }),
            true
          )
          expect(ours).toEqual(theirs)
          expect(ours.rows).toEqual([{ userId: 1, displayName: "Ann", extraInfo: { innerKey: 1 } }])
        })
    )

    it.effect("failures carry the same effect/sql reasons", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const raise = (sql: SqlClient.SqlClient, code: string) =>
          sql.unsafe(`do $$ begin raise exception 'raised %', '${code}' using errcode = '${code}'; end $$`)
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (id int constraint ${sql(`${t}_pk`)} primary key, n int check (n > 0))`
            yield* sql`insert into ${sql(t)} values (1, 1)`
            return {
              unique: yield* failureOf(sql`insert into ${sql(t)} values (1, 1)`),
              check: yield* failureOf(sql`insert into ${sql(t)} values (2, -1)`),
              notNull: yield* failureOf(sql`insert into ${sql(t)} values (null, 1)`),
              syntax: yield* failureOf(sql.unsafe("selec 1")),
              undefinedTable: yield* failureOf(sql`select * from no_such_table_here`),
              serialization: yield* failureOf(raise(sql, "40001")),
              deadlock: yield* failureOf(raise(sql, "40P01")),
              lockTimeout: yield* failureOf(raise(sql, "55P03")),
              canceled: yield* failureOf(raise(sql, "57014")),
              authorization: yield* failureOf(raise(sql, "42501")),
              plain: yield* failureOf(raise(sql, "P0001")),
              division: yield* failureOf(sql`select 1 / ${0}::int`)
            }
          })
        )
        // The unique constraint's name is per table; everything else is the same.
        expect(ours.unique.constraint).toMatch(/^ours_\d+_pk$/)
        expect(theirs.unique.constraint).toMatch(/^theirs_\d+_pk$/)
        expect({ ...ours, unique: { ...ours.unique, constraint: "" } }).toEqual({
          ...theirs,
          unique: { ...theirs.unique, constraint: "" }
        })
        expect(ours.unique.reason).toBe("UniqueViolation")
        expect(ours.check.reason).toBe("ConstraintError")
        expect(ours.syntax.reason).toBe("SqlSyntaxError")
        expect(ours.serialization).toEqual({
          reason: "SerializationError",
          constraint: undefined,
          retryable: true
        })
        expect(ours.deadlock.reason).toBe("DeadlockError")
        expect(ours.lockTimeout.reason).toBe("LockTimeoutError")
        expect(ours.canceled.reason).toBe("StatementTimeoutError")
        expect(ours.authorization.reason).toBe("AuthorizationError")
        expect(ours.plain.reason).toBe("UnknownError")
      })
    )

    it.effect("a fiber interrupted while COMMIT is in flight: the data committed and afterCommit ran", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.scoped(
            Effect.gen(function* () {
              // COMMIT runs a deferred trigger that waits for an advisory lock this test holds.
              const key = ++tables
              yield* sql`create table ${sql(t)} (v int)`
              yield* sql.unsafe(
                `create function ${t}_wait() returns trigger language plpgsql as $$ begin perform pg_advisory_xact_lock(${key}); return null; end $$`
              )
              yield* sql.unsafe(
                `create constraint trigger ${t}_wait after insert on ${t} deferrable initially deferred for each row execute function ${t}_wait()`
              )
              const holder = yield* sql.reserve
              yield* holder.execute(`select pg_advisory_lock(${key})`, [], undefined)
              let ran = false
              const fiber = yield* Effect.forkChild(
                sql.withTransaction(
                  Effect.gen(function* () {
                    yield* sql`insert into ${sql(t)} values (1)`
                    yield* sql.afterCommit(Effect.sync(() => (ran = true)))
                  })
                )
              )
              let waiting = false
              for (let i = 0; i < 500 && !waiting; i++) {
                const [{ n }] = (yield* sql<{
                  n: number
                }>`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = ${key} and not granted`) as [
                  { n: number }
                ]
                waiting = n > 0
                if (!waiting) yield* Effect.sleep(20)
              }
              // The interruption reaches the fiber while its COMMIT waits; then the COMMIT goes on.
              const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber), { startImmediately: true })
              yield* holder.execute(`select pg_advisory_unlock(${key})`, [], undefined)
              yield* Fiber.join(interrupting)
              const exit = yield* Fiber.await(fiber)
              const rows = yield* sql<{ n: number }>`select count(*)::int as n from ${sql(t)}`
              return { waiting, interrupted: Exit.hasInterrupts(exit), rows, ran }
            })
          )
        )
        expect(ours).toEqual(theirs)
        expect(ours).toEqual({ waiting: true, interrupted: true, rows: [{ n: 1 }], ran: true })
      })
    )

    it.effect("SqlResolver keeps a request inside withTransaction out of a batch with one outside it", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            yield* sql`create table ${sql(t)} (id int primary key, v text)`
            // The resolver captured `sql`: the requests' context has no SqlClient.
            const resolver = SqlResolver.findById({
              Id: Schema.Number,
              Result: Schema.Struct({ id: Schema.Number, v: Schema.String }),
              ResultId: (r) => r.id,
              execute: (ids) => sql`select id, v from ${sql(t)} where ${sql.in("id", ids)}`
            })
            const find = (id: number) =>
              Effect.match(SqlResolver.request(id, resolver), {
                onFailure: (e) => e._tag,
                onSuccess: (row) => row.v
              })
            const inserted = yield* Deferred.make<void>()
            const [inside, outside] = yield* Effect.all(
              [
                Effect.flip(
                  sql.withTransaction(
                    Effect.gen(function* () {
                      yield* sql`insert into ${sql(t)} values (2, 'uncommitted')`
                      yield* Deferred.succeed(inserted, undefined)
                      // Fails with what it found, so the insert is rolled back.
                      return yield* Effect.fail(yield* find(2))
                    })
                  )
                ),
                Effect.andThen(Deferred.await(inserted), find(2))
              ],
              { concurrency: "unbounded" }
            )
            return { inside, outside }
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours).toEqual({ inside: "uncommitted", outside: "NoSuchElementError" })
      })
    )

    it.effect("JSON values in the insert, update and update-values helpers", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql, t) =>
          Effect.gen(function* () {
            const json = (value: unknown) =>
              sql === c.ours ? PgSql.json(value) : (c.theirs as unknown as SqlPg.PgClient).json(value)
            yield* sql`create table ${sql(t)} (id int primary key, doc jsonb, raw json)`
            yield* sql`insert into ${sql(t)} ${sql.insert([
              { id: 1, doc: json({ a: 0 }), raw: json([0]) },
              { id: 2, doc: json("text"), raw: json(null) }
            ])}`
            yield* sql`update ${sql(t)} set ${sql.update({ doc: json({ a: 1, b: [true] }) })} where id = ${1}`
            yield* sql`update ${sql(t)} set doc = data.doc, raw = data.raw from ${sql.updateValues(
              [
                { id: 1, doc: json({ a: 2 }), raw: json({ r: 1 }) },
                { id: 2, doc: json([1, "two"]), raw: json("s") }
              ],
              "data"
            )} where ${sql(t)}.id = data.id`
            return yield* sql`select id, doc, raw from ${sql(t)} order by id`
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours).toEqual([
          { id: 1, doc: { a: 2 }, raw: { r: 1 } },
          { id: 2, doc: [1, "two"], raw: "s" }
        ])
      })
    )

    it.effect("the JSON helper given null: JSON null in pgline, SQL NULL in sql-pg", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql) => {
          const json = sql === c.ours ? PgSql.json : (c.theirs as unknown as SqlPg.PgClient).json
          return sql`select ${json(null)}::jsonb is null as sql_null, ${json(null)}::jsonb::text as text`
        })
        expect(ours).toEqual([{ sql_null: false, text: "null" }])
        expect(theirs).toEqual([{ sql_null: true, text: null }])
      })
    )

    it.effect("a JSON value that cannot be serialised (a bigint) fails with a SqlError", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql) => {
          const json = sql === c.ours ? PgSql.json : (c.theirs as unknown as SqlPg.PgClient).json
          return Effect.map(Effect.flip(sql`select ${json({ n: 1n })} as x`), (e) => e._tag)
        })
        expect(ours).toEqual(theirs)
        expect(ours).toBe("SqlError")
      })
    )

    it.effect("undefined parameters are NULL", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const nickname: string | undefined = undefined
        // An array with a hole (never set) reads it as undefined too.
        const holes: Array<number> = []
        holes[0] = 1
        holes[2] = 3
        const { ours, theirs } = yield* both(c, (sql) =>
          Effect.all({
            template: sql`select ${nickname}::text as nickname`,
            inList: sql`select 1 as x where 1 in ${sql.in([1, undefined])}`,
            unsafe: sql.unsafe("select $1::text as x", [undefined]),
            values: sql`select ${undefined}::int as n`.values,
            inArray: sql`select ${[1, undefined]}::int[] as a, ${["x", undefined]}::text[] as b, ${holes}::int[] as c`
          })
        )
        expect(ours).toEqual(theirs)
        expect(ours.template).toEqual([{ nickname: null }])
        expect(ours.unsafe).toEqual([{ x: null }])
        expect(ours.inArray).toEqual([{ a: [1, null], b: ["x", null], c: [1, null, 3] }])
      })
    )

    it.effect("BeginTransaction: modes with or without commas; a savepoint ignores it", () =>
      Effect.gen(function* () {
        const c = yield* clients
        const { ours, theirs } = yield* both(c, (sql) => {
          const modes = sql<{
            iso: string
            ro: string
          }>`select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro`
          const begin = (text: string) => Effect.provideService(SqlClient.BeginTransaction, text)
          return Effect.all({
            spaces: sql
              .withTransaction(modes)
              .pipe(begin("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE")),
            commas: sql
              .withTransaction(modes)
              .pipe(begin("start transaction isolation level repeatable read, read only;")),
            nested: sql.withTransaction(
              sql.withTransaction(modes).pipe(begin("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"))
            )
          })
        })
        expect(ours).toEqual(theirs)
        expect(ours).toEqual({
          spaces: [{ iso: "serializable", ro: "on" }],
          commas: [{ iso: "repeatable read", ro: "on" }],
          nested: [{ iso: "read committed", ro: "off" }]
        })
      })
    )
  }
)
