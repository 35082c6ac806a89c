/**
 * Benchmark worker for @effect/sql-pg 4.0.5 (see common.ts for the protocol): `PgClient.layer`
 * with one pooled connection, statements through `sql.unsafe(text, params)` (the same SQL text as
 * the other drivers; prepared and cached by name, the client's default).
 *
 * - "pipelined": inside `withTransaction`, all statements run with `Effect.all(…, { concurrency:
 *   "unbounded" })`. The driver's pipelining (`multiplex`) is for pooled, unpinned queries; a
 *   transaction pins its connection and runs one statement at a time, so this mode measures what a
 *   user who asks for concurrency inside a transaction gets (one round trip per statement).
 * - sequential: inside `withTransaction`, each statement awaited in turn.
 * - pool (P7): the layer's pool of `poolSize` connections (`maxConnections`; `multiplex` as given,
 *   the driver's default, off, otherwise) shared by `callers` fibers, each repeating a point select
 *   or a transfer between two of the pool accounts (`withTransaction` with both UPDATEs in turn;
 *   a transaction reserves its connection even with `multiplex`).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import {
  CREDIT,
  check,
  DEBIT,
  DECODE,
  DECODE_ROWS,
  emit,
  fail,
  parseArgs,
  POINT,
  poolPair,
  poolPointValue,
  TRANSFER_AMOUNT,
  UPSERT,
  upsertRows
} from "./common.ts"
import { poolRunEffect, repeatEffect, repeatPoolEffect } from "./repeatEffect.ts"

const { workload, url, params } = parseArgs()
const concurrent = params.mode === "pipelined"
const now = () => performance.now()

const repeat = repeatEffect

const upsert = Effect.gen(function* () {
  const sql = yield* PgClient.PgClient
  const n = params.rows ?? 10_000
  const rows = upsertRows(n)
  if (concurrent) {
    const once = Effect.gen(function* () {
      const t0 = now()
      const results = yield* sql.withTransaction(
        Effect.all(
          rows.map((row) => sql.unsafe(UPSERT, row)),
          { concurrency: "unbounded" }
        )
      )
      const ms = now() - t0
      check(results.length === n, `upserted ${results.length} of ${n} rows`)
      return ms
    })
    return yield* repeat(params, once)
  }
  const budget = params.budgetMs ?? Number.POSITIVE_INFINITY
  let minDone = n
  const once = Effect.gen(function* () {
    const t0 = now()
    let done = 0
    yield* sql.withTransaction(
      Effect.gen(function* () {
        while (done < n && now() - t0 < budget) {
          yield* sql.unsafe(UPSERT, rows[done])
          done++
        }
      })
    )
    if (done < minDone) minDone = done
    return ((now() - t0) * n) / done
  })
  const out = yield* repeat(params, once)
  return minDone < n ? { ...out, done: minDone, extrapolated: true } : out
})

const transfer = Effect.gen(function* () {
  const sql = yield* PgClient.PgClient
  const count = params.transfers ?? 100
  const debit = sql.unsafe(DEBIT, [TRANSFER_AMOUNT, 1])
  const credit = sql.unsafe(CREDIT, [TRANSFER_AMOUNT, 2])
  const one = sql.withTransaction(
    concurrent ? Effect.all([debit, credit], { concurrency: "unbounded" }) : Effect.andThen(debit, credit)
  )
  const once = Effect.gen(function* () {
    const t0 = now()
    for (let i = 0; i < count; i++) yield* one
    return now() - t0
  })
  return yield* repeat(params, once)
})

const decode = Effect.gen(function* () {
  const sql = yield* PgClient.PgClient
  const once = Effect.gen(function* () {
    const t0 = now()
    const rows = (yield* sql.unsafe(DECODE)) as ReadonlyArray<Record<string, unknown>>
    let nonNull = 0
    for (const row of rows) for (const k in row) if (row[k] !== null) nonNull++
    const ms = now() - t0
    check(rows.length === DECODE_ROWS && nonNull > 0, `decoded ${rows.length} rows`)
    return ms
  })
  return yield* repeat(params, once)
})

const point = Effect.gen(function* () {
  const sql = yield* PgClient.PgClient
  const count = params.queries ?? 1_000
  const once = Effect.gen(function* () {
    const t0 = now()
    for (let i = 1; i <= count; i++) {
      const rows = (yield* sql.unsafe(POINT, [i])) as ReadonlyArray<{ x: number }>
      if (rows[0]!.x !== i) return yield* Effect.die(new Error(`expected ${i}, got ${rows[0]!.x}`))
    }
    return now() - t0
  })
  return yield* repeat(params, once)
})

/** P7: `callers` fibers on one pool, each repeating its operation until the run's time is up. */
const pool = Effect.gen(function* () {
  const sql = yield* PgClient.PgClient
  const callers = params.callers ?? 64
  const durationMs = params.durationMs ?? 1_000
  // The lower id's UPDATE first (see poolPair).
  const transferOp = (caller: number, i: number) => {
    const [lower, higher] = poolPair(caller, i)
    return sql.withTransaction(
      Effect.andThen(
        sql.unsafe(DEBIT, [TRANSFER_AMOUNT, lower]),
        sql.unsafe(CREDIT, [TRANSFER_AMOUNT, higher])
      )
    )
  }
  const pointOp = (caller: number, i: number) => {
    const value = poolPointValue(caller, i)
    return Effect.flatMap(sql.unsafe(POINT, [value]), (rows) => {
      const x = (rows as ReadonlyArray<{ x: number }>)[0]?.x
      return x === value ? Effect.void : Effect.die(new Error(`expected ${value}, got ${x}`))
    })
  }
  const op = params.op === "transfer" ? transferOp : pointOp
  return yield* repeatPoolEffect(params, poolRunEffect(callers, durationMs, op))
})

const programs = { upsert, transfer, decode, point, pool } as const
const program = (programs as Record<string, typeof pool | undefined>)[workload]
if (program === undefined) fail("@effect/sql-pg", workload, new Error("unknown workload"))

const layer =
  workload === "pool"
    ? PgClient.layer({
        url: Redacted.make(url),
        ssl: false,
        maxConnections: params.poolSize ?? 10,
        ...(params.multiplex === undefined ? {} : { multiplex: params.multiplex })
      })
    : PgClient.layer({ url: Redacted.make(url), ssl: false, maxConnections: 1, minConnections: 1 })

Effect.runPromise(program!.pipe(Effect.provide(layer))).then(emit, (cause) =>
  fail("@effect/sql-pg", workload, cause)
)
