/**
 * Stream and COPY worker for pgline (see stream-common.ts for the protocol). One connection
 * (`PgClient.layer` with `max: 1`, sslmode disable) in a ManagedRuntime; each run is one
 * `runPromise` of an Effect.
 *
 * - stream: `pg.stream(text, { chunkSize: batch })` (default 1000), consumed with
 *   `Stream.runForEach` (an Effect per row, `consume: "each"`) or `Stream.runForEachArray` (a loop
 *   over each chunk the stream hands over, `consume: "array"`).
 * - copyto: `Stream.runForEach(pg.copyTo(text), …)`, one call per block (about 64 KiB).
 * - copyfrom: `pg.copyFrom(text, Stream.fromIterable(chunks))`; the row count it returns is checked.
 */
import { PgClient } from "@pgline/client"
import { Effect, ManagedRuntime, Stream } from "effect"
import {
  ByteTally,
  COPY_FROM,
  COPY_TO,
  checkBytes,
  checkCopyIn,
  checkTally,
  copyChunks,
  failed,
  parseStreamArgs,
  RowTally,
  runJob,
  SELECT_SOURCE,
  TARGET_FIGURES,
  TRUNCATE_TARGET
} from "./stream-common.ts"

const { workload, url, params } = parseStreamArgs()
const e = params.expected
const runtime = ManagedRuntime.make(PgClient.layer({ url, sslmode: "disable", max: 1 }))
const run = <A, E>(effect: Effect.Effect<A, E, PgClient>): Promise<A> => runtime.runPromise(effect)

type Row = { a: number; b: string; c: number }

const main = async () => {
  switch (workload) {
    case "stream": {
      const options = params.batch === undefined ? {} : { chunkSize: params.batch }
      const each = Effect.gen(function* () {
        const pg = yield* PgClient
        const tally = new RowTally()
        yield* Stream.runForEach(pg.stream<Row>(SELECT_SOURCE, options), (r) =>
          Effect.sync(() => tally.add(r.a, r.b, r.c))
        )
        return tally
      })
      const array = Effect.gen(function* () {
        const pg = yield* PgClient
        const tally = new RowTally()
        yield* Stream.runForEachArray(pg.stream<Row>(SELECT_SOURCE, options), (rows) =>
          Effect.sync(() => {
            for (const r of rows) tally.add(r.a, r.b, r.c)
          })
        )
        return tally
      })
      const once = params.consume === "array" ? array : each
      return runJob(params, {
        run: () => run(once),
        verify: async (tally) => checkTally(tally, e)
      })
    }
    case "copyto": {
      const once = Effect.gen(function* () {
        const pg = yield* PgClient
        const tally = new ByteTally()
        yield* Stream.runForEach(pg.copyTo(COPY_TO), (block) => Effect.sync(() => tally.add(block)))
        return tally
      })
      return runJob(params, {
        run: () => run(once),
        verify: async (tally) => checkBytes(tally, e)
      })
    }
    case "copyfrom": {
      const chunks = copyChunks(e.copyInRows)
      const once = Effect.gen(function* () {
        const pg = yield* PgClient
        const { rowCount } = yield* pg.copyFrom(COPY_FROM, Stream.fromIterable(chunks))
        return rowCount
      })
      const truncate = Effect.flatMap(PgClient, (pg) => pg.query(TRUNCATE_TARGET))
      const figures = Effect.flatMap(PgClient, (pg) => pg.query<{ n: string; s: string }>(TARGET_FIGURES))
      return runJob(params, {
        before: async () => {
          await run(truncate)
        },
        run: () => run(once),
        verify: async (reported) => {
          const { rows } = await run(figures)
          checkCopyIn(reported, rows[0]!.n, rows[0]!.s, e)
        }
      })
    }
  }
}

main().then(
  () => runtime.dispose(),
  (cause) => failed("pgline", workload, cause)
)
