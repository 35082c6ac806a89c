/**
 * The money transfer: BEGIN, two UPDATEs, COMMIT. Without a pipeline each UPDATE waits for its
 * answer (withTransaction sends BEGIN with the first), three round trips; in a pipeline the four
 * go out together and come back together, one round trip. Run through a latency proxy (about 4 ms round trip) to make the difference
 * visible, and checked: the balances move, and a failing transfer leaves both untouched.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { LatencyProxy, measureRtt, PgServer, type ServerInfo, withProxyUrl } from "@pgline/testing"
import { Console, Effect } from "effect"

export const title = "Money transfer: BEGIN, 2 UPDATE, COMMIT in one round trip"

const ROUNDS = 20

const transferSequential = (from: number, to: number, amount: number) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    // Each UPDATE awaited in turn, BEGIN riding with the first, then COMMIT: three round trips.
    // withTransaction runs every statement of the effect on one reserved connection and rolls
    // back if anything fails.
    yield* pg.withTransaction(
      Effect.gen(function* () {
        yield* pg.sql`update account set balance = balance - ${amount} where id = ${from}`
        yield* pg.sql`update account set balance = balance + ${amount} where id = ${to}`
      })
    )
  })

const transferPipelined = (from: number, to: number, amount: number) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    // BEGIN, both UPDATEs and COMMIT leave together; a failure rolls the block back.
    yield* pg.pipelineTransaction((p) =>
      Effect.all([
        p.execute(pg.sql`update account set balance = balance - ${amount} where id = ${from}`),
        p.execute(pg.sql`update account set balance = balance + ${amount} where id = ${to}`)
      ])
    )
  })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (let i = 0; i < ROUNDS; i++) yield* effect
    return (performance.now() - start) / ROUNDS
  })

export const run = (server: ServerInfo) =>
  Effect.gen(function* () {
    const proxy = yield* LatencyProxy.make({ targetHost: server.host, targetPort: server.port, delayMs: 2 })
    const rtt = yield* Effect.promise(() => measureRtt(proxy.host, proxy.port, 20))
    yield* Effect.gen(function* () {
      const pg = yield* PgClient
      // A plain table, not a temporary one: the layer is a pool, and a temporary table exists only
      // on the connection that made it (the demo's server is fresh, so the table is new).
      yield* pg.query(
        "create table account (id int primary key, balance numeric not null check (balance >= 0))"
      )
      yield* pg.query("insert into account values (1, 1000), (2, 0)")
      const sequential = yield* timed(transferSequential(1, 2, 1))
      const pipelined = yield* timed(transferPipelined(1, 2, 1))
      const balances = (yield* pg.query<{ id: number; balance: string }>(
        "select id, balance from account order by id"
      )).rows
      yield* Console.log(
        `  measured RTT through the proxy: ${rtt.medianMs.toFixed(2)} ms (median of ${rtt.samples.length} samples)`
      )
      yield* Console.log(`  without a pipeline: ${sequential.toFixed(1)} ms per transfer (3 round trips)`)
      yield* Console.log(
        `  with a pipeline:    ${pipelined.toFixed(1)} ms per transfer (1 round trip), ${(sequential / pipelined).toFixed(1)}x faster`
      )
      yield* Console.log(
        `  balances after ${2 * ROUNDS} transfers of 1: ${balances.map((b) => `#${b.id} ${b.balance}`).join(", ")}`
      )
      // Overdraw: the CHECK fails on the first UPDATE, the rest of the segment is skipped, and the
      // block is rolled back as a whole.
      const overdraw = yield* transferPipelined(2, 1, 1_000_000).pipe(
        Effect.match({ onFailure: (e) => `refused (${e._tag})`, onSuccess: () => "accepted?!" })
      )
      const after = (yield* pg.query<{ id: number; balance: string }>(
        "select id, balance from account order by id"
      )).rows
      yield* Console.log(
        `  overdrawing #2: ${overdraw}; balances unchanged: ${after
          .map((b) => `#${b.id} ${b.balance}`)
          .join(", ")}`
      )
    }).pipe(Effect.provide(PgClient.layer({ url: withProxyUrl(server.url, proxy), sslmode: "disable" })))
  }).pipe(Effect.scoped)

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
