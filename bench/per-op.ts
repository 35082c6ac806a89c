/**
 * per-op: where one operation's time goes on loopback, for the profiles bench/README.md cites.
 * One process, one embedded PostgreSQL, a pool of one connection; each operation runs in a loop
 * (warm-up, then 7 rounds of `count`), and the report gives the median and fastest round in µs per
 * operation, the process's own CPU time per operation (user and system, from process.cpuUsage)
 * and the time spent inside `socket.write` per call (every socket of the process, timed by
 * wrapping `net.Socket.prototype.write`).
 *
 *   node bench/per-op.ts [operation=query] [count=10000]
 *
 * The warm-up is 2,000 operations (concurrent: 50) or a fifth of a round if more; PER_OP_WARMUP=N
 * sets it (instructions.ts asks for 20,000).
 *
 * Operations:
 * - query: `pg.query("select $1::int as x", [1])`, each awaited (P5's statement)
 * - reserved: the same on a reserved connection (`pg.reserve`)
 * - pipeline-empty: `pg.withPipeline(() => Effect.void)`: a lease, a pipeline and its scope with no
 *   statement, so no round trip (the fixed cost of opening a pipeline)
 * - transfer: `pg.pipelineTransaction` with P2's two UPDATEs (one round trip)
 * - transfer-awaited: `pg.withTransaction` with the two UPDATEs awaited in turn (three round trips)
 * - execute-100 / many-100: one `pg.withPipeline` of 100 point selects, queued one `p.execute` at a
 *   time or with one `p.executeMany` (one round trip each; divide by 100 for a statement)
 * - transfer-floor: the transfer's four statements (BEGIN, the UPDATEs, COMMIT) and a Sync queued
 *   straight on the pool's connection object, one `Effect.callback` resumed by the Sync's answer:
 *   no lease, scope, pipeline or handle, so the difference to `transfer` is what those cost (the
 *   connection is reached by recording it on its first statement; diagnostic only, not an API)
 *
 * - query-floor: `query`'s statement and a Sync queued straight on the connection object the same
 *   way (the difference to `query` is what the statement API around the connection costs)
 * - concurrent: P7's point select from 64 fibers at once on a pool of 10 connections, each fiber
 *   running 10 in turn (one operation is those 640 queries: divide by 640 for one; the client's
 *   cost per statement when statements are pipelined onto busy connections; PER_OP_MAX=N sets the
 *   pool's size instead of 10)
 *
 * Add `node --cpu-prof` to profile a loop (the profiles cited were taken that way, 10,000 runs).
 * Numbers move with the machine's load: compare operations within one run.
 */
import { Socket } from "node:net"
import { PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Layer } from "effect"
import { Connection } from "../packages/client/src/internal/Connection.ts"
import { CREDIT, DEBIT, POINT } from "./workers/common.ts"

const operation = process.argv[2] ?? "query"
const count = Number(process.argv[3] ?? 10_000)
const ROUNDS = 7

let writeMs = 0
let writes = 0
const write = Socket.prototype.write
Socket.prototype.write = function (this: Socket, ...args: Array<unknown>) {
  const t0 = performance.now()
  const ok = (write as (...a: Array<unknown>) => boolean).apply(this, args)
  writeMs += performance.now() - t0
  writes++
  return ok
} as typeof write

// The pool's connection, recorded on its first statement (for transfer-floor).
let connection: Connection | undefined
const queueStatement = Connection.prototype.queueStatement
Connection.prototype.queueStatement = function (this: Connection, ...args) {
  connection = this
  return queueStatement.apply(this, args)
}

const hundred = Array.from({ length: 100 }, (_, i) => [i])
const callers = Array.from({ length: 64 }, (_, i) => i)

/**
 * `statements` and a Sync queued straight on the pool's connection object, one callback resumed at
 * the Sync's answer (dies with the first outcome that is not Done): no lease, scope or handle.
 */
const floor = (statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]>) =>
  Effect.callback<void>((resume) => {
    const conn = connection!
    let failed: unknown
    const sink = {
      settle: (outcome: { readonly _tag: string }) => {
        if (outcome._tag !== "Done" && failed === undefined) failed = outcome
      }
    }
    for (const [text, params] of statements) conn.queueStatement(text, params, sink)
    conn.queueSync(() => resume(failed === undefined ? Effect.void : Effect.die(failed)))
  })

