/**
 * Named prepared statements and rows as arrays: a statement prepared on a reserved connection and
 * described before it runs (its parameter types and result columns), executed by name, prepared
 * and executed again inside one pipeline segment, a declared cursor described, and `queryValues`
 * keeping two columns of the same name. Every figure is checked against the server.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@pgline/client"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect } from "effect"

export const title = "Named prepared statements, described cursors, rows as arrays"

const check = (what: string, ok: boolean) =>
  ok ? Effect.void : Effect.die(new Error(`example check failed: ${what}`))

const program = Effect.gen(function* () {
  const pg = yield* PgClient
  yield* pg.query("create table parts (id int primary key, name text not null, weight numeric)")

  yield* Effect.scoped(
    Effect.gen(function* () {
      const conn = yield* pg.reserve
      // Prepared and described before anything runs: what it takes, what it returns.
      const insert = yield* conn.prepare("insert into parts values ($1, $2, $3) returning id", {
        name: "add_part"
      })
      yield* check("parameter types", insert.parameterTypes.join() === "23,25,1700")
      yield* Console.log(
        `add_part takes OIDs ${insert.parameterTypes.join(", ")}, returns ${insert.fields.map((f) => f.name)}`
      )
      yield* insert.execute([1, "bolt", "0.05"])

      // In one pipeline segment: Parse of a new statement, then executions by name before it is answered.
      const counted = yield* conn.withPipeline((p) =>
        Effect.gen(function* () {
          yield* p.prepare("select count(*)::int as n from parts where weight < $1", { name: "lighter" })
          yield* p.executePrepared("add_part", [2, "nut", "0.01"])
          const n = yield* p.executePrepared<{ n: number }>("lighter", ["0.1"])
          yield* p.sync
          return (yield* n).rows[0]!.n
        })
      )
      yield* check("parts lighter than 0.1", counted === 2)
      yield* Console.log(`parts lighter than 0.1: ${counted}`)
      yield* insert.close
    })
  )

  // A cursor declared in a transaction, described before fetching.
  const columns = yield* pg.withTransaction(
    Effect.gen(function* () {
      yield* pg.query("declare heavy cursor for select name, weight from parts order by weight desc")
      return (yield* pg.describePortal("heavy")).map((f) => f.name)
    })
  )
  yield* check("cursor columns", columns.join() === "name,weight")
  yield* Console.log(`cursor heavy returns: ${columns.join(", ")}`)

  // Rows as arrays keep both columns called "name".
  const { rows } = yield* pg.queryValues("select p.name, q.name from parts p join parts q on q.id > p.id")
  yield* check("pairs", rows.length === 1 && rows[0]!.join() === "bolt,nut")
  yield* Console.log(`queryValues: ${JSON.stringify(rows)}`)
})

export const run = (server: ServerInfo) =>
  program.pipe(Effect.provide(PgClient.layer({ url: server.url, max: 2 })))

if (import.meta.main) {
  NodeRuntime.runMain(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
