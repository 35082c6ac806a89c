/**
 * What every benchmark worker shares: the workloads' SQL (identical text for every driver), their
 * parameter rows, the worker command line, timing, the turn protocol and the one JSON line a
 * worker prints.
 *
 * Worker protocol (see bench/README.md): `node bench/workers/<driver>.ts <workload> <url> <json>`
 * where `<json>` holds the workload's parameters (`WorkerParams`). The worker connects once,
 * prepares whatever it needs outside the clock, runs `warmup` untimed and `runs` timed
 * repetitions, and prints one final line to stdout: `WorkerOutput` as JSON. Anything else it has
 * to say goes to stderr. It exits non-zero on failure (the orchestrator records the error text).
 *
 * Turns (`interleave: true`): the orchestrator interleaves the timed runs of the drivers it
 * compares, so slow changes in machine load land on all of them alike. Before each timed run the
 * worker prints the line `@turn` and waits for the line `go` on stdin (`turn` below); after its
 * last timed run it prints its JSON line and exits. Without `interleave` (a worker run by hand, a
 * job compared with nothing) `turn` returns at once and the runs follow each other.
 *
 * Deliberately not here: setting up and truncating tables (the orchestrator does that, with
 * node-postgres), statistics (the orchestrator computes medians), and anything driver-specific.
 */

export const UPSERT =
  "INSERT INTO bench_upsert (id, name, qty) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = bench_upsert.qty + EXCLUDED.qty"
/** The orchestrator empties the upsert table once per group of compared jobs (workers never do). */
export const TRUNCATE_UPSERT = "TRUNCATE bench_upsert"
export const DEBIT = "UPDATE account SET balance = balance - $1 WHERE id = $2"
export const CREDIT = "UPDATE account SET balance = balance + $1 WHERE id = $2"
export const DECODE = "SELECT * FROM bench_decode"
export const DECODE_ROWS = 100_000
export const POINT = "SELECT $1::int AS x"
export const BIG_PIPELINE = "SELECT $1::int AS x"

/**
 * Upsert row i (1-based): id, name, qty. The name is i's decimal digits so pgbench, whose
 * variables are numbers, binds the same values as the JS drivers.
 */
export const upsertRow = (i: number): [number, string, number] => [i, String(i), i % 97]

export const upsertRows = (n: number): Array<[number, string, number]> =>
  Array.from({ length: n }, (_, k) => upsertRow(k + 1))

/** A transfer moves 1 from account 1 to account 2 (account 1 starts with plenty). */
export const TRANSFER_AMOUNT = 1

/**
 * P7 (pool throughput) transfers between accounts of their own: ids POOL_ACCOUNT_FIRST …
 * POOL_ACCOUNT_FIRST + POOL_ACCOUNTS - 1 (P2 uses ids 1 and 2), each starting with plenty, so
 * concurrent callers rarely wait for the same row lock.
 */
export const POOL_ACCOUNT_FIRST = 1001
export const POOL_ACCOUNTS = 1_000

/** A 32-bit integer mixer: a well-spread, repeatable value for any integer input. */
const mix32 = (x: number): number => {
  let h = x | 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}

/**
 * The two accounts of P7 caller `caller`'s `i`-th transfer, lower id first: a pseudo-random pair
 * of distinct accounts, the same sequence for every driver. Every transaction updates the lower
 * id first (DEBIT on it, then CREDIT on the higher), so two transactions always take their row
 * locks in the same order and cannot deadlock.
 */
export const poolPair = (caller: number, i: number): [number, number] => {
  const h = mix32(Math.imul(caller + 1, 0x9e3779b1) ^ i)
  const a = h % POOL_ACCOUNTS
  const b = (a + 1 + (mix32(h) % (POOL_ACCOUNTS - 1))) % POOL_ACCOUNTS
  return [POOL_ACCOUNT_FIRST + Math.min(a, b), POOL_ACCOUNT_FIRST + Math.max(a, b)]
}

/** The parameter of P7 caller `caller`'s `i`-th point select (unique per caller and operation). */
export const poolPointValue = (caller: number, i: number): number => caller * 1_000_000 + (i % 1_000_000)

