/**
 * The benchmark suite in one command: pgline against libpq (a C program, and pgbench as a second
 * opinion), node-postgres, postgres.js
 * and @effect/sql-pg, on one embedded PostgreSQL 18, directly and through latency proxies of about
 * 1 ms and 4 ms round trip, writing bench/RESULTS.md.
 *
 *   node bench/run.ts [--quick] [--only P1,P4] [--out FILE]
 *
 * Every (driver, workload, latency, size) runs as its own child process,
 * `node bench/workers/<driver>.ts <workload> <url> <json params>`, which prints one JSON line of
 * timings (see bench/workers/common.ts): one driver's JIT and GC state never leaks into another's
 * numbers. Jobs that are compared with each other form a group (e.g. P1 at one latency class, all
 * drivers) whose timed runs are interleaved: the workers start and warm up one at a time, then
 * take turns, one timed run each per round, the round's first worker rotating (`runGroup`), so
 * load that changes over minutes on this shared machine lands on every driver alike. Only one
 * worker works at any moment; the orchestrator (this process) holds the proxies and is otherwise
 * idle. Reported: median, min and max of the timed runs after warm-up, and pgline's ratio to each
 * peer (pgline ÷ peer: below 1 means pgline is faster).
 *
 * `--quick` (about 6 minutes) uses fewer runs and smaller sizes, for checking that everything
 * works; its numbers are not the published ones. `--quick` and `--only` write
 * bench/.work/RESULTS.partial.md instead of bench/RESULTS.md unless `--out` says otherwise.
 *
 * What it does not do: TLS (every client uses sslmode=disable); pools and more than one connection
 * only in P7 (pool throughput). See bench/README.md for what each workload measures and what is and is not a fair comparison.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { measureRtt, startServer } from "@pgline/testing"
import pg from "pg"
import type * as harness from "./workers/harness.ts"
import { median, reach, stopper, track } from "./workers/harness.ts"
import {
  type Mode,
  POOL_ACCOUNT_FIRST,
  POOL_ACCOUNTS,
  type PoolOp,
  type PoolRun,
  TRUNCATE_UPSERT,
  type WorkerOutput,
  type WorkerParams,
  type Workload
} from "./workers/common.ts"
import { ensureLibpqBench } from "./workers/libpq-build.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const workDir = join(benchDir, ".work")

// --- command line ---------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string): string | undefined => {
  const at = argv.indexOf(name)
  return at === -1 ? undefined : argv[at + 1]
}
if (flag("--help") || flag("-h")) {
  console.log(
    "usage: node bench/run.ts [--quick] [--only P1,P2,P3,P4,P5,P6,P7] [--out FILE]\n" +
      "  the whole suite (~27 min) writes bench/RESULTS.md; --quick (~6 min) and --only write\n" +
      "  bench/.work/RESULTS.partial.md unless --out says otherwise. See bench/README.md."
  )
  process.exit(0)
}
const known = new Set(["--quick", "--only", "--out"])
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!
  if (!known.has(a)) {
    console.error(`unknown argument ${a} (try --help)`)
    process.exit(2)
  }
  if (a !== "--quick") i++
}
const quick = flag("--quick")
const ALL = ["P1", "P2", "P3", "P4", "P5", "P6", "P7"] as const
type WorkloadId = (typeof ALL)[number]
const only = option("--only")
const selected: ReadonlyArray<WorkloadId> =
  only === undefined
    ? ALL
    : only.split(",").map((s) => {
        const id = s.trim().toUpperCase() as WorkloadId
        if (!ALL.includes(id)) throw new Error(`--only: unknown workload ${s} (have ${ALL.join(", ")})`)
        return id
      })
const partial = quick || only !== undefined
const outFile =
  option("--out") ?? (partial ? join(workDir, "RESULTS.partial.md") : join(benchDir, "RESULTS.md"))

/** Sizes and repetitions: the full run (published numbers) and --quick (a smoke run). */
const config = quick
  ? {
      runs: 3,
      upsertRows: 2_000,
      /** Rows per run of the one-round-trip-per-row P1 variants, by latency class. */
      perRowRows: { direct: 1_000, "1ms": 200, "4ms": 60 },
      transfers: { direct: 50, "1ms": 20, "4ms": 10 },
      seedSizes: [100, 1_000, 10_000],
      seedBudgetMs: 300,
      pointQueries: 300,
      /** P5 / P2 direct: untimed rounds before the timed ones (see P5 and P2 below). */
      pointWarmupDirect: 2,
      transferWarmupDirect: 3,
      /** P1 pipelined (every driver but pgbench): untimed runs before the timed ones (see P1 below). */
      upsertWarmupBatched: 2,
      bigSizes: [50_000, 200_000],
      bigSyncEvery: 25_000,
      /** P7: concurrent callers; warm-up and timed runs per job, each this long (ms). */
      poolCallers: [64, 512],
      poolWarmup: 2,
      poolRuns: 3,
      poolDurationMs: 400
    }
  : {
      runs: 7,
      upsertRows: 10_000,
      perRowRows: { direct: 10_000, "1ms": 1_000, "4ms": 250 },
      transfers: { direct: 100, "1ms": 50, "4ms": 20 },
      seedSizes: [100, 1_000, 10_000, 100_000],
      seedBudgetMs: 1_000,
      pointQueries: 1_000,
      pointWarmupDirect: 20,
      transferWarmupDirect: 50,
      upsertWarmupBatched: 8,
      bigSizes: [100_000, 1_000_000],
      bigSyncEvery: 50_000,
      poolCallers: [64, 512],
      poolWarmup: 2,
      poolRuns: 5,
      poolDurationMs: 1_000
    }

// --- drivers --------------------------------------------------------------------------------------

type DriverId = "pgline" | "libpq" | "pgbench" | "pg" | "postgresjs" | "effect-sql"

