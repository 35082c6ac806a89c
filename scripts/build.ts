/**
 * Builds every publishable package (`pnpm run build`): ESM JavaScript, .d.ts and source maps from
 * packages/<name>/src into packages/<name>/dist with each package's tsconfig.build.json. Packages are
 * built in dependency order, each against its dependencies' freshly built dist/ (so the declarations
 * refer to what a consumer installs, never to another package's source). `node scripts/build.ts
 * codec client` builds some of them (still in order).
 */
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** Dependency order: each package only depends on packages before it. */
export const packages = ["codec", "transport", "testing", "client", "sql", "cli"] as const

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

/** Builds the named packages (all by default) in dependency order. */
export const build = (wanted: ReadonlyArray<string> = packages): void => {
  for (const name of wanted) {
    if (!(packages as ReadonlyArray<string>).includes(name)) {
      throw new Error(`unknown package ${name}; one of ${packages.join(", ")}`)
    }
  }
  for (const name of packages) {
    if (!wanted.includes(name)) continue
    const dir = join(root, "packages", name)
    rmSync(join(dir, "dist"), { recursive: true, force: true })
    execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.build.json")], {
      stdio: "inherit",
      // The build resolves sibling packages through their published conditions (dist), never source.
      env: { ...process.env, NODE_OPTIONS: "" }
    })
    writeFileSync(join(dir, "dist", stamp), `${new Date().toISOString()}\n`)
  }
}

/** Written into dist/ when a package's build has finished. */
const stamp = ".build-stamp"

const newestMtime = (path: string): number => {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), 0)
}

/**
 * Builds the packages whose dist/ is missing or older than their sources, package.json, build
 * configuration or the shared tsconfig.base.json (and everything after the first such package, as
 * later packages compile against its declarations). Returns the names it built.
 */
export const buildIfStale = (): ReadonlyArray<string> => {
  const base = statSync(join(root, "tsconfig.base.json")).mtimeMs
  const first = packages.findIndex((name) => {
    const dir = join(root, "packages", name)
    const built = join(dir, "dist", stamp)
    if (!existsSync(built)) return true
    const inputs = Math.max(
      base,
      newestMtime(join(dir, "src")),
      statSync(join(dir, "package.json")).mtimeMs,
      statSync(join(dir, "tsconfig.build.json")).mtimeMs
    )
    return statSync(built).mtimeMs < inputs
  })
  if (first === -1) return []
  const stale = packages.slice(first)
  build(stale)
  return stale
}

if (import.meta.main) {
  const wanted = process.argv.length > 2 ? process.argv.slice(2) : packages
  const started = performance.now()
  build(wanted)
  console.log(`built ${wanted.join(", ")} in ${Math.round(performance.now() - started)} ms`)
}
