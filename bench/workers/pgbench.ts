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
 * Turns: one invocation runs the warm-up and every timed run on one connection (its 10,000-line
 * upsert script alone costs pgbench about a minute of CPU to parse, its parser being quadratic in
 * the script's meta-commands, plus 10,000 synchronous prepares: far too much to pay per run). The
 * script counts its transactions and, after the warm-up, makes every (per + 1)-th one a turn: an
 * untimed `\shell` that prints `@turn` and waits for `go` (`gated`). Timed runs are the sums of
 * the other transactions' latencies, so the wait is never timed; what is timed is the gate itself
 * (`\set k`, `\if`, `\else`, `\endif`: measured 1.2–1.6 µs per transaction).
 *
 * pgbench prepares each script line as its own statement (P0_1, P0_2, …), so each of the 10,000
 * upsert lines is planned on its own: the first five executions of a prepared statement get custom
 * plans, the sixth decides on the generic plan (measured: runs 1–6 of 10,000 rows ~2× slower
 * than runs 7+). Warm-up is therefore at least 6 transactions here (the JS drivers reuse one
 * statement and cross that threshold within their first run).
 *
 * So pgbench is a second opinion; the libpq reference is workers/libpq.ts (a C program that
 * prepares one statement and reuses it for every row). pgbench 15 cannot do the same inside one
 * pipelined transaction: a script has no loops, `-M prepared` names one statement per script line,
 * and a pipeline cannot stay open from one script run to the next (pgbench aborts the client with
 * "end of script reached with pipeline open").
 */
import { spawn } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  CREDIT,
  DEBIT,
  emit,
  fail,
  parseArgs,
  POINT,
  TRANSFER_AMOUNT,
  turn,
  UPSERT,
  upsertRow
} from "./common.ts"

const { workload, url, params } = parseArgs()
const bin = params.pgbench ?? "/usr/lib/postgresql/15/bin/pgbench"
const workDir = join(params.workDir ?? "bench/.work", `pgbench-${workload}-${process.pid}`)

/** `$1, $2, …` → pgbench variables, in order. */
const withVariables = (text: string, names: ReadonlyArray<string>): string =>
  text.replace(/\$(\d+)/g, (_, k: string) => `:${names[Number(k) - 1]}`)

const upsertScript = (rows: number): Array<string> => {
  const insert = `${withVariables(UPSERT, ["i", "n", "q"])};`
  const lines = ["\\startpipeline", "BEGIN;"]
  for (let i = 1; i <= rows; i++) {
    const [id, name, qty] = upsertRow(i)
    lines.push(`\\set i ${id}`, `\\set n ${name}`, `\\set q ${qty}`, insert)
  }
  lines.push("COMMIT;", "\\endpipeline")
  return lines
}

const transferScript = (): Array<string> => [
  `\\set a ${TRANSFER_AMOUNT}`,
  "\\set f 1",
  "\\set t 2",
  "\\startpipeline",
  "BEGIN;",
  `${withVariables(DEBIT, ["a", "f"])};`,
  `${withVariables(CREDIT, ["a", "t"])};`,
  "COMMIT;",
  "\\endpipeline"
]

const pointScript = (): Array<string> => ["\\set x random(1, 1000000)", `${withVariables(POINT, ["x"])};`]

/**
 * The script of a worker: `body` (one pgbench transaction of the workload) behind a turn gate.
 * Every transaction first counts itself in `k` (pgbench variables live as long as the client;
 * `-D k=0` starts it). After `warmup` workload transactions, every (per + 1)-th transaction is a
 * turn instead: `\shell` prints `@turn` on pgbench's stdout and reads a line from its stdin, both
 * pipes to this worker (`pgbench` below relays them). So one invocation, one connection and one
 * set of prepared statements serve the warm-up and every timed run, as for the JS drivers.
 */