const pkgVersion = (name: string): string => {
  try {
    const file = join(benchDir, "node_modules", name, "package.json")
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}

const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"

const driverName: Record<DriverId, string> = {
  pgline: "pgline",
  libpq: "libpq (C)",
  pgbench: "libpq (pgbench 15)",
  pg: `pg ${pkgVersion("pg")}`,
  postgresjs: `postgres.js ${pkgVersion("postgres")}`,
  "effect-sql": `@effect/sql-pg ${pkgVersion("@effect/sql-pg")}`
}

/** How each driver runs a workload in each mode (the "how" column). */
const how: Record<DriverId, Record<Mode, string>> = {
  pgline: {
    pipelined: "pipeline (pipelineTransaction)",
    sequential: "one query at a time, awaited"
  },
  libpq: {
    pipelined: "pipeline mode: PQsendQueryPrepared per statement, non-blocking PQflush, one PQpipelineSync",
    sequential: "PQexecPrepared, one statement at a time"
  },
  pgbench: {
    pipelined: "\\startpipeline … \\endpipeline, -M prepared",
    sequential: "-M prepared, one statement per transaction"
  },
  pg: { pipelined: "`pipeline: true` client", sequential: "default client, each query awaited" },
  postgresjs: {
    pipelined: "sql.begin returning the array of queries (one round trip per statement, measured)",
    sequential: "each query awaited (sql.begin for transactions)"
  },
  "effect-sql": {
    pipelined: "withTransaction + Effect.all unbounded (runs one at a time)",
    sequential: "each statement awaited (withTransaction for transactions)"
  }
}

/**
 * Whether a (driver, mode) in fact sends many statements per round trip, measured: @effect/sql-pg
 * runs a pinned (transaction) connection one statement at a time, and postgres.js in `sql.begin`
 * waits for each statement's Describe while the statement is not yet prepared, so for both a
 * pipelined P1 run costs one round trip per row (9.5 s for 2,000 rows at ~4 ms RTT for
 * postgres.js): they get the reduced row counts of the sequential runs through the proxies.
 */
const pipelines = (driver: DriverId, mode: Mode) =>
  mode === "pipelined" && driver !== "effect-sql" && driver !== "postgresjs"

/** P7: the connections of every driver's pool. */
const POOL_SIZE = 10

/**
 * P7's drivers and variants: pgline with its pool's `multiplex` on (the default) and off (a
 * classic pool), and @effect/sql-pg with its default (multiplex off) and, for point selects only,
 * on (its transactions reserve a connection either way).
 */
interface PoolVariant {
  readonly driver: DriverId
  readonly multiplex?: boolean
  /** Only this operation (both when absent). */
  readonly op?: PoolOp
  readonly how: Record<PoolOp, string>
}
const poolVariants: ReadonlyArray<PoolVariant> = [
  {
    driver: "pgline",
    how: {
      point: "`pg.query`; multiplex on (default): pipelined onto busy connections",
      transfer: "`pipelineTransaction` (BEGIN, 2 UPDATEs, COMMIT in one round trip)"
    }
  },
  {
    driver: "pgline",
    multiplex: false,
    how: {
      point: "`pg.query`; each waits for a connection with nothing in flight",
      transfer: "`pipelineTransaction` (BEGIN, 2 UPDATEs, COMMIT in one round trip)"
    }
  },
  {
    driver: "pg",
    how: {
      point: "`pool.query` (named statement)",
      transfer: "`pool.connect()`; BEGIN, UPDATE, UPDATE, COMMIT awaited in turn; release"
    }
  },
  {
    driver: "postgresjs",
    how: {
      point: "`sql.unsafe` (pipelines onto busy connections, up to 100 each)",
      transfer: "`sql.begin` returning both UPDATEs"
    }
  },
  {
    driver: "effect-sql",
    how: {
      point: "`sql.unsafe`; multiplex off (default)",
      transfer: "`withTransaction`, the UPDATEs in turn"
    }
  },
  {
    driver: "effect-sql",
    multiplex: true,
    op: "point",
    how: { point: "`sql.unsafe`; multiplex on (32 per connection)", transfer: "" }
  }
]

const variantOf = (job: Job): PoolVariant | undefined =>
  poolVariants.find((v) => v.driver === job.driver && v.multiplex === job.params.multiplex)

/** A P7 job's driver and, when it is not the driver's default, its multiplex setting. */
const poolDriverName = (job: Job): string =>
  job.params.multiplex === undefined
    ? driverName[job.driver]
    : `${driverName[job.driver]}, multiplex: ${job.params.multiplex}`

// --- latency classes ------------------------------------------------------------------------------

type ClassId = "direct" | "1ms" | "4ms"
type LatencyClass = harness.LatencyClass<ClassId>

const classes: Array<LatencyClass> = (
  [
    { id: "direct", label: "direct (loopback)", delayMs: undefined },
    { id: "1ms", label: "~1 ms RTT (0.5 ms one-way)", delayMs: 0.5 },
    { id: "4ms", label: "~4 ms RTT (2 ms one-way)", delayMs: 2 }
  ] as const
).map((c) => ({ ...c, url: "", host: "", port: 0, proxy: undefined, rtt: undefined, rttAfter: undefined }))
const classById = (id: ClassId) => classes.find((c) => c.id === id)!

// --- jobs -----------------------------------------------------------------------------------------

interface Job {
  readonly id: WorkloadId
  /** Jobs with the same key are compared with each other and their timed runs interleaved. */
  readonly group: string
  readonly driver: DriverId
  readonly workload: Workload
  readonly latency: ClassId
  readonly mode: Mode
  readonly params: WorkerParams
  /** Units of work per run (rows, transfers, queries, statements) as asked; P7: callers. */
  readonly units: number
  /**
   * Through a proxy: its workers start and warm up with the proxy's delay at 0, set back to the
   * class's delay before the first timed run (see runGroup).
   */
  readonly warmUnproxied?: boolean
}

interface JobResult extends Job {
  readonly out: WorkerOutput | undefined
  readonly error: string | undefined
  readonly median: number
  readonly min: number
  readonly max: number
  readonly wallMs: number
  /**
   * Round trips per unit of work, counted by the proxy (client flights during a timed run ÷ units,
   * median over the runs): undefined for direct connections and jobs not interleaved.
   */
  readonly flightsPerUnit: number | undefined
  /** Client flights the proxy counted during each timed run (as `flightsPerUnit`). */
  readonly flights: ReadonlyArray<number>
}

/**
 * Kills a worker and whatever it started (pgbench and its shell): workers run in their own
 * process group (`detached`).
 */
const killTree = (child: ChildProcess) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    else child.kill("SIGKILL")
  } catch {
    child.kill("SIGKILL")
  }
}

/** How long one phase of a worker may take: start-up and warm-up, or one timed run. */
const PHASE_TIMEOUT_MS = 10 * 60_000

/**
 * A running worker. Its stdout is split into lines: `@turn` lines (it is waiting for `go`)
 * become events, the rest is output (the last such line is its WorkerOutput JSON).
 */
interface Worker {
  readonly job: Job
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly events: Array<"turn">
  stdoutTail: string
  stderr: string
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  /** Why the orchestrator killed it, if it did. */
  killed: string | undefined
  /** Called when an event arrives or the process exits. */
  wake: (() => void) | undefined
  /** Time spent in its own phases (start-up, warm-up, timed runs), not waiting for its turn. */
  activeMs: number
  /** Client flights the proxy counted during each timed run (interleaved runs through a proxy). */
  readonly flights: Array<number>
}

const spawnWorker = (job: Job, url: string, interleave: boolean): Worker => {
  const script = join(benchDir, "workers", `${job.driver}.ts`)
  // P6 reads the live heap after forced collections (global.gc).
  const flags = job.workload === "bigpipeline" ? ["--expose-gc"] : []
  const params: WorkerParams = interleave ? { ...job.params, interleave: true } : job.params
  const child = spawn(process.execPath, [...flags, script, job.workload, url, JSON.stringify(params)], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true
  })
  track(child, () => killTree(child))
  const w: Worker = {
    job,
    child,
    lines: [],
    events: [],
    stdoutTail: "",
    stderr: "",
    exit: undefined,
    killed: undefined,
    wake: undefined,
    activeMs: 0,
    flights: []
  }
  // A worker that died does not read its stdin: ignore EPIPE on a late `go`.
  child.stdin!.on("error", () => {})
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    const parts = (w.stdoutTail + d).split("\n")
    w.stdoutTail = parts.pop()!
    for (const line of parts) {
      if (line.trim() === "@turn") w.events.push("turn")
      else if (line.trim() !== "") w.lines.push(line)
    }
    if (w.events.length > 0) w.wake?.()
  })
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    w.stderr += d
  })
  child.on("close", (code, signal) => {
    if (w.stdoutTail.trim() !== "") w.lines.push(w.stdoutTail)
    w.stdoutTail = ""
    w.exit = { code, signal }
    w.wake?.()
  })
  return w
}

const kill = (w: Worker, why: string) => {
  if (w.exit !== undefined) return
  w.killed ??= why
  killTree(w.child)
}

/**
 * Waits until the worker asks for its next turn ("turn") or has exited ("exit"). A phase that
 * takes longer than `timeoutMs` gets the worker killed (and so ends in "exit").
 */
const nextEvent = (w: Worker, timeoutMs: number, phase: string): Promise<"turn" | "exit"> =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const timer = setTimeout(() => kill(w, `killed after ${timeoutMs} ms (${phase})`), timeoutMs)
    const check = () => {
      const event = w.events.length > 0 ? w.events.shift()! : w.exit !== undefined ? "exit" : undefined
      if (event === undefined) return
      clearTimeout(timer)
      w.wake = undefined
      w.activeMs += performance.now() - t0
      resolve(event)
    }
    w.wake = check
    check()
  })

const resultOf = (w: Worker): JobResult => {
  const { job } = w
  const line = w.lines.at(-1) ?? ""
  let out: WorkerOutput | undefined
  let error: string | undefined
  if (w.killed !== undefined) {
    error = [w.killed, ...w.stderr.trim().split("\n").slice(0, 5)].filter((x) => x !== "").join(" | ")
  } else if (w.exit?.code === 0) {
    try {
      out = JSON.parse(line) as WorkerOutput
    } catch {
      error = `unparseable output: ${line.slice(0, 200)}`
    }
  } else {
    const status = w.exit?.signal ? `signal ${w.exit.signal}` : `exit code ${w.exit?.code}`
    error = (w.stderr.trim() || status).split("\n").slice(0, 6).join(" | ")
  }
  const times = out?.times ?? []
  return {
    ...job,
    out,
    error,
    median: median(times),
    min: times.length ? Math.min(...times) : Number.NaN,
    max: times.length ? Math.max(...times) : Number.NaN,
    wallMs: w.activeMs,
    // The median: a worker's last run also carries its disconnect (Terminate is a flight too).
    flightsPerUnit: w.flights.length > 0 ? median(w.flights) / job.units : undefined,
    flights: w.flights
  }
}

/** Jobs whose timed runs are interleaved, and compared with each other. */
interface Group {
  readonly id: WorkloadId
  readonly key: string
  readonly jobs: ReadonlyArray<Job>
}

