/**
 * Stream and COPY worker for node-postgres (`pg` 8.23) with its companion packages (see
 * stream-common.ts for the protocol). One `pg.Client`.
 *
 * - stream: `client.query(new QueryStream(text, [], { batchSize }))` (pg-query-stream 4, a
 *   pg-cursor portal read `batchSize` rows per Execute; its default is 100), consumed with 'data'
 *   events, one row each.
 * - copyto: `client.query(copyTo(text))` (pg-copy-streams 7), consumed with 'data' events.
 * - copyfrom: `stream.pipeline(Readable.from(chunks), client.query(copyFrom(text)))`: pipeline
 *   honours the writable's back-pressure and resolves once the server confirmed the COPY.
 */
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import QueryStream from "pg-query-stream"
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
const client = new pg.Client({ connectionString: url, ssl: false })

/** Resolves when `stream` ends, rejects on its error; `onData` gets every chunk or row. */
const consume = <T>(stream: Readable, onData: (x: T) => void): Promise<void> =>
  new Promise((resolve, reject) => {
    stream.on("data", onData)
    stream.once("end", resolve)
    stream.once("error", reject)
  })

const main = async () => {
  await client.connect()
  switch (workload) {
    case "stream":
      return runJob(params, {
        run: async () => {
          const tally = new RowTally()
          const rows = client.query(new QueryStream(SELECT_SOURCE, [], { batchSize: params.batch ?? 100 }))
          await consume<{ a: number; b: string; c: number }>(rows, (r) => tally.add(r.a, r.b, r.c))
          return tally
        },
        verify: async (tally) => checkTally(tally, e)
      })
    case "copyto":
      return runJob(params, {
        run: async () => {
          const tally = new ByteTally()
          await consume<Buffer>(client.query(copyTo(COPY_TO)), (block) => tally.add(block))
          return tally
        },
        verify: async (tally) => checkBytes(tally, e)
      })
    case "copyfrom": {
      const chunks = copyChunks(e.copyInRows)
      return runJob(params, {
        before: async () => {
          await client.query(TRUNCATE_TARGET)
        },
        run: async () => {
          const sink = client.query(copyFrom(COPY_FROM))
          await pipeline(Readable.from(chunks), sink)
          return sink.rowCount
        },
        verify: async (reported) => {
          const { rows } = await client.query<{ n: string; s: string }>(TARGET_FIGURES)
          checkCopyIn(reported, rows[0]!.n, rows[0]!.s, e)
        }
      })
    }
  }
}

main().then(
  () => client.end(),
  (cause) => failed("pg", workload, cause)
)
