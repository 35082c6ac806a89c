/**
 * rtt: the round trip the latency proxy adds, measured. Starts a PostgreSQL (PgServer's
 * `startServer`), then measures SSLRequest → 1-byte answer round trips (`measureRtt`, a fresh
 * connection per sample, 10 ms settle so the backend fork is not timed) directly and through a
 * `LatencyProxy` at 0, 0.5 and 2 ms one-way (≈0, 1 and 4 ms RTT added). Benchmarks that run
 * "through a ~N ms RTT proxy" should quote the numbers this prints on the same machine.
 *
 *   node bench/rtt.ts [samples=50]
 *
 * The proxy runs in this process, as it does in the benchmarks, so event-loop contention shows up
 * here the same way. A lower bound holds by construction (a sample never beats 2 × delay); the
 * median's excess over 2 × delay + direct is the proxy's own cost (timer error and two extra hops).
 */
import { measureRtt, type RttStats, startLatencyProxy, startServer } from "@pgline/testing"

const samples = Number(process.argv[2] ?? 50)
const server = await startServer()
const { host, port } = server.info
const fmt = (n: number) => n.toFixed(3).padStart(8)

try {
  // Warm-up: the first connections pay for catalog caches and JIT in both processes.
  await measureRtt(host, port, 5)
  const rows: Array<{ name: string; nominal: number; rtt: RttStats; late?: string }> = []
  const direct = await measureRtt(host, port, samples)
  rows.push({ name: "direct (no proxy)", nominal: 0, rtt: direct })
  for (const delayMs of [0, 0.5, 2]) {
    const proxy = await startLatencyProxy({ targetHost: host, targetPort: port, delayMs })
    try {
      await measureRtt(proxy.host, proxy.port, 3)
      const rtt = await measureRtt(proxy.host, proxy.port, samples)
      const s = proxy.stats()
      rows.push({
        name: `proxy ${delayMs} ms one-way`,
        nominal: 2 * delayMs,
        rtt,
        late: `timer late mean ${s.lateMeanMs.toFixed(3)} / max ${s.lateMaxMs.toFixed(3)} ms`
      })
    } finally {
      await proxy.close()
    }
  }
  console.log(
    `RTT to PostgreSQL ${server.info.version ?? ""} (${server.info.kind}), ${samples} samples each, ms`
  )
  console.log(
    `${"class".padEnd(22)} ${"2×delay".padStart(8)} ${"median".padStart(8)} ${"min".padStart(8)} ${"max".padStart(8)}`
  )
  for (const { name, nominal, rtt, late } of rows) {
    const line = `${name.padEnd(22)} ${fmt(nominal)} ${fmt(rtt.medianMs)} ${fmt(rtt.minMs)} ${fmt(rtt.maxMs)}`
    console.log(late === undefined ? line : `${line}   ${late}`)
  }
} finally {
  await server.stop()
}
