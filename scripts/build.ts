/**
 * Builds every publishable package (`pnpm run build`): ESM JavaScript, .d.ts and source maps from
 * packages/<name>/src into packages/<name>/dist with each package's tsconfig.build.json. Packages are
 * built in dependency order, each against its dependencies' freshly built dist/ (so the declarations
 * refer to what a consumer installs, never to another package's source). `node scripts/build.ts
 * codec client` builds some of them (still in order).
 */
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** Dependency order: each package only depends on packages before it. @pgline/sql has no source yet. */
export const packages = ["codec", "transport", "testing", "client"] as const

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
  }
}

if (import.meta.main) {
  const wanted = process.argv.length > 2 ? process.argv.slice(2) : packages
  const started = performance.now()
  build(wanted)
  console.log(`built ${wanted.join(", ")} in ${Math.round(performance.now() - started)} ms`)
}
