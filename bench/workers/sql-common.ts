/**
 * The effect/sql programs of bench/sql.ts, written once against effect/sql's `SqlClient` (the `sql`
 * template only) and run by both workers: `sql-pgline.ts` (@pgline/sql's `PgSql.layer`) and
 * `sql-effect.ts` (@effect/sql-pg's `PgClient.layer`). A worker is this module's `runWorker` plus
 * the Layer that provides `SqlClient`; nothing else differs, so the two run the same program text,
 * the same SQL texts and the same parameters.
 *
 *   node bench/workers/sql-<driver>.ts <pq|pqc|tx|sel|ctx> <url> '<json SqlParams>'
 *
 * Protocol (as common.ts): the worker builds its layer (a pool of `POOL_SIZE` connections on
 * `url`), runs `warmup` untimed and `runs` timed runs, waiting for its turn before each timed run
 * when `interleave` is set (`@turn` on stdout, `go` on stdin), and prints one JSON line,
 * `{"times":[…],"warmupTimes":[…]}`. Each run is: `before` (untimed, after the turn: resets the
 * rows a run changes), the run (timed), `verify` (untimed: its result against what it must be; a
 * mismatch fails the worker, so no driver is credited for wrong work). `before` and `verify` use a
 * second client of the same driver on `checkUrl` (the server directly, not through the latency
 * proxy), so the proxy's count of round trips during a turn is the timed run's alone.
 *
 * Workloads:
 * - pq: `n` point selects one after another;
 * - pqc: `fibers` fibers (`Effect.all`, concurrency = fibers) each doing `perFiber` point selects
 *   one after another;
 * - tx: `transactions` transactions one after another, each `sql.withTransaction` of four
 *   statements awaited in turn (read a balance, debit it, credit another account, log it);
 * - sel: `selects` times in turn, `select … from sql_big` (`expected.rows` rows × 5 columns) into
 *   an array, every value consumed into a checksum;
 * - ctx: `transactions` transactions one after another, each `sql.withTransaction` of 10
 *   independent statements (8 UPDATEs of distinct accounts, 2 INSERTs) run with `Effect.all(…,
 *   { concurrency: "unbounded" })`.
 */
import { Context, Effect, Layer } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { check, emit, fail, turn } from "./common.ts"

export type SqlWorkload = "pq" | "pqc" | "tx" | "sel" | "ctx"
const WORKLOADS: ReadonlyArray<SqlWorkload> = ["pq", "pqc", "tx", "sel", "ctx"]

/** Connections in each driver's pool (`max` / `maxConnections`). */
export const POOL_SIZE = 10

// --- the tables (created by bench/sql.ts with node-postgres) --------------------------------------

/** Point selects read it; TX and CTX move balances between its first `ACCOUNTS` rows. */
export const BENCH_TABLE = "sql_bench"
export const BENCH_ROWS = 10_000
export const START_BALANCE = 1_000_000
/** The accounts TX and CTX touch: ids 1 … ACCOUNTS. */
export const ACCOUNTS = 1_000
/** TX and CTX append here; emptied before every run. */
export const LOG_TABLE = "sql_log"
/** SEL's table: id int, name text, amount numeric(12,2), score float8, created timestamptz. */
export const BIG_TABLE = "sql_big"
/** `created` is this instant plus a whole number of ms (the checksum sums the offsets). */
export const CREATED_BASE = "2024-01-01 00:00:00+00"
export const CREATED_BASE_MS = Date.UTC(2024, 0, 1)

/** What SEL's rows must add up to (bench/sql.ts asks the server; see `selTally`). */
export interface SelExpected {
  readonly rows: number
  readonly sumId: number
  readonly sumLenName: number
  readonly sumCents: number
  readonly sumScore: number
  readonly sumCreatedMs: number
}

export interface SqlParams {
  readonly warmup: number
  readonly runs: number
  readonly interleave?: boolean
  /** The server without the proxy, for `before` and `verify`. */
  readonly checkUrl: string
  /** pq: point selects per run. */
  readonly n?: number
  /** pqc: fibers, and point selects per fiber. */
  readonly fibers?: number
  readonly perFiber?: number
  /** tx, ctx: transactions per run. */
  readonly transactions?: number
  /** sel: the table's figures, and how many times a run selects the table (one after another). */
  readonly expected?: SelExpected
  readonly selects?: number
}

