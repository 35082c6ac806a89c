/**
 * Benchmark worker for node-postgres (`pg` 8.23, see common.ts for the protocol). One `Client`;
 * statements are named (`{ name, text, values }`) so each is parsed once per connection, as the
 * other drivers do. `pg` 8.23's `pipeline: true` client option writes every query (each with its
 * own Sync) without waiting for the previous one: that client is the "pipelined" mode; the
 * default client is the "sequential" mode (one query at a time, awaited).
 *
 * Not measured: `pg-native` (libpq bindings), pools.
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
  repeat,
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

const programs: Record<string, () => Promise<unknown>> = { upsert, transfer, decode, point }

const main = async () => {
  const program = programs[workload] ?? (() => unsupported("pg", workload))
  await client.connect()
  try {
    emit((await program()) as Parameters<typeof emit>[0])
  } finally {
    await client.end()
  }
}

main().catch((cause) => fail("pg", workload, cause))