/** The transfer with nothing around the connection's own queue. */
const transferFloor = floor([
  ["begin", []],
  [DEBIT, [1, 1]],
  [CREDIT, [1, 2]],
  ["commit", []]
])

/** A point query with nothing around the connection's own queue. */
const queryFloor = floor([[POINT, [1]]])

const program = Effect.scoped(
  Effect.gen(function* () {
    const pg = yield* PgClient
    yield* pg.query("create table if not exists account (id int primary key, balance int)")
    yield* pg.query("insert into account values (1, 0), (2, 0) on conflict do nothing")
    // The pool has one connection (ten for concurrent): only reserved holds one for the whole run.
    const operations: Record<string, Effect.Effect<unknown, unknown>> = {
      reserved: operation === "reserved" ? (yield* pg.reserve).query(POINT, [1]) : Effect.void,
      query: pg.query(POINT, [1]),
      "pipeline-empty": pg.withPipeline(() => Effect.void),
      transfer: pg.pipelineTransaction((p) =>
        Effect.all([p.execute(DEBIT, [1, 1]), p.execute(CREDIT, [1, 2])])
      ),
      "execute-100": pg.withPipeline((p) =>
        Effect.gen(function* () {
          for (let i = 0; i < 100; i++) yield* p.execute(POINT, hundred[i]!)
        })
      ),
      "many-100": pg.withPipeline((p) => p.executeMany(POINT, hundred)),
      "transfer-floor": transferFloor,
      "query-floor": queryFloor,
      concurrent: Effect.forEach(
        callers,
        (caller) =>
          Effect.gen(function* () {
            for (let i = 0; i < 10; i++) {
              const { rows } = yield* pg.query<{ x: number }>(POINT, [caller + i])
              if (rows[0]?.x !== caller + i) return yield* Effect.die(`expected ${caller + i}`)
            }
          }),
        { concurrency: "unbounded", discard: true }
      ),
      "transfer-awaited": pg.withTransaction(
        Effect.gen(function* () {
          yield* pg.query(DEBIT, [1, 1])
          yield* pg.query(CREDIT, [1, 2])
        })
      )
    }
    const one = operations[operation]
    if (one === undefined) {
      return yield* Effect.die(`unknown operation ${operation}; have ${Object.keys(operations).join(", ")}`)
    }
    // Warm-up: 2,000 operations (concurrent: 50, i.e. 32,000 queries), or a fifth of a round if
    // more, or PER_OP_WARMUP operations (instructions.ts asks for more: V8 goes on compiling
    // optimised code for ~10,000 queries, and what it compiles inside the counted window counts).
    const warmUp =
      Number(process.env.PER_OP_WARMUP ?? 0) || Math.max(operation === "concurrent" ? 50 : 2_000, count / 5)
    for (let i = 0; i < warmUp; i++) yield* one
    writeMs = 0
    writes = 0
    const perRound: Array<number> = []
    const cpu0 = process.cpuUsage()
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now()
      for (let i = 0; i < count; i++) yield* one
      perRound.push(((performance.now() - t0) * 1000) / count)
    }
    const cpu = process.cpuUsage(cpu0)
    const ops = ROUNDS * count
    perRound.sort((a, b) => a - b)
    console.log(
      `${operation}: ${perRound[ROUNDS >> 1]!.toFixed(1)} µs per operation (median of ${ROUNDS} rounds of ${count}; fastest ${perRound[0]!.toFixed(1)}); ` +
        `process CPU ${(cpu.user / ops).toFixed(1)} µs user + ${(cpu.system / ops).toFixed(1)} µs system per operation; ` +
        `socket.write ${writes} calls, ${((writeMs * 1000) / Math.max(1, writes)).toFixed(1)} µs per call`
    )
  })
)

const layer = Layer.unwrap(
  Effect.map(PgServer, (info) =>
    PgClient.layer({
      url: info.url,
      sslmode: "disable",
      max: operation === "concurrent" ? Number(process.env.PER_OP_MAX ?? 10) : 1
    })
  )
).pipe(Layer.provide(PgServer.layer))

Effect.runPromise(Effect.provide(program, layer)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
