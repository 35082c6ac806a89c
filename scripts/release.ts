/**
 * The release command (`npm run release`): runs the whole test command (which builds every
 * package), packs the publishable packages into .tmp/release/ (the tarballs npm would get, with
 * workspace: ranges replaced by versions) and runs `pnpm publish -r --dry-run`, which lists what
 * would be published. With `--publish` it publishes instead (`pnpm publish -r --access public`,
 * with pnpm's checks for a clean tree on the main branch). `--skip-tests` builds without testing
 * (for a look at the tarballs only; never with --publish).
 */
import { execFileSync } from "node:child_process"
import { readFileSync, rmSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "./build.ts"
import { packAll, pnpmVersion } from "./pack.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const publish = process.argv.includes("--publish")
const skipTests = process.argv.includes("--skip-tests")
if (publish && skipTests) {
  console.error("--publish runs the tests; --skip-tests is only for a dry run")
  process.exit(2)
}

const pnpm = (args: ReadonlyArray<string>) =>
  execFileSync("npx", ["--yes", `pnpm@${pnpmVersion}`, ...args], { cwd: root, stdio: "inherit" })

if (skipTests) build()
else pnpm(["run", "test:all"])

const destination = join(root, ".tmp", "release")
rmSync(destination, { recursive: true, force: true })
const tarballs = packAll(destination)
for (const [name, tarball] of Object.entries(tarballs)) {
  const manifest = JSON.parse(
    readFileSync(join(root, "packages", name.split("/")[1]!, "package.json"), "utf8")
  )
  console.log(`${name}@${manifest.version}: ${tarball} (${Math.round(statSync(tarball).size / 1024)} KiB)`)
}

if (publish) pnpm(["publish", "-r", "--access", "public"])
else pnpm(["publish", "-r", "--dry-run", "--no-git-checks", "--access", "public"])
