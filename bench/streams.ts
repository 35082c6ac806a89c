/**
 * Row streams and COPY at 1,000,000 rows: pgline against node-postgres (pg-query-stream,
 * pg-copy-streams) and postgres.js (cursor, readable, writable), on one embedded PostgreSQL 18,
 * directly and through a latency proxy of about 1 ms round trip.
 *
 *   node bench/streams.ts [--runs N] [--warmup N] [--rows N] [--quick]
 *                         [--only S,CT,CF] [--direct-only] [--out FILE]
 *
 * Workloads (bench/README.md says what is and is not like for like):
 * - S: stream every row of `SELECT a, b, c FROM stream_src`, each row consumed (count, sum(a),
 *   sum(length(b)), sum(c));
 * - CT: COPY stream_src TO STDOUT (text format), the consumer counts bytes and rows;
 * - CF: COPY stream_dst FROM STDIN from the same pre-built 64 KiB chunks (the table emptied before
 *   every run, outside the clock).
 *
 * Every (driver, variant, workload, latency class) is one child process
 * (`bench/workers/stream-<driver>.ts`); the jobs compared with each other start and warm up one at
 * a time, then take turns, one timed run each per round, the round's first worker rotating, so a
 * change of machine load over minutes reaches every driver alike (as bench/run.ts does). Per run:
 * wall time, and peak RSS growth (RSS sampled every 4 ms during the run minus RSS just before it,
 * after a forced GC). Every run's result is checked against the server's figures; a wrong result
 * fails its worker.
 *
 * Writes the report to bench/.work/streams.md, and also to `--out FILE` when given.
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
import { to as copyTo } from "pg-copy-streams"
import {
  COPY_TO,
  copySumA,
  type Expected,
  SOURCE_TABLE,
  type StreamOutput,
  type StreamParams,
  type StreamWorkload,
  TARGET_TABLE
} from "./workers/stream-common.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const workDir = join(benchDir, ".work")

// --- command line ---------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const options = harness.parseOptions(
  ["--runs", "--warmup", "--rows", "--only", "--out"],
  ["--quick", "--direct-only"],
  "usage: node bench/streams.ts [--runs N] [--warmup N] [--rows N] [--quick] [--only S,CT,CF] [--direct-only] [--out FILE]\n" +
    "  defaults: 1,000,000 rows, 1 warm-up and 5 timed runs per job, direct and ~1 ms RTT;\n" +
    "  --quick: 200,000 rows, 2 timed runs (a smoke run). Writes bench/.work/streams.md (and --out FILE)."
)
const quick = options.has("--quick")
const num = (name: string, fallback: number): number => harness.numberOption(options, name, fallback)
const ROWS = num("--rows", quick ? 200_000 : 1_000_000)
const RUNS = Math.max(1, num("--runs", quick ? 2 : 5))
const WARMUP = num("--warmup", 1)
const ALL_WORKLOADS = ["S", "CT", "CF"] as const
type WorkloadId = (typeof ALL_WORKLOADS)[number]
const selected: ReadonlyArray<WorkloadId> = (options.get("--only") ?? "S,CT,CF").split(",").map((s) => {
  const id = s.trim().toUpperCase() as WorkloadId
  if (!ALL_WORKLOADS.includes(id)) throw new Error(`--only: unknown workload ${s} (have S, CT, CF)`)
  return id
})
const outFile = options.get("--out")

// --- drivers, variants, jobs ----------------------------------------------------------------------

type DriverId = "pgline" | "pg" | "postgresjs"

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

const workloadOf: Record<WorkloadId, StreamWorkload> = { S: "stream", CT: "copyto", CF: "copyfrom" }
const workloadTitle: Record<WorkloadId, string> = {
  S: "S: stream the rows of `SELECT a, b, c` (each row consumed)",
  CT: "CT: COPY TO STDOUT, text format (bytes and rows counted)",
  CF: "CF: COPY FROM STDIN, text format, from pre-built 64 KiB chunks"
}

interface Variant {
  readonly driver: DriverId
  readonly label: string
  readonly batch?: number
  readonly consume?: "each" | "array"
}

const variants: Record<WorkloadId, ReadonlyArray<Variant>> = {
  S: [
    {
      driver: "pgline",
      label: "pgline `pg.stream` (chunkSize 1000, the default), `Stream.runForEach`",
      consume: "each"
    },
    {
      driver: "pgline",
      label: "pgline `pg.stream` (chunkSize 1000, the default), `Stream.runForEachArray`",
      consume: "array"
    },
    {
      driver: "pg",
      label: `pg ${pkgVersion("pg")} + pg-query-stream ${pkgVersion("pg-query-stream")}, batchSize 100 (default)`,
      batch: 100
    },
    {
      driver: "pg",
      label: `pg ${pkgVersion("pg")} + pg-query-stream ${pkgVersion("pg-query-stream")}, batchSize 1000`,
      batch: 1000
    },
    { driver: "postgresjs", label: `postgres.js ${pkgVersion("postgres")} \`.cursor(1000)\``, batch: 1000 }
  ],
  CT: [
    { driver: "pgline", label: "pgline `pg.copyTo`" },
    {
      driver: "pg",
      label: `pg ${pkgVersion("pg")} + pg-copy-streams ${pkgVersion("pg-copy-streams")} \`to\``
    },
    { driver: "postgresjs", label: `postgres.js ${pkgVersion("postgres")} \`.readable()\`` }
  ],
  CF: [
    { driver: "pgline", label: "pgline `pg.copyFrom(text, Stream.fromIterable(chunks))`" },
    {
      driver: "pg",
      label: `pg ${pkgVersion("pg")} + pg-copy-streams ${pkgVersion("pg-copy-streams")} \`from\` (stream.pipeline)`
    },
    { driver: "postgresjs", label: `postgres.js ${pkgVersion("postgres")} \`.writable()\` (stream.pipeline)` }
  ]
}

type LatencyClass = harness.LatencyClass<"direct" | "1ms">

const classes: Array<LatencyClass> = (
  [
    { id: "direct", label: "direct (loopback)", delayMs: undefined },
    { id: "1ms", label: "~1 ms RTT (0.5 ms one-way)", delayMs: 0.5 }
  ] as const
)
  .filter((c) => c.id === "direct" || !options.has("--direct-only"))
  .map((c) => ({ ...c, url: "", host: "", port: 0, proxy: undefined, rtt: undefined, rttAfter: undefined }))

interface Result {
  readonly variant: Variant
  readonly out: StreamOutput | undefined
  readonly error: string | undefined
}

// --- workers --------------------------------------------------------------------------------------

/** How long one phase of a worker may take (start-up and warm-up, or one timed run). */
const PHASE_MS = 10 * 60_000

