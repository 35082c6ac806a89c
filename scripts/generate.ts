/**
 * Rebuilds every generated file of the repository (`pnpm generate`, which builds the packages
 * first: the API reports read dist/), or with `--check` fails when
 * a committed generated file differs from what its generator produces now (part of `pnpm test`).
 * Each generator is a module under scripts/generators/ exporting
 * `generate(): Promise<ReadonlyArray<{ path: string; content: string }>>` (paths from the repo root).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

interface Output {
  readonly path: string
  readonly content: string
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const check = process.argv.includes("--check")
const dir = join(root, "scripts", "generators")
const modules = (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.endsWith(".ts")).sort()

let stale = 0
for (const file of modules) {
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as {
    generate: () => Promise<ReadonlyArray<Output>>
  }
  for (const out of await mod.generate()) {
    const target = join(root, out.path)
    let current: string | undefined
    try {
      current = readFileSync(target, "utf8")
    } catch {
      current = undefined
    }
    if (current === out.content) continue
    if (check) {
      stale++
      console.error(`stale generated file: ${out.path} (run \`pnpm generate\`)`)
    } else {
      writeFileSync(target, out.content)
      console.log(`wrote ${out.path}`)
    }
  }
}
if (check) {
  if (stale > 0) process.exit(1)
  console.log(`generated files are fresh (${modules.length} generators)`)
}
