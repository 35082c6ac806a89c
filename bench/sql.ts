/**
 * effect/sql on pgline against @effect/sql-pg: the same effect/sql program (the `sql` template of
 * `SqlClient`, nothing driver-specific) on @pgline/sql's `PgSql.layer` and on @effect/sql-pg's
 * `PgClient.layer`, on one embedded PostgreSQL 18, directly and through a latency proxy of about
 * 1 ms round trip.
 *
 *   node bench/sql.ts [--runs N] [--warmup N] [--quick] [--only PQ,TX,SEL,CTX] [--direct-only]
 *                     [--out FILE]
 *
 * Workloads (the programs are in bench/workers/sql-common.ts; bench/README.md says what is and is
 * not like for like):
 * - PQ: point selects `select id, name, balance from sql_bench where id = $1`, one after another,
 *   and the same from 64 fibers at once (`Effect.all`, concurrency 64) on a pool of 10;
 * - TX: transactions one after another, each `sql.withTransaction` of 4 statements awaited in turn
 *   (SELECT a balance, UPDATE two accounts, INSERT a log row);
 * - SEL: `select id, name, amount, score, created from sql_big`, 100,000 rows × (int, text,
 *   numeric, float8, timestamptz) into an array, every value consumed into a checksum; three such
 *   selects in turn per run;
 * - CTX: transactions one after another, each `sql.withTransaction` of 10 independent statements
 *   (8 UPDATEs, 2 INSERTs) under `Effect.all(…, { concurrency: "unbounded" })`.
 *
 * Each driver's workload at a latency class is one child process (`bench/workers/sql-pgline.ts`,
 * `bench/workers/sql-effect.ts`: the same program, only the Layer differs). The two workers of a
 * comparison start and warm up one at a time, then take turns, one timed run each per round, the
 * round's first worker rotating, so a change of machine load over minutes reaches both alike (as
 * bench/run.ts and bench/streams.ts do). Every run's result is checked (rows and their values,
 * the checksum, the balances and log a run leaves); a wrong result fails its worker. Through the
 * proxy the round trips of each timed run are counted as well (the proxy's client flights).
 *
 * Writes the report to bench/.work/sql.md, and also to `--out FILE` when given.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { measureRtt, startServer } from "@pgline/testing"
import pg from "pg"
import * as harness from "./workers/harness.ts"
import { median, reach } from "./workers/harness.ts"
import type { WorkerOutput } from "./workers/common.ts"
import {
  BENCH_ROWS,
  BENCH_TABLE,
  BIG_TABLE,
  CREATED_BASE,
  LOG_TABLE,
  POOL_SIZE,
  type SelExpected,
  type SqlParams,
  type SqlWorkload,
  START_BALANCE
} from "./workers/sql-common.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const workDir = join(benchDir, ".work")

// --- command line ---------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const options = harness.parseOptions(
  ["--runs", "--warmup", "--only", "--out"],
  ["--quick", "--direct-only"],
  "usage: node bench/sql.ts [--runs N] [--warmup N] [--quick] [--only PQ,TX,SEL,CTX] [--direct-only] [--out FILE]\n" +
    "  defaults: 1 warm-up and 5 timed runs per job, direct and ~1 ms RTT;\n" +
    "  --quick: smaller sizes, 2 timed runs (a smoke run). Writes bench/.work/sql.md (and --out FILE)."
)
const quick = options.has("--quick")
const num = (name: string, fallback: number): number => harness.numberOption(options, name, fallback)
const RUNS = Math.max(1, num("--runs", quick ? 2 : 5))
const WARMUP = num("--warmup", 1)
/** SEL's table size (the whole table is selected). */
const BIG_ROWS = quick ? 20_000 : 100_000
const ALL_WORKLOADS = ["PQ", "TX", "SEL", "CTX"] as const
type WorkloadId = (typeof ALL_WORKLOADS)[number]
const selected: ReadonlyArray<WorkloadId> = (options.get("--only") ?? ALL_WORKLOADS.join(","))
  .split(",")
  .map((s) => {
    const id = s.trim().toUpperCase() as WorkloadId
    if (!ALL_WORKLOADS.includes(id)) throw new Error(`--only: unknown workload ${s} (have PQ, TX, SEL, CTX)`)
    return id
  })
const outFile = options.get("--out")

