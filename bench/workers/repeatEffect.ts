/**
 * `repeat` (common.ts) for the Effect-based workers (pgline, @effect/sql-pg): `warmup` untimed then
 * `runs` timed runs of `once`, which returns its own time in ms; each timed run waits for its turn.
 * Also the pool workload's run and repeat for those workers (`poolRunEffect`, `repeatPoolEffect`,
 * the Effect counterparts of `poolRun` and `repeatPool`). Kept apart from common.ts so the
 * Promise-based workers do not load Effect.
 */
import { Effect } from "effect"
import { type PoolRun, poolRunOf, turn, type WorkerOutput, type WorkerParams } from "./common.ts"

export const repeatEffect = <E, R>(p: WorkerParams, once: Effect.Effect<number, E, R>) =>
  Effect.gen(function* () {
    const warmupTimes: Array<number> = []
    const times: Array<number> = []
    for (let i = 0; i < p.warmup; i++) warmupTimes.push(yield* once)
    for (let i = 0; i < p.runs; i++) {
      yield* Effect.promise(() => turn(p))
      times.push(yield* once)
    }
    return { times, warmupTimes }
  })

/**
 * One run of the pool workload: `callers` fibers, each running `op(caller, i)` for i = 0, 1, …
 * and starting another while fewer than `durationMs` have passed since the run began. A failed
 * operation fails the run (the other fibers are interrupted; nothing is retried).
 */
export const poolRunEffect = <E, R>(
  callers: number,
  durationMs: number,
  op: (caller: number, i: number) => Effect.Effect<unknown, E, R>
): Effect.Effect<PoolRun, E, R> =>
  Effect.suspend(() => {
    const latencies: Array<number> = []
    const t0 = performance.now()
    const deadline = t0 + durationMs
    const loop = (caller: number) =>
      Effect.gen(function* () {
        for (let i = 0; performance.now() < deadline; i++) {
          const s = performance.now()
          yield* op(caller, i)
          latencies.push(performance.now() - s)
        }
      })
    return Effect.forEach(
      Array.from({ length: callers }, (_, caller) => caller),
      loop,
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.map(() => poolRunOf(latencies, performance.now() - t0)))
  })

/** `repeatEffect` for the pool workload: the output carries every timed run's `PoolRun`. */
export const repeatPoolEffect = <E, R>(
  p: WorkerParams,
  once: Effect.Effect<PoolRun, E, R>
): Effect.Effect<WorkerOutput, E, R> =>
  Effect.gen(function* () {
    const runs: Array<PoolRun> = []
    const out = yield* repeatEffect(
      p,
      Effect.map(once, (run) => {
        runs.push(run)
        return run.ms
      })
    )
    return { ...out, pool: runs.slice(p.warmup) }
  })
