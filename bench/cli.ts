/**
 * The `pgline` command on the import script of the psql 18 blog post: N prepared upserts in one
 * transaction, run as `pgline -X -q -v ON_ERROR_STOP=1 -f script.sql URL` with and without
 * psql 18's `\startpipeline` / `\endpipeline` around the EXECUTEs, on one embedded PostgreSQL 18,
 * directly and through latency proxies of about 1 ms and 4 ms round trip.
 *
 *   node bench/cli.ts [--runs N] [--warmup N] [--sizes 100,1000,…] [--quick] [--direct-only]
 *                     [--max-plain-s S] [--source] [--results] [--out FILE]
 *
 * The script (bench/.work/cli/import-<N>-<variant>.sql, written once per size):
 *
 *   PREPARE s(int, text) AS INSERT INTO imp (id, name) VALUES ($1, $2)
 *     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
 *   BEGIN;
 *   \startpipeline                       (only in the pipelined variant)
 *   execute s(1, 'name 1');
 *   … N lines
 *   \endpipeline                         (only in the pipelined variant)
 *   COMMIT;
 *
 * Each run is the whole command as a user types it: a child process (Node running
 * packages/cli/dist/bin.js when it is built, else packages/cli/src/bin.ts with
 * --conditions=@pgline/source; `--source` forces the latter), timed from spawn to exit, so process
 * start-up, module loading, connecting and authenticating are in every figure. The built command
 * runs from a copy of the packages' dist/ taken at the start (bench/.work/cli/install, laid out as
 * an installed package), so a rebuild of packages/ during the bench cannot break or mix its runs. Outside the clock,
 * before each run, node-postgres empties the table (TRUNCATE, directly to the server, never
 * through the proxy); after each run the exit status must be 0 and the table must hold exactly
 * ids 1..N with name 'name <id>': anything else fails the bench (exit status 1, RESULTS.md left
 * alone). Through a proxy, its count of client flights during a run is the run's round trips.
 *
 * Per latency class and N, the two variants take turns, one run each per round (the first one
 * alternating), after one warm-up each: 3 timed runs by default, medians. The script without a
 * pipeline costs a round trip per statement (100,000 at ~4 ms: ~7 minutes a run), so its runs are
 * capped: its time is estimated from the class's smaller sizes, and above `--max-plain-s`
 * (default 120 s) it is not run, above a quarter of that it runs once without a warm-up; the report
 * says so in the table.
 *
 * Writes bench/.work/cli.md, and `--out FILE` when given; `--results` also puts the table into
 * bench/RESULTS.md between `<!-- cli:start -->` and `<!-- cli:end -->` (appended with a heading
 * when absent).
 */
import { execFileSync, spawn } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import os from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { measureRtt, startServer } from "@pgline/testing"
import pg from "pg"
import type * as harness from "./workers/harness.ts"
import { median, numberOption, parseOptions, reach, stopper, track } from "./workers/harness.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const root = join(benchDir, "..")
const workDir = join(benchDir, ".work")
const scriptDir = join(workDir, "cli")
const resultsFile = join(benchDir, "RESULTS.md")

// --- command line ---------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const options = parseOptions(
  ["--runs", "--warmup", "--sizes", "--max-plain-s", "--out"],
  ["--quick", "--direct-only", "--source", "--results"],
  "usage: node bench/cli.ts [--runs N] [--warmup N] [--sizes 100,1000,10000,100000] [--quick] [--direct-only]\n" +
    "                         [--max-plain-s S] [--source] [--results] [--out FILE]\n" +
    "  defaults: N = 100, 1,000, 10,000, 100,000; direct, ~1 ms and ~4 ms RTT; 1 warm-up and 3 timed runs\n" +
    "  per variant; a run without the pipeline estimated above S seconds (default 120) is skipped, above S/4\n" +
    "  it runs once. --quick: N up to 10,000, 1 timed run, no warm-up, S = 15 (a smoke run).\n" +
    "  --source: run packages/cli/src/bin.ts even when dist/bin.js is built. --results: also update\n" +
    "  bench/RESULTS.md between its cli markers. Writes bench/.work/cli.md (and --out FILE)."
)
const quick = options.has("--quick")
const num = (name: string, fallback: number): number => numberOption(options, name, fallback, true)
const RUNS = Math.max(1, Math.round(num("--runs", quick ? 1 : 3)))
const WARMUP = Math.round(num("--warmup", quick ? 0 : 1))
const MAX_PLAIN_MS = num("--max-plain-s", quick ? 15 : 120) * 1000
/** Above this estimate a run without the pipeline is done once, without a warm-up. */
const ONCE_PLAIN_MS = MAX_PLAIN_MS / 4
const SIZES: ReadonlyArray<number> = (
  options.get("--sizes") ?? (quick ? "100,1000,10000" : "100,1000,10000,100000")
)
  .split(",")
  .map((s) => {
    const n = Number(s.trim().replaceAll("_", ""))
    if (!Number.isInteger(n) || n < 1) throw new Error(`--sizes: not a positive whole number: ${s}`)
    return n
  })
  .sort((a, b) => a - b)
