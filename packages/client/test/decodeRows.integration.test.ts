/**
 * Optional Schema decoding of rows: matching rows are decoded (and transformed) by the schema, a
 * row that does not fit fails with RowSchemaError naming it, and the statement's own errors pass
 * through untouched.
 */
import { expect, layer } from "@effect/vitest"
import { decodeRows, PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Layer, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, name: Schema.String })

const client = Layer.unwrap(
  Effect.map(PgServer, (info) => PgClient.layer({ url: info.url, sslmode: "disable" }))
).pipe(Layer.provide(PgServer.layer))

layer(client, { timeout: 60_000 })("decodeRows", (it) => {
  it.effect("decodes every row with the schema", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const users =
        yield* pg.sql`select * from (values (1, 'ada'), (2, 'grace')) as t(id, name) order by id`.pipe(
          decodeRows(User)
        )
      expect(users).toEqual([
        { id: 1, name: "ada" },
        { id: 2, name: "grace" }
      ])
    })
  )

  it.effect("fails with RowSchemaError naming the first row that does not fit", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const error = yield* Effect.flip(
        pg.sql`select * from (values (1, 'ada'), (2, null)) as t(id, name) order by id`.pipe(decodeRows(User))
      )
      expect(error._tag).toBe("RowSchemaError")
      expect(error._tag === "RowSchemaError" && error.row).toBe(1)
    })
  )

  it.effect("lets the statement's server error through", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const error = yield* Effect.flip(pg.sql`select * from no_such_table`.pipe(decodeRows(User)))
      expect(error._tag).toBe("UndefinedTable")
    })
  )
})