const gated = (body: ReadonlyArray<string>, per: number, warmup: number): string =>
  [
    "\\set k :k + 1",
    `\\if :k > ${warmup} and (:k - ${warmup} - 1) % ${per + 1} = 0`,
    "\\shell echo @turn; read go",
    "\\else",
    ...body,
    "\\endif",
    ""
  ].join("\n")

/**
 * Runs pgbench (one connection) over `gated(body)` for `warmup` workload transactions, then `runs`
 * times a turn and `per` workload transactions. A turn's `@turn` line is answered once this
 * worker has its own `turn` (at once when not interleaved). Returns the warm-up and timed runs,
 * each the sum of its `per` transactions' latencies from pgbench's log (the turn transactions,
 * which include the wait, are dropped). Its scratch directory goes, whatever happens.
 */
const pgbench = async (
  body: ReadonlyArray<string>,
  per: number,
  warmup: number
): Promise<{ times: Array<number>; warmupTimes: Array<number> }> => {
  try {
    return await invoke(body, per, warmup)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}

const invoke = async (
  body: ReadonlyArray<string>,
  per: number,
  warmup: number
): Promise<{ times: Array<number>; warmupTimes: Array<number> }> => {
  rmSync(workDir, { recursive: true, force: true })
  mkdirSync(workDir, { recursive: true })
  const file = join(workDir, "script.sql")
  writeFileSync(file, gated(body, per, warmup))
  const prefix = join(workDir, "tx")
  const conn = new URL(url)
  conn.searchParams.set("sslmode", "disable")
  const transactions = warmup + params.runs * (per + 1)
  const child = spawn(
    bin,
    [
      "-n",
      "-M",
      "prepared",
      "-c",
      "1",
      "-t",
      String(transactions),
      "-D",
      "k=0",
      "-f",
      file,
      "-l",
      `--log-prefix=${prefix}`,
      conn.toString()
    ],
    { stdio: ["pipe", "pipe", "pipe"] }
  )
  // pgbench exits (and closes its stdin) on its own once its transactions are done.
  child.stdin.on("error", () => {})
  let stdout = ""
  let stderr = ""
  let pending = ""
  let turns: Promise<void> = Promise.resolve()
  let turnFailed: { cause: unknown } | undefined
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    const lines = (pending + d).split("\n")
    pending = lines.pop()!
    for (const line of lines) {
      if (line.trim() !== "@turn") stdout += `${line}\n`
      else
        turns = turns.then(
          () =>
            turn(params).then(
              () => void child.stdin.write("go\n"),
              (cause: unknown) => {
                turnFailed ??= { cause }
                child.kill("SIGKILL")
              }
            ),
          () => {}
        )
    }
  })
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d
  })
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
  await turns
  if (turnFailed !== undefined) throw turnFailed.cause
  stdout += pending
  if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${stderr}${stdout}`)
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
  const sum = (from: number) => latencies.slice(from, from + per).reduce((x, y) => x + y, 0)
  const warmupTimes: Array<number> = []
  for (let at = 0; at + per <= warmup; at += per) warmupTimes.push(sum(at))
  const times: Array<number> = []
  for (let run = 0; run < params.runs; run++) times.push(sum(warmup + run * (per + 1) + 1))
  return { times, warmupTimes }
}

const main = async () => {
  switch (workload) {
    case "upsert": {
      if (params.mode !== "pipelined") throw new Error("pgbench runs the pipelined upsert only")
      const warmup = Math.max(6, params.warmup)
      const out = await pgbench(upsertScript(params.rows ?? 10_000), 1, warmup)
      return { ...out, extra: { warmupTransactions: warmup } }
    }
    case "transfer": {
      if (params.mode !== "pipelined") throw new Error("pgbench runs the pipelined transfer only")
      const per = params.transfers ?? 100
      return pgbench(transferScript(), per, per * params.warmup)
    }
    case "point": {
      const per = params.queries ?? 1_000
      return pgbench(pointScript(), per, per * params.warmup)
    }
    default:
      throw new Error("not supported by this worker")
  }
}

main().then(emit, (cause) => fail("pgbench", workload, cause))
