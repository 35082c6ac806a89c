/**
 * Packs the publishable packages into tarballs the way `pnpm publish` would (workspace: ranges
 * replaced by the versions they point at), from their current dist/ (build first). Used by the
 * consumer test and by the release script; `node scripts/pack.ts <directory>` packs into a directory.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { packages } from "./build.ts"

/** The pnpm version of scripts/bootstrap.sh. */
export const pnpmVersion = "12.21.0"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** Packs every publishable package into `destination`; returns package name → tarball path. */
export const packAll = (destination: string): Record<string, string> => {
  mkdirSync(destination, { recursive: true })
  const filters = packages.flatMap((name) => ["--filter", `@pgline/${name}`])
  execFileSync(
    "npx",
    ["--yes", `pnpm@${pnpmVersion}`, "-r", ...filters, "pack", "--pack-destination", destination],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, npm_config_update_notifier: "false" }
    }
  )
  const tarballs: Record<string, string> = {}
  for (const name of packages) {
    const { version } = JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8")) as {
      version: string
    }
    const tarball = join(destination, `pgline-${name}-${version}.tgz`)
    if (!existsSync(tarball)) throw new Error(`pnpm pack wrote no ${tarball}`)
    tarballs[`@pgline/${name}`] = tarball
  }
  return tarballs
}

if (import.meta.main) {
  const destination = resolve(process.argv[2] ?? join(root, ".tmp", "pack"))
  for (const [name, tarball] of Object.entries(packAll(destination))) console.log(`${name}: ${tarball}`)
}