/**
 * Runs a group of jobs. A group of one runs as before: the worker runs all its repetitions and
 * exits. A larger group interleaves: its workers start one at a time, each waiting at its first
 * turn once its warm-up is done (warm-ups never overlap); then in round r (0-based) every live
 * worker in turn, starting at worker r mod k, gets `go` and does one timed run while the others
 * wait, so every driver's runs see the same minutes of machine load, and no driver always goes
 * first. A worker that fails or times out is recorded as failed and leaves the rotation.
 */
const runGroup = async (group: Group, admin: pg.Client): Promise<Array<JobResult>> => {
  // Upsert groups: one empty table for the whole group. Workers start with the largest row count
  // (planGroups orders them), so after the warm-ups every timed run updates existing rows.
  if (group.jobs.some((j) => j.workload === "upsert")) await admin.query(TRUNCATE_UPSERT)
  const interleave = group.jobs.length > 1
  const workers: Array<Worker> = []
  // Warm-ups as long as direct ones (thousands of operations, V8's steady state) would take minutes
  // per worker at the proxy's delay: they run with the delay at 0, the timed runs at the class's.
  const latencyClass = classById(group.jobs[0]!.latency)
  const unproxied = interleave && latencyClass.proxy !== undefined && group.jobs.every((j) => j.warmUnproxied)
  if (unproxied) latencyClass.proxy!.setDelay(0)
  try {
    for (const job of group.jobs) {
      const w = spawnWorker(job, classById(job.latency).url, interleave)
      workers.push(w)
      await nextEvent(w, PHASE_TIMEOUT_MS, interleave ? "start-up and warm-up" : "the whole job")
    }
  } finally {
    if (unproxied) latencyClass.proxy!.setDelay(latencyClass.delayMs!)
  }
  const k = workers.length
  const rounds = Math.max(...group.jobs.map((j) => j.params.runs))
  for (let r = 0; workers.some((w) => w.exit === undefined); r++) {
    for (let i = 0; i < k; i++) {
      const w = workers[(r + i) % k]!
      if (w.exit !== undefined) continue
      if (r >= rounds) {
        // It asked for more turns than it has runs: a protocol error.
        kill(w, `asked for turn ${r + 1} of ${w.job.params.runs}`)
        await nextEvent(w, PHASE_TIMEOUT_MS, "exit")
        continue
      }
      // Only this worker talks to the server during its run, so the proxy's flight count over the
      // run is its own round trips.
      const proxy = classById(w.job.latency).proxy
      const before = proxy?.stats().clientFlights
      w.child.stdin!.write("go\n")
      // After its last `go` a worker reads nothing more: closing its stdin makes a worker that
      // asks for another turn fail at once.
      if (r === w.job.params.runs - 1) w.child.stdin!.end()
      await nextEvent(w, PHASE_TIMEOUT_MS, `timed run ${r + 1}`)
      if (proxy !== undefined && before !== undefined) w.flights.push(proxy.stats().clientFlights - before)
    }
  }
  for (const w of workers) w.child.stdin!.end()
  return workers.map(resultOf)
}

// --- set-up ---------------------------------------------------------------------------------------

const SETUP = `
DROP TABLE IF EXISTS bench_upsert, account, bench_decode;
CREATE TABLE bench_upsert (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)
  WITH (autovacuum_enabled = false);
CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO account VALUES (1, 1000000000000), (2, 0);
INSERT INTO account SELECT id, 1000000000000
  FROM generate_series(${POOL_ACCOUNT_FIRST}, ${POOL_ACCOUNT_FIRST + POOL_ACCOUNTS - 1}) AS id;
CREATE TABLE bench_decode (
  i4 int4, i8 int8, t text, f8 float8, ts timestamptz, b bool, n numeric, j jsonb
);
INSERT INTO bench_decode
SELECT i, i * 1000003::int8, 'customer name ' || i, i * 1.25,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', i % 2 = 0,
       round(i * 3.14159, 5), jsonb_build_object('id', i, 'tags', jsonb_build_array('a', 'b'), 'ok', true)
FROM generate_series(1, 100000) AS i;
`

/** pgbench from Debian's postgresql-15, installed when missing (as root only). */
const ensurePgbench = (): string => {
  if (existsSync(PGBENCH)) return PGBENCH
  if (process.getuid?.() !== 0) {
    throw new Error(`${PGBENCH} is missing; install Debian's postgresql-15 (apt-get install postgresql-15)`)
  }
  console.log("pgbench missing: apt-get update && apt-get install -y postgresql-15")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: "inherit", env })
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "postgresql-15"], {
    stdio: "inherit",
    env
  })
  if (!existsSync(PGBENCH)) throw new Error(`postgresql-15 installed but ${PGBENCH} is still missing`)
  return PGBENCH
}

// --- formatting -----------------------------------------------------------------------------------

const ms = (v: number) =>
  Number.isNaN(v)
    ? "–"
    : v >= 10_000
      ? v.toFixed(0)
      : v >= 100
        ? v.toFixed(1)
        : v >= 10
          ? v.toFixed(2)
          : v.toFixed(3)
const ratio = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "–")
const int = (n: number) => n.toLocaleString("en-US")
/** A Markdown table; columns whose cells all look like numbers are right-aligned. */
const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const numeric = head.map((_, i) => rows.every((r) => /^(~?[\d.,]+( ?(ms|MiB|×))?|–)$/.test(r[i] ?? "")))
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (numeric[i] ? "--:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")
}

// --- main -----------------------------------------------------------------------------------------

const git = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: benchDir,
      encoding: "utf8"
    }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "packages"], {
      cwd: benchDir,
      encoding: "utf8"
    }).trim()
    return dirty === "" ? head : `${head} + uncommitted changes under packages/`
  } catch {
    return "?"
  }
}
let gitAtStart = "?"
let gitAtEnd = "?"

const results: Array<JobResult> = []
/** The aggregate `cpu` line of /proc/stat: [total, steal] jiffies (steal: time the hypervisor took). */
const cpuTimes = (): [number, number] => {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    return [fields.reduce((x, y) => x + y, 0), fields[7] ?? 0]
  } catch {
    return [0, 0]
  }
}
const loadSamples: Array<{ at: string; load: Array<number>; steal: string }> = []
let lastCpu = cpuTimes()
const sampleLoad = (at: string) => {
  const now = cpuTimes()
  const total = now[0] - lastCpu[0]
  const steal = total > 0 ? `${(((now[1] - lastCpu[1]) / total) * 100).toFixed(0)}%` : "–"
  lastCpu = now
  loadSamples.push({ at, load: os.loadavg().map((x) => Number(x.toFixed(2))), steal })
}