interface Worker extends harness.TurnWorker {
  readonly variant: Variant
}

const spawnWorker = (
  variant: Variant,
  workload: StreamWorkload,
  url: string,
  params: StreamParams
): Worker => {
  const script = join(benchDir, "workers", `stream-${variant.driver}.ts`)
  return Object.assign(
    harness.spawnTurnWorker(["--expose-gc", script, workload, url, JSON.stringify(params)]),
    { variant }
  )
}

/** Waits until the worker asks for a turn or exits; kills it after `PHASE_MS`. */
const nextEvent = (w: Worker) => harness.nextEvent(w, PHASE_MS)

const resultOf = (w: Worker): Result => {
  const line = w.lines.at(-1) ?? ""
  if (w.killed === undefined) {
    try {
      const out = JSON.parse(line) as StreamOutput
      if (Array.isArray(out.runs)) return { variant: w.variant, out, error: undefined }
    } catch {
      // falls through to the error below
    }
  }
  const error = harness.failureOf(w, 6)
  return { variant: w.variant, out: undefined, error: error || `no result (${line.slice(0, 200)})` }
}

/**
 * One group: the variants of one workload at one latency class. Workers start and warm up one at a
 * time (each then waits at its first turn); in round r every worker in turn, starting at r mod k,
 * does one timed run while the others wait.
 */
const runGroup = async (
  list: ReadonlyArray<Variant>,
  workload: StreamWorkload,
  url: string,
  expected: Expected
) => {
  const workers: Array<Worker> = []
  for (const variant of list) {
    const params: StreamParams = {
      warmup: WARMUP,
      runs: RUNS,
      interleave: true,
      expected,
      ...(variant.batch === undefined ? {} : { batch: variant.batch }),
      ...(variant.consume === undefined ? {} : { consume: variant.consume })
    }
    const w = spawnWorker(variant, workload, url, params)
    workers.push(w)
    await nextEvent(w)
  }
  const k = workers.length
  for (let r = 0; r < RUNS; r++) {
    for (let i = 0; i < k; i++) {
      const w = workers[(r + i) % k]!
      if (w.exited) continue
      w.child.stdin!.write("go\n")
      if (r === RUNS - 1) w.child.stdin!.end()
      await nextEvent(w)
    }
  }
  for (const w of workers) if (!w.exited) await nextEvent(w)
  return workers.map(resultOf)
}

