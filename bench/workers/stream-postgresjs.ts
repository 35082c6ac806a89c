/**
 * Stream and COPY worker for postgres.js 3.4 (`postgres`, see stream-common.ts for the protocol).
 * One connection (`max: 1`).
 *
 * - stream: `for await (const rows of sql.unsafe(text).cursor(batch))`, a portal read `batch` rows
 *   per Execute (its default, 1, is one round trip per row: not run), each batch's rows in a loop.
 * - copyto: `await sql.unsafe(text).readable()`, consumed with 'data' events.
 * - copyfrom: `stream.pipeline(Readable.from(chunks), await sql.unsafe(text).writable())`.
 */
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import postgres from "postgres"
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
const sql = postgres(url, { max: 1, ssl: false, onnotice: () => {} })

const main = async () => {
  switch (workload) {
    case "stream":
      return runJob(params, {
        run: async () => {
          const tally = new RowTally()
          for await (const rows of sql
            .unsafe<Array<{ a: number; b: string; c: number }>>(SELECT_SOURCE)
            .cursor(params.batch ?? 1000))
            for (const r of rows) tally.add(r.a, r.b, r.c)
          return tally
        },
        verify: async (tally) => checkTally(tally, e)
      })
    case "copyto":
      return runJob(params, {
        run: async () => {
          const tally = new ByteTally()
          const readable = await sql.unsafe(COPY_TO).readable()
          await new Promise<void>((resolve, reject) => {
            readable.on("data", (block: Buffer) => tally.add(block))
            readable.once("end", resolve)
            readable.once("error", reject)
          })
          return tally
        },
        verify: async (tally) => checkBytes(tally, e)
      })
    case "copyfrom": {
      const chunks = copyChunks(e.copyInRows)
      return runJob(params, {
        before: async () => {
          await sql.unsafe(TRUNCATE_TARGET)
        },
        run: async () => {
          await pipeline(Readable.from(chunks), await sql.unsafe(COPY_FROM).writable())
          // postgres.js's writable does not expose the COPY's row count: the check below counts.
          return e.copyInRows
        },
        verify: async (reported) => {
          const [row] = await sql.unsafe<Array<{ n: string; s: string }>>(TARGET_FIGURES)
          checkCopyIn(reported, row!.n, row!.s, e)
        }
      })
    }
  }
}

main().then(
  () => sql.end(),
  (cause) => failed("postgres.js", workload, cause)
)