const outFile = options.get("--out")

// --- the command ----------------------------------------------------------------------------------

const distBin = join(root, "packages", "cli", "dist", "bin.js")
const srcBin = join(root, "packages", "cli", "src", "bin.ts")
const useDist = existsSync(distBin) && !options.has("--source")
/** The workspace packages the command loads, in dependency order. */
const CLI_PACKAGES = ["codec", "transport", "client", "cli"] as const
/**
 * Where the dist/ snapshot goes: node_modules/@pgline/<name>/{package.json,dist} and node_modules/effect
 * (a link to the workspace's effect), the layout of an installed package. The command runs from this
 * copy so that a rebuild of packages/ while the bench runs (`pnpm run build` removes dist/ first)
 * cannot pull the files from under a run or mix two builds.
 */
const installDir = join(scriptDir, "install")
const snapshotBin = join(installDir, "node_modules", "@pgline", "cli", "dist", "bin.js")
/** Node's arguments before the script's: the source entry resolves workspace packages to their TypeScript. */
const nodeArgs = useDist ? [snapshotBin] : ["--conditions=@pgline/source", srcBin]
/** The environment of the command: NODE_OPTIONS removed, so dist/ loads its dependencies' dist/ as an installed package would. */
const childEnv = (() => {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
})()
const CLI_FLAGS = ["-X", "-q", "-v", "ON_ERROR_STOP=1"] as const

/** What the report shows as the command (paths relative to the repository root, the URL as $URL). */
const commandText = (script: string) =>
  `node ${nodeArgs.map((a) => (a.startsWith(root) ? relative(root, a) : a)).join(" ")} ${CLI_FLAGS.join(" ")} -f ${relative(root, script)} "$URL"`

const newestMtime = (path: string): number => {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), 0)
}

const stampOf = (name: string): string | undefined => {
  try {
    return readFileSync(join(root, "packages", name, "dist", ".build-stamp"), "utf8").trim()
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Copies the built packages into `installDir`, when every one has finished building (its build stamp
 * is there) and no stamp changed during the copy; retries for a minute while a build is under way.
 * Returns what the report says about the build: its stamps and whether src/ was newer.
 */
const snapshotDist = async (): Promise<string> => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const before = CLI_PACKAGES.map(stampOf)
    if (before.every((x) => x !== undefined)) {
      rmSync(installDir, { recursive: true, force: true })
      try {
        for (const name of CLI_PACKAGES) {
          const from = join(root, "packages", name)
          const to = join(installDir, "node_modules", "@pgline", name)
          mkdirSync(to, { recursive: true })
          cpSync(join(from, "package.json"), join(to, "package.json"))
          cpSync(join(from, "dist"), join(to, "dist"), { recursive: true })
        }
        const after = CLI_PACKAGES.map(stampOf)
        if (after.every((x, i) => x === before[i])) {
          symlinkSync(
            realpathSync(join(root, "packages", "cli", "node_modules", "effect")),
            join(installDir, "node_modules", "effect")
          )
          const stale = CLI_PACKAGES.filter(
            (name, i) => Date.parse(before[i]!) < newestMtime(join(root, "packages", name, "src"))
          )
          const built = CLI_PACKAGES.map(
            (name, i) => `${name} ${before[i]!.slice(0, 19).replace("T", " ")}`
          ).join(", ")
          return `built ${built} UTC; ${stale.length === 0 ? "src/ not newer" : `**src/ newer than the build: ${stale.join(", ")}**`}`
        }
      } catch {
        // a build removed dist/ during the copy: try again
      }
    }
    console.log("packages/*/dist is being built; waiting 5 s for a complete build to copy")
    await sleep(5_000)
  }
  throw new Error(
    "packages/*/dist did not hold a complete build for a minute; run `pnpm run build` (or pass --source)"
  )
}