const main = async () => {
  const startedAt = new Date()
  const t0 = performance.now()
  mkdirSync(workDir, { recursive: true })
  const needsPgbench = selected.some((id) => id === "P1" || id === "P2" || id === "P5")
  const pgbench = needsPgbench ? ensurePgbench() : undefined
  const pgbenchVersion = pgbench ? execFileSync(pgbench, ["--version"], { encoding: "utf8" }).trim() : "–"
  const libpqBench = needsPgbench ? ensureLibpqBench() : undefined
  sampleLoad("start")
  gitAtStart = git()

  const server = await startServer({ tls: false })
  const cleanup = stopper(classes, server)
  let serverVersion = "?"
  try {
    const admin = new pg.Client({ connectionString: server.info.url, ssl: false })
    admin.on("error", (e) => console.error(`setup connection: ${e.message}`))
    await admin.connect()
    serverVersion = (await admin.query("SHOW server_version")).rows[0].server_version
    console.log(`PostgreSQL ${serverVersion} on ${server.info.host}:${server.info.port}; setting up tables`)
    await admin.query(SETUP)
    await admin.query("VACUUM ANALYZE bench_decode, account, bench_upsert")

    for (const c of classes) {
      const rtt = await reach(c, server.info)
      console.log(
        `${c.label}: measured RTT median ${rtt.medianMs.toFixed(3)} ms (min ${rtt.minMs.toFixed(3)}, max ${rtt.maxMs.toFixed(3)})`
      )
    }

    const groups = planGroups(planJobs(pgbench, libpqBench))
    const jobCount = groups.reduce((n, g) => n + g.jobs.length, 0)
    console.log(
      `${jobCount} jobs in ${groups.length} groups: ${selected.join(", ")}${quick ? " (--quick)" : ""}`
    )
    let lastId: WorkloadId | undefined
    for (const group of groups) {
      if (group.id !== lastId) {
        if (lastId !== undefined) sampleLoad(`after ${lastId}`)
        lastId = group.id
      }
      const g0 = performance.now()
      if (group.jobs.length > 1)
        console.log(`${group.key}: ${group.jobs.length} workers, timed runs interleaved`)
      for (const r of await runGroup(group, admin)) {
        results.push(r)
        const style = r.params.style ? ` ${r.params.style}/${r.params.syncEvery}` : ""
        const head =
          r.id === "P7"
            ? `${r.id} ${r.latency.padEnd(6)} ${poolDriverName(r).padEnd(38)} ${(r.params.op ?? "").padEnd(8)} ${String(r.units).padStart(3)} callers`
            : `${r.id} ${r.latency.padEnd(6)} ${driverName[r.driver].padEnd(22)} ${r.mode.padEnd(10)} ${String(r.units).padStart(7)}${style}`
        const p7 = r.id === "P7" ? poolFigures(r) : undefined
        console.log(
          r.error
            ? `${head}  FAILED: ${r.error}`
            : p7 !== undefined
              ? `${head}  median ${int(Math.round(p7.opsPerSec))} ops/s (min ${int(Math.round(p7.minOpsPerSec))}, max ${int(Math.round(p7.maxOpsPerSec))}), p99 ${ms(p7.p99Ms)} ms  [${(r.wallMs / 1000).toFixed(1)} s]`
              : `${head}  median ${ms(r.median)} ms  (min ${ms(r.min)}, max ${ms(r.max)})${r.out?.extrapolated ? " ~extrapolated" : ""}  [${(r.wallMs / 1000).toFixed(1)} s]`
        )
      }
      if (group.jobs.length > 1)
        console.log(`${group.key}: ${((performance.now() - g0) / 1000).toFixed(1)} s in all`)
    }
    sampleLoad(`after ${lastId}`)
    for (const c of classes) {
      c.rttAfter = await measureRtt(c.host, c.port, 30)
    }
    await admin.end()
  } catch (cause) {
    console.error(`server log (tail):\n${server.log().slice(-4000)}`)
    throw cause
  } finally {
    await cleanup()
  }

  gitAtEnd = git()
  const md = report({
    startedAt,
    minutes: (performance.now() - t0) / 60_000,
    serverVersion,
    pgbenchVersion
  })
  mkdirSync(dirname(outFile), { recursive: true })
  // The pgline command's table (bench/cli.ts --results) lives in the same file between its markers:
  // carried over, so a run of this suite does not drop it.
  const previous = existsSync(outFile) ? readFileSync(outFile, "utf8") : ""
  const cli = /\n## pgline command[^\n]*\n\n<!-- cli:start -->[\s\S]*?<!-- cli:end -->\n?/.exec(previous)?.[0]
  writeFileSync(outFile, cli === undefined ? md : `${md.trimEnd()}\n${cli}`)
  console.log(`\nwrote ${outFile} (${((performance.now() - t0) / 60_000).toFixed(1)} min)`)
  if (results.some((r) => r.error)) process.exitCode = 1
}

const planJobs = (pgbench: string | undefined, libpqBench: string | undefined): Array<Job> => {
  const jobs: Array<Job> = []
  const runs = config.runs
  const add = (
    id: WorkloadId,
    driver: DriverId,
    workload: Workload,
    latency: ClassId,
    mode: Mode,
    units: number,
    params: Omit<WorkerParams, "runs" | "warmup"> & { warmup?: number; runs?: number },
    warmUnproxied = false
  ) => {
    if (!selected.includes(id)) return
    jobs.push({
      id,
      group: groupKey(id, latency, units, params.op),
      driver,
      workload,
      latency,
      mode,
      units,
      ...(warmUnproxied ? { warmUnproxied } : {}),
      params: {
        warmup: 1,
        runs,
        mode,
        workDir,
        ...(driver === "pgbench" && pgbench !== undefined ? { pgbench } : {}),
        ...(driver === "libpq" && libpqBench !== undefined ? { libpqBench } : {}),
        ...params
      }
    })
  }
  const ids: Array<ClassId> = ["direct", "1ms", "4ms"]
  // P1: 10,000 upserts in one transaction.
  for (const latency of ids) {
    for (const driver of ["pgline", "libpq", "pgbench", "pg", "postgresjs", "effect-sql"] as const) {
      const batched = pipelines(driver, "pipelined")
      const rows = batched ? config.upsertRows : config.perRowRows[latency]
      // A JavaScript driver's batch keeps getting faster for several runs while V8 optimises it
      // (pgline at ~4 ms, one process alone: 125, 122, 137, 113, 115, 104, 110, 106, 101 ms over
      // its first timed runs after 2 warm-ups), so the batched variants warm up longer; the same
      // for libpq (C). pgbench keeps 2: its runs are separate invocations of a C program, and each
      // of them prepares 10,000 statements (a minute per class for nothing).
      const warmup = !batched ? 1 : driver === "pgbench" ? 2 : config.upsertWarmupBatched
      add("P1", driver, "upsert", latency, "pipelined", rows, { rows, warmup })
    }
    for (const driver of ["pgline", "libpq", "pg", "postgresjs", "effect-sql"] as const) {
      const rows = config.perRowRows[latency]
      add("P1", driver, "upsert", latency, "sequential", rows, { rows })
    }
  }
  // P2: the money transfer. Direct, 50 warm-up rounds (5,000 transfers) for the same reason as
  // P5's 20 (V8's steady state, not its warm-up: pgline's pipelined transfer takes ~110 µs from a
  // few thousand transfers on, ~490 µs over the first few hundred). Through the proxies as many
  // transfers, with the proxy's delay at 0 while they run (warmUnproxied); with 3 rounds at the
  // delay (150 and 60 transfers), pgline's ~4 ms transfer was timed at 5.31 ms against libpq's 4.59.
  for (const latency of ids) {
    const transfers = config.transfers[latency]
    const warmup = Math.ceil((config.transferWarmupDirect * config.transfers.direct) / transfers)
    const unproxied = latency !== "direct"
    for (const driver of ["pgline", "libpq", "pgbench", "pg", "postgresjs", "effect-sql"] as const) {
      add("P2", driver, "transfer", latency, "pipelined", transfers, { transfers, warmup }, unproxied)
    }
    for (const driver of ["pgline", "libpq", "pg", "postgresjs", "effect-sql"] as const) {
      add("P2", driver, "transfer", latency, "sequential", transfers, { transfers, warmup }, unproxied)
    }
  }
  // P3: the seed import table, pgline only.
  for (const latency of ids) {
    for (const rows of config.seedSizes) {
      add("P3", "pgline", "upsert", latency, "pipelined", rows, { rows })
      add("P3", "pgline", "upsert", latency, "sequential", rows, { rows, budgetMs: config.seedBudgetMs })
    }
  }
  // P4: decode 100,000 rows × 8 columns, direct.
  for (const driver of ["pgline", "pg", "postgresjs", "effect-sql"] as const) {
    add("P4", driver, "decode", "direct", "sequential", 100_000, { warmup: 2 })
  }
  // P5: 1,000 sequential single-row queries. Direct, every driver first runs 20 untimed rounds
  // (20,000 queries): a JavaScript driver's per-query cost keeps falling for ~15,000 queries while
  // V8 optimises its hot path (pgline: ~95 µs a query in the first 4,000, ~47 µs from 16,000 on),
  // so 2 warm-up rounds timed the JIT's warm-up, not the steady state a long-running service sees.
  // At ~1 ms as many, with the proxy's delay at 0 while they run (as P2).
  for (const latency of ["direct", "1ms"] as const) {
    for (const driver of ["pgline", "libpq", "pg", "postgresjs", "effect-sql", "pgbench"] as const) {
      add(
        "P5",
        driver,
        "point",
        latency,
        "sequential",
        config.pointQueries,
        { queries: config.pointQueries, warmup: config.pointWarmupDirect },
        latency !== "direct"
      )
    }
  }
  // P7: pool throughput, direct and ~1 ms. pgline twice (multiplex on, its default, and off);
  // @effect/sql-pg twice for point selects (multiplex off, its default, and on: its transactions
  // reserve a connection either way).
  for (const latency of ["direct", "1ms"] as const) {
    for (const op of ["point", "transfer"] as const) {
      for (const callers of config.poolCallers) {
        for (const v of poolVariants) {
          if (v.op !== undefined && v.op !== op) continue
          add("P7", v.driver, "pool", latency, "sequential", callers, {
            callers,
            op,
            durationMs: config.poolDurationMs,
            poolSize: POOL_SIZE,
            warmup: config.poolWarmup,
            runs: config.poolRuns,
            ...(v.multiplex === undefined ? {} : { multiplex: v.multiplex })
          })
        }
      }
    }
  }
  // P6: memory of a huge pipeline, one run per process.
  for (const style of ["execute-sync", "execute-one-sync", "executeMany"] as const) {
    for (const statements of config.bigSizes) {
      add("P6", "pgline", "bigpipeline", "direct", "pipelined", statements, {
        warmup: 0,
        runs: 1,
        statements,
        style: style === "executeMany" ? "executeMany" : "execute",
        syncEvery: style === "execute-sync" ? config.bigSyncEvery : 0
      })
    }
  }
  return jobs
}

