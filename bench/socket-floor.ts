/**
 * socket-floor: what one round trip costs a Node process on its own, with no driver in the loop.
 * A connection is opened and authenticated by pg (then left alone: its socket's 'data' listeners
 * are removed), and the loop sends a bare Sync and waits for the server's ReadyForQuery on the
 * raw `net.Socket`, the next Sync written from the 'data' callback. No statement, no parsing, no
 * promise, no fiber: the event loop, libuv, the socket stream and the kernel's loopback. Any
 * Node driver's awaited query costs at least this, plus the server's work for the statement and
 * the driver's own encoding, parsing and scheduling.
 *
 *   node bench/socket-floor.ts [count=10000]
 *
 * Warm-up of 20,000 round trips, then 7 rounds of `count`; prints the median and fastest round in
 * µs per round trip and the process's CPU per round trip (user and system). Compare with
 * `node bench/per-op.ts query-floor` (pgline's connection object, one statement and its Sync) and
 * `query` (`pg.query`), and with RESULTS.md's P5 rows (pg, postgres.js and the libpq C reference,
 * one statement at a time).
 */
import type { Socket } from "node:net"
import { startServer } from "@pgline/testing"
import pg from "pg"

const count = Number(process.argv[2] ?? 10_000)
const ROUNDS = 7
const SYNC = Buffer.from([0x53, 0, 0, 0, 4])

const server = await startServer()
const client = new pg.Client({ connectionString: server.info.url })
let socket: Socket | undefined
try {
  await client.connect()
  // pg reports the socket's end (this program destroys it at the end) as an error: expected here.
  client.on("error", () => {})
  socket = (client as unknown as { connection: { stream: Socket } }).connection.stream
  socket.removeAllListeners("data")

  /** `n` round trips, each Sync written once the previous one's ReadyForQuery (6 bytes) arrived. */
  const loop = (n: number, socket: Socket): Promise<void> =>
    new Promise((done) => {
      let left = n
      let buffered = 0
      const onData = (chunk: Buffer) => {
        buffered += chunk.length
        // ReadyForQuery is 6 bytes; a round trip ends when all of it has arrived.
        while (buffered >= 6) {
          buffered -= 6
          if (--left === 0) {
            socket.off("data", onData)
            done()
            return
          }
          socket.write(SYNC)
        }
      }
      socket.on("data", onData)
      socket.write(SYNC)
    })

  await loop(20_000, socket)
  const perRound: Array<number> = []
  const cpu0 = process.cpuUsage()
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now()
    await loop(count, socket)
    perRound.push(((performance.now() - t0) * 1000) / count)
  }
  const cpu = process.cpuUsage(cpu0)
  perRound.sort((a, b) => a - b)
  const trips = ROUNDS * count
  console.log(
    `socket floor: ${perRound[ROUNDS >> 1]!.toFixed(1)} µs per round trip (median of ${ROUNDS} rounds of ${count}; fastest ${perRound[0]!.toFixed(1)}); ` +
      `process CPU ${(cpu.user / trips).toFixed(1)} µs user + ${(cpu.system / trips).toFixed(1)} µs system per round trip`
  )
} finally {
  socket?.destroy()
  await server.stop()
}
