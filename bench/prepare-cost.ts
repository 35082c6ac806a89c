/**
 * prepare-cost: what `prepare: false` (only the unnamed statement, for transaction-mode poolers)
 * costs against named prepared statements, on one embedded PostgreSQL, one connection each,
 * interleaved: 2,000 sequential `select $1::int`, and 10,000 upserts in one pipelined transaction
 * (`pipelineTransaction` + `executeMany`). Without names every statement is parsed, planned and
 * described again, and its results come back in text.
 *
 *   node bench/prepare-cost.ts [runs=7]
 *
 * Prints the median of `runs` timed runs after two warm-up runs per variant.
 */
import { PgClient, type PgClientApi } from "@pgline/client"
import { startServer } from "@pgline/testing"
import { ConfigProvider, Context, Effect, Layer } from "effect"

const runs = Number(process.argv[2] ?? 7)
const server = await startServer()

const client = (prepare: boolean) =>
  Effect.map(
    Layer.build(PgClient.layer({ url: server.info.url, sslmode: "disable", max: 1, prepare })),
    (c) => Context.get(c, PgClient)
  )

const sequential = (pg: PgClientApi) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    for (let i = 0; i < 2000; i++) yield* pg.query("select $1::int as x", [i])
    return performance.now() - t0
  })

const upserts = (pg: PgClientApi) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const rows = Array.from({ length: 10_000 }, (_, i) => [i, i])
    const summed = yield* pg.pipelineTransaction((p) =>
      p.executeMany(
        "insert into prepare_cost values ($1, $2) on conflict (id) do update set v = excluded.v",
        rows
      )
    )
    yield* summed
    return performance.now() - t0
  })

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const program = Effect.scoped(
  Effect.gen(function* () {
    const named = yield* client(true)
    const unnamed = yield* client(false)
    yield* named.query("create table prepare_cost (id int primary key, v int)")
    for (const [name, work] of [
      ["2,000 sequential select $1::int", sequential],
      ["10,000 pipelined upserts in a transaction", upserts]
    ] as const) {
      for (let i = 0; i < 2; i++) {
        yield* work(named)
        yield* work(unnamed)
      }
      const a: Array<number> = []
      const b: Array<number> = []
      for (let i = 0; i < runs; i++) {
        a.push(yield* work(named))
        b.push(yield* work(unnamed))
      }
      const [ma, mb] = [median(a), median(b)]
      console.log(
        `${name}: prepare true ${ma.toFixed(1)} ms, prepare false ${mb.toFixed(1)} ms (${(mb / ma).toFixed(2)}×)`
      )
    }
  })
).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))

try {
  await Effect.runPromise(program)
} finally {
  await server.stop()
}