export type Workload = "upsert" | "transfer" | "decode" | "point" | "bigpipeline" | "pool"
export type Mode = "pipelined" | "sequential"

export interface WorkerParams {
  readonly warmup: number
  readonly runs: number
  /** upsert: rows per run. */
  readonly rows?: number
  /** upsert, transfer: pipelined or one statement at a time. */
  readonly mode?: Mode
  /** upsert (sequential): stop a run after this many ms and extrapolate to `rows`. */
  readonly budgetMs?: number
  /** transfer: transfers per run. */
  readonly transfers?: number
  /** point: queries per run. */
  readonly queries?: number
  /** bigpipeline: statements in the pipeline, and a sync point every `syncEvery` (0: one sync at the end). */
  readonly statements?: number
  readonly syncEvery?: number
  /** bigpipeline: "execute" (execute in a loop, handles dropped) or "executeMany" (a generator of rows). */
  readonly style?: "execute" | "executeMany"
  /** pool: concurrent callers (fibers or promises) sharing the driver's pool of `poolSize` connections. */
  readonly callers?: number
  /** pool: the operation each caller repeats: a point select or a two-UPDATE transaction. */
  readonly op?: PoolOp
  /** pool: callers start new operations for this many ms per run; the run ends when the last finishes. */
  readonly durationMs?: number
  /** pool: connections in the driver's pool. */
  readonly poolSize?: number
  /** pool (pgline, @effect/sql-pg): the pool's `multiplex` option (each driver's default when absent). */
  readonly multiplex?: boolean
  /** Scratch directory for files a worker writes (pgbench scripts and logs). */
  readonly workDir?: string
  /** The pgbench binary (the orchestrator installs it when missing). */
  readonly pgbench?: string
  /** The compiled libpq reference (the orchestrator builds it; see workers/libpq-build.ts). */
  readonly libpqBench?: string
  /** Wait for the orchestrator's `go` before each timed run (see `turn`). */
  readonly interleave?: boolean
}

export type PoolOp = "point" | "transfer"

/** One timed run of the pool workload. */
export interface PoolRun {
  /** Operations completed (a point select, or a whole transaction). */
  readonly ops: number
  /** From the start of the callers until the last operation finished. */
  readonly ms: number
  /** Latency of one operation, from its start (including the wait for a connection) to its result. */
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

export interface WorkerOutput {
  /** Timed runs, ms each (for extrapolated runs: the time scaled up to the full size). */
  readonly times: ReadonlyArray<number>
  readonly warmupTimes: ReadonlyArray<number>
  /** Units of work one run did in fact (rows, transfers, queries) when it stopped early. */
  readonly done?: number
  readonly extrapolated?: boolean
  /** Free-form facts (bigpipeline: RSS figures). */
  readonly extra?: Record<string, number | string | boolean>
  /** pool: each timed run's operations and latencies (`times` holds the same runs' `ms`). */
  readonly pool?: ReadonlyArray<PoolRun>
}

export interface WorkerArgs {
  readonly workload: Workload
  readonly url: string
  readonly params: WorkerParams
}

export const parseArgs = (): WorkerArgs => {
  const [workload, url, json] = process.argv.slice(2)
  if (workload === undefined || url === undefined) {
    process.stderr.write("usage: node bench/workers/<driver>.ts <workload> <url> [params-json]\n")
    process.exit(2)
  }
  return { workload: workload as Workload, url, params: JSON.parse(json ?? "{}") as WorkerParams }
}

export const emit = (out: WorkerOutput): void => {
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

export const fail = (driver: string, workload: string, cause: unknown): never => {
  const text = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)
  process.stderr.write(`${driver} ${workload} failed: ${text}\n`)
  process.exit(1)
}

export const unsupported = (driver: string, workload: string, mode?: string): never =>
  fail(driver, workload, new Error(`not supported by this worker${mode === undefined ? "" : ` (${mode})`}`))

/** Text read from stdin but not yet consumed as a line. */
let stdinBuffer = ""

/**
 * The next line on stdin. stdin is read only while a line is awaited; afterwards it is paused and
 * unreferenced (a paused pipe still holds the event loop open), so a worker that has done its
 * last run exits as soon as its own work is done.
 */
const readLine = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const stdin = process.stdin
    const stop = () => {
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      stdin.off("error", onError)
      stdin.pause()
      ;(stdin as { unref?: () => void }).unref?.()
    }
    const take = (): boolean => {
      const at = stdinBuffer.indexOf("\n")
      if (at === -1) return false
      const line = stdinBuffer.slice(0, at).trim()
      stdinBuffer = stdinBuffer.slice(at + 1)
      stop()
      resolve(line)
      return true
    }
    const onData = (chunk: string) => {
      stdinBuffer += chunk
      take()
    }
    const onEnd = () => {
      stop()
      reject(new Error("stdin closed while waiting for `go`"))
    }
    const onError = (cause: Error) => {
      stop()
      reject(cause)
    }
    if (take()) return
    stdin.setEncoding("utf8")
    stdin.on("data", onData)
    stdin.once("end", onEnd)
    stdin.once("error", onError)
    ;(stdin as { ref?: () => void }).ref?.()
    stdin.resume()
  })

