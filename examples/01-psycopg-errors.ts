/**
 * The pipeline error example from psycopg's documentation, in pgline: a failing statement aborts
 * the rest of its segment (up to the sync point), the next segment runs normally.
 *
 *   insert "one" · insert into no_such_table · insert "three" · sync · insert "four"
 *
 * Expected: UndefinedTable for the second statement, PipelineAborted for "three", the first
 * segment rolled back as one implicit transaction (so the table holds only "four"), and "one"
 * having consumed sequence value 1 (sequences are not transactional), so "four" gets id 2.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect } from "effect"

export const title = "Pipeline errors: a failed statement aborts its segment only"

export const run = (server: ServerInfo) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    yield* pg.query("create table pipeline_demo (id serial primary key, data text)")

    const handles = yield* Effect.scoped(
      Effect.gen(function* () {
        const p = yield* pg.pipeline
        const one = yield* p.execute(pg.sql`insert into pipeline_demo (data) values (${"one"})`)
        const bad = yield* p.execute(pg.sql`insert into no_such_table (data) values (${"two"})`)
        const three = yield* p.execute(pg.sql`insert into pipeline_demo (data) values (${"three"})`)
        // The sync point: the segment above ends here. Its error surfaces on the handle we read below.
        const synced = yield* Effect.exit(p.sync)
        const four = yield* p.execute(pg.sql`insert into pipeline_demo (data) values (${"four"})`)
        return { one, bad, three, synced, four }
        // Closing the scope syncs the last segment and drains the connection.
      })
    )

    const describe = <A, E extends { _tag: string }>(e: Effect.Effect<A, E>) =>
      Effect.match(e, { onFailure: (err) => `failed with ${err._tag}`, onSuccess: () => "ran" })
    yield* Console.log(
      `  insert "one":               ${yield* describe(handles.one)} (then rolled back with its segment)`
    )
    yield* Console.log(
      `  insert into no_such_table:  ${yield* handles.bad.pipe(
        Effect.as("ran"),
        Effect.catchTag("UndefinedTable", (e) => Effect.succeed(`UndefinedTable: ${e.message}`))
      )}`
    )
    yield* Console.log(
      `  insert "three":             ${yield* handles.three.pipe(
        Effect.as("ran"),
        Effect.catchTag("PipelineAborted", (e) =>
          Effect.succeed(`PipelineAborted (statement ${e.index} failed with ${e.failedTag})`)
        )
      )}`
    )
    yield* Console.log(
      `  sync:                       ${handles.synced._tag === "Failure" ? "reported the segment's error" : "ok"}`
    )
    yield* Console.log(`  insert "four":              ${yield* describe(handles.four)}`)
    const rows = (yield* pg.query<{ id: number; data: string }>(
      "select id, data from pipeline_demo order by id"
    )).rows
    yield* Console.log(`  table now holds: ${rows.map((r) => `(${r.id}, ${r.data})`).join(", ")}`)
  }).pipe(Effect.provide(PgClient.layer({ url: server.url, sslmode: "disable" })))

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
