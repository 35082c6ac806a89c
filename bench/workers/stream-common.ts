/**
 * What the stream and COPY workers (`stream-<driver>.ts`, run by bench/streams.ts) share: the SQL,
 * the COPY FROM data, the per-run measurement (wall time and RSS growth), the checks and the one
 * JSON line a worker prints.
 *
 *   node [--expose-gc] bench/workers/stream-<driver>.ts <workload> <url> '<json StreamParams>'
 *
 * A worker connects once, runs `warmup` untimed runs, then `runs` timed runs; with `interleave` it
 * prints `@turn` and waits for `go` on stdin before each timed run (`turn` in common.ts), so the
 * orchestrator can interleave the drivers it compares. Each run (warm-up or timed) is:
 * `before` (untimed: COPY FROM empties its table), the run itself (timed, RSS sampled), `verify`
 * (untimed: the run's result against the expected figures; a mismatch fails the worker, so no
 * driver is credited for wrong work). Its last stdout line is `StreamOutput` as JSON.
 */
import { check, turn } from "./common.ts"

export type StreamWorkload = "stream" | "copyto" | "copyfrom"

/** The source table: `rows` rows × (a int, b text, c float8), filled by the orchestrator. */
export const SOURCE_TABLE = "stream_src"
/** COPY FROM's target, same columns, emptied before every run. */
export const TARGET_TABLE = "stream_dst"
export const SELECT_SOURCE = `SELECT a, b, c FROM ${SOURCE_TABLE}`
export const COPY_TO = `COPY ${SOURCE_TABLE} (a, b, c) TO STDOUT`
export const COPY_FROM = `COPY ${TARGET_TABLE} (a, b, c) FROM STDIN`
export const TRUNCATE_TARGET = `TRUNCATE ${TARGET_TABLE}`
/** COPY FROM's check: text, so every driver compares the same strings (sum(int) is a bigint). */
export const TARGET_FIGURES = `SELECT count(*)::text AS n, coalesce(sum(a), 0)::text AS s FROM ${TARGET_TABLE}`

/** The figures every run is checked against (the orchestrator asks the server for them). */
export interface Expected {
  /** stream: rows, sum(a), sum(length(b)) and sum(c) of the source table. */
  readonly rows: number
  readonly sumA: number
  readonly sumLenB: number
  readonly sumC: number
  /** copyto: bytes of the table's text COPY output (a reference COPY TO by the orchestrator). */
  readonly copyBytes: number
  /** copyfrom: rows written, and sum(a) as the server prints it. */
  readonly copyInRows: number
  readonly copyInSumA: string
}

export interface StreamParams {
  readonly warmup: number
  readonly runs: number
  readonly interleave?: boolean
  readonly expected: Expected
  /** stream: rows per fetch (pgline chunkSize, pg-query-stream batchSize, postgres.js cursor rows). */
  readonly batch?: number
  /** stream, pgline: consume with `Stream.runForEach` (an Effect per row) or `runForEachArray`. */
  readonly consume?: "each" | "array"
}

/** One run's figures. */
export interface RunFigures {
  readonly ms: number
  /** Peak RSS sampled during the run minus RSS just before it (after a forced GC when exposed). */
  readonly rssGrowthMiB: number
  readonly rssBeforeMiB: number
}

export interface StreamOutput {
  readonly runs: ReadonlyArray<RunFigures>
  readonly warmupRuns: ReadonlyArray<RunFigures>
  /** process.resourceUsage().maxRSS at the end: the worker's peak over its whole life. */
  readonly maxRssMiB: number
}

export const parseStreamArgs = (): { workload: StreamWorkload; url: string; params: StreamParams } => {
  const [workload, url, json] = process.argv.slice(2)
  if (workload === undefined || url === undefined || json === undefined) {
    process.stderr.write(
      "usage: node bench/workers/stream-<driver>.ts <stream|copyto|copyfrom> <url> <json>\n"
    )
    process.exit(2)
  }
  if (workload !== "stream" && workload !== "copyto" && workload !== "copyfrom") {
    process.stderr.write(`unknown workload ${workload}\n`)
    process.exit(2)
  }
  return { workload, url, params: JSON.parse(json) as StreamParams }
}

// --- the COPY FROM data ---------------------------------------------------------------------------

/** Row i (1-based) of the COPY FROM data, in COPY's text format. */
const copyRow = (i: number): string => {
  const h = Math.imul(i, 0x9e3779b1) >>> 0
  return `${i}\tcustomer-${h.toString(36)}-${i % 977}\t${(i % 100_003) / 64}\n`
}

/**
 * `rows` rows of COPY text cut into Buffers of about 64 KiB (whole rows each), built before any
 * timing; every driver sends exactly these bytes.
 */
