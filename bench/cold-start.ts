/**
 * cold-start: what a fresh Node process pays from its start to the answer of its first query, per
 * driver: import the driver (pgline from its built JavaScript, dist/, as npm users load it),
 * connect, run `select 1`, close. Each run is a new process against one embedded PostgreSQL 18
 * (TLS off); the drivers' runs are interleaved, `runs` each after one warm-up per driver (file
 * system cache), and the medians printed: the import, connect + first query, the first answer
 * counted from the process's own start (`performance.now()`, which includes Node's bootstrap), and
 * the whole process from spawn to exit as the parent saw it.
 *
 *   pnpm run build && node bench/cold-start.ts [runs=15] [--out FILE]
 *
 * pgline's probe builds `PgClient.layer({ url, max: 1 })` (the pool opens its first connection
 * while the layer is built) and runs one `pg.query`; pg's is `new Client`, `connect`, `query`,
 * `end`; postgres.js's is `postgres(url, { max: 1 })`, one tagged query, `end`.
 */
import { execFileSync } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { startServer } from "@pgline/testing"
import { median } from "./workers/harness.ts"

const args = process.argv.slice(2)
const outAt = args.indexOf("--out")
const outFile = outAt >= 0 ? args[outAt + 1] : undefined
const runs = Number(args.find((a, i) => !a.startsWith("--") && (outAt < 0 || i !== outAt + 1)) ?? 15)
const here = dirname(fileURLToPath(import.meta.url))
if (!existsSync(join(here, "..", "packages", "client", "dist", "index.js"))) {
  console.error("packages/client/dist is missing: run `pnpm run build` first")
  process.exit(1)
}

interface Sample {
  readonly importMs: number
  readonly queryMs: number
  readonly sinceStartMs: number
  readonly processMs: number
  readonly rssMiB: number
}

/** The probe's tail: the timings as one JSON line, after checking the answer. */
const report = [
  "if (one !== 1) throw new Error('select 1 answered ' + one)",
  "console.log(JSON.stringify({ importMs: t1 - t0, queryMs: t2 - t1, sinceStartMs: t2, rssMiB: process.memoryUsage().rss / 1048576 }))"
].join("\n")

const drivers: ReadonlyArray<{ readonly name: string; readonly probe: (url: string) => string }> = [
  {
    name: "pgline (@pgline/client from dist/)",
    probe: (url) => `
const t0 = performance.now()
const { PgClient } = await import("@pgline/client")
const { Effect } = await import("effect")
const t1 = performance.now()
const one = await Effect.runPromise(
  Effect.gen(function* () {
    const pg = yield* PgClient
    const { rows } = yield* pg.query("select 1 as one")
    return rows[0].one
  }).pipe(Effect.provide(PgClient.layer({ url: ${JSON.stringify(url)}, max: 1 })))
)
const t2 = performance.now()
${report}`
  },
  {
    name: "pg 8",
    probe: (url) => `
const t0 = performance.now()
const { default: pg } = await import("pg")
const t1 = performance.now()
const client = new pg.Client({ connectionString: ${JSON.stringify(url)} })
await client.connect()
const one = (await client.query("select 1 as one")).rows[0].one
await client.end()
const t2 = performance.now()
${report}`
  },
  {
    name: "postgres.js 3",
    probe: (url) => `
const t0 = performance.now()
const { default: postgres } = await import("postgres")
const t1 = performance.now()
const sql = postgres(${JSON.stringify(url)}, { max: 1 })
const one = (await sql\`select 1 as one\`)[0].one
await sql.end()
const t2 = performance.now()
${report}`
  }
]

const sample = (probe: string): Sample => {
  const t0 = performance.now()
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", probe], {
    cwd: here,
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" }
  })
  const processMs = performance.now() - t0
  return { ...(JSON.parse(out.trim().split("\n").at(-1)!) as Omit<Sample, "processMs">), processMs }
}

const server = await startServer()
try {
  const url = new URL(server.info.url)
  url.searchParams.set("sslmode", "disable")
  const probes = drivers.map((d) => d.probe(url.toString()))
  for (const p of probes) sample(p)
  const samples = drivers.map(() => [] as Array<Sample>)
  for (let i = 0; i < runs; i++) {
    // Rotate which driver goes first, so a slow spell does not always land on the same one.
    for (let k = 0; k < probes.length; k++) {
      const j = (i + k) % probes.length
      samples[j]!.push(sample(probes[j]!))
    }
  }
  const rows = drivers.map((d, j) => {
    const s = samples[j]!
    return {
      name: d.name,
      importMs: median(s.map((x) => x.importMs)),
      queryMs: median(s.map((x) => x.queryMs)),
      sinceStartMs: median(s.map((x) => x.sinceStartMs)),
      processMs: median(s.map((x) => x.processMs)),
      rssMiB: median(s.map((x) => x.rssMiB))
    }
  })
  const pg = rows.find((r) => r.name === "pg 8")!
  const lines = [
    `Node ${process.version}, PostgreSQL ${server.info.version ?? "18"} (embedded, TLS off), ${runs} runs per driver after one warm-up, interleaved, medians; load average at the end ${(
      await import("node:os")
    )
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}.`,
    "",
    "| driver | import | connect + first query | first answer since process start | process, spawn to exit | RSS at the end | first answer ÷ pg's |",
    "|---|--:|--:|--:|--:|--:|--:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.importMs.toFixed(1)} ms | ${r.queryMs.toFixed(1)} ms | ${r.sinceStartMs.toFixed(1)} ms | ${r.processMs.toFixed(0)} ms | ${r.rssMiB.toFixed(1)} MiB | ${(r.sinceStartMs / pg.sinceStartMs).toFixed(2)}× |`
    )
  ]
  console.log(lines.join("\n"))
  if (outFile !== undefined) writeFileSync(outFile, `${lines.join("\n")}\n`)
} finally {
  await server.stop()
}