/** The one thing a worker supplies: a Layer providing SqlClient on `url` with `max` connections. */
export type MakeLayer = (url: string, max: number) => Layer.Layer<SqlClient.SqlClient, unknown>

// --- the workloads' arithmetic (the same for every driver, outside the clock where it can be) ----

/** The name point selects must return for id `i`. */
const nameOf = (i: number) => `name-${i}`

/** PQ's i-th id (0-based): all BENCH_ROWS rows in turn. */
const pointId = (i: number) => 1 + (i % BENCH_ROWS)

/** TX's j-th transaction: debit `src`, credit `dst` (distinct accounts), by `amount`. */
export const txStep = (j: number): { src: number; dst: number; amount: number } => {
  const a = (j * 37) % ACCOUNTS
  const b = (a + 1 + (j % (ACCOUNTS - 1))) % ACCOUNTS
  return { src: 1 + a, dst: 1 + b, amount: 1 + (j % 7) }
}

/** CTX's j-th transaction: UPDATEs of `CTX_UPDATES` consecutive (so distinct) accounts, then INSERTs. */
const CTX_UPDATES = 8
const CTX_INSERTS = 2
export const ctxAccount = (j: number, k: number) => 1 + ((j * CTX_UPDATES + k) % ACCOUNTS)

/** The balances and log a run of `transactions` must leave behind (accounts not listed: START_BALANCE). */
interface Outcome {
  readonly balances: Map<number, number>
  readonly logRows: number
  readonly logSum: number
}

const txOutcome = (transactions: number): Outcome => {
  const balances = new Map<number, number>()
  const get = (id: number) => balances.get(id) ?? START_BALANCE
  let logSum = 0
  for (let j = 0; j < transactions; j++) {
    const { src, dst, amount } = txStep(j)
    balances.set(src, get(src) - amount)
    balances.set(dst, get(dst) + amount)
    logSum += amount
  }
  return { balances, logRows: transactions, logSum }
}

const ctxOutcome = (transactions: number): Outcome => {
  const balances = new Map<number, number>()
  let logSum = 0
  for (let j = 0; j < transactions; j++) {
    for (let k = 0; k < CTX_UPDATES; k++) {
      const id = ctxAccount(j, k)
      balances.set(id, (balances.get(id) ?? START_BALANCE) + 1 + k)
    }
    for (let k = 0; k < CTX_INSERTS; k++) logSum += k + 1
  }
  return { balances, logRows: transactions * CTX_INSERTS, logSum }
}

/** What SEL accumulates, one row at a time. */
export class SelTally {
  rows = 0
  sumId = 0
  sumLenName = 0
  sumCents = 0
  sumScore = 0
  sumCreatedMs = 0
}

interface SelRow {
  readonly id: number
  readonly name: string
  /** numeric: a string with both drivers (their default mapping). */
  readonly amount: string
  readonly score: number
  readonly created: Date
}

const checkSel = (t: SelTally, e: SelExpected): void => {
  check(t.rows === e.rows, `selected ${t.rows} rows, expected ${e.rows}`)
  check(t.sumId === e.sumId, `sum(id) ${t.sumId}, expected ${e.sumId}`)
  check(t.sumLenName === e.sumLenName, `sum(length(name)) ${t.sumLenName}, expected ${e.sumLenName}`)
  check(t.sumCents === e.sumCents, `sum(amount × 100) ${t.sumCents}, expected ${e.sumCents}`)
  check(
    Math.abs(t.sumScore - e.sumScore) <= 1e-9 * Math.max(1, Math.abs(e.sumScore)),
    `sum(score) ${t.sumScore}, expected ${e.sumScore}`
  )
  check(
    t.sumCreatedMs === e.sumCreatedMs,
    `sum(created − base) ${t.sumCreatedMs} ms, expected ${e.sumCreatedMs}`
  )
}

// --- the programs ---------------------------------------------------------------------------------

/** One workload as a run: `before` and `verify` get the checking client, `run` the measured one. */
interface Job<R> {
  readonly before?: (check: SqlClient.SqlClient) => Effect.Effect<void, unknown>
  readonly run: Effect.Effect<R, unknown, SqlClient.SqlClient>
  readonly verify: (result: R, check: SqlClient.SqlClient) => Effect.Effect<void, unknown>
}

