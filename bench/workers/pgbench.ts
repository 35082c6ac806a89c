/**
 * Benchmark worker for libpq, through pgbench 15 (see common.ts for the protocol): writes a
 * custom script, runs `pgbench -n -M prepared -c 1 -t <transactions> -l`, and reads the
 * per-transaction latencies from pgbench's log (µs, measured by pgbench around each script run;
 * connection set-up excluded). The binary comes from `params.pgbench` (the orchestrator installs
 * Debian's postgresql-15 when it is missing).
 *
 * - upsert (pipelined only): `\startpipeline`, BEGIN, one INSERT … ON CONFLICT per row with its
 *   values in pgbench variables (so every row is the same prepared text, `$1, $2, $3`), COMMIT,
 *   `\endpipeline` (one Sync). One pgbench transaction is one run.
 * - transfer (pipelined only): BEGIN, both UPDATEs, COMMIT inside `\startpipeline … \endpipeline`;
 *   a run is `transfers` consecutive pgbench transactions (their latencies summed).
 * - point: `SELECT :x::int AS x` as its own transaction, `queries` per run (latencies summed).
 *
 * pgbench prepares each script line as its own statement (P0_1, P0_2, …), so each of the 10,000
 * upsert lines is planned on its own: the first five executions of a prepared statement get custom
 * plans, the sixth decides on the generic plan (measured: runs 1–6 of 10,000 rows ~2× slower
 * than runs 7+). Warm-up is therefore at least 6 transactions here (the JS drivers
 * reuse one statement and cross that threshold within their first run).
 */
import { execFile } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { CREDIT, DEBIT, emit, fail, parseArgs, POINT, TRANSFER_AMOUNT, UPSERT, upsertRow } from "./common.ts"

const run = promisify(execFile)
const { workload, url, params } = parseArgs()
const bin = params.pgbench ?? "/usr/lib/postgresql/15/bin/pgbench"
const workDir = join(params.workDir ?? "bench/.work", `pgbench-${workload}-${process.pid}`)

/** `$1, $2, …` → pgbench variables, in order. */
const withVariables = (text: string, names: ReadonlyArray<string>): string =>
  text.replace(/\$(\d+)/g, (_, k: string) => `:${names[Number(k) - 1]}`)

const upsertScript = (rows: number): string => {
  const insert = `${withVariables(UPSERT, ["i", "n", "q"])};`
  const lines = ["\\startpipeline", "BEGIN;"]
  for (let i = 1; i <= rows; i++) {
    const [id, name, qty] = upsertRow(i)
    lines.push(`\\set i ${id}`, `\\set n ${name}`, `\\set q ${qty}`, insert)
  }
  lines.push("COMMIT;", "\\endpipeline")
  return `${lines.join("\n")}\n`
}

const transferScript = (): string =>
  [
    `\\set a ${TRANSFER_AMOUNT}`,
    "\\set f 1",
    "\\set t 2",
    "\\startpipeline",
    "BEGIN;",
    `${withVariables(DEBIT, ["a", "f"])};`,
    `${withVariables(CREDIT, ["a", "t"])};`,
    "COMMIT;",
    "\\endpipeline",
    ""
  ].join("\n")

const pointScript = (): string =>
  ["\\set x random(1, 1000000)", `${withVariables(POINT, ["x"])};`, ""].join("\n")

/** Runs pgbench over `script` for `transactions` transactions; returns each one's latency in ms. */
const pgbench = async (script: string, transactions: number): Promise<Array<number>> => {
  rmSync(workDir, { recursive: true, force: true })
  mkdirSync(workDir, { recursive: true })
  const file = join(workDir, "script.sql")
  writeFileSync(file, script)
  const prefix = join(workDir, "tx")
  const conn = new URL(url)
  conn.searchParams.set("sslmode", "disable")
  const { stdout } = await run(
    bin,
    [
      "-n",
      "-M",
      "prepared",
      "-c",
      "1",
      "-t",
      String(transactions),
      "-f",
      file,
      "-l",
      `--log-prefix=${prefix}`,
      conn.toString()
    ],
    { maxBuffer: 16 * 1024 * 1024 }
  )
  if (!/number of failed transactions: 0 /.test(stdout))
    throw new Error(`pgbench reported failures:\n${stdout}`)
  const logs = readdirSync(workDir).filter((f) => f.startsWith("tx"))
  const latencies: Array<number> = []
  for (const log of logs) {
    for (const line of readFileSync(join(workDir, log), "utf8").split("\n")) {
      // client_id transaction_no time(µs) script_no time_epoch time_us
      const fields = line.trim().split(/\s+/)
      if (fields.length >= 6) latencies.push(Number(fields[2]) / 1000)
    }
  }
  if (latencies.length !== transactions) {
    throw new Error(`pgbench logged ${latencies.length} of ${transactions} transactions:\n${stdout}`)
  }
  rmSync(workDir, { recursive: true, force: true })
  return latencies
}

/** Groups per-transaction latencies into runs of `per` transactions (summed); drops the warm-up. */
const intoRuns = (latencies: ReadonlyArray<number>, per: number, warmup: number) => {
  const runs: Array<number> = []
  for (let at = 0; at + per <= latencies.length; at += per) {
    let sum = 0
    for (let i = at; i < at + per; i++) sum += latencies[i]!
    runs.push(sum)
  }
  return { warmupTimes: runs.slice(0, warmup), times: runs.slice(warmup) }
}

const main = async () => {
  switch (workload) {
    case "upsert": {
      if (params.mode !== "pipelined") throw new Error("pgbench runs the pipelined upsert only")
      const warmup = Math.max(6, params.warmup)
      const latencies = await pgbench(upsertScript(params.rows ?? 10_000), warmup + params.runs)
      return { ...intoRuns(latencies, 1, warmup), extra: { warmupTransactions: warmup } }
    }
    case "transfer": {
      if (params.mode !== "pipelined") throw new Error("pgbench runs the pipelined transfer only")
      const per = params.transfers ?? 100
      const latencies = await pgbench(transferScript(), per * (params.warmup + params.runs))
      return intoRuns(latencies, per, params.warmup)
    }
    case "point": {
      const per = params.queries ?? 1_000
      const latencies = await pgbench(pointScript(), per * (params.warmup + params.runs))
      return intoRuns(latencies, per, params.warmup)
    }
    default:
      throw new Error("not supported by this worker")
  }
}

main().then(emit, (cause) => fail("pgbench", workload, cause))
