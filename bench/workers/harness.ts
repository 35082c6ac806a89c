/**
 * What the benchmark drivers (run.ts, streams.ts, sql.ts, cli.ts) share on the orchestrator's
 * side: a latency class made reachable (the server directly, or through a latency proxy, its
 * round trip measured), and the worker turn protocol of bench/workers/common.ts seen from the
 * parent (spawn a worker, wait for its `@turn` line or its exit, kill it past a phase limit,
 * kill every live worker on Ctrl-C). Reports, statistics and what a workload is stay in each
 * driver. cold-start.ts and load-cost.ts use the fresh-process probe (runProbe).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  type LatencyProxyHandle,
  measureRtt,
  type RttStats,
  type ServerInfo,
  startLatencyProxy,
  withProxyUrl
} from "@pgline/testing"

/** A round-trip class of a run: the server directly (`delayMs` undefined) or through a proxy. */
export interface LatencyClass<Id extends string = string> {
  readonly id: Id
  readonly label: string
  readonly delayMs: number | undefined
  url: string
  host: string
  port: number
  proxy: LatencyProxyHandle | undefined
  rtt: RttStats | undefined
  rttAfter: RttStats | undefined
}

/** Points `c` at the server (starting its proxy when it has a delay) and measures its round trip (30 samples after 5 unrecorded). */
export const reach = async (c: LatencyClass, server: ServerInfo): Promise<RttStats> => {
  if (c.delayMs === undefined) {
    c.host = server.host
    c.port = server.port
    c.url = server.url
  } else {
    c.proxy = await startLatencyProxy({
      targetHost: server.host,
      targetPort: server.port,
      delayMs: c.delayMs
    })
    c.host = c.proxy.host
    c.port = c.proxy.port
    c.url = withProxyUrl(server.url, c.proxy)
  }
  await measureRtt(c.host, c.port, 5)
  c.rtt = await measureRtt(c.host, c.port, 30)
  return c.rtt
}

/** A worker process speaking the turn protocol: its output lines, pending `@turn`s and exit. */
export interface TurnWorker {
  readonly child: ChildProcess
  readonly lines: Array<string>
  turns: number
  tail: string
  stderr: string
  exited: boolean
  killed: string | undefined
  wake: (() => void) | undefined
}

/** Every child process still running, with how to kill it (on Ctrl-C). */
const live = new Map<ChildProcess, () => void>()
let cleanup: (() => Promise<void>) | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const kill of live.values()) kill()
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130))
  })
}

/** What to undo (servers, proxies) when the run is interrupted; live workers are killed first. */
export const onInterrupt = (f: () => Promise<void>): void => {
  cleanup = f
}

/** Kills `child` on Ctrl-C (with `kill`, SIGKILL by default) until it closes. */
export const track = (child: ChildProcess, kill: () => void = () => child.kill("SIGKILL")): void => {
  live.set(child, kill)
  child.once("close", () => live.delete(child))
}

/**
 * Stops the proxies of `classes` and then `server`, once however often it is called; also what
 * Ctrl-C does (after killing the live workers).
 */
export const stopper = (
  classes: ReadonlyArray<LatencyClass>,
  server: { readonly stop: () => Promise<void> }
): (() => Promise<void>) => {
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      for (const c of classes) await c.proxy?.close()
      await server.stop()
    })()
    return stopped
  }
  onInterrupt(stop)
  return stop
}

/**
 * The command line of a bench program: `valued` options take the next argument, `flags` none;
 * `--help` / `-h` print `usage` and exit, anything else unknown exits with status 2.
 */
export const parseOptions = (
  valued: ReadonlyArray<string>,
  flags: ReadonlyArray<string>,
  usage: string
): Map<string, string> => {
  const argv = process.argv.slice(2)
  const options = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (valued.includes(a) && argv[i + 1] !== undefined) options.set(a, argv[++i]!)
    else if (flags.includes(a) || a === "--help" || a === "-h") options.set(a, "")
    else {
      console.error(`unknown argument ${a} (try --help)`)
      process.exit(2)
    }
  }
  if (options.has("--help") || options.has("-h")) {
    console.log(usage)
    process.exit(0)
  }
  return options
}

/** A numeric option (`_` allowed as a digit separator), ≥ 0, whole unless `fractional`. */
export const numberOption = (
  options: Map<string, string>,
  name: string,
  fallback: number,
  fractional = false
): number => {
  const v = options.get(name)
  if (v === undefined) return fallback
  const n = Number(v.replaceAll("_", ""))
  if (!Number.isFinite(n) || n < 0 || (!fractional && !Number.isInteger(n)))
    throw new Error(`${name} wants a ${fractional ? "number ≥ 0" : "whole number"}, got ${v}`)
  return n
}

/** Starts `node args…` as a worker, reading its stdout line by line (`@turn` lines counted apart). */
export const spawnTurnWorker = (args: ReadonlyArray<string>): TurnWorker => {
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] })
  track(child)
  const w: TurnWorker = {
    child,
    lines: [],
    turns: 0,
    tail: "",
    stderr: "",
    exited: false,
    killed: undefined,
    wake: undefined
  }
  child.stdin!.on("error", () => {})
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    const parts = (w.tail + d).split("\n")
    w.tail = parts.pop()!
    for (const line of parts) {
      if (line.trim() === "@turn") w.turns++
      else if (line.trim() !== "") w.lines.push(line)
    }
    w.wake?.()
  })
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    w.stderr += d
  })
  child.on("close", () => {
    if (w.tail.trim() !== "") w.lines.push(w.tail)
    w.exited = true
    w.wake?.()
  })
  return w
}

/** Waits until the worker asks for a turn or exits; kills it after `phaseMs`. */
export const nextEvent = (w: TurnWorker, phaseMs: number): Promise<"turn" | "exit"> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => {
      w.killed = `killed after ${phaseMs} ms`
      w.child.kill("SIGKILL")
    }, phaseMs)
    const check = () => {
      const event = w.turns > 0 ? "turn" : w.exited ? "exit" : undefined
      if (event === undefined) return
      if (event === "turn") w.turns--
      clearTimeout(timer)
      w.wake = undefined
      resolve(event)
    }
    w.wake = check
    check()
  })

/** Why a worker gave no result: its kill, then the first `lines` lines of its stderr. */
export const failureOf = (w: TurnWorker, lines: number): string =>
  [w.killed, ...w.stderr.trim().split("\n").slice(0, lines)].filter((x) => x).join(" | ")

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The bench folder (cold-start.ts and load-cost.ts run their probes from it). */
export const benchDir = join(dirname(fileURLToPath(import.meta.url)), "..")

/** Exits with a message unless @pgline/client has been built (the probes load dist/). */
export const requireBuiltClient = (): void => {
  if (existsSync(join(benchDir, "..", "packages", "client", "dist", "index.js"))) return
  console.error("packages/client/dist is missing: run `pnpm run build` first")
  process.exit(1)
}

/**
 * Runs `script` as an ES module in a fresh Node process (with `flags`, without the parent's
 * NODE_OPTIONS) and returns the JSON of its last output line and the process's time from spawn to
 * exit as seen from here.
 */
export const runProbe = <A>(
  script: string,
  flags: ReadonlyArray<string> = []
): { readonly result: A; readonly processMs: number } => {
  const t0 = performance.now()
  const out = execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
    cwd: benchDir,
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" }
  })
  const processMs = performance.now() - t0
  return { result: JSON.parse(out.trim().split("\n").at(-1)!) as A, processMs }
}
