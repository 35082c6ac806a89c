/**
 * effect/sql's Migrator on PgSql, with migrations written as SQL scripts: `fromSqlFiles(dir)`
 * reads `<id>_<name>.sql` files and `fromScripts({ "1_init": "…" })` takes texts; each runs with
 * pgline's `script` (the simple-query protocol: several statements, no parameters, like psql -f).
 * The Migrator runs every pending migration inside one transaction (it locks its table first), so
 * a script's statements join it and a failing one rolls back the whole run. A script must not end
 * that transaction: one holding BEGIN/COMMIT/ROLLBACK (psql-style files wrapped in BEGIN; … COMMIT;)
 * is refused before anything runs, and a script that ended the transaction anyway (SQL it builds
 * itself) fails its migration. Effect migrations (effect/sql's `fromRecord`, `fromFileSystem`)
 * work the same with `run`. It does not dump the schema.
 */
import { PgClient } from "@pgline/client"
import { Effect, FileSystem, Option, Path } from "effect"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { toSqlError } from "./internal/errors.ts"
import { transactionControlIn } from "./internal/script.ts"

/** Runs the pending migrations (effect/sql's Migrator): the ids and names it applied. */
export const run: <R>(
  options: Migrator.MigratorOptions<R>
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient | R
> = Migrator.make({})

const NAME = /^(\d+)_(.+)\.sql$/

const currentXid = (pg: PgClient["Service"]): Effect.Effect<string, SqlError> =>
  Effect.mapBoth(pg.query<{ xid: string }>("select txid_current()::text as xid"), {
    onFailure: (e) => toSqlError(e, "migration"),
    onSuccess: (r) => r.rows[0]!.xid
  })

/**
 * The migration `migration` ("<id>_<name>") that runs `text` as a script; a failing statement fails
 * it with a SqlError. Inside a transaction of the SqlClient (the Migrator's) the transaction's id
 * before and after tells whether the script ended it: then the migration fails, since what the
 * Migrator recorded before it may already be committed.
 */
const scriptMigration = (
  pg: PgClient["Service"],
  migration: string,
  text: string
): Effect.Effect<void, SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const script = Effect.mapError(pg.script(text), (e) => toSqlError(e, "migration"))
    if (Option.isNone(yield* Effect.serviceOption(sql.transactionService)))
      return yield* Effect.asVoid(script)
    const before = yield* currentXid(pg)
    yield* script
    const after = yield* currentXid(pg)
    if (after !== before)
      return yield* new Migrator.MigrationError({
        kind: "BadState",
        message: `migration ${migration} ended the Migrator's transaction (it committed or rolled back): what the Migrator recorded before it may be committed; check the migrations table, and remove the transaction control from the script`
      })
  })

/** `text` as the migration `migration`, refused when it holds transaction control. */
const loadScript = (
  pg: PgClient["Service"],
  migration: string,
  text: string
): Effect.Effect<
  Effect.Effect<void, SqlError | Migrator.MigrationError, SqlClient.SqlClient>,
  Migrator.MigrationError
> => {
  const control = transactionControlIn(text)
  return control === undefined
    ? Effect.succeed(scriptMigration(pg, migration, text))
    : Effect.fail(
        new Migrator.MigrationError({
          kind: "ImportError",
          message: `migration ${migration} holds ${control}: the Migrator runs every pending migration in one transaction, which a script must not end or begin (remove BEGIN/COMMIT/ROLLBACK from it)`
        })
      )
}

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
      // Checked when the Migrator loads it, so only pending migrations, before anything runs.
      migrations.push([Number(match[1]), match[2]!, Effect.suspend(() => loadScript(pg, key, text))])
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
      const load = Effect.flatMap(
        Effect.mapError(
          fs.readFileString(path.join(directory, file)),
          (cause) =>
            new Migrator.MigrationError({ kind: "ImportError", cause, message: `cannot read ${file}` })
        ),
        (text) => loadScript(pg, file, text)
      )
      migrations.push([Number(match[1]), match[2]!, load])
    }
    return migrations.sort((a, b) => a[0] - b[0])
  })