// --- scripts --------------------------------------------------------------------------------------

type Variant = "plain" | "pipeline"
const VARIANTS: ReadonlyArray<Variant> = ["plain", "pipeline"]
const variantLabel: Record<Variant, string> = {
  plain: "without pipeline",
  pipeline: "with \\startpipeline … \\endpipeline"
}

const TABLE = "imp"
const SETUP = `DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (id int PRIMARY KEY, name text)`
const PREPARE = `PREPARE s(int, text) AS INSERT INTO ${TABLE} (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;`

const scriptPath = (n: number, variant: Variant) => join(scriptDir, `import-${n}-${variant}.sql`)

const writeScripts = (n: number) => {
  const lines: Array<string> = []
  for (let i = 1; i <= n; i++) lines.push(`execute s(${i}, 'name ${i}');`)
  const body = lines.join("\n")
  writeFileSync(scriptPath(n, "plain"), `${PREPARE}\nBEGIN;\n${body}\nCOMMIT;\n`)
  writeFileSync(
    scriptPath(n, "pipeline"),
    `${PREPARE}\nBEGIN;\n\\startpipeline\n${body}\n\\endpipeline\nCOMMIT;\n`
  )
}

// --- latency classes ------------------------------------------------------------------------------

type LatencyClass = harness.LatencyClass<"direct" | "1ms" | "4ms">

const classes: Array<LatencyClass> = (
  [
    { id: "direct", label: "direct (loopback)", delayMs: undefined },
    { id: "1ms", label: "~1 ms RTT (0.5 ms one-way)", delayMs: 0.5 },
    { id: "4ms", label: "~4 ms RTT (2 ms one-way)", delayMs: 2 }
  ] as const
)
  .filter((c) => c.id === "direct" || !options.has("--direct-only"))
  .map((c) => ({ ...c, url: "", host: "", port: 0, proxy: undefined, rtt: undefined, rttAfter: undefined }))

// --- runs -----------------------------------------------------------------------------------------

interface Run {
  readonly ms: number
  /** Client flights the proxy counted during the run (its round trips); undefined when direct. */
  readonly flights: number | undefined
  readonly warmup: boolean
}

interface Side {
  readonly variant: Variant
  /** Why the variant was not run at this size, or runs fewer times. */
  plan: { readonly warmup: number; readonly runs: number; readonly note: string | undefined }
  readonly runs: Array<Run>
  failure: string | undefined
  /** The estimate the plan was made from (ms per run), for the plain variant. */
  estimateMs: number | undefined
}

interface Group {
  readonly cls: LatencyClass
  readonly n: number
  readonly sides: Record<Variant, Side>
  wallMs: number
}

interface Outcome {
  readonly ms: number
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

/** Spawns the command and times it from spawn to exit; kills it after `limitMs`. */
const runCommand = (script: string, url: string, limitMs: number): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    let exitedAt = 0
    let timedOut = false
    const t0 = performance.now()
    const child = spawn(process.execPath, [...nodeArgs, ...CLI_FLAGS, "-f", script, url], {
      stdio: ["ignore", "pipe", "pipe"],
      env: childEnv
    })
    track(child)
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, limitMs)
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < 20_000) stdout += d
    })
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 20_000) stderr += d
    })
    child.once("exit", () => {
      exitedAt = performance.now()
    })
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ ms: (exitedAt || performance.now()) - t0, code, signal, stdout, stderr, timedOut })
    })
  })