/** Numbers the groups of one (P6), whose keys must differ. */
let soloGroups = 0

/**
 * What is compared with what: P1, P2 and P5 per latency class (every driver, pipelined and
 * sequential), P4 as one group, P3 per latency class and size (pipelined vs one at a time: the
 * speedup column), P6 one job per group, P7 per latency class, operation and number of callers
 * (every driver and variant).
 */
const groupKey = (id: WorkloadId, latency: ClassId, units: number, op: PoolOp | undefined): string => {
  switch (id) {
    case "P7":
      return `${id} ${latency} ${op} ${units} callers`
    case "P1":
    case "P2":
    case "P5":
      return `${id} ${latency}`
    case "P3":
      return `${id} ${latency} ${units}`
    case "P4":
      return id
    case "P6":
      return `${id} ${units} #${++soloGroups}`
  }
}

/**
 * The groups in the order of their first job. Upsert groups start their workers with the largest
 * row count first (stable: pipelined before sequential), so the first warm-up inserts every row
 * id the group touches and every later run only updates.
 */
const planGroups = (jobs: ReadonlyArray<Job>): Array<Group> => {
  const byKey = new Map<string, Array<Job>>()
  for (const job of jobs) {
    const list = byKey.get(job.group)
    if (list) list.push(job)
    else byKey.set(job.group, [job])
  }
  return [...byKey].map(([key, list]) => ({
    id: list[0]!.id,
    key,
    jobs: list.some((j) => j.workload === "upsert") ? [...list].sort((a, b) => b.units - a.units) : list
  }))
}

// --- the report -----------------------------------------------------------------------------------

const find = (id: WorkloadId, driver: DriverId, latency: ClassId, mode: Mode, units?: number) =>
  results.find(
    (r) =>
      r.id === id &&
      r.driver === driver &&
      r.latency === latency &&
      r.mode === mode &&
      (units === undefined || r.units === units) &&
      r.error === undefined
  )

const rttOf = (latency: ClassId) => classById(latency).rtt?.medianMs ?? Number.NaN

interface Verdict {
  readonly target: string
  readonly holds: boolean | undefined
  readonly detail: string
}

