/**
 * Packs the publishable packages into tarballs the way `pnpm publish` would (workspace: ranges
 * replaced by the versions they point at), from their current dist/ (build first). Used by the
 * consumer test and by the release script; `node scripts/pack.ts <directory>` packs into a directory.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { packages } from "./build.ts"

/** The pnpm version of scripts/bootstrap.sh. */
export const pnpmVersion = "12.21.0"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** Packs every publishable package into `destination`; returns package name → tarball path. */
export const packAll = (destination: string): Record<string, string> => {
  mkdirSync(destination, { recursive: true })
  const tarballs: Record<string, string> = {}
  for (const name of packages) {
    const before = new Set(readdirSync(destination))
    execFileSync("npx", ["--yes", `pnpm@${pnpmVersion}`, "pack", "--pack-destination", destination], {
      cwd: join(root, "packages", name),
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, npm_config_update_notifier: "false" }
    })
    const created = readdirSync(destination).filter((f) => f.endsWith(".tgz") && !before.has(f))
    const tarball = created.find((f) => f.startsWith(`pgline-${name}-`)) ?? created[0]
    if (tarball === undefined) throw new Error(`pnpm pack wrote no tarball for @pgline/${name}`)
    tarballs[`@pgline/${name}`] = join(destination, tarball)
  }
  return tarballs
}

if (import.meta.main) {
  const destination = resolve(process.argv[2] ?? join(root, ".tmp", "pack"))
  for (const [name, tarball] of Object.entries(packAll(destination))) console.log(`${name}: ${tarball}`)
}
