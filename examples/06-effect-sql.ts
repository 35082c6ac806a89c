/**
 * effect/sql on pgline: a repository written against effect/sql's SqlClient only (the sql template,
 * SqlSchema, a batched SqlResolver, withTransaction), with the schema created by a migration script,
 * run on `PgSql.layer`. The order's lines are inserted concurrently inside the transaction, which
 * pgline pipelines on the transaction's connection; a duplicate SKU is caught as effect/sql's
 * UniqueViolation reason, with pgline's typed error as its cause. Figures are checked against the
 * server.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgSql, PgSqlMigrator } from "@pgline/sql"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect, Schema, String as Str } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import * as SqlResolver from "effect/sql/SqlResolver"
import * as SqlSchema from "effect/sql/SqlSchema"

export const title = "effect/sql on pgline: a migration, a repository, a pipelined transaction"

const Product = Schema.Struct({ sku: Schema.String, name: Schema.String, price: Schema.Number })

const migrations = PgSqlMigrator.fromScripts({
  "1_catalog": `
    create table products (sku text primary key, name text not null, price int not null check (price > 0));
    create table orders (id serial primary key, placed_at timestamptz not null default now());
    create table order_lines (order_id int references orders, sku text references products, qty int not null)
  `
})

const check = (what: string, ok: boolean) =>
  ok ? Effect.void : Effect.die(new Error(`example check failed: ${what}`))

const program = Effect.gen(function* () {
  const applied = yield* PgSqlMigrator.run({ loader: migrations })
  yield* Console.log(`migrations applied: ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`)

  const sql = yield* SqlClient
  yield* sql`insert into products ${sql.insert([
    { sku: "tea", name: "Green tea", price: 4 },
    { sku: "cup", name: "Cup", price: 9 },
    { sku: "pot", name: "Teapot", price: 30 }
  ])}`

  // Point lookups by id are batched into one statement by the resolver.
  const productBySku = SqlResolver.request(
    SqlResolver.findById({
      Id: Schema.String,
      Result: Product,
      ResultId: (p) => p.sku,
      execute: (skus) => sql`select sku, name, price from products where ${sql.in("sku", skus)}`
    })
  )
  const cart = yield* Effect.all(
    ["tea", "pot", "cup"].map((sku) => productBySku(sku)),
    { concurrency: "unbounded" }
  )

  // One order: the header, then every line inserted concurrently (pipelined on the transaction's connection).
  const orderId = yield* sql.withTransaction(
    Effect.gen(function* () {
      const [order] = yield* sql<{ id: number }>`insert into orders default values returning id`
      yield* Effect.all(
        cart.map(
          (p, i) => sql`insert into order_lines ${sql.insert({ orderId: order!.id, sku: p.sku, qty: i + 1 })}`
        ),
        { concurrency: "unbounded" }
      )
      return order!.id
    })
  )
  const total = SqlSchema.findOne({
    Request: Schema.Number,
    Result: Schema.Struct({ total: Schema.Number }),
    execute: (id) =>
      sql`select sum(l.qty * p.price)::int as total from order_lines l join products p using (sku) where order_id = ${id}`
  })
  const { total: sum } = yield* total(orderId)
  yield* check("order total", sum === 1 * 4 + 2 * 30 + 3 * 9)
  yield* Console.log(`order ${orderId}: ${cart.map((p) => p.name).join(", ")}; total ${sum}`)

  const duplicate =
    yield* sql`insert into products ${sql.insert({ sku: "tea", name: "Black tea", price: 5 })}`.pipe(
      Effect.as("inserted"),
      Effect.catchTag("SqlError", (e) =>
        Effect.succeed(
          `${e.reason._tag} on ${(e.reason as { constraint?: string }).constraint} (pgline: ${(e.reason.cause as { _tag: string })._tag})`
        )
      )
    )
  yield* check("duplicate refused", duplicate.startsWith("UniqueViolation"))
  yield* Console.log(`second "tea": ${duplicate}`)
})

export const run = (server: ServerInfo) =>
  // camelCase in code, snake_case in the database (orderId → order_id), as with @effect/sql-pg.
  program.pipe(
    Effect.provide(PgSql.layer({ url: server.url, max: 4, transformQueryNames: Str.camelToSnake }))
  )

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
