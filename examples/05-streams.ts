/**
 * Streams: a migration script, 100,000 rows loaded with COPY FROM a Stream of csv text, read back
 * as a row stream with bounded memory and summed, exported with COPY TO, and a LISTEN/NOTIFY
 * round. Every figure printed is checked against what the server computes itself.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect, Stream } from "effect"

export const title = "Streams: a script, COPY in and out, a row stream, LISTEN/NOTIFY"

const ROWS = 100_000

/** csv lines `id,day,amount`, 10,000 per chunk, built as the stream is read. */
const csvChunks = Stream.range(0, ROWS / 10_000 - 1).pipe(
  Stream.map((chunk) => {
    let text = ""
    for (let i = chunk * 10_000; i < (chunk + 1) * 10_000; i++)
      text += `${i},2026-12-${String(1 + (i % 28)).padStart(2, "0")},${i % 1000}\n`
    return text
  })
)

const check = (what: string, ok: boolean) =>
  ok ? Effect.void : Effect.die(new Error(`example check failed: ${what}`))

const program = Effect.gen(function* () {
  const pg = yield* PgClient
  const migration = yield* pg.script(`
    create table payments (id int primary key, day date not null, amount int not null);
    create index payments_day on payments (day);
    comment on table payments is 'loaded by the streams example'
  `)
  yield* Console.log(`migration: ${migration.map((r) => r.command).join(", ")}`)

  const { rowCount } = yield* pg.copyFrom(
    "copy payments (id, day, amount) from stdin with (format csv)",
    csvChunks
  )
  yield* Console.log(`copyFrom: ${rowCount} rows`)

  const streamed = yield* pg
    .stream<{ amount: number }>(pg.sql`select amount from payments where day >= ${"2026-12-01"}::date`)
    .pipe(
      Stream.runFold(
        () => ({ rows: 0, sum: 0 }),
        (acc, row) => ({ rows: acc.rows + 1, sum: acc.sum + row.amount })
      )
    )
  const server = (yield* pg.query<{ n: number; s: number }>(
    "select count(*)::int as n, sum(amount)::int as s from payments"
  )).rows[0]!
  yield* check(
    "streamed rows and sum",
    streamed.rows === server.n && streamed.sum === server.s && server.n === rowCount
  )
  yield* Console.log(`stream: ${streamed.rows} rows, sum ${streamed.sum} (the server's sum: ${server.s})`)

  let bytes = 0
  let lines = 0
  yield* pg.copyTo("copy (select * from payments order by id) to stdout with (format csv, header)").pipe(
    Stream.runForEach((block) =>
      Effect.sync(() => {
        bytes += block.length
        for (const b of block) if (b === 10) lines++
      })
    )
  )
  yield* check("exported lines", lines === rowCount + 1)
  yield* Console.log(`copyTo: ${lines} lines (a header and every row), ${bytes} bytes`)

  const received = yield* Effect.scoped(
    Effect.gen(function* () {
      // Listening once this returns: nothing sent afterwards is missed.
      const notifications = yield* pg.listenScoped("payments")
      for (const id of [1, 2, 3]) yield* pg.notify("payments", JSON.stringify({ id }))
      return yield* notifications.pipe(Stream.take(3), Stream.runCollect)
    })
  )
  yield* check("notifications in order", received.map((n) => JSON.parse(n.payload).id).join() === "1,2,3")
  yield* Console.log(`listen: ${received.map((n) => n.payload).join(" ")}`)
})

export const run = (server: ServerInfo) =>
  program.pipe(Effect.provide(PgClient.layer({ url: server.url, max: 4 })))

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
