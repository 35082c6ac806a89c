// quick-start.ts: npm install @pgline/client @pgline/testing effect, then node quick-start.ts
import { fileURLToPath } from "node:url"
import { PgClient } from "@pgline/client"
import { PgServer, type ServerInfo } from "@pgline/testing"
import { Console, Effect } from "effect"

export const title = "Quick start: a query, the sql template, a typed error"

export const run = (server: ServerInfo) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    yield* pg.query("create table users (id serial primary key, name text not null unique)")

    // Values are always bound as parameters ($1, $2, …), never spliced into the text.
    const name = "Ada"
    const inserted = yield* pg.sql<{ id: number }>`insert into users (name) values (${name}) returning id`
    yield* Console.log(`inserted ${name} with id ${inserted.rows[0]!.id}`)

    const { rows } = yield* pg.query<{ n: bigint }>("select count(*) as n from users where name = $1", [name])
    yield* Console.log(`users named ${name}: ${rows[0]!.n}`) // count(*) is int8: a bigint

    // Every server error is its own class, named after its SQLSTATE condition.
    const again = yield* pg.sql`insert into users (name) values (${name})`.pipe(
      Effect.as("inserted twice?"),
      Effect.catchTag("UniqueViolation", (e) => Effect.succeed(`refused: ${e.constraint} (${e.code})`))
    )
    yield* Console.log(again)
  }).pipe(
    // A pool of connections to the server; a connection string or explicit options.
    Effect.provide(PgClient.layer({ url: server.url, sslmode: "disable" }))
  )

// Run as a program: start a private PostgreSQL (embedded binaries from npm), run, stop it.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await Effect.runPromise(Effect.flatMap(PgServer, run).pipe(Effect.provide(PgServer.layer)))
}
