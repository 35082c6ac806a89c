/**
 * steps: how many steps of Effect's runtime one operation takes (each primitive the fiber's loop
 * evaluates: a flatMap's continuation, a suspend, a callback, an exit, …), counted exactly, with
 * the kinds of steps. A step costs dispatch on many object shapes (megamorphic property access)
 * and usually an allocation, so fewer steps is less client CPU per operation; unlike time, the
 * count does not move with the machine's load.
 *
 *   node bench/steps.ts [operation=transfer] [count=1000]
 *
 * Operations (as in per-op.ts, on a pool of one connection to an embedded PostgreSQL, through
 * `PgSql.layer`, which provides pgline's PgClient and effect/sql's SqlClient over that pool):
 * - query: `pg.query("select $1::int as x", [1])`, awaited
 * - pipeline-empty: `pg.withPipeline(() => Effect.void)`
 * - transfer: `pg.pipelineTransaction` with P2's two UPDATEs, `Effect.all` of two `p.execute`
 * - transfer-awaited: `pg.withTransaction` with the two UPDATEs awaited in turn
 * - execute-10: one `pg.withPipeline` of 10 point selects, one `p.execute` each
 * - sql-query: effect/sql's ``sql`select ${1}::int as x` `` (@pgline/sql)
 * - sql-transaction: `sql.withTransaction` of two such selects, awaited in turn
 * - empty: `Effect.void` (the loop's own steps, which every other count includes: none)
 *
 * How: Effect's runtime hands every step to the installed tracer's `context` hook when the tracer
 * has one; the native tracer (the default, which makes pgline skip its spans) is given one that
 * counts and evaluates. 2,000 operations warm up first.
 */
import { PgClient } from "@pgline/client"
import { PgSql } from "@pgline/sql"
import { PgServer } from "@pgline/testing"
import { Effect, Layer, Tracer } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { CREDIT, DEBIT, POINT } from "./workers/common.ts"

const operation = process.argv[2] ?? "transfer"
const count = Number(process.argv[3] ?? 1_000)

// Effect's property names for a primitive's evaluation and its kind (effect 4's internal/core.js).
const EVALUATE = "~effect/Effect/evaluate"
const IDENTIFIER = "~effect/Effect/identifier"

let counting = false
let steps = 0
const kinds = new Map<string, number>()
// Mutable here: the hook must sit on the native tracer itself (pgline compares the tracer with it).
const tracer = Tracer.nativeTracer as { -readonly [K in keyof Tracer.Tracer]: Tracer.Tracer[K] }
tracer.context = ((primitive: Record<string, unknown>, fiber: unknown) => {
  if (counting) {
    steps++
    const kind = String(primitive[IDENTIFIER] ?? "?")
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  return (primitive[EVALUATE] as (fiber: unknown) => unknown).call(primitive, fiber)
}) as unknown as Tracer.Tracer["context"]

const program = Effect.gen(function* () {
  const pg = yield* PgClient
  const sql = yield* SqlClient.SqlClient
  yield* pg.query("create table if not exists account (id int primary key, balance int)")
  yield* pg.query("insert into account values (1, 0), (2, 0) on conflict do nothing")
  const operations: Record<string, Effect.Effect<unknown, unknown>> = {
    empty: Effect.void,
    query: pg.query(POINT, [1]),
    "pipeline-empty": pg.withPipeline(() => Effect.void),
    transfer: pg.pipelineTransaction((p) =>
      Effect.all([p.execute(DEBIT, [1, 1]), p.execute(CREDIT, [1, 2])])
    ),
    "transfer-awaited": pg.withTransaction(
      Effect.gen(function* () {
        yield* pg.query(DEBIT, [1, 1])
        yield* pg.query(CREDIT, [1, 2])
      })
    ),
    "sql-query": sql`select ${1}::int as x`,
    "sql-transaction": sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`select ${1}::int as x`
        yield* sql`select ${2}::int as x`
      })
    ),
    "execute-10": pg.withPipeline((p) =>
      Effect.gen(function* () {
        for (let i = 0; i < 10; i++) yield* p.execute(POINT, [i])
      })
    )
  }
  const one = operations[operation]
  if (one === undefined) {
    return yield* Effect.die(`unknown operation ${operation}; have ${Object.keys(operations).join(", ")}`)
  }
  for (let i = 0; i < 2_000; i++) yield* one
  // The loop's own steps would be counted with it: the `empty` operation (Effect.void) shows there
  // are none (a generator takes a yielded exit's value without a step).
  counting = true
  for (let i = 0; i < count; i++) yield* one
  counting = false
  console.log(`${operation}: ${(steps / count).toFixed(1)} Effect steps per operation (${count} operations)`)
  for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1]))
    console.log(`  ${(n / count).toFixed(2).padStart(6)} ${kind}`)
})

const layer = Layer.unwrap(
  Effect.map(PgServer, (info) => PgSql.layer({ url: info.url, sslmode: "disable", max: 1 }))
).pipe(Layer.provide(PgServer.layer))

Effect.runPromise(
  Effect.provideService(Effect.provide(program, layer), Tracer.Tracer, Tracer.nativeTracer)
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
