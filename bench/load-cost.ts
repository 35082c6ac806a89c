import { median, requireBuiltClient, runProbe } from "./workers/harness.ts"

const runs = Number(process.argv[2] ?? 15)
requireBuiltClient()

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
  const { result, processMs } = runProbe<{ importMs: number; rssMiB: number }>(probe(target), flags)
  return { ...result, processMs }
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
