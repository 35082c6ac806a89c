/**
 * LatencyProxy's timing (internal/ticker.ts): the ticker never runs a task before its due time,
 * threaded or on its setTimeout fallback; close() ends its worker thread, which never keeps the
 * process alive; through a proxy no byte arrives before its send time + delay while many chunks are
 * in flight. Bounds are correctness bounds or liveness limits, never timings. How much CPU the proxy
 * uses with chunks constantly in flight is a figure, measured by bench/proxy-cpu.ts, not asserted.
 */
import { execFile } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { type Socket, connect as tcpConnect } from "node:net"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Ticker } from "../src/internal/ticker.ts"
import { startLatencyProxy } from "../src/LatencyProxy.ts"
import { startLocalServer } from "../src/LocalServer.ts"

/** A loopback target running `handler` per connection (half-open allowed, as a TCP peer may be). */
const listen = (handler: (socket: Socket) => void) => startLocalServer(handler, { allowHalfOpen: true })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Fired {
  readonly dueAt: number
  readonly at: number
}

/** Arms `count` tasks at random due times 0–3 ms ahead, re-arming or disarming some; waits for all. */
const exercise = async (ticker: Ticker, count: number): Promise<Array<Fired>> => {
  const fired: Array<Fired> = []
  let seed = 42
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  let pending = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => {
    done = resolve
  })
  const disarmed = new Set<object>()
  for (let i = 0; i < count; i++) {
    let dueAt = performance.now() + random() * 3
    const task = {
      fire: () => {
        fired.push({ dueAt, at: performance.now() })
        expect(disarmed.has(task)).toBe(false)
        if (--pending === 0) done()
      }
    }
    pending++
    ticker.arm(task, dueAt)
    const roll = random()
    if (roll < 0.1) {
      // Re-armed later: only the new time counts.
      dueAt += random() * 2
      ticker.arm(task, dueAt)
    } else if (roll < 0.15) {
      ticker.disarm(task)
      disarmed.add(task)
      pending--
    }
    // Spread the arming over a few turns of the event loop, as connections would.
    if (i % 10 === 9) await sleep(random() * 2)
  }
  if (pending === 0) done()
  await all
  return fired
}

/** Ids of this process's threads whose name starts with `prefix` (Linux; undefined elsewhere). */
const threadsNamed = (prefix: string): Set<string> | undefined => {
  if (!existsSync("/proc/self/task")) return undefined
  const ids = new Set<string>()
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, "utf8").startsWith(prefix)) ids.add(tid)
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ids
}

/** Polls (up to 2 s) until `done(ids)` holds for the threads named `prefix`; returns the last ids. */
const settleThreads = async (prefix: string, done: (ids: Set<string>) => boolean): Promise<Set<string>> => {
  const deadline = performance.now() + 2_000
  let ids = threadsNamed(prefix) ?? new Set<string>()
  while (!done(ids) && performance.now() < deadline) {
    await sleep(10)
    ids = threadsNamed(prefix) ?? new Set<string>()
  }
  return ids
}

describe("Ticker", () => {
  for (const threaded of [true, false]) {
    it(`never fires a task before its due time (${threaded ? "worker thread" : "setTimeout fallback"})`, async () => {
      const ticker = await Ticker.start({ threaded })
      try {
        expect(ticker.diagnostics().threaded).toBe(threaded)
        const fired = await exercise(ticker, 300)
        expect(fired.length).toBeGreaterThan(200)
        for (const { dueAt, at } of fired) expect(at).toBeGreaterThanOrEqual(dueAt)
      } finally {
        await ticker.close()
      }
    })
  }

  it("close() ends the worker thread; armed tasks never fire afterwards; idempotent", async () => {
    const ticker = await Ticker.start()
    expect(ticker.diagnostics().threaded).toBe(true)
    let fired = 0
    ticker.arm({ fire: () => fired++ }, performance.now() + 5)
    await ticker.close()
    expect(ticker.diagnostics().threaded).toBe(false)
    await ticker.close()
    ticker.arm({ fire: () => fired++ }, performance.now())
    await sleep(20)
    expect(fired).toBe(0)
  })

  it("does not keep the process alive, even with a task armed", async () => {
    const url = new URL("../src/internal/ticker.ts", import.meta.url).href
    const script = [
      `import { Ticker } from ${JSON.stringify(url)}`,
      "const ticker = await Ticker.start()",
      "if (!ticker.diagnostics().threaded) throw new Error('no worker')",
      "ticker.arm({ fire: () => {} }, performance.now() + 60000)",
      "console.log('armed')"
    ].join("\n")
    const t0 = performance.now()
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--input-type=module", "-e", script],
        { timeout: 30_000, cwd: fileURLToPath(new URL(".", import.meta.url)) },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)
      )
    })
    expect(out.trim()).toBe("armed")
    // It exited by itself (not at the 60 s deadline, nor killed by the 30 s timeout).
    expect(performance.now() - t0).toBeLessThan(30_000)
  })
})

