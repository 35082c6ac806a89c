/**
 * Memory of a huge pipeline: N statements (default 1,000,000) in one segment, either through
 * `executeMany` or one `execute` per statement with the handles dropped. Prints the live heap
 * after a forced GC every 10% (what the pipeline really holds; RSS alone mostly shows how lazily
 * V8 collects), the peak RSS and the wall time.
 *
 *   node --expose-gc bench/pipeline-memory.ts [N] [many|each] [maxPendingBytes]
 */
import { PgClient } from "@pgline/client"
import { startServer } from "@pgline/testing"
import { Effect } from "effect"

const N = Number(process.argv[2] ?? 1_000_000)
const mode = process.argv[3] === "each" ? "each" : "many"
const maxPendingBytes = Number(process.argv[4] ?? 1024 * 1024)
const gc = (globalThis as { gc?: () => void }).gc
const samples: Array<number> = []
const sample = (i: number) => {
  if (gc === undefined || i % Math.max(1, Math.floor(N / 10)) !== 0) return
  gc()
  samples.push(process.memoryUsage().heapUsed / 1048576)
}

const server = await startServer({ tls: false })
const started = performance.now()
try {
  await Effect.runPromise(
    Effect.gen(function* () {
      const pg = yield* PgClient
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipelineWith({ maxPendingBytes })
          if (mode === "many") {
            const rows = function* () {
              for (let i = 0; i < N; i++) {
                sample(i)
                yield [i]
              }
            }
            const summary = yield* p.executeMany("select $1::int as x", rows())
            yield* p.sync
            const { statements } = yield* summary
            if (statements !== N) throw new Error(`ran ${statements} of ${N}`)
          } else {
            for (let i = 0; i < N; i++) {
              sample(i)
              yield* p.execute("select $1::int as x", [i])
            }
            yield* p.sync
          }
        })
      )
    }).pipe(Effect.provide(PgClient.layer({ url: server.info.url, sslmode: "disable" })))
  )
} finally {
  await server.stop()
}
const ms = performance.now() - started
console.log(
  `${mode}: ${N.toLocaleString("en")} statements in ${(ms / 1000).toFixed(1)} s (${((ms * 1000) / N).toFixed(1)} µs each); ` +
    `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; ` +
    (samples.length > 0
      ? `live heap after GC ${Math.min(...samples).toFixed(0)}–${Math.max(...samples).toFixed(0)} MB over the run`
      : "run with --expose-gc for live-heap samples")
)
