/**
 * proxy-cpu: the CPU the latency proxy uses while chunks are constantly in flight. A writer sends a
 * 4-byte chunk every ~1 ms (`setInterval`) through a proxy with a 2 ms one-way delay into a sink
 * that only counts bytes, so at least one chunk always waits in the proxy's FIFO: a proxy that
 * polled the clock until each release time (as this one once did) would keep about a whole core
 * busy. The same writer and sink without the proxy are the baseline; the difference is the
 * proxy's own share.
 *
 *   node bench/proxy-cpu.ts [seconds=3] [delayMs=2] [rounds=3]
 *
 * CPU is `process.cpuUsage()` (user + system, every thread of this process: writer, sink, proxy and
 * its ticker thread) divided by the wall time of the measurement, in cores (1.00 = one core busy).
 * The ticker thread's own share comes from /proc (Linux; "-" elsewhere). The two cases alternate
 * for `rounds` rounds, after a 0.5 s untimed warm-up each time; medians are printed. A figure, not
 * a verdict: run it on an idle machine (other processes on the cores raise every number).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net"
import { performance } from "node:perf_hooks"
import { startLatencyProxy } from "@pgline/testing"

const seconds = Number(process.argv[2] ?? 3)
const delayMs = Number(process.argv[3] ?? 2)
const rounds = Number(process.argv[4] ?? 3)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A loopback sink that counts what it receives. */
const startSink = async (): Promise<{ server: Server; port: number; received: () => number }> => {
  let received = 0
  const server = createServer((socket) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
    })
    socket.on("error", () => {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const port = (server.address() as { port: number }).port
  return { server, port, received: () => received }
}

const connectTo = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, noDelay: true })
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })

/** CPU time (ns) of this process's threads whose name starts with `prefix`, or undefined (not Linux). */
const threadCpuNs = (prefix: string): number | undefined => {
  if (!existsSync("/proc/self/task")) return undefined
  let total = 0
  let found = false
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      if (!readFileSync(`/proc/self/task/${tid}/comm`, "utf8").startsWith(prefix)) continue
      total += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0])
      found = true
    } catch {
      // The thread ended meanwhile, or no schedstat.
    }
  }
  return found ? total : undefined
}

interface Sample {
  readonly cores: number
  readonly tickerCores: number | undefined
  readonly writesPerSecond: number
}

/** Writes a chunk every ~1 ms to `port` for 0.5 s untimed, then `seconds` measured. */
const measure = async (port: number, received: () => number): Promise<Sample> => {
  const base = received()
  const socket = await connectTo(port)
  let writes = 0
  const writer = setInterval(() => {
    socket.write("tick")
    writes++
  }, 1)
  await sleep(500)
  const writes0 = writes
  const ticker0 = threadCpuNs("LatencyProxy")
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(seconds * 1000)
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  const ticker1 = threadCpuNs("LatencyProxy")
  const written = writes - writes0
  clearInterval(writer)
  // Let everything sent arrive (bounded), so no chunk is still in flight when the next case starts.
  const deadline = performance.now() + 5_000
  while (received() - base < 4 * writes && performance.now() < deadline) await sleep(5)
  socket.destroy()
  return {
    cores: (cpu.user + cpu.system) / 1000 / wall,
    tickerCores:
      ticker0 === undefined || ticker1 === undefined ? undefined : (ticker1 - ticker0) / 1e6 / wall,
    writesPerSecond: (written / wall) * 1000
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const sink = await startSink()
const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: sink.port, delayMs })
const direct: Array<Sample> = []
const proxied: Array<Sample> = []
try {
  for (let r = 0; r < rounds; r++) {
    direct.push(await measure(sink.port, sink.received))
    proxied.push(await measure(proxy.port, sink.received))
  }
  const stats = proxy.stats()
  const fmt = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(3)).padStart(9)
  const row = (name: string, samples: ReadonlyArray<Sample>) => {
    const tickers = samples.map((s) => s.tickerCores).filter((x): x is number => x !== undefined)
    return (
      `${name.padEnd(28)}${fmt(median(samples.map((s) => s.cores)))}` +
      `${fmt(tickers.length === 0 ? undefined : median(tickers))}` +
      `${median(samples.map((s) => s.writesPerSecond))
        .toFixed(0)
        .padStart(10)}` +
      `   (rounds: ${samples.map((s) => s.cores.toFixed(3)).join(", ")})`
    )
  }
  console.log(
    `proxy-cpu: a 4-byte chunk every ~1 ms, ${seconds} s per case, ${rounds} rounds, medians; ` +
      "CPU of this whole process in cores"
  )
  console.log(`${"case".padEnd(28)}${"cores".padStart(9)}${"ticker".padStart(9)}${"writes/s".padStart(10)}`)
  console.log(row("direct (no proxy)", direct))
  console.log(row(`proxy, ${delayMs} ms one-way`, proxied))
  const share = median(proxied.map((s) => s.cores)) - median(direct.map((s) => s.cores))
  console.log(`${"the proxy's share".padEnd(28)}${fmt(share)}`)
  console.log(
    `proxy: ${stats.released} chunks released, late mean ${stats.lateMeanMs.toFixed(3)} ms, ` +
      `max ${stats.lateMaxMs.toFixed(3)} ms`
  )
} finally {
  await proxy.close()
  await new Promise<void>((resolve) => sink.server.close(() => resolve()))
}
