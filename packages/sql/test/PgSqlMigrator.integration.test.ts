/**
 * effect/sql's Migrator on PgSql with migrations as SQL scripts (texts and .sql files) and as
 * effects: pending ones applied in order and recorded, nothing applied twice, and a failing
 * migration rolling back the whole run (its error typed, with the statement's SQLSTATE class).
 */
import { NodeServices } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import { PgSql, PgSqlMigrator } from "../src/index.ts"

/** A fresh database per test, so each sees an empty migrations table. */
let databases = 0
const database = Effect.gen(function* () {
  const info = yield* PgServer
  const name = `migrations_${process.pid}_${++databases}`
  const pg = Context.get(
    yield* Layer.build(PgSql.layer({ url: info.url, sslmode: "disable", max: 1 })),
    PgClient
  )
  yield* pg.query(`create database ${name}`)
  const url = new URL(info.url)
  url.pathname = `/${name}`
  return url.toString()
})

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "pgline-sql-migrations-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const applied = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{
      migration_id: number
      name: string
    }>`select migration_id, name from effect_sql_migrations order by migration_id`
)

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("PgSqlMigrator", (it) => {
  it.effect("script migrations run in order, once, and are recorded", () =>
    Effect.gen(function* () {
      const url = yield* database
      const scripts = {
        "2_add_email":
          "alter table users add column email text; create unique index users_email on users (email);",
        "1_create_users":
          "create table users (id serial primary key, name text not null); insert into users (name) values ('ann'), ('bob');"
      }
      const run = PgSqlMigrator.run({ loader: PgSqlMigrator.fromScripts(scripts) })
      const program = Effect.gen(function* () {
        const first = yield* run
        const again = yield* run
        const sql = yield* SqlClient.SqlClient
        const users = yield* sql<{
          name: string
          email: string | null
        }>`select name, email from users order by id`
        return { first, again, users, recorded: yield* applied }
      })
      const result = yield* program.pipe(Effect.provide(PgSql.layer({ url, sslmode: "disable" })))
      expect(result.first).toEqual([
        [1, "create_users"],
        [2, "add_email"]
      ])
      expect(result.again).toEqual([])
      expect(result.users).toEqual([
        { name: "ann", email: null },
        { name: "bob", email: null }
      ])
      expect(result.recorded).toEqual([
        { migration_id: 1, name: "create_users" },
        { migration_id: 2, name: "add_email" }
      ])
    })
  )

  it.effect(".sql files from a directory, beside an effect migration; other files ignored", () =>
    Effect.gen(function* () {
      const url = yield* database
      const dir = yield* tempDir
      writeFileSync(
        join(dir, "0001_accounts.sql"),
        "create table accounts (id int primary key, balance int);\n"
      )
      writeFileSync(join(dir, "0002_seed.sql"), "insert into accounts values (1, 100), (2, 50);\n")
      writeFileSync(join(dir, "README.md"), "not a migration")
      const program = Effect.gen(function* () {
        const fromFiles = yield* PgSqlMigrator.run({ loader: PgSqlMigrator.fromSqlFiles(dir) })
        // An effect migration after the scripts (effect/sql's own loader).
        const fromEffects = yield* PgSqlMigrator.run({
          loader: Migrator.fromRecord({
            "3_bonus": Effect.flatMap(
              SqlClient.SqlClient,
              (sql) => sql`update accounts set balance = balance + 1`
            )
          })
        })
        const sql = yield* SqlClient.SqlClient
        return { fromFiles, fromEffects, balances: yield* sql`select id, balance from accounts order by id` }
      })
      const result = yield* program.pipe(
        Effect.provide(Layer.merge(PgSql.layer({ url, sslmode: "disable" }), NodeServices.layer))
      )
      expect(result.fromFiles).toEqual([
        [1, "accounts"],
        [2, "seed"]
      ])
      expect(result.fromEffects).toEqual([[3, "bonus"]])
      expect(result.balances).toEqual([
        { id: 1, balance: 101 },
        { id: 2, balance: 51 }
      ])
    })
  )

  it.effect("a failing script rolls back the whole run: no table, nothing recorded", () =>
    Effect.gen(function* () {
      const url = yield* database
      const program = Effect.gen(function* () {
        const error = yield* Effect.flip(
          PgSqlMigrator.run({
            loader: PgSqlMigrator.fromScripts({
              "1_ok": "create table kept_only_if_all_pass (id int);",
              "2_broken":
                "insert into kept_only_if_all_pass values (1); insert into no_such_table values (1);"
            })
          })
        )
        const sql = yield* SqlClient.SqlClient
        const tables = yield* sql<{
          n: number
        }>`select count(*)::int as n from pg_tables where tablename = 'kept_only_if_all_pass'`
        const recorded = yield* sql<{ n: number }>`select count(*)::int as n from effect_sql_migrations`
        return { error, tables: tables[0]!.n, recorded: recorded[0]!.n }
      })
      const result = yield* program.pipe(Effect.provide(PgSql.layer({ url, sslmode: "disable" })))
      expect(result.tables).toBe(0)
      expect(result.recorded).toBe(0)
      expect(result.error._tag).toBe("MigrationError")
      const cause = (result.error as Migrator.MigrationError).cause as {
        reason: { _tag: string; cause: { _tag: string; index: number; error: { _tag: string } } }
      }
      expect(cause.reason._tag).toBe("SqlSyntaxError")
      expect(cause.reason.cause).toMatchObject({
        _tag: "ScriptFailed",
        index: 1,
        error: { _tag: "UndefinedTable" }
      })
    })
  )

  it.effect(
    "a script holding BEGIN/COMMIT is refused before anything runs, naming the migration; quoted ones are fine",
    () =>
      Effect.gen(function* () {
        const url = yield* database
        const program = Effect.gen(function* () {
          // BEGIN, END and COMMIT inside bodies, strings, identifiers and comments are no control.
          const first = yield* PgSqlMigrator.run({
            loader: PgSqlMigrator.fromScripts({
              "1_bodies": `create table notes (body text, "commit" int);
                create function touch() returns int language plpgsql as $$ begin return 1; end $$;
                create function atomic_one() returns int language sql begin atomic select 1; end;
                create function tagged() returns int language plpgsql as $función$ begin return 1; end; $función$;
                create function long_tag() returns int language plpgsql as $${"t".repeat(70)}$ begin return 2; end; $${"t".repeat(70)}$;
                insert into notes values ('begin; commit;', 1); -- commit;
                /* rollback; /* nested */ end; */ select 1;`
            })
          })
          // A psql-style file: the Migrator's transaction would be committed partway.
          const error = yield* Effect.flip(
            PgSqlMigrator.run({
              loader: PgSqlMigrator.fromScripts({
                "2_a": "BEGIN; create table a (x int); COMMIT;",
                "3_b": "create table b (x int);"
              })
            })
          )
          const sql = yield* SqlClient.SqlClient
          const tables = yield* sql<{
            tablename: string
          }>`select tablename from pg_tables where schemaname = 'public' order by 1`
          return { first, error, tables: tables.map((t) => t.tablename), recorded: yield* applied }
        })
        const result = yield* program.pipe(Effect.provide(PgSql.layer({ url, sslmode: "disable" })))
        expect(result.first).toEqual([[1, "bodies"]])
        expect(result.error).toBeInstanceOf(Migrator.MigrationError)
        expect(result.error.message).toContain("migration 2_a holds BEGIN")
        expect(result.tables).toEqual(["effect_sql_migrations", "notes"])
        expect(result.recorded).toEqual([{ migration_id: 1, name: "bodies" }])
      })
  )

  it.effect("a migration turning standard_conforming_strings off is refused: nothing can hide a COMMIT", () =>
    Effect.gen(function* () {
      const url = yield* database
      const program = Effect.gen(function* () {
        // With it off the server would end 'a\'' where the text check does not, so the COMMIT
        // would be hidden from the check: the setting is refused before anything runs.
        return yield* Effect.flip(
          PgSqlMigrator.run({
            loader: PgSqlMigrator.fromScripts({
              "1_off": "set standard_conforming_strings = off;",
              "2_hidden": "select 'a\\''; commit; select '';"
            })
          })
        )
      })
      const error = yield* program.pipe(Effect.provide(PgSql.layer({ url, sslmode: "disable" })))
      expect(error).toBeInstanceOf(Migrator.MigrationError)
      expect(error.message).toBe('Migration "1_off" failed')
      expect(String(((error as Migrator.MigrationError).cause as { message?: string }).message)).toContain(
        "standard_conforming_strings is OFF"
      )
    })
  )
})
