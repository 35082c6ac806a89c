/**
 * Benchmark worker for pgline (see common.ts for the protocol). One connection
 * (`PgClient.layer`, sslmode disable); statements go through the client's statement cache, so each
 * text is parsed once per connection (prepared, like every peer here).
 *
 * - upsert pipelined: `pipelineTransaction` + `executeMany`, the summed handle read after COMMIT
 *   (reading it inside the body would cost a Flush round trip before COMMIT is queued).
 * - upsert sequential: `withTransaction` (BEGIN … COMMIT), one `query` per row awaited.
 * - transfer pipelined: `pipelineTransaction` with both UPDATEs; sequential: `withTransaction`
 *   with both UPDATEs awaited in turn (four round trips).
 * - bigpipeline: one pipeline of N statements whose handles are dropped (or one `executeMany`),
 *   reporting peak RSS; runs once (memory is the measure, not speed).
 * - pool (P7): `callers` fibers share a pool of `poolSize` connections (`max`; `multiplex` as
 *   given, the default otherwise), each repeating a point select (`pg.query`) or a transfer
 *   between two of the pool accounts (`pipelineTransaction` with both UPDATEs: one round trip).
 */
import { PgClient } from "@pgline/client"
import { Effect } from "effect"
import {
  BIG_PIPELINE,
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

const now = () => performance.now()

const repeat = repeatEffect

const upsert = Effect.gen(function* () {
  const pg = yield* PgClient
  const n = params.rows ?? 10_000
  const rows = upsertRows(n)
  if (params.mode === "pipelined") {
    const once = Effect.gen(function* () {
      const t0 = now()
      const summed = yield* pg.pipelineTransaction((p) => p.executeMany(UPSERT, rows))
      const { rowCount } = yield* summed
      const ms = now() - t0
      check(rowCount === n, `upserted ${rowCount} of ${n} rows`)
      return ms
    })
    return yield* repeat(params, once)
  }
  const budget = params.budgetMs ?? Number.POSITIVE_INFINITY
  let minDone = n
  const once = Effect.gen(function* () {
    const t0 = now()
    // BEGIN, one awaited statement per row, COMMIT: withTransaction sends BEGIN and COMMIT itself.
    const done = yield* pg.withTransaction(
      Effect.gen(function* () {
        let done = 0
        while (done < n && now() - t0 < budget) {
          yield* pg.query(UPSERT, rows[done])
          done++
        }
        return done
      })
    )
    const ms = now() - t0
    if (done < minDone) minDone = done
    return (ms * n) / done
  })
  const out = yield* repeat(params, once)
  return minDone < n ? { ...out, done: minDone, extrapolated: true } : out
})

const transfer = Effect.gen(function* () {
  const pg = yield* PgClient
  const count = params.transfers ?? 100
  const pipelined = Effect.asVoid(
    pg.pipelineTransaction((p) =>
      Effect.all([p.execute(DEBIT, [TRANSFER_AMOUNT, 1]), p.execute(CREDIT, [TRANSFER_AMOUNT, 2])])
    )
  )
  // Four round trips: BEGIN, each UPDATE awaited, COMMIT (withTransaction fails on a COMMIT
  // answered with ROLLBACK).
  const sequential = pg.withTransaction(
    Effect.gen(function* () {
      yield* pg.query(DEBIT, [TRANSFER_AMOUNT, 1])
      yield* pg.query(CREDIT, [TRANSFER_AMOUNT, 2])
    })
  )
  const one = params.mode === "pipelined" ? pipelined : sequential
  const once = Effect.gen(function* () {
    const t0 = now()
    for (let i = 0; i < count; i++) yield* one
    return now() - t0
  })
  return yield* repeat(params, once)
})

const decode = Effect.gen(function* () {
  const pg = yield* PgClient
  const once = Effect.gen(function* () {
    const t0 = now()
    const { rows } = yield* pg.query(DECODE)
    // Touch every value, as a consumer would (and so a lazy representation pays here too).
    let nonNull = 0
    for (const row of rows) for (const k in row) if (row[k] !== null) nonNull++
    const ms = now() - t0
    check(rows.length === DECODE_ROWS && nonNull > 0, `decoded ${rows.length} rows`)
    return ms
  })
  return yield* repeat(params, once)
})

const point = Effect.gen(function* () {
  const pg = yield* PgClient
  const count = params.queries ?? 1_000
  const once = Effect.gen(function* () {
    const t0 = now()
    for (let i = 1; i <= count; i++) {
      const { rows } = yield* pg.query<{ x: number }>(POINT, [i])
      if (rows[0]!.x !== i) return yield* Effect.die(new Error(`expected ${i}, got ${rows[0]!.x}`))
    }
    return now() - t0
  })
  return yield* repeat(params, once)
})

const rssKiB = () => process.resourceUsage().maxRSS
const gc = (globalThis as { gc?: () => void }).gc

/**
 * Two passes in one process: the timed pass (nothing else running; peak RSS), then a probed pass
 * of the same size that forces a full collection every `probeEvery` statements and records the
 * live heap (heapUsed after GC): RSS alone mixes live memory with garbage V8 has not yet
 * collected. Needs `node --expose-gc` (the orchestrator passes it).
 */
const bigPipeline = Effect.gen(function* () {
  const pg = yield* PgClient
  const total = params.statements ?? 1_000_000
  const syncEvery = params.syncEvery ?? 0
  const style = params.style ?? "execute"
  const probeEvery = Math.max(10_000, Math.floor(total / 20))
  let liveMax = 0
  const probe = () => {
    if (gc === undefined) return
    gc()
    const used = process.memoryUsage().heapUsed
    if (used > liveMax) liveMax = used
  }
  const run = (n: number, probing: boolean) =>
    Effect.scoped(
      Effect.gen(function* () {
        const p = yield* pg.pipeline
        if (style === "executeMany") {
          function* gen() {
            for (let i = 0; i < n; i++) {
              if (probing && i % probeEvery === 0) probe()
              yield [i & 0xffff]
            }
          }
          const summed = yield* p.executeMany(BIG_PIPELINE, gen())
          yield* p.sync
          if (probing) probe()
          const r = yield* summed
          check(r.statements === n, `executeMany ran ${r.statements} of ${n}`)
          return
        }
        for (let i = 0; i < n; i++) {
          if (probing && i % probeEvery === 0) probe()
          yield* p.execute(BIG_PIPELINE, [i & 0xffff])
          if (syncEvery > 0 && (i + 1) % syncEvery === 0) yield* p.sync
        }
        yield* p.sync
        if (probing) probe()
      })
    )
  // Warm-up (JIT, statement cache) so the baseline includes what any pipeline costs.
  yield* run(10_000, false)
  probe()
  const liveBaseline = liveMax
  liveMax = 0
  const baseline = rssKiB()
  const t0 = now()
  yield* run(total, false)
  const ms = now() - t0
  const peak = rssKiB()
  yield* run(total, true)
  return {
    times: [ms],
    warmupTimes: [],
    extra: {
      statements: total,
      syncEvery,
      style,
      baselineRssKiB: baseline,
      peakRssKiB: peak,
      liveHeapBaselineKiB: Math.round(liveBaseline / 1024),
      liveHeapMaxKiB: Math.round(liveMax / 1024)
    }
  }
})

/**
 * P7: `callers` fibers on one pool, each repeating its operation until the run's time is up. The
 * transfer updates the lower account id first (see `poolPair`), so transactions cannot deadlock.
 */
const pool = Effect.gen(function* () {
  const pg = yield* PgClient
  const callers = params.callers ?? 64
  const durationMs = params.durationMs ?? 1_000
  const transferOp = (caller: number, i: number) => {
    const [lower, higher] = poolPair(caller, i)
    return pg.pipelineTransaction((p) =>
      Effect.all([p.execute(DEBIT, [TRANSFER_AMOUNT, lower]), p.execute(CREDIT, [TRANSFER_AMOUNT, higher])])
    )
  }
  const pointOp = (caller: number, i: number) => {
    const value = poolPointValue(caller, i)
    return Effect.flatMap(pg.query<{ x: number }>(POINT, [value]), ({ rows }) =>
      rows[0]?.x === value ? Effect.void : Effect.die(new Error(`expected ${value}, got ${rows[0]?.x}`))
    )
  }
  const op = params.op === "transfer" ? transferOp : pointOp
  return yield* repeatPoolEffect(params, poolRunEffect(callers, durationMs, op))
})

const programs = { upsert, transfer, decode, point, bigpipeline: bigPipeline, pool } as const

const program = programs[workload]
if (program === undefined) fail("pgline", workload, new Error("unknown workload"))

const layer =
  workload === "pool"
    ? PgClient.layer({
        url,
        sslmode: "disable",
        max: params.poolSize ?? 10,
        ...(params.multiplex === undefined ? {} : { multiplex: params.multiplex })
      })
    : PgClient.layer({ url, sslmode: "disable" })

Effect.runPromise((program as typeof upsert).pipe(Effect.provide(layer))).then(emit, (cause) =>
  fail("pgline", workload, cause)
)