/**
 * Called before each timed run. With `interleave`, prints `@turn` and waits for the orchestrator's
 * `go` (other drivers' timed runs happen meanwhile; this worker only holds its connection);
 * otherwise returns at once.
 */
export const turn = async (params: WorkerParams): Promise<void> => {
  if (params.interleave !== true) return
  process.stdout.write("@turn\n")
  const line = await readLine()
  if (line !== "go") throw new Error(`expected \`go\` on stdin, got ${JSON.stringify(line.slice(0, 80))}`)
}

/**
 * `warmup` untimed then `runs` timed calls of `once`, which returns the run's own time in ms; each
 * timed run waits for its `turn`.
 */
export const repeat = async (
  params: WorkerParams,
  once: (index: number) => Promise<number>
): Promise<{ times: Array<number>; warmupTimes: Array<number> }> => {
  const warmupTimes: Array<number> = []
  const times: Array<number> = []
  for (let i = 0; i < params.warmup; i++) warmupTimes.push(await once(i))
  for (let i = 0; i < params.runs; i++) {
    await turn(params)
    times.push(await once(params.warmup + i))
  }
  return { times, warmupTimes }
}

/** Times an async thunk. */
export const timed = async (f: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

/** The `q`-quantile (0…1) of ascending `sorted` (nearest rank). */
const quantile = (sorted: Float64Array, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

/** A pool run's figures from its operations' latencies (ms, any order) and its length. */
export const poolRunOf = (latencies: ReadonlyArray<number>, ms: number): PoolRun => {
  const sorted = Float64Array.from(latencies).sort()
  return {
    ops: sorted.length,
    ms,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!
  }
}

/**
 * One run of the pool workload for the Promise-based workers: `callers` concurrent loops, each
 * awaiting `op(caller, i)` for i = 0, 1, … and starting another while fewer than `durationMs` have
 * passed since the run began. A failed operation fails the run (nothing is retried).
 */
export const poolRun = async (
  callers: number,
  durationMs: number,
  op: (caller: number, i: number) => Promise<void>
): Promise<PoolRun> => {
  const latencies: Array<number> = []
  const t0 = performance.now()
  const deadline = t0 + durationMs
  const loop = async (caller: number) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const s = performance.now()
      await op(caller, i)
      latencies.push(performance.now() - s)
    }
  }
  await Promise.all(Array.from({ length: callers }, (_, caller) => loop(caller)))
  return poolRunOf(latencies, performance.now() - t0)
}

/**
 * `repeat` for the pool workload: `once` does one run; the output carries every timed run's
 * `PoolRun` besides its time.
 */
export const repeatPool = async (
  params: WorkerParams,
  once: () => Promise<PoolRun>
): Promise<WorkerOutput> => {
  const runs: Array<PoolRun> = []
  const out = await repeat(params, async () => {
    const run = await once()
    runs.push(run)
    return run.ms
  })
  return { ...out, pool: runs.slice(params.warmup) }
}

export const check = (condition: boolean, message: string): void => {
  if (!condition) throw new Error(message)
}
