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

export type Workload = "upsert" | "transfer" | "decode" | "point" | "bigpipeline"
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
  /** Scratch directory for files a worker writes (pgbench scripts and logs). */
  readonly workDir?: string
  /** The pgbench binary (the orchestrator installs it when missing). */
  readonly pgbench?: string
  /** Wait for the orchestrator's `go` before each timed run (see `turn`). */
  readonly interleave?: boolean
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

export const check = (condition: boolean, message: string): void => {
  if (!condition) throw new Error(message)
}
