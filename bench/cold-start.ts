import { writeFileSync } from "node:fs"
import { startServer } from "@pgline/testing"
import { median, requireBuiltClient, runProbe } from "./workers/harness.ts"

const args = process.argv.slice(2)
const outAt = args.indexOf("--out")
const outFile = outAt >= 0 ? args[outAt + 1] : undefined
const runs = Number(args.find((a, i) => !a.startsWith("--") && (outAt < 0 || i !== outAt + 1)) ?? 15)
requireBuiltClient()

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
  const { result, processMs } = runProbe<Omit<Sample, "processMs">>(probe)
  return { ...result, processMs }
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