// --- latency classes, drivers, cases --------------------------------------------------------------

type ClassId = "direct" | "1ms"

type LatencyClass = harness.LatencyClass<ClassId>

const classes: Array<LatencyClass> = (
  [
    { id: "direct", label: "direct (loopback)", delayMs: undefined },
    { id: "1ms", label: "~1 ms RTT (0.5 ms one-way)", delayMs: 0.5 }
  ] as const
)
  .filter((c) => c.id === "direct" || !options.has("--direct-only"))
  .map((c) => ({ ...c, url: "", host: "", port: 0, proxy: undefined, rtt: undefined, rttAfter: undefined }))

const pkgVersion = (name: string): string => {
  try {
    return (
      JSON.parse(readFileSync(join(benchDir, "node_modules", name, "package.json"), "utf8")) as {
        version: string
      }
    ).version
  } catch {
    return "?"
  }
}

type DriverId = "pgline" | "effect"
const drivers: ReadonlyArray<{ readonly id: DriverId; readonly label: string; readonly script: string }> = [
  {
    id: "pgline",
    label: `@pgline/sql ${pkgVersion("@pgline/sql")} \`PgSql.layer\``,
    script: "sql-pgline.ts"
  },
  {
    id: "effect",
    label: `@effect/sql-pg ${pkgVersion("@effect/sql-pg")} \`PgClient.layer\``,
    script: "sql-effect.ts"
  }
]

/** One table of the report: a workload (PQ has two) at one latency class, its sizes and unit. */
interface Case {
  readonly workload: WorkloadId
  readonly worker: SqlWorkload
  readonly title: string
  readonly params: (cls: ClassId) => Omit<SqlParams, "warmup" | "runs" | "interleave" | "checkUrl">
  /** Units per run, for the round trips per unit (queries, transactions, runs). */
  readonly units: (cls: ClassId) => number
  readonly unit: string
  /** The most pgline may take, as a fraction of sql-pg's time. */
  readonly limit: (cls: ClassId) => number
}

const size = (direct: number, oneMs: number, quickDirect: number, quickOneMs: number) => (cls: ClassId) =>
  quick ? (cls === "direct" ? quickDirect : quickOneMs) : cls === "direct" ? direct : oneMs

// Sized so a timed run takes roughly 0.5–4 s: long enough that one scheduling hiccup on the shared
// cores is a small part of it, short enough for the whole default run to take a few minutes.
const pqN = size(5_000, 1_000, 500, 200)
const pqcPerFiber = size(100, 50, 10, 5)
const FIBERS = 64
const txM = size(1_000, 200, 100, 30)
const ctxM = size(1_000, 200, 60, 20)
// One select of 100,000 rows takes 100–300 ms, the shortest run here, and its time moves most with
// GC and the load on the shared cores; three in turn per run make it as long as the others.
const SELECTS = quick ? 1 : 3

const cases: ReadonlyArray<Case> = [
  {
    workload: "PQ",
    worker: "pq",
    title: "PQ: point selects, one after another",
    params: (c) => ({ n: pqN(c) }),
    units: pqN,
    unit: "query",
    limit: () => 0.8
  },
  {
    workload: "PQ",
    worker: "pqc",
    title: `PQ×${FIBERS}: point selects from ${FIBERS} fibers at once (pool of ${POOL_SIZE})`,
    params: (c) => ({ fibers: FIBERS, perFiber: pqcPerFiber(c) }),
    units: (c) => FIBERS * pqcPerFiber(c),
    unit: "query",
    limit: () => 0.8
  },
  {
    workload: "TX",
    worker: "tx",
    title: "TX: `withTransaction` of 4 statements in turn (SELECT, UPDATE, UPDATE, INSERT)",
    params: (c) => ({ transactions: txM(c) }),
    units: txM,
    unit: "transaction",
    limit: () => 0.8
  },
  {
    workload: "SEL",
    worker: "sel",
    title: `SEL: ${BIG_ROWS.toLocaleString("en")} rows × (int, text, numeric, float8, timestamptz) into an array`,
    params: () => ({ selects: SELECTS }),
    units: () => SELECTS,
    unit: "select",
    limit: () => 0.8
  },
  {
    workload: "CTX",
    worker: "ctx",
    title: "CTX: `withTransaction` of 10 independent statements under `Effect.all` (unbounded)",
    params: (c) => ({ transactions: ctxM(c) }),
    units: ctxM,
    unit: "transaction",
    limit: (c) => (c === "1ms" ? 0.3 : 0.8)
  }
]

