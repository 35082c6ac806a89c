/**
 * Benchmark worker for postgres.js 3.4 (`postgres`, see common.ts for the protocol). One
 * connection (`max: 1`); every statement goes through `sql.unsafe(text, params, { prepare: true })`
 * so the SQL text is exactly the other drivers' and is prepared once per connection.
 *
 * - pipelined: inside `sql.begin`, the callback returns the array of queries, which postgres.js
 *   writes without waiting for each answer (its documented way to pipeline in a transaction).
 * - sequential: inside `sql.begin`, each query awaited before the next.
 * - pool (P7): one `postgres()` instance with `max: poolSize` shared by `callers` concurrent
 *   promises, each repeating a point select or a transfer between two of the pool accounts
 *   (`sql.begin` returning both UPDATEs, its pipelined form). postgres.js itself pipelines queries
 *   onto busy connections (up to its `max_pipeline`, 100) once all are busy; its defaults never
 *   close idle connections.
 */
import postgres from "postgres"
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
  poolRun,
  repeat,
  repeatPool,
  TRANSFER_AMOUNT,
  timed,
  UPSERT,
  unsupported,
  upsertRows
} from "./common.ts"

const { workload, url, params } = parseArgs()
const pipelined = params.mode === "pipelined"

const sql = postgres(url, { max: 1, ssl: false, onnotice: () => {} })
const prepared = { prepare: true }
type Params = Array<postgres.ParameterOrJSON<never>>

const upsert = async () => {
  const n = params.rows ?? 10_000
  const rows = upsertRows(n) as Array<Params>
  if (pipelined) {
    return repeat(params, () =>
      timed(async () => {
        const results = await sql.begin((tx) => rows.map((row) => tx.unsafe(UPSERT, row, prepared)))
        let count = 0
        for (const r of results) count += r.count
        check(count === n, `upserted ${count} of ${n} rows`)
      })
    )
  }
  const budget = params.budgetMs ?? Number.POSITIVE_INFINITY
  let minDone = n
  const out = await repeat(params, async () => {
    const t0 = performance.now()
    let done = 0
    await sql.begin(async (tx) => {
      while (done < n && performance.now() - t0 < budget) {
        await tx.unsafe(UPSERT, rows[done]!, prepared)
        done++
      }
    })
    if (done < minDone) minDone = done
    return ((performance.now() - t0) * n) / done
  })
  return minDone < n ? { ...out, done: minDone, extrapolated: true } : out
}

const transfer = () => {
  const count = params.transfers ?? 100
  const one = pipelined
    ? () =>
        sql.begin((tx) => [
          tx.unsafe(DEBIT, [TRANSFER_AMOUNT, 1], prepared),
          tx.unsafe(CREDIT, [TRANSFER_AMOUNT, 2], prepared)
        ])
    : () =>
        sql.begin(async (tx) => {
          await tx.unsafe(DEBIT, [TRANSFER_AMOUNT, 1], prepared)
          await tx.unsafe(CREDIT, [TRANSFER_AMOUNT, 2], prepared)
        })
  return repeat(params, () =>
    timed(async () => {
      for (let i = 0; i < count; i++) await one()
    })
  )
}

const decode = () =>
  repeat(params, () =>
    timed(async () => {
      const rows = await sql.unsafe(DECODE, [], prepared)
      let nonNull = 0
      for (const row of rows) for (const k in row) if (row[k] !== null) nonNull++
      check(rows.length === DECODE_ROWS && nonNull > 0, `decoded ${rows.length} rows`)
    })
  )

const point = () => {
  const count = params.queries ?? 1_000
  return repeat(params, () =>
    timed(async () => {
      for (let i = 1; i <= count; i++) {
        const rows = await sql.unsafe(POINT, [i], prepared)
        if (rows[0]!["x"] !== i) throw new Error(`expected ${i}, got ${rows[0]!["x"]}`)
      }
    })
  )
}

/** P7: `callers` concurrent promises on one pool of `poolSize` connections. */
const pool = async () => {
  const db = postgres(url, { max: params.poolSize ?? 10, ssl: false, onnotice: () => {} })
  const callers = params.callers ?? 64
  const durationMs = params.durationMs ?? 1_000
  const pointOp = async (caller: number, i: number) => {
    const value = poolPointValue(caller, i)
    const rows = await db.unsafe(POINT, [value], prepared)
    if (rows[0]!["x"] !== value) throw new Error(`expected ${value}, got ${rows[0]!["x"]}`)
  }
  // The lower id's UPDATE first (see poolPair).
  const transferOp = async (caller: number, i: number) => {
    const [lower, higher] = poolPair(caller, i)
    await db.begin((tx) => [
      tx.unsafe(DEBIT, [TRANSFER_AMOUNT, lower], prepared),
      tx.unsafe(CREDIT, [TRANSFER_AMOUNT, higher], prepared)
    ])
  }
  const op = params.op === "transfer" ? transferOp : pointOp
  try {
    return await repeatPool(params, () => poolRun(callers, durationMs, op))
  } finally {
    await db.end({ timeout: 5 })
  }
}

const programs: Record<string, () => Promise<unknown>> = { upsert, transfer, decode, point, pool }

const main = async () => {
  const program = programs[workload] ?? (() => unsupported("postgres.js", workload))
  try {
    emit((await program()) as Parameters<typeof emit>[0])
  } finally {
    await sql.end({ timeout: 5 })
  }
}

main().catch((cause) => fail("postgres.js", workload, cause))