// --- statistics and report ------------------------------------------------------------------------

const fmtMs = (x: number) => (Number.isNaN(x) ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(1))
const fmtMiB = (x: number) => (Number.isNaN(x) ? "–" : x.toFixed(1))
const fmtRatio = (x: number) => (Number.isNaN(x) ? "–" : `${x.toFixed(2)}×`)
const times = (r: Result) => r.out?.runs.map((x) => x.ms) ?? []

/**
 * pgline ÷ the best peer, the peer with the lowest median: as the median of per-round ratios
 * against that peer's run of the same round, and as the ratio of medians. `perRoundMin` divides by
 * whichever peer was faster in each round instead: the faster of two noisy runs is biased low (two
 * peers of equal speed make it smaller than either's median), so it is shown, not judged.
 */
const ratios = (pgline: Result, peers: ReadonlyArray<Result>) => {
  const mine = times(pgline)
  const ok = peers.filter((p) => p.out !== undefined)
  const best = ok.reduce<Result | undefined>(
    (a, p) => (a === undefined || median(times(p)) < median(times(a)) ? p : a),
    undefined
  )
  const perRound: Array<number> = []
  const perRoundMin: Array<number> = []
  for (let r = 0; r < mine.length; r++) {
    const theirs = best === undefined ? undefined : times(best)[r]
    if (theirs !== undefined) perRound.push(mine[r]! / theirs)
    const fastest = Math.min(...ok.map((p) => times(p)[r] ?? Number.POSITIVE_INFINITY))
    if (Number.isFinite(fastest)) perRoundMin.push(mine[r]! / fastest)
  }
  const bestMedian = best === undefined ? Number.NaN : median(times(best))
  return {
    perRound: median(perRound),
    perRoundMin: median(perRoundMin),
    ofMedians: median(mine) / bestMedian
  }
}

interface GroupReport {
  readonly workload: WorkloadId
  readonly cls: LatencyClass
  readonly results: ReadonlyArray<Result>
}

const RSS_LIMIT_MIB = 64

/** The worker's peak RSS over its life minus RSS just before its first (warm-up) run. */
const lifeGrowth = (out: StreamOutput): number =>
  out.maxRssMiB - (out.warmupRuns[0] ?? out.runs[0])!.rssBeforeMiB

/**
 * The first run's peak RSS growth, sampled during the run like the timed runs': it counts what
 * the first run needs (code compiled, heap grown) but not the start-up peak before it (loading
 * the modules), which the lifetime maxRSS also holds.
 */
const firstGrowth = (out: StreamOutput): number => (out.warmupRuns[0] ?? out.runs[0])!.rssGrowthMiB

/** Target verdicts per group: each pgline row against the best peer (and, for S, RSS growth). */
const verdicts = (g: GroupReport): Array<{ text: string; holds: boolean }> => {
  const peers = g.results.filter((r) => r.variant.driver !== "pgline")
  return g.results
    .filter((r) => r.variant.driver === "pgline")
    .map((p) => {
      if (p.out === undefined) return { text: `${p.variant.label}: failed`, holds: false }
      const { perRound, perRoundMin, ofMedians } = ratios(p, peers)
      const fast = perRound <= 1 && ofMedians <= 1
      const growth = Math.max(median(p.out.runs.map((x) => x.rssGrowthMiB)), firstGrowth(p.out))
      const name =
        g.workload === "S"
          ? `P6: 1M-row stream (${p.variant.consume === "array" ? "runForEachArray" : "runForEach"}), RSS growth < ${RSS_LIMIT_MIB} MiB and ≤ 1.0× best peer`
          : g.workload === "CT"
            ? "COPY TO ≤ 1.0× best peer"
            : "COPY FROM ≤ 1.0× best peer"
      const holds = g.workload === "S" ? fast && growth < RSS_LIMIT_MIB : fast
      const detail =
        `${fmtRatio(perRound)} (median of per-round ratios), ${fmtRatio(ofMedians)} (ratio of medians); ${fmtRatio(perRoundMin)} against each round's faster peer, not judged` +
        (g.workload === "S"
          ? `, RSS growth ${fmtMiB(growth)} MiB (the larger of the timed runs' median and the first run's)`
          : "")
      return { text: `${name}, ${g.cls.label}: **${holds ? "holds" : "does not hold"}**: ${detail}`, holds }
    })
}