const sizeText = (k: Case, c: ClassId): string => {
  switch (k.worker) {
    case "pq":
      return `${pqN(c).toLocaleString("en")} queries per run`
    case "pqc":
      return `${FIBERS} × ${pqcPerFiber(c)} queries per run`
    case "tx":
    case "ctx":
      return `${k.units(c).toLocaleString("en")} transactions per run`
    case "sel":
      return `${SELECTS} × ${BIG_ROWS.toLocaleString("en")} rows per run (the whole table, selected ${SELECTS === 1 ? "once" : `${SELECTS} times in turn`})`
  }
}

interface Result {
  readonly driver: (typeof drivers)[number]
  readonly out: WorkerOutput | undefined
  readonly error: string | undefined
  /** Client flights the proxy counted during each timed run (through the proxy only). */
  readonly flights: ReadonlyArray<number>
}

// --- workers --------------------------------------------------------------------------------------

/** How long one phase of a worker may take (start-up and warm-up, or one timed run). */
const PHASE_MS = 5 * 60_000

interface Worker extends harness.TurnWorker {
  readonly driver: (typeof drivers)[number]
  readonly flights: Array<number>
}

const spawnWorker = (driver: (typeof drivers)[number], k: Case, url: string, params: SqlParams): Worker => {
  const script = join(benchDir, "workers", driver.script)
  return Object.assign(harness.spawnTurnWorker([script, k.worker, url, JSON.stringify(params)]), {
    driver,
    flights: [] as Array<number>
  })
}

/** Waits until the worker asks for a turn or exits; kills it after `PHASE_MS`. */
const nextEvent = (w: Worker) => harness.nextEvent(w, PHASE_MS)

const resultOf = (w: Worker): Result => {
  const line = w.lines.at(-1) ?? ""
  if (w.killed === undefined) {
    try {
      const out = JSON.parse(line) as WorkerOutput
      if (Array.isArray(out.times) && out.times.length === RUNS)
        return { driver: w.driver, out, error: undefined, flights: w.flights }
    } catch {
      // falls through to the error below
    }
  }
  const error = harness.failureOf(w, 8)
  return {
    driver: w.driver,
    out: undefined,
    error: error || `no result (${line.slice(0, 200)})`,
    flights: []
  }
}

/**
 * One comparison: both drivers on one case at one latency class. The workers start and warm up one
 * at a time (each then waits at its first turn); in round r each in turn, starting at r mod 2,
 * does one timed run while the other waits. Only the worker whose turn it is talks to the server
 * through the proxy (its checks go around it), so the proxy's flights over a turn are its run's
 * round trips.
 */
const runGroup = async (k: Case, cls: LatencyClass, checkUrl: string, expected: SelExpected) => {
  const workers: Array<Worker> = []
  for (const driver of drivers) {
    const params: SqlParams = {
      warmup: WARMUP,
      runs: RUNS,
      interleave: true,
      checkUrl,
      ...k.params(cls.id),
      ...(k.worker === "sel" ? { expected } : {})
    }
    const w = spawnWorker(driver, k, cls.url, params)
    workers.push(w)
    await nextEvent(w)
  }
  const n = workers.length
  for (let r = 0; r < RUNS; r++) {
    for (let i = 0; i < n; i++) {
      const w = workers[(r + i) % n]!
      if (w.exited) continue
      const before = cls.proxy?.stats().clientFlights
      w.child.stdin!.write("go\n")
      if (r === RUNS - 1) w.child.stdin!.end()
      await nextEvent(w)
      if (cls.proxy !== undefined && before !== undefined)
        w.flights.push(cls.proxy.stats().clientFlights - before)
    }
  }
  for (const w of workers) if (!w.exited) await nextEvent(w)
  return workers.map(resultOf)
}

// --- statistics and report ------------------------------------------------------------------------

