/**
 * effect/sql's Migrator on PgSql, with migrations written as SQL scripts: `fromSqlFiles(dir)`
 * reads `<id>_<name>.sql` files and `fromScripts({ "1_init": "…" })` takes texts; each runs with
 * pgline's `script` (the simple-query protocol: several statements, no parameters, like psql -f).
 * The Migrator runs every pending migration inside one transaction (it locks its table first), so
 * a script's statements join it and a failing one rolls back the whole run; a script must not
 * issue BEGIN/COMMIT itself. Effect migrations (effect/sql's `fromRecord`, `fromFileSystem`) work
 * the same with `run`. It does not dump the schema.
 */
import { PgClient } from "@pgline/client"
import { Effect, FileSystem, Path } from "effect"
import * as Migrator from "effect/sql/Migrator"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { toSqlError } from "./internal/errors.ts"

/** Runs the pending migrations (effect/sql's Migrator): the ids and names it applied. */
export const run: <R>(
  options: Migrator.MigratorOptions<R>
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient | R
> = Migrator.make({})

const NAME = /^(\d+)_(.+)\.sql$/

/** The migration that runs `text` as a script; a failing statement fails it with a SqlError. */
const scriptMigration = (pg: PgClient["Service"], text: string): Effect.Effect<void, SqlError> =>
  Effect.asVoid(Effect.mapError(pg.script(text), (e) => toSqlError(e, "migration")))

/** Migrations from texts keyed `<id>_<name>` (e.g. "0001_create_users"). */
export const fromScripts = (scripts: Record<string, string>): Migrator.Loader<PgClient> =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const migrations: Array<Migrator.ResolvedMigration> = []
    for (const [key, text] of Object.entries(scripts)) {
      const match = /^(\d+)_(.+)$/.exec(key)
      if (match === null)
        return yield* new Migrator.MigrationError({
          kind: "BadState",
          message: `migration key ${JSON.stringify(key)} is not <id>_<name>`
        })
      migrations.push([Number(match[1]), match[2]!, Effect.succeed(scriptMigration(pg, text))])
    }
    return migrations.sort((a, b) => a[0] - b[0])
  })

/** Migrations from the `<id>_<name>.sql` files of `directory` (other files are ignored). */
export const fromSqlFiles = (
  directory: string
): Migrator.Loader<PgClient | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const files = yield* Effect.mapError(
      fs.readDirectory(directory),
      (cause) => new Migrator.MigrationError({ kind: "Failed", cause, message: `cannot read ${directory}` })
    )
    const migrations: Array<Migrator.ResolvedMigration> = []
    for (const file of files) {
      const match = NAME.exec(file)
      if (match === null) continue
      const load = Effect.map(
        Effect.mapError(
          fs.readFileString(path.join(directory, file)),
          (cause) =>
            new Migrator.MigrationError({ kind: "ImportError", cause, message: `cannot read ${file}` })
        ),
        (text) => scriptMigration(pg, text)
      )
      migrations.push([Number(match[1]), match[2]!, load])
    }
    return migrations.sort((a, b) => a[0] - b[0])
  })
