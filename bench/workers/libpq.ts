/**
 * Benchmark worker for libpq in C (see common.ts for the protocol): the reference for P1, P2 and
 * P5. The work is done by bench/libpq/pgline_libpq_bench.c, which this worker compiles when needed
 * (`ensureLibpqBench`) and then runs in its place: the C program gets the workload's parameters
 * and SQL texts on its command line and shares this worker's stdin and stdout, so it answers the
 * orchestrator's turns and prints the JSON line itself.
 *
 * - upsert: BEGIN, the one prepared INSERT … ON CONFLICT per row, COMMIT. Pipelined: libpq's
 *   pipeline mode on a non-blocking connection, one PQpipelineSync per run; sequential:
 *   PQexecPrepared per row (with `budgetMs`, extrapolated like the other workers).
 * - transfer: BEGIN, the two prepared UPDATEs, COMMIT; pipelined: all four and one sync per
 *   transfer; sequential: one at a time.
 * - point: the prepared `SELECT $1::int`, PQexecPrepared one at a time.
 */
import { spawn } from "node:child_process"
import { CREDIT, DEBIT, fail, parseArgs, POINT, UPSERT } from "./common.ts"
import { ensureLibpqBench } from "./libpq-build.ts"

const { workload, url, params } = parseArgs()

const sql: Record<string, ReadonlyArray<string>> = {
  upsert: [UPSERT],
  transfer: [DEBIT, CREDIT],
  point: [POINT]
}

const units: Record<string, number | undefined> = {
  upsert: params.rows ?? 10_000,
  transfer: params.transfers ?? 100,
  point: params.queries ?? 1_000
}

const main = async (): Promise<void> => {
  const texts = sql[workload]
  const count = units[workload]
  if (texts === undefined || count === undefined) throw new Error("not supported by this worker")
  const bin = params.libpqBench ?? ensureLibpqBench()
  const conn = new URL(url)
  conn.searchParams.set("sslmode", "disable")
  const args = [
    workload,
    conn.toString(),
    params.mode ?? "sequential",
    String(params.warmup),
    String(params.runs),
    String(count),
    String(params.budgetMs ?? -1),
    params.interleave === true ? "1" : "0",
    ...texts
  ]
  const child = spawn(bin, args, { stdio: "inherit" })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", resolve)
  })
  if (code !== 0) throw new Error(`${bin} exited with ${code}`)
}

main().catch((cause) => fail("libpq", workload, cause))
