/**
 * load-cost: what `import "@pgline/client"` costs a fresh Node process when the package is loaded
 * from its built JavaScript (dist/, what npm users get) and from its TypeScript source (the
 * "@pgline/source" export condition the monorepo uses; Node strips the types of every file it
 * loads). Each run is a new process that imports the package once and reports the time the import
 * took and its resident set size afterwards; a process that imports nothing and one that imports
 * only `effect` (the same entry point the client's modules use) are the baselines. The
 * variants are run interleaved, `runs` times each, and the medians printed.
 *
 *   pnpm run build && node bench/load-cost.ts [runs=15]
 *
 * Run it without NODE_OPTIONS (each variant sets its own conditions).
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { median } from "./workers/harness.ts"

const runs = Number(process.argv[2] ?? 15)
const here = dirname(fileURLToPath(import.meta.url))
if (!existsSync(join(here, "..", "packages", "client", "dist", "index.js"))) {
  console.error("packages/client/dist is missing: run `pnpm run build` first")
  process.exit(1)
}

interface Sample {
  readonly importMs: number
  readonly rssMiB: number
  readonly processMs: number
}

const probe = (target: string | undefined) =>
  [
    "const t0 = performance.now()",
    target === undefined ? "" : `await import(${JSON.stringify(target)})`,
    "const importMs = performance.now() - t0",
    "const rssMiB = process.memoryUsage().rss / 1048576",
    "console.log(JSON.stringify({ importMs, rssMiB }))"
  ].join("\n")

const variants: ReadonlyArray<{
  readonly name: string
  readonly flags: ReadonlyArray<string>
  readonly target?: string
}> = [
  { name: "node, no import (baseline)", flags: [] },
  { name: "effect alone", flags: [], target: "effect" },
  { name: "@pgline/client from dist/", flags: [], target: "@pgline/client" },
  { name: "@pgline/client from source", flags: ["--conditions=@pgline/source"], target: "@pgline/client" }
]

const sample = (flags: ReadonlyArray<string>, target: string | undefined): Sample => {
  const t0 = performance.now()
  const out = execFileSync(process.execPath, [...flags, "--input-type=module", "-e", probe(target)], {
    cwd: here,
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" }
  })
  const processMs = performance.now() - t0
  const { importMs, rssMiB } = JSON.parse(out.trim().split("\n").at(-1)!) as {
    importMs: number
    rssMiB: number
  }
  return { importMs, rssMiB, processMs }
}

// One warm-up run per variant (file-system cache), then the timed runs, interleaved.
for (const v of variants) sample(v.flags, v.target)
const samples = variants.map(() => [] as Array<Sample>)
for (let i = 0; i < runs; i++) {
  variants.forEach((v, j) => {
    samples[j]!.push(sample(v.flags, v.target))
  })
}

console.log(`Node ${process.version}, ${runs} runs per variant, medians:`)
console.log(`${"".padEnd(30)} ${"import".padStart(10)} ${"RSS after".padStart(10)} ${"process".padStart(10)}`)
variants.forEach((v, j) => {
  const s = samples[j]!
  console.log(
    `${v.name.padEnd(30)} ${`${median(s.map((x) => x.importMs)).toFixed(1)} ms`.padStart(10)} ` +
      `${`${median(s.map((x) => x.rssMiB)).toFixed(1)} MiB`.padStart(10)} ` +
      `${`${median(s.map((x) => x.processMs)).toFixed(0)} ms`.padStart(10)}`
  )
})