const report = (meta: {
  startedAt: Date
  minutes: number
  serverVersion: string
  pgbenchVersion: string
}): string => {
  const out: Array<string> = []
  const cpus = os.cpus()
  const verdicts: Array<Verdict> = []
  out.push("# Benchmark results", "")
  out.push(
    `Generated by \`node bench/run.ts${quick ? " --quick" : ""}${only ? ` --only ${only}` : ""}\` on ${meta.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC in ${meta.minutes.toFixed(1)} minutes. ` +
      "Each row is one child process per (driver, workload, latency class, size); times are the median, min and max of " +
      `${config.runs} timed runs after warm-up (P7: ${config.poolRuns}). Timed runs are interleaved round-robin across the drivers of each comparison ` +
      "(each P1, P2 and P5 latency class, P4, each P3 size, each P7 latency class, operation and number of callers; " +
      "one timed run per worker per round, the first worker rotating each round), " +
      "so load that changes over minutes reaches every driver of a comparison alike. " +
      "**pgline ÷ peer** below 1 means pgline is faster (P7 compares throughput: there, above 1). See bench/README.md for method and fairness.",
    ""
  )
  if (quick) out.push("> **--quick run**: fewer runs and smaller sizes; not the published numbers.", "")

  out.push("## Machine", "")
  out.push(
    table(
      ["fact", "value"],
      [
        ["CPU", `${cpus[0]?.model ?? "?"} (${cpus.length} logical cores, ${os.arch()})`],
        ["memory", `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
        ["OS", `${os.type()} ${os.release()}`],
        ["Node", process.version],
        [
          "pgline",
          `commit ${gitAtStart}${gitAtEnd === gitAtStart ? "" : ` at the start, ${gitAtEnd} at the end`}`
        ],
        ["PostgreSQL", `${meta.serverVersion} (embedded, same machine, same cores; TLS off)`],
        ["pgbench", meta.pgbenchVersion],
        ["libpq (C)", "bench/libpq/pgline_libpq_bench.c, built with gcc -O2 against the system's libpq"],
        [
          "drivers",
          `${driverName.pg}, ${driverName.postgresjs}, ${driverName["effect-sql"]} (effect ${pkgVersion("effect")}), pgline (this tree)`
        ],
        ["load average (1/5/15 min)", loadSamples.map((s) => `${s.at}: ${s.load.join(" / ")}`).join("; ")],
        [
          "CPU steal by the hypervisor, per workload",
          loadSamples
            .slice(1)
            .map((s) => `${s.at.replace("after ", "")}: ${s.steal}`)
            .join("; ")
        ]
      ]
    ),
    ""
  )
  out.push(
    "The machine is a 2-core VM shared with other work (tests of other engineers may run at the same time: see the load average). " +
      "Client, server and proxy share the two cores, so single runs vary by ±30%; compare medians and look at min/max.",
    ""
  )

  out.push("## Round trips", "")
  out.push(
    "Measured with `measureRtt` (an SSLRequest answered by the server, a fresh connection per sample, 30 samples) before the jobs and after them. " +
      "The proxy (`startLatencyProxy`, in the orchestrator's process) delays every chunk in each direction by the one-way delay.",
    ""
  )
  out.push(
    table(
      [
        "class",
        "one-way delay",
        "RTT median",
        "min",
        "max",
        "RTT median after",
        "proxy timer late (mean / max)"
      ],
      classes.map((c) => {
        const s = c.proxy?.stats()
        return [
          c.label,
          c.delayMs === undefined ? "–" : `${c.delayMs} ms`,
          `${ms(c.rtt?.medianMs ?? Number.NaN)} ms`,
          ms(c.rtt?.minMs ?? Number.NaN),
          ms(c.rtt?.maxMs ?? Number.NaN),
          `${ms(c.rttAfter?.medianMs ?? Number.NaN)} ms`,
          s === undefined ? "–" : `${s.lateMeanMs.toFixed(3)} / ${s.lateMaxMs.toFixed(2)} ms`
        ]
      })
    ),
    ""
  )

  const sections: Array<string> = []
  if (selected.includes("P1")) sections.push(reportP1(verdicts))
  if (selected.includes("P2")) sections.push(reportP2(verdicts))
  if (selected.includes("P3")) sections.push(reportP3())
  if (selected.includes("P4")) sections.push(reportP4(verdicts))
  if (selected.includes("P5")) sections.push(reportP5(verdicts))
  if (selected.includes("P6")) sections.push(reportP6(verdicts))
  if (selected.includes("P7")) sections.push(reportP7(verdicts))

  out.push("## Targets (bench/README.md)", "")
  out.push(
    "Checked in every latency class measured. A ratio target holds only when the ratio of medians and the median of " +
      "per-round ratios are both within it. Cold start is measured by bench/cold-start.ts, the row stream by bench/streams.ts.",
    ""
  )
  out.push(
    table(
      ["target", "holds", "measured"],
      verdicts.map((v) => [v.target, v.holds === undefined ? "n/a" : v.holds ? "yes" : "**no**", v.detail])
    ),
    ""
  )
  out.push(...sections)

  const failed = results.filter((r) => r.error)
  if (failed.length > 0) {
    out.push("## Failed jobs", "")
    for (const r of failed)
      out.push(`- ${r.id} ${r.latency} ${driverName[r.driver]} ${r.mode} ${r.units}: ${r.error}`)
    out.push("")
  }
  return `${out.join("\n")}\n`
}

/** A ratio target is met only when the ratio of medians and the median of per-round ratios both are within it. */
const bothWithin = (ofMedians: number, perRound: number, limit: number): boolean | undefined =>
  Number.isFinite(ofMedians) && Number.isFinite(perRound)
    ? ofMedians <= limit && perRound <= limit
    : undefined

/** pgline's time per unit of work ÷ another job's (below 1: pgline is faster). */
const perUnitRatio = (pgline: JobResult | undefined, other: JobResult | undefined) =>
  pgline && other ? pgline.median / pgline.units / (other.median / other.units) : Number.NaN

/**
 * The median over rounds of pgline's time per unit of work ÷ another job's, each ratio taken within
 * one round of interleaved timed runs (run r of every worker of a group runs in round r, one after
 * the other), so load that drifts between rounds cancels out of each ratio. NaN when either job
 * failed or the two were not interleaved with each other.
 */
const perRoundRatio = (pgline: JobResult | undefined, other: JobResult | undefined): number => {
  if (pgline?.out === undefined || other?.out === undefined || pgline.group !== other.group) return Number.NaN
  const a = pgline.out.times
  const b = other.out.times
  const ratios: Array<number> = []
  for (let r = 0; r < Math.min(a.length, b.length); r++) {
    ratios.push(a[r]! / pgline.units / (b[r]! / other.units))
  }
  return median(ratios)
}

const reportP1 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  out.push(
    `## P1: ${int(config.upsertRows)} prepared upserts in one transaction`,
    "",
    "`INSERT INTO bench_upsert (id, name, qty) VALUES ($1,$2,$3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = bench_upsert.qty + EXCLUDED.qty`, " +
      "BEGIN … COMMIT around all rows. The table is emptied once per latency class and the workers warm up largest row count first, " +
      "so the first warm-up inserts every id and every timed run of every driver updates existing rows. " +
      `Pipelined rows run ${int(config.upsertRows)} rows. Variants that pay one round trip per row run fewer rows through the proxies ` +
      `(${Object.entries(config.perRowRows)
        .map(([k, v]) => `${k}: ${int(v)}`)
        .join(
          ", "
        )}); their **ms per ${int(config.upsertRows)} rows** is scaled linearly from the rows measured and marked "~". ` +
      "Ratios compare ms per " +
      `${int(config.upsertRows)} rows, pgline pipelined against the pipelined rows and pgline sequential against the sequential rows: ` +
      "the ratio of the medians, and the median of the per-round ratios (each round runs every driver once, back to back). " +
      "libpq (C) is the reference: one prepared statement for every row, as the JS drivers; pgbench prepares each script line " +
      "as its own statement and is kept as a second opinion.",
    ""
  )
  for (const latency of ["direct", "1ms", "4ms"] as const) {
    const c = classById(latency)
    const rows: Array<Array<string>> = []
    for (const mode of ["pipelined", "sequential"] as const) {
      const base = find("P1", "pgline", latency, mode)
      const basePer = base ? (base.median * config.upsertRows) / base.units : Number.NaN
      for (const driver of ["pgline", "libpq", "pgbench", "pg", "postgresjs", "effect-sql"] as const) {
        const r = results.find(
          (x) => x.id === "P1" && x.driver === driver && x.latency === latency && x.mode === mode
        )
        if (r === undefined) continue
        const per = (r.median * config.upsertRows) / r.units
        const scaled = r.units !== config.upsertRows
        rows.push([
          driverName[driver],
          how[driver][mode],
          int(r.units),
          r.error ? `failed: ${r.error.slice(0, 80)}` : ms(r.median),
          ms(r.min),
          ms(r.max),
          `${scaled ? "~" : ""}${ms(per)}`,
          driver === "pgline" ? "1.00×" : ratio(basePer / per),
          driver === "pgline" ? "1.00×" : ratio(perRoundRatio(base, r.error ? undefined : r))
        ])
      }
    }
    out.push(`### ${c.label}: measured RTT ${ms(rttOf(latency))} ms`, "")
    out.push(
      table(
        [
          "driver",
          "how",
          "rows/run",
          "median ms",
          "min",
          "max",
          `ms per ${int(config.upsertRows)} rows`,
          "pgline ÷ this (medians)",
          "pgline ÷ this (median of per-round ratios)"
        ],
        rows
      ),
      ""
    )
    const p = find("P1", "pgline", latency, "pipelined")
    const libpq = find("P1", "libpq", latency, "pipelined")
    const pgPipe = find("P1", "pg", latency, "pipelined")
    const vsLibpq = perUnitRatio(p, libpq)
    const vsLibpqRounds = perRoundRatio(p, libpq)
    const vsPg = perUnitRatio(p, pgPipe)
    verdicts.push({
      target: `P1 ${latency}: pgline pipelined ≤ 1.00 × libpq pipeline (C)`,
      holds: bothWithin(vsLibpq, vsLibpqRounds, 1.0),
      detail:
        `${ms(p?.median ?? Number.NaN)} vs ${ms(libpq?.median ?? Number.NaN)} ms = ${ratio(vsLibpq)}; ` +
        `median of per-round ratios ${ratio(vsLibpqRounds)}; pg \`pipeline: true\` ${ms(pgPipe?.median ?? Number.NaN)} ms (${ratio(vsPg)})`
    })
  }
  return out.join("\n")
}

const reportP2 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  out.push(
    "## P2: the money transfer (BEGIN; UPDATE −; UPDATE +; COMMIT)",
    "",
    "`UPDATE account SET balance = balance - $1 WHERE id = $2`, then `+ $1` on the other account, in an explicit transaction; " +
      "each run is a loop of transfers, one after the other. **ms per transfer** is the run time divided by the transfers in it; " +
      "**round trips (time)** is ms per transfer divided by the class's measured RTT (meaningful through the proxies, where the RTT dominates; " +
      "local CPU time adds a fraction); **round trips (counted)** is what the proxy counted: client flights (client bytes sent after the " +
      "server's last answer) during a timed run, divided by its transfers (median over the runs), independent of timing noise. " +
      `Every driver first runs ${int(config.transferWarmupDirect * config.transfers.direct)} untimed transfers (V8's steady state, not its warm-up); ` +
      "through a proxy they run with its delay at 0, set back before the first timed run.",
    ""
  )
  for (const latency of ["direct", "1ms", "4ms"] as const) {
    const c = classById(latency)
    const rtt = rttOf(latency)
    const base = find("P2", "pgline", latency, "pipelined")
    const basePer = base ? base.median / base.units : Number.NaN
    const rows: Array<Array<string>> = []
    for (const mode of ["pipelined", "sequential"] as const) {
      for (const driver of ["pgline", "libpq", "pgbench", "pg", "postgresjs", "effect-sql"] as const) {
        const r = results.find(
          (x) => x.id === "P2" && x.driver === driver && x.latency === latency && x.mode === mode
        )
        if (r === undefined) continue
        const per = r.median / r.units
        rows.push([
          driverName[driver],
          mode === "pipelined" ? how[driver].pipelined : "each statement awaited",
          int(r.units),
          r.error ? `failed: ${r.error.slice(0, 80)}` : ms(per),
          ms(r.min / r.units),
          ms(r.max / r.units),
          latency === "direct" ? "–" : (per / rtt).toFixed(2),
          r.flightsPerUnit === undefined ? "–" : r.flightsPerUnit.toFixed(2),
          driver === "pgline" && mode === "pipelined" ? "1.00×" : ratio(basePer / per),
          driver === "pgline" && mode === "pipelined"
            ? "1.00×"
            : ratio(perRoundRatio(base, r.error ? undefined : r))
        ])
      }
    }
    out.push(`### ${c.label}: measured RTT ${ms(rtt)} ms`, "")
    out.push(
      table(
        [
          "driver",
          "how",
          "transfers/run",
          "ms per transfer (median)",
          "min",
          "max",
          "round trips (time)",
          "round trips (counted)",
          "pgline pipelined ÷ this (medians)",
          "pgline pipelined ÷ this (median of per-round ratios)"
        ],
        rows
      ),
      ""
    )
    const libpq = results.find(
      (x) => x.id === "P2" && x.driver === "libpq" && x.latency === latency && x.mode === "pipelined"
    )
    if (base && libpq && !libpq.error) {
      const vsLibpq = basePer / (libpq.median / libpq.units)
      const vsLibpqRounds = perRoundRatio(base, libpq)
      verdicts.push({
        target: `P2 ${latency}: the pipelined transfer ≤ 1.05 × libpq pipeline (C) per transfer`,
        holds: bothWithin(vsLibpq, vsLibpqRounds, 1.05),
        detail: `${ms(basePer)} vs ${ms(libpq.median / libpq.units)} ms per transfer = ${ratio(vsLibpq)}; median of per-round ratios ${ratio(vsLibpqRounds)}`
      })
    }
    if (latency !== "direct" && base) {
      const trips = basePer / rtt
      const counted = base.flightsPerUnit
      verdicts.push({
        target: `P2 ${latency}: the transfer in one round trip`,
        holds: counted !== undefined && counted <= 1,
        detail:
          `${counted === undefined ? "no count" : `${counted.toFixed(2)} round trips counted per transfer`}; ` +
          `${ms(basePer)} ms per transfer at ${ms(rtt)} ms RTT = ${trips.toFixed(2)} RTT`
      })
    }
  }
  return out.join("\n")
}

const reportP3 = (): string => {
  const out: Array<string> = []
  out.push(
    "## P3: the seed import table (pgline, pipelined vs one statement at a time)",
    "",
    "The same upsert as P1, one statement per row inside BEGIN … COMMIT, at each size. " +
      `Sequential runs stop after ${int(config.seedBudgetMs)} ms and extrapolate the rate to the full size, marked "~" ` +
      "(every row costs the same round trip, so the rate is steady). Pipelined runs always upsert every row.",
    ""
  )
  const rows: Array<Array<string>> = []
  for (const latency of ["direct", "1ms", "4ms"] as const) {
    for (const size of config.seedSizes) {
      const p = find("P3", "pgline", latency, "pipelined", size)
      const s = find("P3", "pgline", latency, "sequential", size)
      const failedP = results.find(
        (r) => r.id === "P3" && r.latency === latency && r.units === size && r.error
      )
      rows.push([
        `${classById(latency).label} (RTT ${ms(rttOf(latency))} ms)`,
        int(size),
        s ? `${s.out?.extrapolated ? "~" : ""}${ms(s.median)}` : "–",
        p ? ms(p.median) : failedP ? `failed: ${failedP.error?.slice(0, 60)}` : "–",
        p ? `${ms(p.min)} / ${ms(p.max)}` : "–",
        p ? `${int(Math.round((size / p.median) * 1000))}` : "–",
        p && s ? `${(s.median / p.median).toFixed(1)}×` : "–"
      ])
    }
  }
  out.push(
    table(
      [
        "class",
        "rows",
        "sequential ms",
        "pipelined ms (median)",
        "pipelined min / max",
        "pipelined rows/s",
        "speedup"
      ],
      rows
    ),
    ""
  )
  return out.join("\n")
}

const reportP4 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  out.push(
    "## P4: decode 100,000 rows × 8 columns (direct)",
    "",
    "`SELECT * FROM bench_decode`: int4, int8, text, float8, timestamptz, bool, numeric, jsonb; every value touched once after the query " +
      "(so a lazy row representation pays too). Each driver's default type mapping (e.g. int8 and numeric as string in pg, " +
      "jsonb parsed by all). The statement is prepared by every driver. libpq is not measured here.",
    ""
  )
  const base = find("P4", "pgline", "direct", "sequential")
  const rows: Array<Array<string>> = []
  let bestPeer = Number.POSITIVE_INFINITY
  for (const driver of ["pgline", "pg", "postgresjs", "effect-sql"] as const) {
    const r = results.find((x) => x.id === "P4" && x.driver === driver)
    if (r === undefined) continue
    if (driver !== "pgline" && !r.error) bestPeer = Math.min(bestPeer, r.median)
    rows.push([
      driverName[driver],
      r.error ? `failed: ${r.error.slice(0, 80)}` : ms(r.median),
      ms(r.min),
      ms(r.max),
      r.error ? "–" : int(Math.round((100_000 / r.median) * 1000)),
      driver === "pgline" ? "1.00×" : ratio((base?.median ?? Number.NaN) / r.median)
    ])
  }
  out.push(table(["driver", "median ms", "min", "max", "rows/s", "pgline ÷ this"], rows), "")
  if (base && Number.isFinite(bestPeer)) {
    verdicts.push({
      target: "P4: decode ≤ 0.65 × the best JS peer",
      holds: base.median / bestPeer <= 0.65,
      detail: `${ms(base.median)} vs ${ms(bestPeer)} ms = ${ratio(base.median / bestPeer)}`
    })
  }
  return out.join("\n")
}

const reportP5 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  out.push(
    `## P5: ${int(config.pointQueries)} sequential single-row queries`,
    "",
    "`SELECT $1::int AS x`, prepared, each awaited before the next (no transaction). " +
      "libpq (C) runs it with PQexecPrepared, one at a time. " +
      "pgbench runs the same statement as one pgbench transaction per query; its run time is the sum of its per-transaction latencies " +
      "(one invocation per job; between its runs it waits for its turn in an untimed transaction). " +
      `Every driver first runs ${int(config.pointWarmupDirect * config.pointQueries)} untimed queries (V8's steady state, not its warm-up); ` +
      "through the proxy they run with its delay at 0, set back before the first timed run.",
    ""
  )
  for (const latency of ["direct", "1ms"] as const) {
    const base = find("P5", "pgline", latency, "sequential")
    const rows: Array<Array<string>> = []
    for (const driver of ["pgline", "libpq", "pgbench", "pg", "postgresjs", "effect-sql"] as const) {
      const r = results.find((x) => x.id === "P5" && x.driver === driver && x.latency === latency)
      if (r === undefined) continue
      rows.push([
        driverName[driver],
        r.error ? `failed: ${r.error.slice(0, 80)}` : ms(r.median),
        ms(r.min),
        ms(r.max),
        ms((r.median / r.units) * 1000),
        driver === "pgline" ? "1.00×" : ratio((base?.median ?? Number.NaN) / r.median),
        driver === "pgline" ? "1.00×" : ratio(perRoundRatio(base, r.error ? undefined : r))
      ])
    }
    out.push(`### ${classById(latency).label}: measured RTT ${ms(rttOf(latency))} ms`, "")
    out.push(
      table(
        [
          "driver",
          "median ms",
          "min",
          "max",
          "µs per query",
          "pgline ÷ this (medians)",
          "pgline ÷ this (median of per-round ratios)"
        ],
        rows
      ),
      ""
    )
    const pgr = find("P5", "pg", latency, "sequential")
    const libpqr = find("P5", "libpq", latency, "sequential")
    if (base && libpqr && !libpqr.error) {
      const r = base.median / libpqr.median
      const rounds = perRoundRatio(base, libpqr)
      verdicts.push({
        target: `P5 ${latency}: sequential latency ≤ 2.0 × libpq (C)`,
        holds: bothWithin(r, rounds, 2.0),
        detail: `${ms(base.median)} vs ${ms(libpqr.median)} ms = ${ratio(r)}; median of per-round ratios ${ratio(rounds)}`
      })
    }
    if (base && pgr && !pgr.error) {
      const r = base.median / pgr.median
      const rounds = perRoundRatio(base, pgr)
      verdicts.push({
        target: `P5 ${latency}: sequential latency ≤ 0.6 × pg`,
        holds: bothWithin(r, rounds, 0.6),
        detail: `${ms(base.median)} vs ${ms(pgr.median)} ms = ${ratio(r)}; median of per-round ratios ${ratio(rounds)}`
      })
    }
  }
  return out.join("\n")
}

