/**
 * A small HTTP service: Effect's HTTP router served by Node's http server (@effect/platform-node),
 * backed by a pooled PgClient. `POST /transfer` moves money between two wallets inside
 * `pg.withTransaction`; the table's CHECK (balance >= 0) makes an overdraft fail with the typed
 * server error `CheckViolation`, which the handler maps to 409 (and an unknown wallet to 404).
 * `GET /wallets/:id` reads a balance.
 *
 * The example starts the service on a free port, sends 20 transfers at once (more than the pool's
 * 4 connections, so they queue for one and each runs in its own transaction), one overdraft and
 * one transfer from an unknown wallet, checks every answer and the balances, and stops.
 *
 *   NODE_OPTIONS=--conditions=@pgline/source node examples/04-http-service.ts
 */
import { createServer } from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"

export const title = "An HTTP service with a pooled client, transactions and typed errors mapped to 4xx"

class UnknownWallet extends Schema.TaggedError<UnknownWallet>()("UnknownWallet", { id: Schema.Number }) {}

const Transfer = Schema.Struct({ from: Schema.Number, to: Schema.Number, amount: Schema.Number })

const transfer = HttpRouter.add(
  "POST",
  "/transfer",
  Effect.gen(function* () {
    const { from, to, amount } = yield* HttpServerRequest.schemaBodyJson(Transfer)
    const pg = yield* PgClient
    const balance = yield* pg.withTransaction(
      Effect.gen(function* () {
        const debited = yield* pg.sql<{ balance: number }>`
          update wallet set balance = balance - ${amount} where id = ${from} returning balance`
        if (debited.rows.length === 0) return yield* new UnknownWallet({ id: from })
        const credited = yield* pg.sql`update wallet set balance = balance + ${amount} where id = ${to}`
        if (credited.rowCount === 0) return yield* new UnknownWallet({ id: to })
        return debited.rows[0]!.balance
      })
    )
    return yield* HttpServerResponse.json({ from, balance })
  }).pipe(
    Effect.catchTag("CheckViolation", () =>
      HttpServerResponse.json({ error: "insufficient funds" }, { status: 409 })
    ),
    Effect.catchTag("UnknownWallet", (e) =>
      HttpServerResponse.json({ error: `no wallet ${e.id}` }, { status: 404 })
    ),
    Effect.catchTag("SchemaError", () => HttpServerResponse.json({ error: "bad request" }, { status: 400 }))
  )
)

const wallet = HttpRouter.add(
  "GET",
  "/wallets/:id",
  Effect.gen(function* () {
    const { id } = yield* HttpRouter.params
    const pg = yield* PgClient
    const { rows } = yield* pg.sql<{ balance: number }>`select balance from wallet where id = ${Number(id)}`
    if (rows.length === 0)
      return yield* HttpServerResponse.json({ error: `no wallet ${id}` }, { status: 404 })
    return yield* HttpServerResponse.json({ id: Number(id), balance: rows[0]!.balance })
  })
)

/** The service: routes, Node's http server on a free loopback port, and a pool of 4 connections. */
const service = (server: ServerInfo) =>
  HttpRouter.serve(Layer.mergeAll(transfer, wallet), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(PgClient.layer({ url: server.url, sslmode: "disable", max: 4 }))
  )

const call = (base: string, method: "GET" | "POST", path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const expect = (what: string, actual: unknown, expected: unknown) =>
  JSON.stringify(actual) === JSON.stringify(expected)
    ? Effect.void
    : Effect.fail(new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`))

export const run = (server: ServerInfo) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    yield* pg.query("create table wallet (id int primary key, balance int not null check (balance >= 0))")
    yield* pg.query("insert into wallet values (1, 100), (2, 0)")

    const { address } = yield* HttpServer.HttpServer
    if (address._tag === "UnixPathAddress") return yield* Effect.fail(new Error("expected a TCP address"))
    const base = `http://127.0.0.1:${address.port}`
    yield* Console.log(`  listening on ${base} (a pool of at most 4 connections)`)

    // 20 transfers of 5 at once: together they empty wallet 1 exactly.
    const t0 = performance.now()
    const answers = yield* Effect.all(
      Array.from({ length: 20 }, () => call(base, "POST", "/transfer", { from: 1, to: 2, amount: 5 })),
      { concurrency: "unbounded" }
    )
    const statuses = answers.map((a) => a.status)
    yield* expect("20 concurrent transfers", statuses, Array(20).fill(200))
    yield* Console.log(
      `  20 concurrent POST /transfer: all 200 in ${Math.round(performance.now() - t0)} ms; ` +
        `pool: ${pg.stats().open} connections open`
    )

    const overdraft = yield* call(base, "POST", "/transfer", { from: 1, to: 2, amount: 1 })
    yield* expect("overdraft", overdraft, { status: 409, body: { error: "insufficient funds" } })
    yield* Console.log(
      `  overdraft: ${overdraft.status} ${JSON.stringify(overdraft.body)} (CheckViolation, rolled back)`
    )

    const unknown = yield* call(base, "POST", "/transfer", { from: 1, to: 99, amount: 0 })
    yield* expect("unknown wallet", unknown, { status: 404, body: { error: "no wallet 99" } })
    const malformed = yield* call(base, "POST", "/transfer", { from: "one" })
    yield* expect("malformed body", malformed.status, 400)
    yield* Console.log(`  unknown wallet: ${unknown.status}; malformed body: ${malformed.status}`)

    const one = yield* call(base, "GET", "/wallets/1")
    const two = yield* call(base, "GET", "/wallets/2")
    yield* expect("wallet 1", one.body, { id: 1, balance: 0 })
    yield* expect("wallet 2", two.body, { id: 2, balance: 100 })
    yield* Console.log(`  balances: wallet 1 = ${one.body.balance}, wallet 2 = ${two.body.balance}`)
  }).pipe(Effect.provide(service(server)))

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
