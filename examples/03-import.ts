/**
 * The import: INSERT … ON CONFLICT DO UPDATE of 100 to 100,000 rows in one transaction, one
 * statement per row, with and without a pipeline, directly and through a latency proxy at about
 * 1 ms and 4 ms round trip (the measured RTT is printed).
 *
 * Without a pipeline every row costs a round trip, so at 4 ms RTT 100,000 rows would take over
 * six minutes: those runs stop after a time budget and the table shows the rate extrapolated to
 * the full size, marked "~". Pipelined runs always import every row.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { LatencyProxy, measureRtt, PgServer, type ServerInfo, withProxyUrl } from "@pgline/testing"
import { Console, Effect } from "effect"

export const title = "Import: upserts with and without a pipeline, at three round-trip times"

const SIZES = [100, 1_000, 10_000, 100_000]
/** Milliseconds a sequential run may take before it is extrapolated. */
const BUDGET_MS = 1_500
const UPSERT =
  "insert into import_demo (id, name, qty) values ($1, $2, $3) on conflict (id) do update set name = excluded.name, qty = import_demo.qty + excluded.qty"

const row = (i: number): ReadonlyArray<unknown> => [i, `item ${i}`, i % 97]

/** One statement at a time inside BEGIN … COMMIT; returns ms for `n` rows (extrapolated past the budget). */
const sequential = (n: number) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const start = performance.now()
    const done = yield* pg.withTransaction(
      Effect.gen(function* () {
        let done = 0
        while (done < n && performance.now() - start < BUDGET_MS) {
          yield* pg.query(UPSERT, row(done))
          done++
        }
        return done
      })
    )
    const elapsed = performance.now() - start
    return { ms: (elapsed * n) / done, extrapolated: done < n }
  })

const pipelined = (n: number) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const start = performance.now()
    const count = yield* pg.pipelineTransaction((p) =>
      Effect.flatten(
        p.executeMany(
          UPSERT,
          Array.from({ length: n }, (_, i) => row(i))
        )
      )
    )
    if (count.rowCount !== n) return yield* Effect.die(new Error(`imported ${count.rowCount} of ${n} rows`))
    return performance.now() - start
  })

const fmt = (ms: number, extrapolated = false) =>
  `${extrapolated ? "~" : ""}${ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`}`

export const run = (server: ServerInfo) =>
  Effect.gen(function* () {
    const classes: Array<{ label: string; delayMs: number | undefined }> = [
      { label: "localhost", delayMs: undefined },
      { label: "~1 ms RTT", delayMs: 0.5 },
      { label: "~4 ms RTT", delayMs: 2 }
    ]
    const lines: Array<string> = []
    for (const c of classes) {
      const target =
        c.delayMs === undefined
          ? { host: server.host, port: server.port, url: server.url }
          : yield* Effect.map(
              LatencyProxy.make({ targetHost: server.host, targetPort: server.port, delayMs: c.delayMs }),
              (proxy) => ({ host: proxy.host, port: proxy.port, url: withProxyUrl(server.url, proxy) })
            )
      const rtt = yield* Effect.promise(() => measureRtt(target.host, target.port, 20))
      lines.push(`  ${c.label} (measured RTT ${rtt.medianMs.toFixed(2)} ms):`)
      yield* Effect.gen(function* () {
        const pg = yield* PgClient
        // A plain table (the layer is a pool; a temporary table would exist on one connection only).
        if (c === classes[0])
          yield* pg.query(
            "create table import_demo (id int primary key, name text not null, qty int not null)"
          )
        for (const n of SIZES) {
          yield* pg.query("truncate import_demo")
          const seq = yield* sequential(n)
          yield* pg.query("truncate import_demo")
          const pipe = yield* pipelined(n)
          lines.push(
            `    ${String(n).padStart(7)} rows: without ${fmt(seq.ms, seq.extrapolated).padStart(8)}   pipelined ${fmt(pipe).padStart(8)}   ${(seq.ms / pipe).toFixed(1).padStart(6)}x`
          )
        }
      }).pipe(Effect.provide(PgClient.layer({ url: target.url, sslmode: "disable" })))
    }
    yield* Console.log(lines.join("\n"))
    yield* Console.log('  ("~": sequential run stopped after 1.5 s and extrapolated to the full size)')
  }).pipe(Effect.scoped)

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