const reportP6 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  out.push(
    "## P6: memory of a huge pipeline (pgline, direct)",
    "",
    "One pipeline of `SELECT $1::int AS x` statements, each process running one size once after a 10,000-statement warm-up pipeline. " +
      "Peak RSS is `process.resourceUsage().maxRSS` after the timed pipeline; RSS before is the same just before it. " +
      "RSS includes garbage V8 has not collected yet, so a second, untimed pass of the same size forces a full GC every 5% of " +
      "the statements and records the largest heapUsed after GC: the **live heap max**, what the pipeline really holds. " +
      `Styles: **execute + sync** (execute in a loop, handles dropped, \`p.sync\` every ${int(config.bigSyncEvery)} statements), ` +
      "**execute, one sync** (handles dropped, a single segment), **executeMany** (one call over a generator of rows, one segment; " +
      "its summed handle is read after the sync).",
    ""
  )
  const rows: Array<Array<string>> = []
  const growth: Record<string, Array<number>> = {}
  for (const r of results.filter((x) => x.id === "P6")) {
    const style =
      r.params.style === "executeMany"
        ? "executeMany"
        : (r.params.syncEvery ?? 0) > 0
          ? `execute + sync every ${int(r.params.syncEvery!)}`
          : "execute, one sync"
    const e = r.out?.extra ?? {}
    const base = Number(e["baselineRssKiB"])
    const peak = Number(e["peakRssKiB"])
    const live0 = Number(e["liveHeapBaselineKiB"])
    const live = Number(e["liveHeapMaxKiB"])
    growth[style] = [...(growth[style] ?? []), live - live0]
    const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`
    rows.push([
      style,
      int(r.units),
      r.error ? `failed: ${r.error.slice(0, 80)}` : ms(r.median),
      r.error ? "–" : int(Math.round((r.units / r.median) * 1000)),
      r.error ? "–" : mib(base),
      r.error ? "–" : mib(peak),
      r.error ? "–" : mib(peak - base),
      r.error ? "–" : mib(live0),
      r.error ? "–" : mib(live)
    ])
  }
  out.push(
    table(
      [
        "style",
        "statements",
        "wall ms",
        "statements/s",
        "RSS before",
        "peak RSS",
        "peak − before",
        "live heap before",
        "live heap max"
      ],
      rows
    ),
    ""
  )
  const [small, big] = config.bigSizes
  const synced = growth[`execute + sync every ${int(config.bigSyncEvery)}`]
  if (synced && synced.length === 2 && small !== undefined && big !== undefined) {
    const [a, b] = synced as [number, number]
    const peakOf = (n: number) => {
      const r = results.find(
        (x) => x.id === "P6" && x.units === n && (x.params.syncEvery ?? 0) > 0 && x.out !== undefined
      )
      const e = r?.out?.extra ?? {}
      return (Number(e["peakRssKiB"]) - Number(e["baselineRssKiB"])) / 1024
    }
    verdicts.push({
      target: `P6: a ${int(big)}-statement pipeline in bounded memory`,
      holds: b < Math.max(a, 4 * 1024) * 2,
      detail:
        `live heap growth ${(a / 1024).toFixed(0)} MiB at ${int(small)} vs ${(b / 1024).toFixed(0)} MiB at ${int(big)} statements; ` +
        `peak RSS growth ${peakOf(small).toFixed(0)} vs ${peakOf(big).toFixed(0)} MiB (execute + sync every ${int(config.bigSyncEvery)})`
    })
  }
  return out.join("\n")
}

main().catch((cause) => {
  console.error(cause)
  process.exit(1)
})

/** A P7 job's figures: medians (and throughput's min and max) over its timed runs. */
interface PoolFigures {
  readonly opsPerSec: number
  readonly minOpsPerSec: number
  readonly maxOpsPerSec: number
  readonly p99Ms: number
  readonly p50Ms: number
  /** Operations per timed run (median). */
  readonly ops: number
  /** Round trips the proxy counted per operation (median over the runs); undefined direct. */
  readonly flightsPerOp: number | undefined
}

const poolFigures = (r: JobResult): PoolFigures | undefined => {
  const runs: ReadonlyArray<PoolRun> = r.out?.pool ?? []
  if (r.error !== undefined || runs.length === 0) return undefined
  const rates = runs.map((x) => (x.ops / x.ms) * 1000)
  return {
    opsPerSec: median(rates),
    minOpsPerSec: Math.min(...rates),
    maxOpsPerSec: Math.max(...rates),
    p99Ms: median(runs.map((x) => x.p99Ms)),
    p50Ms: median(runs.map((x) => x.p50Ms)),
    ops: median(runs.map((x) => x.ops)),
    flightsPerOp:
      r.flights.length === runs.length ? median(runs.map((x, i) => r.flights[i]! / x.ops)) : undefined
  }
}

const reportP7 = (verdicts: Array<Verdict>): string => {
  const out: Array<string> = []
  const seconds = (config.poolDurationMs / 1000).toFixed(config.poolDurationMs % 1000 === 0 ? 0 : 1)
  out.push(
    `## P7: pool throughput (${POOL_SIZE} connections; ${config.poolCallers.map(int).join(" and ")} concurrent callers)`,
    "",
    `Every driver's pool holds ${POOL_SIZE} connections; ${config.poolCallers.map(int).join(" or ")} callers (fibers for pgline and @effect/sql-pg, ` +
      "concurrent promises for pg and postgres.js) share it, each repeating one operation: a **point select** (`SELECT $1::int AS x`, " +
      "the result checked) or a **transfer** (BEGIN, `UPDATE account … - 1` on one account, `… + 1` on another, COMMIT) between a " +
      `pseudo-random pair of ${int(POOL_ACCOUNTS)} accounts (the same sequence for every driver; the lower id is always updated first, ` +
      `so transactions cannot deadlock). Fixed duration: each timed run lets the callers start operations for ${seconds} s and ends ` +
      "when the last one finishes; **ops/s** is the operations completed divided by that time (an operation is one select or one whole " +
      "transaction), **p99** the 99th percentile of one operation's latency in the run (from its start, including the wait for a " +
      `connection, to its result). Medians over ${config.poolRuns} timed runs per job (min and max of ops/s beside), after ${config.poolWarmup} ` +
      "untimed runs as long (they open the pool's connections, prepare the statements on them and warm the JIT up). **Round trips per op** (through " +
      "the proxy) is the client flights the proxy counted during a run divided by its operations: below 1 when several operations share a " +
      "round trip. **pgline ÷ this** is pgline's (multiplex on, the default) throughput divided by this row's: above 1 means pgline " +
      "completes more operations per second (the opposite direction from the time ratios of P1–P6). A failed operation fails its job.",
    ""
  )
  for (const latency of ["direct", "1ms"] as const) {
    const rows: Array<Array<string>> = []
    const summary: Array<Array<string>> = []
    for (const op of ["point", "transfer"] as const) {
      for (const callers of config.poolCallers) {
        const jobs = results.filter(
          (r) => r.id === "P7" && r.latency === latency && r.params.op === op && r.units === callers
        )
        if (jobs.length === 0) continue
        const fig = (r: JobResult | undefined) => (r === undefined ? undefined : poolFigures(r))
        const base = jobs.find((r) => r.driver === "pgline" && r.params.multiplex === undefined)
        const classic = jobs.find((r) => r.driver === "pgline" && r.params.multiplex === false)
        const baseFig = fig(base)
        for (const r of jobs) {
          const f = fig(r)
          rows.push([
            op,
            int(callers),
            poolDriverName(r),
            variantOf(r)?.how[op] ?? "",
            f ? int(Math.round(f.opsPerSec)) : `failed: ${(r.error ?? "no runs").slice(0, 120)}`,
            f ? int(Math.round(f.minOpsPerSec)) : "–",
            f ? int(Math.round(f.maxOpsPerSec)) : "–",
            f ? ms(f.p99Ms) : "–",
            f ? ms(f.p50Ms) : "–",
            f?.flightsPerOp === undefined ? "–" : f.flightsPerOp.toFixed(2),
            f && baseFig ? ratio(baseFig.opsPerSec / f.opsPerSec) : "–"
          ])
        }
        // The best peer: the highest median throughput among the other drivers (every variant).
        let best: { r: JobResult; f: PoolFigures } | undefined
        for (const r of jobs) {
          if (r.driver === "pgline") continue
          const f = fig(r)
          if (f && (best === undefined || f.opsPerSec > best.f.opsPerSec)) best = { r, f }
        }
        const vsBest = baseFig && best ? baseFig.opsPerSec / best.f.opsPerSec : Number.NaN
        const classicFig = fig(classic)
        const vsClassic = baseFig && classicFig ? baseFig.opsPerSec / classicFig.opsPerSec : Number.NaN
        const goal = 1.3
        summary.push([
          op,
          int(callers),
          baseFig ? int(Math.round(baseFig.opsPerSec)) : "failed",
          best ? `${poolDriverName(best.r)}: ${int(Math.round(best.f.opsPerSec))}` : "–",
          ratio(vsBest),
          `≥ ${goal.toFixed(1)}×`,
          Number.isFinite(vsBest) ? (vsBest >= goal ? "yes" : "**no**") : "n/a",
          classicFig ? int(Math.round(classicFig.opsPerSec)) : "–",
          ratio(vsClassic)
        ])
        verdicts.push({
          target: `P7 ${latency} ${op}, ${callers} callers: pgline ≥ 1.3× the best peer's ops/s`,
          holds: Number.isFinite(vsBest) ? vsBest >= goal : undefined,
          detail: `${baseFig ? int(Math.round(baseFig.opsPerSec)) : "–"} vs ${best ? `${int(Math.round(best.f.opsPerSec))} (${poolDriverName(best.r)})` : "–"} ops/s = ${ratio(vsBest)}`
        })
      }
    }
    out.push(`### ${classById(latency).label}: measured RTT ${ms(rttOf(latency))} ms`, "")
    out.push(
      table(
        [
          "op",
          "callers",
          "driver",
          "how",
          "ops/s (median)",
          "min",
          "max",
          "p99 ms",
          "p50 ms",
          "round trips per op",
          "pgline ÷ this (ops/s)"
        ],
        rows
      ),
      ""
    )
    out.push(
      table(
        [
          "op",
          "callers",
          "pgline ops/s",
          "best peer ops/s",
          "pgline ÷ best peer",
          "target",
          "holds",
          "pgline multiplex: false ops/s",
          "multiplex on ÷ off"
        ],
        summary
      ),
      ""
    )
  }
  return out.join("\n")
}