/** Empties the log and puts back every balance a TX or CTX run changed. */
const reset = (sql: SqlClient.SqlClient) =>
  Effect.andThen(
    sql`update sql_bench set balance = ${START_BALANCE} where balance <> ${START_BALANCE}`,
    sql`truncate sql_log`
  )

/** The table after a TX or CTX run against `outcome`: every changed balance and the log. */
const verifyOutcome = (sql: SqlClient.SqlClient, outcome: Outcome) =>
  Effect.gen(function* () {
    const changed = yield* sql<{ id: number; balance: number }>`
      select id, balance from sql_bench where balance <> ${START_BALANCE} order by id`
    const want = [...outcome.balances].filter(([, b]) => b !== START_BALANCE).sort((x, y) => x[0] - y[0])
    check(changed.length === want.length, `${changed.length} balances changed, expected ${want.length}`)
    changed.forEach((row, k) => {
      const [id, balance] = want[k]!
      check(
        row.id === id && row.balance === balance,
        `account ${row.id}: ${row.balance}, expected ${balance}`
      )
    })
    const [log] = yield* sql<{ n: number; s: number }>`
      select count(*)::int as n, coalesce(sum(amount), 0)::int as s from sql_log`
    check(
      log!.n === outcome.logRows && log!.s === outcome.logSum,
      `log holds ${log!.n} rows summing ${log!.s}, expected ${outcome.logRows} summing ${outcome.logSum}`
    )
  })

const pointSelects = (n: number): Job<number> => ({
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (let k = 0; k < n; k++) {
      const i = pointId(k)
      const rows = yield* sql<{ id: number; name: string; balance: number }>`
        select id, name, balance from sql_bench where id = ${i}`
      check(rows.length === 1 && rows[0]!.id === i && rows[0]!.name === nameOf(i), `point select ${i}`)
    }
    return n
  }),
  verify: (done) => Effect.sync(() => check(done === n, `${done} point selects of ${n}`))
})

const concurrentPointSelects = (fibers: number, perFiber: number): Job<number> => ({
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const fiber = (f: number) =>
      Effect.gen(function* () {
        for (let q = 0; q < perFiber; q++) {
          const i = pointId(f * perFiber + q)
          const rows = yield* sql<{ id: number; name: string; balance: number }>`
            select id, name, balance from sql_bench where id = ${i}`
          check(rows.length === 1 && rows[0]!.id === i && rows[0]!.name === nameOf(i), `point select ${i}`)
        }
        return perFiber
      })
    const counts = yield* Effect.all(
      Array.from({ length: fibers }, (_, f) => fiber(f)),
      { concurrency: fibers }
    )
    return counts.reduce((a, b) => a + b, 0)
  }),
  verify: (done) =>
    Effect.sync(() => check(done === fibers * perFiber, `${done} point selects of ${fibers * perFiber}`))
})

const transactions = (m: number): Job<number> => {
  const outcome = txOutcome(m)
  return {
    before: reset,
    run: Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // What each transaction's SELECT must read: the balance the earlier transactions left.
      const balances = new Map<number, number>()
      for (let j = 0; j < m; j++) {
        const { src, dst, amount } = txStep(j)
        yield* sql.withTransaction(
          Effect.gen(function* () {
            const [row] = yield* sql<{ balance: number }>`select balance from sql_bench where id = ${src}`
            const want = balances.get(src) ?? START_BALANCE
            check(row?.balance === want, `transaction ${j} read balance ${row?.balance}, expected ${want}`)
            yield* sql`update sql_bench set balance = balance - ${amount} where id = ${src}`
            yield* sql`update sql_bench set balance = balance + ${amount} where id = ${dst}`
            yield* sql`insert into sql_log (tx, src, dst, amount) values (${j}, ${src}, ${dst}, ${amount})`
          })
        )
        balances.set(src, (balances.get(src) ?? START_BALANCE) - amount)
        balances.set(dst, (balances.get(dst) ?? START_BALANCE) + amount)
      }
      return m
    }),
    verify: (_, sql) => verifyOutcome(sql, outcome)
  }
}