const connectTo = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, noDelay: true })
    socket.once("connect", () => {
      socket.off("error", reject)
      resolve(socket)
    })
    socket.once("error", reject)
  })

/** A sink that records when each byte offset arrived (performance.now(), same clock as the sender). */
const recordingSink = async () => {
  const arrivals: Array<{ readonly end: number; readonly at: number }> = []
  let received = 0
  const target = await listen((socket) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
      arrivals.push({ end: received, at: performance.now() })
    })
  })
  /** When the byte at `offset` arrived. */
  const arrivalOf = (offset: number): number | undefined => arrivals.find((a) => a.end > offset)?.at
  return { target, arrivalOf, received: () => received }
}

describe("LatencyProxy timing", () => {
  it("no byte arrives before its send time + delay, with many chunks in flight", async () => {
    const delayMs = 2
    const sink = await recordingSink()
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: sink.target.port, delayMs })
    try {
      const socket = await connectTo(proxy.port)
      const sent: Array<{ readonly offset: number; readonly at: number }> = []
      let offset = 0
      // 400 chunks of 1–200 bytes, bursts of 1–8 back to back, then a pause of one event-loop turn
      // or a short timer: up to a few dozen chunks in flight at once.
      let seed = 7
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        return seed % n
      }
      while (sent.length < 400) {
        const burst = 1 + random(8)
        for (let i = 0; i < burst; i++) {
          const size = 1 + random(200)
          sent.push({ offset, at: performance.now() })
          socket.write(Buffer.alloc(size, sent.length & 0xff))
          offset += size
        }
        if (random(2) === 0) await new Promise((resolve) => setImmediate(resolve))
        else await sleep(random(2))
      }
      const deadline = performance.now() + 10_000
      while (sink.received() < offset && performance.now() < deadline) await sleep(5)
      expect(sink.received()).toBe(offset)
      for (const chunk of sent) {
        const at = sink.arrivalOf(chunk.offset)
        expect(at).toBeDefined()
        expect(at! - chunk.at).toBeGreaterThanOrEqual(delayMs)
      }
      const stats = proxy.stats()
      expect(stats.lateMeanMs).toBeGreaterThanOrEqual(0)
      expect(stats.lateMaxMs).toBeGreaterThanOrEqual(stats.lateMeanMs)
      socket.destroy()
    } finally {
      await proxy.close()
      await sink.target.close()
    }
  })

  it("one ticker thread per proxy, gone after close()", async () => {
    const sink = await recordingSink()
    // Linux only (thread names under /proc); elsewhere the rest of the test still runs.
    const before = threadsNamed("LatencyProxy")
    const a = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: sink.target.port, delayMs: 1 })
    const b = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: sink.target.port, delayMs: 1 })
    const ours = new Set<string>()
    try {
      // Several connections share their proxy's ticker.
      const sockets = await Promise.all([connectTo(a.port), connectTo(a.port), connectTo(b.port)])
      for (const socket of sockets) socket.write("x")
      const deadline = performance.now() + 5_000
      while (sink.received() < 3 && performance.now() < deadline) await sleep(2)
      expect(sink.received()).toBe(3)
      if (before !== undefined) {
        const fresh = (ids: Set<string>) => [...ids].filter((id) => !before.has(id))
        for (const id of fresh(await settleThreads("LatencyProxy", (ids) => fresh(ids).length >= 2)))
          ours.add(id)
        expect(ours.size).toBe(2)
      }
      for (const socket of sockets) socket.destroy()
    } finally {
      await a.close()
      await b.close()
      await sink.target.close()
    }
    const left = await settleThreads("LatencyProxy", (ids) => [...ours].every((id) => !ids.has(id)))
    expect([...ours].filter((id) => left.has(id))).toEqual([])
  })
})
