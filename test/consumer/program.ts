/**
 * What a new user writes after `npm install @pgline/client @pgline/sql @pgline/testing effect`:
 * start a real PostgreSQL with PgServer, connect a PgClient to it, run a query, a `sql` template, a
 * pipeline and a transaction, catch typed errors, run a statement through effect/sql's SqlClient
 * (PgSql), and print what the server computed as one JSON line. Any
 * mismatch with the expected values is printed and makes the exit code 1.
 *
 * test/consumer.test.ts runs this file, with its types stripped, from the packed tarballs installed
 * by npm into a fresh directory (on Node 22 and Node 24), and type-checks it there with tsc. Inside
 * the monorepo it is type-checked against the sources.
 */
import { isClass, PgClient } from "@pgline/client"
import { PgSql } from "@pgline/sql"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql/SqlClient"

const program = Effect.gen(function* () {
  const pg = yield* PgClient

  // A query with bound parameters; int8 decodes to bigint.
  const sum = yield* pg.query<{ total: bigint }>(
    "select sum(g)::int8 as total from generate_series(1, $1::int) as g",
    [1000]
  )

  // The sql template: values are parameters, sql.in expands a list, sql.id quotes an identifier.
  yield* pg.query("create temporary table fruit (id int primary key, name text not null)")
  yield* pg.sql`insert into ${pg.sql.id("fruit")} (id, name) values (${1}, ${"apple"}), (${2}, ${"pear"}), (${3}, ${"plum"})`
  const picked = yield* pg.sql<{
    name: string
  }>`select name from fruit where id in (${pg.sql.in([1, 3])}) order by id`

  // A pipeline: both statements sent before one Sync, one round trip.
  const piped = yield* pg.withPipeline((p) =>
    Effect.gen(function* () {
      const product = yield* p.execute(pg.sql<{ n: number }>`select ${6}::int * ${7}::int as n`)
      const count = yield* p.execute<{ n: bigint }>("select count(*) as n from fruit")
      yield* p.sync
      return { product: (yield* product).rows[0]!.n, count: (yield* count).rows[0]!.n }
    })
  )

  // A typed server error, caught by its tag.
  const missing = yield* pg.query("select * from no_such_table").pipe(
    Effect.as("no error"),
    Effect.catchTag("UndefinedTable", (e) => Effect.succeed(`${e._tag} ${e.code}`))
  )

  // A whole SQLSTATE class (23, integrity constraint violation), and a transaction rolled back.
  const duplicate = yield* pg
    .withTransaction(
      Effect.gen(function* () {
        yield* pg.sql`insert into fruit (id, name) values (${4}, ${"fig"})`
        yield* pg.sql`insert into fruit (id, name) values (${1}, ${"again"})`
        return "no error"
      })
    )
    .pipe(
      Effect.catchIf(isClass("IntegrityConstraintViolation"), (e) => Effect.succeed(`${e._tag} ${e.code}`))
    )
  const after = yield* pg.query<{ n: bigint }>("select count(*) as n from fruit")

  return {
    sum: String(sum.rows[0]!.total),
    picked: picked.rows.map((r) => r.name).join(","),
    product: piped.product,
    count: String(piped.count),
    missing,
    duplicate,
    rowsAfterRollback: String(after.rows[0]!.n)
  }
})

/** effect/sql's SqlClient on pgline: a template statement, and a failure's reason and pgline cause. */
const viaEffectSql = Effect.gen(function* () {
  const sql = yield* SqlClient
  const [row] = yield* sql<{ n: number }>`select ${20}::int + ${22}::int as n`
  const failure = yield* Effect.flip(sql`select * from no_such_table`)
  return `${row!.n} ${failure.reason._tag} ${(failure.reason.cause as { code: string }).code}`
})

const expected = {
  sum: "500500",
  picked: "apple,plum",
  product: 42,
  count: "3",
  missing: "UndefinedTable 42P01",
  duplicate: "UniqueViolation 23505",
  rowsAfterRollback: "3",
  effectSql: "42 SqlSyntaxError 42P01"
}

const main = Effect.gen(function* () {
  const server = yield* PgServer
  const results = yield* program.pipe(Effect.provide(PgClient.layer({ url: server.url, sslmode: "disable" })))
  const effectSql = yield* viaEffectSql.pipe(
    Effect.provide(PgSql.layer({ url: server.url, sslmode: "disable" }))
  )
  return { ...results, effectSql }
}).pipe(Effect.provide(PgServer.layer))

const result = await Effect.runPromise(main)
console.log(JSON.stringify({ node: process.version, ...result }))
const wrong = Object.entries(expected).filter(([key, value]) => result[key as keyof typeof result] !== value)
for (const [key, value] of wrong) {
  console.error(
    `${key}: expected ${JSON.stringify(value)}, got ${JSON.stringify(result[key as keyof typeof result])}`
  )
}
process.exitCode = wrong.length === 0 ? 0 : 1