const concurrentTransactions = (m: number): Job<number> => {
  const outcome = ctxOutcome(m)
  return {
    before: reset,
    run: Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      for (let j = 0; j < m; j++) {
        const statements: Array<Effect.Effect<unknown, unknown>> = []
        for (let k = 0; k < CTX_UPDATES; k++) {
          statements.push(
            sql`update sql_bench set balance = balance + ${1 + k} where id = ${ctxAccount(j, k)}`
          )
        }
        for (let k = 0; k < CTX_INSERTS; k++) {
          const id = ctxAccount(j, k)
          statements.push(
            sql`insert into sql_log (tx, src, dst, amount) values (${j}, ${id}, ${id}, ${k + 1})`
          )
        }
        yield* sql.withTransaction(Effect.all(statements, { concurrency: "unbounded" }))
      }
      return m
    }),
    verify: (_, sql) => verifyOutcome(sql, outcome)
  }
}

const select = (expected: SelExpected, selects: number): Job<ReadonlyArray<SelTally>> => ({
  run: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const tallies: Array<SelTally> = []
    for (let k = 0; k < selects; k++) {
      const rows = yield* sql<SelRow>`select id, name, amount, score, created from sql_big`
      const t = new SelTally()
      for (const r of rows) {
        t.rows++
        t.sumId += r.id
        t.sumLenName += r.name.length
        t.sumCents += Math.round(Number(r.amount) * 100)
        t.sumScore += r.score
        t.sumCreatedMs += r.created.getTime() - CREATED_BASE_MS
      }
      tallies.push(t)
    }
    return tallies
  }),
  verify: (tallies) =>
    Effect.sync(() => {
      check(tallies.length === selects, `${tallies.length} selects of ${selects}`)
      for (const t of tallies) checkSel(t, expected)
    })
})

const jobOf = (workload: SqlWorkload, p: SqlParams): Job<unknown> => {
  switch (workload) {
    case "pq":
      return pointSelects(p.n ?? 2_000) as Job<unknown>
    case "pqc":
      return concurrentPointSelects(p.fibers ?? 64, p.perFiber ?? 50) as Job<unknown>
    case "tx":
      return transactions(p.transactions ?? 200) as Job<unknown>
    case "ctx":
      return concurrentTransactions(p.transactions ?? 200) as Job<unknown>
    case "sel":
      if (p.expected === undefined) throw new Error("sel wants params.expected")
      return select(p.expected, p.selects ?? 1) as Job<unknown>
  }
}

/** Warm-up runs, then timed runs each after its turn; every run between `before` and `verify`. */
const repeatJob = <R>(p: SqlParams, job: Job<R>, checker: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const once = (timed: boolean) =>
      Effect.gen(function* () {
        // After the turn: the other driver's runs in between write to the same tables.
        if (timed) yield* Effect.promise(() => turn(p))
        if (job.before !== undefined) yield* job.before(checker)
        const t0 = performance.now()
        const result = yield* job.run
        const ms = performance.now() - t0
        yield* job.verify(result, checker)
        return ms
      })
    const warmupTimes: Array<number> = []
    const times: Array<number> = []
    for (let i = 0; i < p.warmup; i++) warmupTimes.push(yield* once(false))
    for (let i = 0; i < p.runs; i++) times.push(yield* once(true))
    return { times, warmupTimes }
  })

/** The whole worker: arguments, the driver's layer on `url` (and on `checkUrl` for the checks), the runs. */
export const runWorker = (driver: string, makeLayer: MakeLayer): void => {
  const [workload, url, json] = process.argv.slice(2)
  if (workload === undefined || url === undefined || json === undefined) {
    process.stderr.write("usage: node bench/workers/sql-<driver>.ts <pq|pqc|tx|sel|ctx> <url> <json>\n")
    process.exit(2)
  }
  if (!WORKLOADS.includes(workload as SqlWorkload)) fail(driver, workload, new Error("unknown workload"))
  const params = JSON.parse(json) as SqlParams
  const job = jobOf(workload as SqlWorkload, params)
  const program = Effect.gen(function* () {
    // The checking client: the same driver, one connection, straight to the server.
    const checker = Context.get(yield* Layer.build(makeLayer(params.checkUrl, 1)), SqlClient.SqlClient)
    return yield* repeatJob(params, job, checker)
  }).pipe(Effect.provide(makeLayer(url, POOL_SIZE)), Effect.scoped)
  Effect.runPromise(program).then(emit, (cause) => fail(driver, workload, cause))
}
