/**
 * instructions: how many instructions the client executes per operation of `per-op.ts`, a measure
 * that does not move with the machine's load (wall-clock A/Bs on a shared 2-core VM move by ±20%).
 *
 *   node bench/instructions.ts [operation=transfer] [low=200] [high=3000]
 *
 * Runs `per-op.ts <operation> <count>` under `valgrind --tool=callgrind` at the two counts and
 * divides the difference of the instruction totals by the difference in operations (per-op.ts runs
 * a fixed warm-up, then 7 rounds of `count`), so the start-up, the server's start and the warm-up
 * cancel out. The warm-up is 20,000 operations here (`concurrent`: 100, i.e. 64,000 queries): V8
 * goes on compiling optimised code for the first ~10,000 queries, and a compilation that falls
 * inside the counted window would count as the operations' own cost. What remains is noise from
 * garbage collection and V8's helper threads: use spans of ~20,000 operations or more (400 and
 * 4,000 for a query, 200 and 3,000 for a transfer) and repeat a count before trusting a change.
 * Only the client process is counted: valgrind does not follow the embedded server, which is a
 * process of its own. Under valgrind the client runs ~30× slower; a pair of runs takes 4–6
 * minutes. valgrind is installed with apt-get when missing (as root only).
 */
import { execFileSync, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const operation = process.argv[2] ?? "transfer"
const low = Number(process.argv[3] ?? 200)
const high = Number(process.argv[4] ?? 3000)
if (!(Number.isInteger(low) && Number.isInteger(high) && high > low && low > 0)) {
  console.error("usage: node bench/instructions.ts [operation] [low] [high] (integers, high > low > 0)")
  process.exit(2)
}
const ROUNDS = 7

const hasValgrind = () => spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status === 0
if (!hasValgrind()) {
  if (process.getuid?.() !== 0) {
    console.error("valgrind is missing: install it (Debian: apt-get install valgrind)")
    process.exit(1)
  }
  console.error("valgrind missing: apt-get update && apt-get install -y valgrind")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update"], { stdio: ["ignore", 2, 2], env })
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "valgrind"], {
    stdio: ["ignore", 2, 2],
    env
  })
}

const perOp = fileURLToPath(new URL("./per-op.ts", import.meta.url))

/** Instructions the client executed for `per-op.ts <operation> <count>`, start to exit. */
const total = (count: number): number => {
  const run = spawnSync(
    "valgrind",
    [
      "--tool=callgrind",
      "--callgrind-out-file=/dev/null",
      "--cache-sim=no",
      "--branch-sim=no",
      process.execPath,
      perOp,
      operation,
      String(count)
    ],
    {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, PER_OP_WARMUP: operation === "concurrent" ? "100" : "20000" }
    }
  )
  const collected = /Collected : (\d+)/.exec(run.stderr)
  if (run.status !== 0 || collected === null) {
    console.error(run.stdout, run.stderr.slice(-4000))
    throw new Error(`per-op.ts ${operation} ${count} under valgrind failed (status ${run.status})`)
  }
  return Number(collected[1])
}

const a = total(low)
const b = total(high)
const perOperation = (b - a) / (ROUNDS * (high - low))
console.log(
  `${operation}: ${Math.round(perOperation).toLocaleString("en-US")} instructions per operation ` +
    `(${a.toLocaleString("en-US")} at ${low}, ${b.toLocaleString("en-US")} at ${high}; ${ROUNDS * (high - low)} operations apart)`
)