export const copyChunks = (rows: number): Array<Buffer> => {
  const chunks: Array<Buffer> = []
  let text = ""
  for (let i = 1; i <= rows; i++) {
    text += copyRow(i)
    if (text.length >= 65_536 - 64) {
      chunks.push(Buffer.from(text, "latin1"))
      text = ""
    }
  }
  if (text.length > 0) chunks.push(Buffer.from(text, "latin1"))
  return chunks
}

/** sum(a) of the COPY FROM data (1 + 2 + … + rows), as the server prints it. */
export const copySumA = (rows: number): string => ((BigInt(rows) * BigInt(rows + 1)) / 2n).toString()

// --- checks ---------------------------------------------------------------------------------------

/** What a stream consumer accumulates, one row at a time. */
export class RowTally {
  rows = 0
  sumA = 0
  sumLenB = 0
  sumC = 0
  add(a: number, b: string, c: number): void {
    this.rows++
    this.sumA += a
    this.sumLenB += b.length
    this.sumC += c
  }
}

export const checkTally = (t: RowTally, e: Expected): void => {
  check(t.rows === e.rows, `streamed ${t.rows} rows, expected ${e.rows}`)
  check(t.sumA === e.sumA, `sum(a) ${t.sumA}, expected ${e.sumA}`)
  check(t.sumLenB === e.sumLenB, `sum(length(b)) ${t.sumLenB}, expected ${e.sumLenB}`)
  check(
    Math.abs(t.sumC - e.sumC) <= 1e-9 * Math.max(1, Math.abs(e.sumC)),
    `sum(c) ${t.sumC}, expected ${e.sumC}`
  )
}

/** What a COPY TO consumer accumulates: bytes and rows (newlines). */
export class ByteTally {
  bytes = 0
  rows = 0
  add(block: Uint8Array): void {
    this.bytes += block.length
    let at = block.indexOf(10)
    while (at !== -1) {
      this.rows++
      at = block.indexOf(10, at + 1)
    }
  }
}

export const checkBytes = (t: ByteTally, e: Expected): void => {
  check(t.rows === e.rows, `COPY TO gave ${t.rows} rows, expected ${e.rows}`)
  check(t.bytes === e.copyBytes, `COPY TO gave ${t.bytes} bytes, expected ${e.copyBytes}`)
}

export const checkCopyIn = (reported: number, n: string, s: string, e: Expected): void => {
  check(reported === e.copyInRows, `COPY FROM reported ${reported} rows, expected ${e.copyInRows}`)
  check(n === String(e.copyInRows), `the table holds ${n} rows after COPY FROM, expected ${e.copyInRows}`)
  check(s === e.copyInSumA, `sum(a) after COPY FROM is ${s}, expected ${e.copyInSumA}`)
}

// --- measurement ----------------------------------------------------------------------------------

const MiB = 1024 * 1024
const gc = (globalThis as { gc?: () => void }).gc
/** RSS is sampled this often (ms) during a run. */
const SAMPLE_MS = 4

/**
 * Starts measuring a run: forces a GC (with --expose-gc), takes RSS, then samples RSS every few ms
 * until the returned `stop`, which gives the run's figures.
 */
export const startRun = (): (() => RunFigures) => {
  gc?.()
  const before = process.memoryUsage.rss()
  let peak = before
  const sample = () => {
    const r = process.memoryUsage.rss()
    if (r > peak) peak = r
  }
  const timer = setInterval(sample, SAMPLE_MS)
  const t0 = performance.now()
  return () => {
    const ms = performance.now() - t0
    clearInterval(timer)
    sample()
    return { ms, rssGrowthMiB: (peak - before) / MiB, rssBeforeMiB: before / MiB }
  }
}

/** One workload as a driver runs it. */
export interface Job<R> {
  /** Untimed, before each run. */
  readonly before?: () => Promise<void>
  /** The timed part. */
  readonly run: () => Promise<R>
  /** Untimed, after each run: throws if the run's result is wrong. */
  readonly verify: (result: R) => Promise<void>
}

/** Warm-up, then timed runs (each after its turn), then the JSON line. */
export const runJob = async <R>(params: StreamParams, job: Job<R>): Promise<void> => {
  const once = async (): Promise<RunFigures> => {
    await job.before?.()
    const stop = startRun()
    const result = await job.run()
    const figures = stop()
    await job.verify(result)
    return figures
  }
  const warmupRuns: Array<RunFigures> = []
  const runs: Array<RunFigures> = []
  for (let i = 0; i < params.warmup; i++) warmupRuns.push(await once())
  for (let i = 0; i < params.runs; i++) {
    await turn({ warmup: params.warmup, runs: params.runs, interleave: params.interleave === true })
    runs.push(await once())
  }
  const out: StreamOutput = { runs, warmupRuns, maxRssMiB: process.resourceUsage().maxRSS / 1024 }
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

export const failed = (driver: string, workload: string, cause: unknown): never => {
  const text = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)
  process.stderr.write(`${driver} ${workload} failed: ${text}\n`)
  process.exit(1)
}