const fmtMs = (x: number) => (Number.isNaN(x) ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(1))
/** A time per query or transaction: µs below 1 ms. */
const fmtPerUnit = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`)
const fmtRatio = (x: number) => (Number.isNaN(x) ? "–" : `${x.toFixed(2)}×`)
const times = (r: Result | undefined) => r?.out?.times ?? []

interface GroupReport {
  readonly k: Case
  readonly cls: LatencyClass
  readonly results: ReadonlyArray<Result>
}

const resultFor = (g: GroupReport, id: DriverId) => g.results.find((r) => r.driver.id === id)

/** pgline ÷ sql-pg: the median of per-round ratios (round r: pgline's r-th run ÷ sql-pg's) and the ratio of medians. */
const ratios = (g: GroupReport) => {
  const mine = times(resultFor(g, "pgline"))
  const theirs = times(resultFor(g, "effect"))
  const perRound: Array<number> = []
  for (let r = 0; r < Math.min(mine.length, theirs.length); r++) perRound.push(mine[r]! / theirs[r]!)
  return { perRound: median(perRound), ofMedians: median(mine) / median(theirs) }
}

/** Round trips per unit counted by the proxy (median over the timed runs); undefined direct. */
const roundTrips = (g: GroupReport, r: Result | undefined): number | undefined =>
  r === undefined || r.flights.length === 0 ? undefined : median(r.flights) / g.k.units(g.cls.id)
const fmtTrips = (x: number | undefined) =>
  x === undefined ? "–" : x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toFixed(3)

const verdict = (g: GroupReport): { holds: boolean; text: string } => {
  const limit = g.k.limit(g.cls.id)
  const failed = g.results.filter((r) => r.out === undefined)
  if (failed.length > 0)
    return { holds: false, text: `failed (${failed.map((r) => r.driver.label).join(", ")})` }
  const { perRound, ofMedians } = ratios(g)
  const holds = perRound <= limit && ofMedians <= limit
  return {
    holds,
    text: `${holds ? "met" : "**NOT met**"} (≤ ${limit.toFixed(1)}×: ${fmtRatio(ofMedians)} of medians, ${fmtRatio(perRound)} per round)`
  }
}

const summary = (groups: ReadonlyArray<GroupReport>): string => {
  const lines = [
    "| workload | latency | pgline median ms | sql-pg median ms | pgline ÷ sql-pg (ratio of medians) | median of per-round ratios | round trips per unit, pgline / sql-pg | target | verdict |",
    "| -------- | ------- | ---------------: | ---------------: | ---------------------------------: | -------------------------: | ------------------------------------: | -----: | ------- |"
  ]
  for (const g of groups) {
    const p = resultFor(g, "pgline")
    const e = resultFor(g, "effect")
    const { perRound, ofMedians } = ratios(g)
    const v = verdict(g)
    const trips =
      g.cls.proxy === undefined
        ? "–"
        : `${fmtTrips(roundTrips(g, p))} / ${fmtTrips(roundTrips(g, e))} per ${g.k.unit}`
    lines.push(
      `| ${g.k.title.split(":")[0]} | ${g.cls.id === "direct" ? "direct" : "~1 ms"} | ${fmtMs(median(times(p)))} | ${fmtMs(median(times(e)))} | ${fmtRatio(ofMedians)} | ${fmtRatio(perRound)} | ${trips} | ≤ ${g.k.limit(g.cls.id).toFixed(1)}× | ${v.holds ? "met" : "**NOT met**"} |`
    )
  }
  return lines.join("\n")
}

const table = (g: GroupReport): string => {
  const lines = [
    `| driver | median ms | min–max ms | median per ${g.k.unit} | timed runs (ms, in round order) | warm-up ms | round trips per ${g.k.unit} (proxy) |`,
    "| ------ | --------: | ---------: | ------------: | ------------------------------- | ---------: | ----------------------------------: |"
  ]
  for (const r of g.results) {
    if (r.out === undefined) {
      lines.push(
        `| ${r.driver.label} | FAILED: ${(r.error ?? "").replaceAll("|", "/").slice(0, 400)} | | | | | |`
      )
      continue
    }
    const t = times(r)
    lines.push(
      `| ${r.driver.label} | ${fmtMs(median(t))} | ${fmtMs(Math.min(...t))}–${fmtMs(Math.max(...t))} | ${fmtPerUnit(median(t) / g.k.units(g.cls.id))} | ${t.map(fmtMs).join(", ")} | ${r.out.warmupTimes.map(fmtMs).join(", ")} | ${fmtTrips(roundTrips(g, r))} |`
    )
  }
  return lines.join("\n")
}

const git = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: benchDir,
      encoding: "utf8"
    }).trim()
    // ":/" pathspecs are the repository's top level (this runs in bench/).
    const dirty = execFileSync("git", ["status", "--porcelain", "--", ":/packages", ":/bench"], {
      cwd: benchDir,
      encoding: "utf8"
    }).trim()
    return dirty === "" ? head : `${head} + uncommitted changes`
  } catch {
    return "?"
  }
}

// --- main -----------------------------------------------------------------------------------------

const SETUP = `
DROP TABLE IF EXISTS ${BENCH_TABLE}, ${LOG_TABLE}, ${BIG_TABLE};
CREATE TABLE ${BENCH_TABLE} (id int PRIMARY KEY, name text NOT NULL, balance int NOT NULL);
INSERT INTO ${BENCH_TABLE} SELECT i, 'name-' || i, ${START_BALANCE} FROM generate_series(1, ${BENCH_ROWS}) AS i;
CREATE TABLE ${LOG_TABLE} (tx int NOT NULL, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
CREATE TABLE ${BIG_TABLE} (
  id int NOT NULL, name text NOT NULL, amount numeric(12, 2) NOT NULL, score float8 NOT NULL,
  created timestamptz NOT NULL);
INSERT INTO ${BIG_TABLE}
  SELECT i, 'user-' || substr(md5(i::text), 1, 4 + i % 20), (i * 37 % 1000000) / 100.0,
    i / 7.0 + (i % 13) * 0.001,
    timestamptz '${CREATED_BASE}' + ((i::bigint * 7919) % 31536000) * interval '1 second' + (i % 1000) * interval '1 millisecond'
  FROM generate_series(1, ${BIG_ROWS}) AS i`

const main = async () => {
  const startedAt = new Date()
  const commit = git()
  mkdirSync(workDir, { recursive: true })
  const server = await startServer({ tls: false })
  const cleanup = harness.stopper(classes, server)
  const groups: Array<GroupReport> = []
  let serverVersion = "?"
  const loads: Array<string> = []
  const load = () =>
    os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")
  try {
    const admin = new pg.Client({ connectionString: server.info.url, ssl: false })
    admin.on("error", (e) => console.error(`setup connection: ${e.message}`))
    await admin.connect()
    serverVersion = (await admin.query("SHOW server_version")).rows[0].server_version
    console.log(`PostgreSQL ${serverVersion}; creating ${BENCH_TABLE}, ${LOG_TABLE} and ${BIG_TABLE}`)
    await admin.query(SETUP)
    await admin.query(`VACUUM ANALYZE ${BENCH_TABLE}, ${BIG_TABLE}`)
    const f = (
      await admin.query(
        `SELECT count(*)::int AS rows, sum(id)::text AS sum_id, sum(length(name))::text AS sum_len,
           sum(amount * 100)::bigint::text AS sum_cents, sum(score) AS sum_score,
           sum(extract(epoch FROM created - timestamptz '${CREATED_BASE}') * 1000)::bigint::text AS sum_ms
         FROM ${BIG_TABLE}`
      )
    ).rows[0]
    const expected: SelExpected = {
      rows: f.rows,
      sumId: Number(f.sum_id),
      sumLenName: Number(f.sum_len),
      sumCents: Number(f.sum_cents),
      sumScore: Number(f.sum_score),
      sumCreatedMs: Number(f.sum_ms)
    }
    console.log(`SEL expects ${JSON.stringify(expected)}`)
    await admin.end()

    for (const c of classes) {
      const rtt = await reach(c, server.info)
      console.log(`${c.label}: measured RTT median ${rtt.medianMs.toFixed(3)} ms`)
    }

    loads.push(`start ${load()}`)
    for (const c of classes) {
      for (const k of cases.filter((x) => selected.includes(x.workload))) {
        const g0 = performance.now()
        console.log(
          `${k.title.split(":")[0]} ${c.id} (${sizeText(k, c.id)}): ${WARMUP} warm-up + ${RUNS} timed runs per driver, interleaved`
        )
        const results = await runGroup(k, c, server.info.url, expected)
        const g: GroupReport = { k, cls: c, results }
        groups.push(g)
        for (const r of results) {
          const t = times(r)
          const trips = roundTrips(g, r)
          console.log(
            r.out === undefined
              ? `  ${r.driver.label}: FAILED: ${r.error}`
              : `  ${r.driver.label}: median ${fmtMs(median(t))} ms (${t.map(fmtMs).join(", ")})` +
                  (trips === undefined ? "" : `, ${fmtTrips(trips)} round trips per ${k.unit}`)
          )
        }
        console.log(`  pgline ÷ sql-pg: ${verdict(g).text.replaceAll("**", "")}`)
        console.log(`  (${((performance.now() - g0) / 1000).toFixed(0)} s)`)
      }
      loads.push(`after ${c.id} ${load()}`)
    }
    for (const c of classes) c.rttAfter = await measureRtt(c.host, c.port, 30)
  } catch (cause) {
    console.error(`server log (tail):\n${server.log().slice(-4000)}`)
    throw cause
  } finally {
    await cleanup()
  }

  const finishedAt = new Date()
  const met = groups.filter((g) => verdict(g).holds).length
  const md = [
    "# effect/sql: @pgline/sql vs @effect/sql-pg",
    "",
    `Produced by \`node bench/sql.ts${argv.length > 0 ? ` ${argv.join(" ")}` : ""}\` on ${startedAt.toISOString().slice(0, 10)} ` +
      `(${startedAt.toISOString()} – ${finishedAt.toISOString()}) from commit ${commit}. ` +
      `PostgreSQL ${serverVersion} (embedded, TLS off), Node ${process.version}, effect ${pkgVersion("effect")}, ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), load average (1, 5, 15 min): ${loads.join("; ")}.`,
    "",
    "The same effect/sql program (bench/workers/sql-common.ts: `SqlClient` and its `sql` template only) runs on both " +
      `drivers; only the Layer differs: \`PgSql.layer({ url, sslmode: "disable", max: ${POOL_SIZE} })\` and ` +
      `\`PgClient.layer({ url, ssl: false, maxConnections: ${POOL_SIZE} })\`, each driver's defaults otherwise. ` +
      `${WARMUP} warm-up and ${RUNS} timed runs per driver, each driver its own process, the timed runs interleaved ` +
      "(one run each per round, the first driver alternating). Times are wall time around the whole run, medians over the timed runs. " +
      "**pgline ÷ sql-pg** below 1: pgline is faster; the ratio of medians and the median of per-round ratios (round r: " +
      "pgline's r-th run ÷ sql-pg's r-th run, made minutes apart at most) are both given, and a target is met only " +
      "when both are within it. **Round trips** (~1 ms class only): the client flights the latency proxy counted during " +
      "each timed run (client bytes sent after the server's last answer, per connection), median over the runs, divided " +
      "by the run's units; a run's checks go straight to the server, around the proxy. Every run's result was checked: " +
      "each point select's row, each transaction's SELECT against the balance the earlier ones left, the balances and " +
      "log rows after TX and CTX runs, SEL's row count and sums of every column.",
    "",
    "Round trips measured with `measureRtt` (30 samples, a fresh connection each, before / after the jobs):",
    "",
    ...classes.map(
      (c) =>
        `- ${c.label}: median ${c.rtt?.medianMs.toFixed(3) ?? "?"} ms before, ${c.rttAfter?.medianMs.toFixed(3) ?? "?"} ms after`
    ),
    "",
    "## Targets",
    "",
    `pgline ≤ 0.8× sql-pg's time on every workload and latency class, and ≤ 0.3× on CTX at ~1 ms: ${met} of ${groups.length} met.`,
    "",
    ...groups.map((g) => `- ${g.k.title.split(":")[0]}, ${g.cls.label}: ${verdict(g).text}`),
    "",
    "## Summary",
    "",
    summary(groups),
    "",
    ...groups.flatMap((g) => [
      `## ${g.k.title}, ${g.cls.label}`,
      "",
      `${sizeText(g.k, g.cls.id)}.`,
      "",
      table(g),
      ""
    ])
  ].join("\n")
  console.log(`\n${md}`)
  writeFileSync(join(workDir, "sql.md"), md)
  if (outFile !== undefined) writeFileSync(outFile, md)
  console.log(`written to bench/.work/sql.md${outFile === undefined ? "" : ` and ${outFile}`}`)
}

main().catch((cause) => {
  console.error(cause)
  process.exitCode = 1
})
