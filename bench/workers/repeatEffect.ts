/**
 * `repeat` (common.ts) for the Effect-based workers (pgline, @effect/sql-pg): `warmup` untimed then
 * `runs` timed runs of `once`, which returns its own time in ms; each timed run waits for its turn.
 * Kept apart from common.ts so the Promise-based workers do not load Effect.
 */
import { Effect } from "effect"
import { turn, type WorkerParams } from "./common.ts"

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