/** The table after a run: exactly ids 1..n, each named 'name <id>'. Returns what is wrong, or undefined. */
const checkTable = async (admin: pg.Client, n: number): Promise<string | undefined> => {
  const r = await admin.query(
    `SELECT count(*)::int AS rows, (count(*) FILTER (WHERE name = 'name ' || id))::int AS named, min(id) AS lo, max(id) AS hi FROM ${TABLE}`
  )
  const { rows, named, lo, hi } = r.rows[0] as {
    rows: number
    named: number
    lo: number | null
    hi: number | null
  }
  if (rows === n && named === n && lo === 1 && hi === n) return undefined
  return `table holds ${rows} rows (want ${n}), ${named} with the expected name, ids ${lo ?? "–"}..${hi ?? "–"}`
}

const oneRun = async (admin: pg.Client, g: Group, side: Side, warmup: boolean): Promise<void> => {
  await admin.query(`TRUNCATE ${TABLE}`)
  const script = scriptPath(g.n, side.variant)
  const before = g.cls.proxy?.stats().clientFlights
  const limitMs = Math.max(120_000, 3 * (side.estimateMs ?? 0))
  const o = await runCommand(script, g.cls.url, limitMs)
  const flights = before === undefined ? undefined : g.cls.proxy!.stats().clientFlights - before
  const tag = `${g.cls.id} N=${g.n} ${side.variant}${warmup ? " (warm-up)" : ""}`
  let wrong: string | undefined
  if (o.timedOut) wrong = `killed after ${(limitMs / 1000).toFixed(0)} s`
  else if (o.code !== 0) wrong = `exit status ${o.code ?? o.signal}`
  else wrong = await checkTable(admin, g.n)
  if (wrong === undefined && o.stderr.trim() !== "") {
    wrong = "exit status 0 but the command wrote to stderr"
  }
  if (wrong !== undefined) {
    const detail = [o.stderr.trim(), o.stdout.trim()]
      .filter((s) => s !== "")
      .join(" / ")
      .split("\n")
      .slice(0, 6)
      .join(" | ")
    side.failure = `${wrong}${detail === "" ? "" : `; output: ${detail.slice(0, 600)}`}; reproduce: \`${commandText(script)}\``
    console.log(`  ${tag}: FAILED: ${side.failure}`)
    return
  }
  side.runs.push({ ms: o.ms, flights, warmup })
  console.log(
    `  ${tag}: ${fmtMs(o.ms)} ms${flights === undefined ? "" : `, ${flights} round trips`}${o.stdout.trim() === "" ? "" : ` (stdout: ${o.stdout.trim().slice(0, 80)})`}`
  )
}

/** Estimated ms for one run without the pipeline at `n`, from the class's smaller sizes already run. */
const estimatePlain = (cls: LatencyClass, n: number, done: ReadonlyArray<Group>): number => {
  const mine = done.filter((g) => g.cls === cls)
  const base = mine
    .map((g) => median(timed(g.sides.pipeline)))
    .filter((x) => !Number.isNaN(x))
    .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY)
  const startup = Number.isFinite(base) ? base : 1_000
  // A statement awaited on its own costs at least the round trip the proxy adds; on loopback,
  // small sizes drown in start-up noise, so the largest size measured so far decides.
  const floor = 2 * (cls.delayMs ?? 0) * 0.9
  let perStatement = (cls.rtt?.medianMs ?? 0.2) + 0.3
  for (const g of mine) {
    const t = median(timed(g.sides.plain))
    if (!Number.isNaN(t)) perStatement = (t - startup) / g.n
  }
  return startup + n * Math.max(floor, perStatement)
}

const runGroup = async (admin: pg.Client, g: Group): Promise<void> => {
  const order = (r: number): ReadonlyArray<Side> =>
    r % 2 === 0 ? [g.sides.plain, g.sides.pipeline] : [g.sides.pipeline, g.sides.plain]
  const warmups = Math.max(g.sides.plain.plan.warmup, g.sides.pipeline.plan.warmup)
  for (let r = 0; r < warmups; r++) {
    for (const side of order(r)) {
      if (side.failure === undefined && r < side.plan.warmup) await oneRun(admin, g, side, true)
    }
  }
  const rounds = Math.max(g.sides.plain.plan.runs, g.sides.pipeline.plan.runs)
  for (let r = 0; r < rounds; r++) {
    for (const side of order(r)) {
      if (side.failure === undefined && r < side.plan.runs) await oneRun(admin, g, side, false)
    }
  }
}