const table = (g: GroupReport): string => {
  const peers = g.results.filter((r) => r.variant.driver !== "pgline")
  const lines = [
    "| driver | median ms | min–max ms | median peak RSS growth, timed runs (MiB) | peak RSS growth, first run (MiB) | RSS before first run (MiB) | worker maxRSS (MiB) | maxRSS − RSS before first run (MiB) | pgline ÷ best peer (per round / of medians) |",
    "| ------ | --------: | ---------: | ---------------------------------------: | -------------------------------: | -------------------------: | ------------------: | ----------------------------------: | ------------------------------------------: |"
  ]
  for (const r of g.results) {
    if (r.out === undefined) {
      lines.push(
        `| ${r.variant.label} | FAILED: ${(r.error ?? "").replaceAll("|", "/").slice(0, 300)} | | | | | | | |`
      )
      continue
    }
    const t = times(r)
    const growth = median(r.out.runs.map((x) => x.rssGrowthMiB))
    const ratio = r.variant.driver === "pgline" ? ratios(r, peers) : undefined
    lines.push(
      `| ${r.variant.label} | ${fmtMs(median(t))} | ${fmtMs(Math.min(...t))}–${fmtMs(Math.max(...t))} | ${fmtMiB(growth)} | ${fmtMiB(firstGrowth(r.out))} | ${fmtMiB((r.out.warmupRuns[0] ?? r.out.runs[0])!.rssBeforeMiB)} | ${fmtMiB(r.out.maxRssMiB)} | ${fmtMiB(lifeGrowth(r.out))} | ${ratio === undefined ? "" : `${fmtRatio(ratio.perRound)} / ${fmtRatio(ratio.ofMedians)}`} |`
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
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "packages", "bench"], {
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
DROP TABLE IF EXISTS ${SOURCE_TABLE}, ${TARGET_TABLE};
CREATE TABLE ${SOURCE_TABLE} (a int NOT NULL, b text NOT NULL, c float8 NOT NULL);
CREATE TABLE ${TARGET_TABLE} (a int, b text, c float8);
INSERT INTO ${SOURCE_TABLE}
  SELECT i, 'user-' || substr(md5(i::text), 1, 6 + i % 19), (i % 100003) / 64.0 + i / 7.0
  FROM generate_series(1, ${ROWS}) AS i`

const main = async () => {
  const startedAt = new Date()
  const commit = git()
  mkdirSync(workDir, { recursive: true })
  const server = await startServer({ tls: false })
  const cleanup = harness.stopper(classes, server)
  const groups: Array<GroupReport> = []
  let serverVersion = "?"
  let expected: Expected | undefined
  try {
    const admin = new pg.Client({ connectionString: server.info.url, ssl: false })
    admin.on("error", (e) => console.error(`setup connection: ${e.message}`))
    await admin.connect()
    serverVersion = (await admin.query("SHOW server_version")).rows[0].server_version
    console.log(
      `PostgreSQL ${serverVersion}; creating ${SOURCE_TABLE} with ${ROWS.toLocaleString("en")} rows`
    )
    await admin.query(SETUP)
    await admin.query(`VACUUM ANALYZE ${SOURCE_TABLE}`)
    const figures = await admin.query(
      `SELECT count(*)::int AS rows, sum(a)::text AS sum_a, sum(length(b))::text AS sum_len_b, sum(c) AS sum_c FROM ${SOURCE_TABLE}`
    )
    const f = figures.rows[0]
    // The reference COPY TO: its byte count is what every driver's COPY TO must deliver.
    let copyBytes = 0
    await new Promise<void>((resolve, reject) => {
      const s = admin.query(copyTo(COPY_TO))
      s.on("data", (b: Buffer) => {
        copyBytes += b.length
      })
      s.once("end", resolve)
      s.once("error", reject)
    })
    expected = {
      rows: f.rows,
      sumA: Number(f.sum_a),
      sumLenB: Number(f.sum_len_b),
      sumC: Number(f.sum_c),
      copyBytes,
      copyInRows: ROWS,
      copyInSumA: copySumA(ROWS)
    }
    console.log(`expected: ${JSON.stringify(expected)}`)
    await admin.end()

    for (const c of classes) {
      const rtt = await reach(c, server.info)
      console.log(`${c.label}: measured RTT median ${rtt.medianMs.toFixed(3)} ms`)
    }

    for (const c of classes) {
      for (const id of selected) {
        const g0 = performance.now()
        console.log(
          `${id} ${c.id}: ${variants[id].length} workers, ${WARMUP} warm-up + ${RUNS} timed runs each, interleaved`
        )
        const results = await runGroup(variants[id], workloadOf[id], c.url, expected)
        const g: GroupReport = { workload: id, cls: c, results }
        groups.push(g)
        for (const r of results) {
          const t = times(r)
          console.log(
            r.out === undefined
              ? `  ${r.variant.label}: FAILED: ${r.error}`
              : `  ${r.variant.label}: median ${fmtMs(median(t))} ms (${t.map(fmtMs).join(", ")}), RSS growth ${fmtMiB(median(r.out.runs.map((x) => x.rssGrowthMiB)))} MiB`
          )
        }
        for (const v of verdicts(g)) console.log(`  ${v.text.replaceAll("**", "")}`)
        console.log(`  (${((performance.now() - g0) / 1000).toFixed(0)} s)`)
      }
    }
    for (const c of classes) c.rttAfter = await measureRtt(c.host, c.port, 30)
  } catch (cause) {
    console.error(`server log (tail):\n${server.log().slice(-4000)}`)
    throw cause
  } finally {
    await cleanup()
  }

  const finishedAt = new Date()
  const all = groups.flatMap(verdicts)
  const md = [
    "# Streams and COPY: pgline vs pg-query-stream / pg-copy-streams and postgres.js",
    "",
    `Produced by \`node bench/streams.ts${argv.length > 0 ? ` ${argv.join(" ")}` : ""}\` on ${startedAt.toISOString().slice(0, 10)} ` +
      `(${startedAt.toISOString()} – ${finishedAt.toISOString()}) from commit ${commit}. ` +
      `PostgreSQL ${serverVersion} (embedded, TLS off), Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ` +
      `load average at the end ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}.`,
    "",
    `${ROWS.toLocaleString("en")} rows × 3 columns (a int, b text of 11–29 characters, c float8); ` +
      `COPY TO output ${expected === undefined ? "?" : (expected.copyBytes / 1024 / 1024).toFixed(1)} MiB. ` +
      `${WARMUP} warm-up and ${RUNS} timed runs per job, each job its own process, timed runs interleaved round-robin across the jobs of a table. ` +
      `Peak RSS growth: RSS sampled every 4 ms during a run minus RSS just before it (after a forced GC: workers run with --expose-gc); ` +
      "RSS is read after a forced GC, but V8 keeps the pages it committed in earlier runs, so the timed runs' growth shows only what a run needs beyond the runs before it; " +
      "the first run's peak growth (sampled the same way during the warm-up run) counts what a first run needs. " +
      "The P6 verdict takes the larger of the two. maxRSS − RSS before first run (the process's peak over its life, `process.resourceUsage().maxRSS`, minus RSS just before its warm-up run) is shown too, but it also holds the start-up peak (loading the modules: pgline's workers load TypeScript source), before any run. " +
      "pgline ÷ best peer: the best peer is the peer with the lowest median; the median over rounds of pgline's time ÷ that peer's time in the same round, and pgline's median ÷ that peer's median (below 1: pgline is faster). The verdicts also show pgline ÷ whichever peer was faster in each round, which is not judged: the faster of two noisy runs is biased low. " +
      "Every run's result was checked (rows, sum(a), sum(length(b)), sum(c); COPY bytes and rows; COPY FROM's count and sum(a) in the table).",
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
    ...all.map((v) => `- ${v.text}`),
    "",
    ...groups.flatMap((g) => [`## ${workloadTitle[g.workload]}, ${g.cls.label}`, "", table(g), ""])
  ].join("\n")
  console.log(`\n${md}`)
  writeFileSync(join(workDir, "streams.md"), md)
  if (outFile !== undefined) writeFileSync(outFile, md)
  console.log(`written to bench/.work/streams.md${outFile === undefined ? "" : ` and ${outFile}`}`)
}

main().catch((cause) => {
  console.error(cause)
  process.exitCode = 1
})
