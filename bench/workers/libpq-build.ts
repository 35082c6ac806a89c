/**
 * Builds the libpq reference (bench/libpq/pgline_libpq_bench.c) into bench/.work/ when the binary
 * is missing or older than its source: gcc, linked with libpq. When gcc or libpq's headers are
 * missing it installs Debian's `libpq-dev gcc` with apt-get (as root only; otherwise it says what
 * to install). Used by the orchestrator before it plans its jobs, and by the worker when run by hand.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const benchDir = join(dirname(fileURLToPath(import.meta.url)), "..")
export const LIBPQ_SOURCE = join(benchDir, "libpq", "pgline_libpq_bench.c")
export const LIBPQ_BINARY = join(benchDir, ".work", "pgline_libpq_bench")

const found = (command: string, args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

/** libpq's include directory, when its headers are installed. */
const includeDir = (): string | undefined => {
  const dirs = [found("pg_config", ["--includedir"]), "/usr/include/postgresql", "/usr/include"]
  return dirs.find((d) => d !== undefined && existsSync(join(d, "libpq-fe.h")))
}

const install = () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "gcc or libpq's headers are missing: install them (Debian: apt-get install libpq-dev gcc)"
    )
  }
  console.error("libpq reference: apt-get update && apt-get install -y libpq-dev gcc")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: ["ignore", 2, 2], env })
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "libpq-dev", "gcc", "libc6-dev"], {
    stdio: ["ignore", 2, 2],
    env
  })
}

/** The path of an up-to-date binary of the libpq reference (built here when needed). */
export const ensureLibpqBench = (): string => {
  if (existsSync(LIBPQ_BINARY) && statSync(LIBPQ_BINARY).mtimeMs >= statSync(LIBPQ_SOURCE).mtimeMs) {
    return LIBPQ_BINARY
  }
  if (found("gcc", ["--version"]) === undefined || includeDir() === undefined) install()
  const include = includeDir()
  if (include === undefined) throw new Error("libpq-fe.h not found after installing libpq-dev")
  mkdirSync(dirname(LIBPQ_BINARY), { recursive: true })
  // Built under a name of its own, then renamed: a concurrent reader never sees half a binary.
  const partial = `${LIBPQ_BINARY}.${process.pid}`
  execFileSync("gcc", ["-O2", "-Wall", "-o", partial, LIBPQ_SOURCE, `-I${include}`, "-lpq"], {
    stdio: ["ignore", 2, 2]
  })
  renameSync(partial, LIBPQ_BINARY)
  return LIBPQ_BINARY
}