// --- statistics and report ------------------------------------------------------------------------

const timed = (side: Side) => side.runs.filter((r) => !r.warmup).map((r) => r.ms)
const int = (x: number) => Math.round(x).toLocaleString("en")
const fmtMs = (x: number) => (Number.isNaN(x) ? "–" : x >= 100 ? int(x) : x.toFixed(1))
const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×` : "–")

const cell = (side: Side): string => {
  if (side.failure !== undefined) return "**FAILED**"
  const t = timed(side)
  if (t.length === 0) return side.plan.note ?? "–"
  const range = t.length > 1 ? ` (${fmtMs(Math.min(...t))}–${fmtMs(Math.max(...t))})` : ""
  return `${fmtMs(median(t))}${range}${side.plan.note === undefined ? "" : ` ${side.plan.note}`}`
}

const flightsCell = (side: Side): string => {
  const f = side.runs.filter((r) => !r.warmup && r.flights !== undefined).map((r) => r.flights!)
  return f.length === 0 ? "–" : int(median(f))
}

const resultTable = (groups: ReadonlyArray<Group>): string => {
  const lines = [
    "| latency class | RTT measured | upserts | without pipeline: median ms (min–max) | with pipeline: median ms (min–max) | speed-up (without ÷ with) | round trips counted (without / with) |",
    "| ------------- | -----------: | ------: | ------------------------------------: | ---------------------------------: | ------------------------: | -----------------------------------: |"
  ]
  for (const g of groups) {
    const plain = median(timed(g.sides.plain))
    const piped = median(timed(g.sides.pipeline))
    const speedup = Number.isNaN(plain)
      ? g.sides.plain.failure === undefined && g.sides.plain.estimateMs !== undefined && !Number.isNaN(piped)
        ? `~${fmtRatio(g.sides.plain.estimateMs / piped)} (estimated)`
        : "–"
      : fmtRatio(plain / piped)
    const flights =
      g.cls.proxy === undefined ? "–" : `${flightsCell(g.sides.plain)} / ${flightsCell(g.sides.pipeline)}`
    lines.push(
      `| ${g.cls.label} | ${g.cls.rtt === undefined ? "?" : `${g.cls.rtt.medianMs.toFixed(2)} ms`} | ${int(g.n)} | ${cell(g.sides.plain)} | ${cell(g.sides.pipeline)} | ${speedup} | ${flights} |`
    )
  }
  return lines.join("\n")
}

const git = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "packages", "bench"], {
      cwd: root,
      encoding: "utf8"
    }).trim()
    return dirty === "" ? head : `${head} + uncommitted changes`
  } catch {
    return "?"
  }
}

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

const loadSamples: Array<string> = []
const sampleLoad = (at: string) =>
  loadSamples.push(
    `${at}: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" / ")}`
  )

const RESULTS_HEADING = "## pgline command: psql 18's import script"
const START = "<!-- cli:start -->"
const END = "<!-- cli:end -->"

/** Replaces what is between the cli markers of RESULTS.md (appending heading and markers when absent). */
const updateResults = (block: string) => {
  let text = readFileSync(resultsFile, "utf8")
  if (!text.includes(START) || !text.includes(END)) {
    text = `${text.trimEnd()}\n\n${RESULTS_HEADING}\n\n${START}\n${END}\n`
  }
  const a = text.indexOf(START) + START.length
  const b = text.indexOf(END, a)
  writeFileSync(resultsFile, `${text.slice(0, a)}\n${block}\n${text.slice(b)}`)
}

// --- main -----------------------------------------------------------------------------------------

const main = async () => {
  const startedAt = new Date()
  const t0 = performance.now()
  const commit = git()
  const dist = useDist ? await snapshotDist() : "not used"
  sampleLoad("start")
  mkdirSync(scriptDir, { recursive: true })
  for (const n of SIZES) writeScripts(n)
  console.log(
    `pgline command: ${useDist ? `packages/cli/dist/bin.js, copied to ${relative(root, installDir)} (${dist.replaceAll("**", "")})` : "packages/cli/src/bin.ts (source)"}`
  )
  const server = await startServer({ tls: false })
  const cleanup = stopper(classes, server)
  const groups: Array<Group> = []
  let serverVersion = "?"
  try {
    const admin = new pg.Client({ connectionString: server.info.url, ssl: false })
    admin.on("error", (e) => console.error(`setup connection: ${e.message}`))
    await admin.connect()
    serverVersion = (await admin.query("SHOW server_version")).rows[0].server_version
    console.log(
      `PostgreSQL ${serverVersion}; sizes ${SIZES.map(int).join(", ")}; ${WARMUP} warm-up + ${RUNS} runs`
    )
    await admin.query(SETUP)

    for (const c of classes) {
      const rtt = await reach(c, server.info)
      console.log(`${c.label}: measured RTT median ${rtt.medianMs.toFixed(3)} ms`)
    }

    for (const c of classes) {
      for (const n of SIZES) {
        const estimate = estimatePlain(c, n, groups)
        const plainPlan =
          estimate > MAX_PLAIN_MS
            ? { warmup: 0, runs: 0, note: `not run (estimated ${int(estimate / 1000)} s a run)` }
            : estimate > ONCE_PLAIN_MS
              ? { warmup: 0, runs: 1, note: "(1 run, no warm-up)" }
              : { warmup: WARMUP, runs: RUNS, note: undefined }
        const side = (variant: Variant, plan: Side["plan"]): Side => ({
          variant,
          plan,
          runs: [],
          failure: undefined,
          estimateMs: variant === "plain" ? estimate : undefined
        })
        const g: Group = {
          cls: c,
          n,
          sides: {
            plain: side("plain", plainPlan),
            pipeline: side("pipeline", { warmup: WARMUP, runs: RUNS, note: undefined })
          },
          wallMs: 0
        }
        console.log(
          `${c.id} N=${int(n)}: without pipeline estimated ${fmtMs(estimate)} ms a run${plainPlan.note === undefined ? "" : `: ${plainPlan.note}`}`
        )
        const g0 = performance.now()
        await runGroup(admin, g)
        g.wallMs = performance.now() - g0
        groups.push(g)
        const plain = median(timed(g.sides.plain))
        const piped = median(timed(g.sides.pipeline))
        console.log(
          `${c.id} N=${int(n)}: without ${fmtMs(plain)} ms, with ${fmtMs(piped)} ms, ${fmtRatio(plain / piped)} (${(g.wallMs / 1000).toFixed(0)} s)`
        )
      }
      sampleLoad(`after ${c.id}`)
    }
    for (const c of classes) c.rttAfter = await measureRtt(c.host, c.port, 30)
    await admin.end()
  } catch (cause) {
    console.error(`server log (tail):\n${server.log().slice(-4000)}`)
    throw cause
  } finally {
    await cleanup()
  }

  const minutes = (performance.now() - t0) / 60_000
  const failures = groups.flatMap((g) =>
    VARIANTS.flatMap((v) =>
      g.sides[v].failure === undefined
        ? []
        : [`${g.cls.label}, ${int(g.n)} upserts, ${variantLabel[v]}: ${g.sides[v].failure}`]
    )
  )
  const cpus = os.cpus()
  const entry = useDist
    ? `the built \`packages/cli/dist/bin.js\` (${dist}), run from a copy of the dist/ of @pgline/cli, client, transport and codec taken at the start and laid out as an installed package (\`${relative(root, installDir)}/node_modules\`), NODE_OPTIONS unset: it loads its dependencies' dist/ as an installed package would`
    : "`packages/cli/src/bin.ts` with `--conditions=@pgline/source` (TypeScript source, types stripped by Node at every start)"
  const produced = `node bench/cli.ts${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`
  const summary =
    `Produced by \`${produced}\` on ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC in ${minutes.toFixed(1)} minutes from commit ${commit}; ` +
    `the command: ${entry}, as \`${commandText(join(scriptDir, "import-N-pipeline.sql"))}\`. ` +
    `Wall time of the whole command (spawn to exit: Node start-up, loading, connecting, the script), ${WARMUP} warm-up and ${RUNS} timed runs per cell unless it says otherwise, ` +
    "the two variants taking turns; medians (min–max); every run checked (exit status 0, nothing on stderr, the table holds exactly the N rows with the expected names). " +
    `Load average (1/5/15 min) ${loadSamples.join("; ")}.`
  const table = resultTable(groups)
  const md = [
    "# The pgline command on psql 18's import script",
    "",
    summary,
    "",
    ...(quick
      ? ["> **--quick run**: smaller sizes and a single run; a smoke test, not for publishing.", ""]
      : []),
    "The script: `PREPARE s(int, text) AS INSERT INTO imp (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;`, `BEGIN;`, " +
      "then N lines `execute s(i, 'name i');` (between `\\startpipeline` and `\\endpipeline` in the pipelined variant), `COMMIT;`. " +
      "The table is emptied (TRUNCATE, untimed) before every run. **Round trips counted**: client flights the latency proxy counted during a run (median), " +
      "connection start-up and authentication included. A run without the pipeline estimated (from the class's smaller sizes) above " +
      `${int(MAX_PLAIN_MS / 1000)} s is not run (its speed-up is then the estimate ÷ the pipelined median, marked estimated), above ${int(ONCE_PLAIN_MS / 1000)} s it runs once without a warm-up.`,
    "",
    table,
    "",
    ...(failures.length === 0 ? [] : ["## Failures", "", ...failures.map((f) => `- ${f}`), ""]),
    "## Machine",
    "",
    "| fact | value |",
    "|---|---|",
    `| CPU | ${cpus[0]?.model ?? "?"} (${cpus.length} logical cores, ${os.arch()}) |`,
    `| memory | ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB |`,
    `| OS | ${os.type()} ${os.release()} |`,
    `| Node | ${process.version} |`,
    `| pgline | commit ${commit}; the command from ${useDist ? `dist/ (${dist})` : "source (--conditions=@pgline/source)"} |`,
    `| PostgreSQL | ${serverVersion} (embedded, same machine, same cores; TLS off) |`,
    `| checks and TRUNCATE | pg ${pkgVersion("pg")}, directly to the server |`,
    `| load average (1/5/15 min) | ${loadSamples.join("; ")} |`,
    "",
    "The machine is a 2-core VM shared with other work (see the load average). Command, server and proxy share the two cores.",
    "",
    "## Round trips",
    "",
    "Measured with `measureRtt` (an SSLRequest answered by the server, a fresh connection per sample, 30 samples) before and after the runs.",
    "",
    "| class | RTT median before | min | max | RTT median after |",
    "|---|--:|--:|--:|--:|",
    ...classes.map(
      (c) =>
        `| ${c.label} | ${c.rtt?.medianMs.toFixed(3) ?? "?"} ms | ${c.rtt?.minMs.toFixed(3) ?? "?"} | ${c.rtt?.maxMs.toFixed(3) ?? "?"} | ${c.rttAfter?.medianMs.toFixed(3) ?? "?"} ms |`
    ),
    "",
    "## Every run (ms; w = warm-up)",
    "",
    ...groups.flatMap((g) =>
      VARIANTS.map(
        (v) =>
          `- ${g.cls.id}, ${int(g.n)}, ${variantLabel[v]}: ${
            g.sides[v].runs.map((r) => `${fmtMs(r.ms)}${r.warmup ? "w" : ""}`).join(", ") || "–"
          }${g.sides[v].failure === undefined ? "" : " FAILED"}`
      )
    ),
    ""
  ].join("\n")
  console.log(`\n${md}`)
  mkdirSync(workDir, { recursive: true })
  writeFileSync(join(workDir, "cli.md"), md)
  if (outFile !== undefined) writeFileSync(outFile, md)
  console.log(`written to bench/.work/cli.md${outFile === undefined ? "" : ` and ${outFile}`}`)
  if (options.has("--results")) {
    if (failures.length > 0) console.log("RESULTS.md left alone: some runs failed")
    else {
      updateResults(`${summary}\n\n${table}`)
      console.log("bench/RESULTS.md updated between its cli markers")
    }
  }
  if (failures.length > 0) process.exitCode = 1
}

main().catch((cause) => {
  console.error(cause)
  process.exitCode = 1
})
