/**
 * Benchmark worker for node-postgres (`pg` 8.23, see common.ts for the protocol). One `Client`;
 * statements are named (`{ name, text, values }`) so each is parsed once per connection, as the
 * other drivers do. `pg` 8.23's `pipeline: true` client option writes every query (each with its
 * own Sync) without waiting for the previous one: that client is the "pipelined" mode; the
 * default client is the "sequential" mode (one query at a time, awaited).
 *
 * pool (P7): a `pg.Pool` of `poolSize` clients shared by `callers` concurrent promises, each
 * repeating a point select (`pool.query`) or a transfer between two of the pool accounts (a
 * checked-out client: BEGIN, both UPDATEs and COMMIT awaited in turn, then released). The pool's
 * `idleTimeoutMillis` is 0 (never close idle clients): its 10 s default is shorter than the wait
 * between a worker's turns, and every driver's pool stays open and warm between runs.
 *
 * Not measured: `pg-native` (libpq bindings).
 */
import pg from "pg"
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

const client = new pg.Client({ connectionString: url, ssl: false, pipeline: pipelined } as pg.ClientConfig)

const upsertStatement = (values: Array<unknown>): pg.QueryConfig => ({ name: "upsert", text: UPSERT, values })

const upsert = async () => {
  const n = params.rows ?? 10_000
  const rows = upsertRows(n)
  if (pipelined) {
    return repeat(params, () =>
      timed(async () => {
        const pending: Array<Promise<pg.QueryResult>> = [client.query("BEGIN")]
        for (const row of rows) pending.push(client.query(upsertStatement(row)))
        pending.push(client.query("COMMIT"))
        const results = await Promise.all(pending)
        let count = 0
        for (let i = 1; i <= n; i++) count += results[i]!.rowCount ?? 0
        check(count === n, `upserted ${count} of ${n} rows`)
      })
    )
  }
  const budget = params.budgetMs ?? Number.POSITIVE_INFINITY
  let minDone = n
  const out = await repeat(params, async () => {
    const t0 = performance.now()
    await client.query("BEGIN")
    let done = 0
    while (done < n && performance.now() - t0 < budget) {
      await client.query(upsertStatement(rows[done]!))
      done++
    }
    await client.query("COMMIT")
    if (done < minDone) minDone = done
    return ((performance.now() - t0) * n) / done
  })
  return minDone < n ? { ...out, done: minDone, extrapolated: true } : out
}

const debit = { name: "debit", text: DEBIT, values: [TRANSFER_AMOUNT, 1] }
const credit = { name: "credit", text: CREDIT, values: [TRANSFER_AMOUNT, 2] }

const transfer = () => {
  const count = params.transfers ?? 100
  const one = pipelined
    ? async () => {
        const [, , , commit] = await Promise.all([
          client.query("BEGIN"),
          client.query(debit),
          client.query(credit),
          client.query("COMMIT")
        ])
        check(commit.command === "COMMIT", `COMMIT answered ${commit.command}`)
      }
    : async () => {
        await client.query("BEGIN")
        await client.query(debit)
        await client.query(credit)
        const commit = await client.query("COMMIT")
        check(commit.command === "COMMIT", `COMMIT answered ${commit.command}`)
      }
  return repeat(params, () =>
    timed(async () => {
      for (let i = 0; i < count; i++) await one()
    })
  )
}

const decode = () =>
  repeat(params, () =>
    timed(async () => {
      const { rows } = await client.query({ name: "decode", text: DECODE })
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
        const { rows } = await client.query({ name: "point", text: POINT, values: [i] })
        if (rows[0].x !== i) throw new Error(`expected ${i}, got ${rows[0].x}`)
      }
    })
  )
}

/** P7: `callers` concurrent promises on one `pg.Pool`, each repeating its operation until time is up. */
const poolWorkload = async () => {
  const pool = new pg.Pool({
    connectionString: url,
    ssl: false,
    max: params.poolSize ?? 10,
    idleTimeoutMillis: 0
  })
  pool.on("error", (e) => process.stderr.write(`pg pool: idle client error: ${e.message}\n`))
  const callers = params.callers ?? 64
  const durationMs = params.durationMs ?? 1_000
  const pointOp = async (caller: number, i: number) => {
    const value = poolPointValue(caller, i)
    const { rows } = await pool.query({ name: "point", text: POINT, values: [value] })
    if (rows[0].x !== value) throw new Error(`expected ${value}, got ${rows[0].x}`)
  }
  // BEGIN, the lower id's UPDATE, the higher id's, COMMIT, each awaited (see poolPair).
  const transferOp = async (caller: number, i: number) => {
    const [lower, higher] = poolPair(caller, i)
    const client = await pool.connect()
    try {
      await client.query("BEGIN")
      await client.query({ name: "debit", text: DEBIT, values: [TRANSFER_AMOUNT, lower] })
      await client.query({ name: "credit", text: CREDIT, values: [TRANSFER_AMOUNT, higher] })
      const commit = await client.query("COMMIT")
      check(commit.command === "COMMIT", `COMMIT answered ${commit.command}`)
    } catch (cause) {
      // Destroyed rather than returned to the pool inside a failed transaction.
      client.release(true)
      throw cause
    }
    client.release()
  }
  const op = params.op === "transfer" ? transferOp : pointOp
  try {
    return await repeatPool(params, () => poolRun(callers, durationMs, op))
  } finally {
    await pool.end()
  }
}

const programs: Record<string, () => Promise<unknown>> = { upsert, transfer, decode, point }

const main = async () => {
  if (workload === "pool") return emit(await poolWorkload())
  const program = programs[workload] ?? (() => unsupported("pg", workload))
  await client.connect()
  try {
    emit((await program()) as Parameters<typeof emit>[0])
  } finally {
    await client.end()
  }
}

main().catch((cause) => fail("pg", workload, cause))
