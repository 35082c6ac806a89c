/**
 * runScript beyond the golden scripts: \timing's `Time:` lines (their figures vary, so checked by
 * shape), \set listing and boolean checks, \q, a `-c` meta-command, an unterminated quoted
 * argument, COPY refused with a message, a script ending inside a pipeline (nothing committed, as
 * with psql), several actions with the last one deciding the exit status, and a connection that
 * cannot be opened (exit 2).
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { runScript } from "../src/index.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("runScript", (it) => {
  it.effect(
    "\\timing prints a Time line after each statement; \\set lists and checks; \\q ends the script",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const timed = yield* runScript(
          [{ script: "\\timing on\nselect 1 as one;\n\\timing off\nselect 2 as two;\n" }],
          {
            connection
          }
        )
        expect(timed.stdout).toMatch(
          /^Timing is on\.\n one \n-----\n {3}1\n\(1 row\)\n\nTime: \d+\.\d{3} ms\nTiming is off\.\n two \n-----\n {3}2\n\(1 row\)\n\n$/
        )
        const vars = yield* runScript(
          [
            {
              script: "\\set b x y 'z w'\n\\echo :b\n\\set ON_ERROR_STOP maybe\n\\q\nselect 'not reached';\n",
              fileName: "v.sql"
            }
          ],
          { connection, variables: { a: "1" } }
        )
        expect(vars.stdout).toBe("xyz w\n")
        expect(vars.stderr).toBe(
          'pgline:v.sql:3: error: unrecognized value "maybe" for "ON_ERROR_STOP": Boolean expected\n'
        )
        expect(vars.exitCode).toBe(0)
        const listed = yield* runScript([{ command: "\\set" }], { connection, variables: { zz: "last" } })
        expect(listed.stdout).toContain("PIPELINE_SYNC_COUNT = '0'\n")
        expect(listed.stdout.trimEnd().split("\n").at(-1)).toBe("zz = 'last'")
      })
  )

  it.effect("errors of the reader and of unsupported statements are reported; the script goes on", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const connection = `${info.url}?sslmode=disable`
      const result = yield* runScript(
        [
          {
            script: "\\echo 'open\nselect 1 as a;\ncopy (select 1) to stdout;\nselect 2 as b;\n",
            fileName: "e.sql"
          }
        ],
        { connection, format: "unaligned", tuplesOnly: true }
      )
      expect(result.stdout).toBe("1\n2\n")
      expect(result.stderr).toBe(
        "pgline:e.sql:1: error: unterminated quoted string\npgline:e.sql:3: error: COPY FROM STDIN / TO STDOUT is not supported by pgline scripts\n"
      )
      expect(result.exitCode).toBe(0)
    })
  )

  it.effect(
    "a script ending inside a pipeline commits nothing; the last action decides the exit status",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const open = yield* runScript(
          [
            { command: "create table unsynced (v int)" },
            { script: "\\startpipeline\ninsert into unsynced values (1);\n" },
            { command: "select count(*) from unsynced" }
          ],
          { connection, format: "unaligned", tuplesOnly: true, quiet: true }
        )
        expect(open).toEqual({ exitCode: 0, stdout: "0\n", stderr: "" })
        const lastFails = yield* runScript([{ command: "select 1" }, { command: "select 1/0" }], {
          connection,
          quiet: true
        })
        expect(lastFails.exitCode).toBe(1)
        const lastWorks = yield* runScript([{ command: "select 1/0" }, { command: "select 1" }], {
          connection,
          quiet: true
        })
        expect(lastWorks.exitCode).toBe(0)
        const noServer = yield* runScript([{ command: "select 1" }], {
          connection: "postgres://x@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"
        })
        expect(noServer.exitCode).toBe(2)
        expect(noServer.stderr).toMatch(/^pgline: error: /)
      })
  )
  it.effect(
    "a lost connection ends the script with status 2; zero columns and no rows print SELECT 0; extra \\bind values are refused",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const lost = yield* runScript(
          [
            {
              script: "select 1 as one;\nselect pg_terminate_backend(pg_backend_pid());\nselect 2 as two;\n",
              fileName: "l.sql"
            }
          ],
          { connection }
        )
        expect(lost.exitCode).toBe(2)
        expect(lost.stderr).toContain("pgline:l.sql:3: error: connection to server was lost")
        expect(lost.stdout).not.toContain("two")
        const zero = yield* runScript([{ script: "select from pg_class where false;\n" }], { connection })
        expect(zero.stdout.startsWith("SELECT 0\n")).toBe(true)
        const extra = yield* runScript(
          [{ script: "select $1::int as a \\bind 1 2 \\g\nselect 3 as c;\n", fileName: "x.sql" }],
          { connection }
        )
        expect(extra.stderr).toContain(
          "2 parameter values given to a statement whose highest placeholder is $1"
        )
        // Refused before sending: the next statement runs normally.
        expect(extra.stdout).toContain(" c \n---\n 3\n")
        expect(extra.exitCode).toBe(0)
      })
  )
})
