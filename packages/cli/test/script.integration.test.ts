/**
 * runScript beyond the golden scripts: \timing's `Time:` lines (their figures vary, so checked by
 * shape), \set listing and boolean checks, \q, a `-c` meta-command, an unterminated quoted
 * argument, COPY refused with a message, a script ending inside a pipeline (nothing committed, as
 * with psql), several actions with the last one deciding the exit status, a connection that
 * cannot be opened or that the server ends with a FATAL error (exit 2), notifications printed as
 * psql prints them, ON_ERROR_STOP set between actions and checked in variables,
 * standard_conforming_strings off, and an error's position in a later statement of a `\;` string.
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect, Logger } from "effect"
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
        expect(lost.stderr).toBe(
          "pgline:l.sql:2: FATAL:  terminating connection due to administrator command\n" +
            "pgline:l.sql:2: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n" +
            "pgline:l.sql:2: error: connection to server was lost\n"
        )
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

  it.effect(
    "a FATAL error (the session terminated) is a lost connection: -c, ON_ERROR_STOP and a pipeline end with 2",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const kill = "select pg_terminate_backend(pg_backend_pid())"
        const lost =
          "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n"
        const command = yield* runScript([{ command: kill }, { command: "select 2" }], { connection })
        expect(command).toEqual({
          exitCode: 2,
          stdout: "",
          stderr: `FATAL:  terminating connection due to administrator command\n${lost}connection to server was lost\n`
        })
        const stopping = yield* runScript([{ script: `${kill};\nselect 2;\n`, fileName: "s.sql" }], {
          connection,
          variables: { ON_ERROR_STOP: "1" }
        })
        expect(stopping.exitCode).toBe(2)
        expect(stopping.stderr).toContain("pgline:s.sql:1: error: connection to server was lost\n")
        const piped = yield* runScript(
          [
            {
              script: `\\startpipeline\n${kill} \\bind \\sendpipeline\n\\endpipeline\nselect 2;\n`,
              fileName: "p.sql"
            }
          ],
          { connection }
        )
        expect(piped.exitCode).toBe(2)
        expect(piped.stdout).toBe("")
        expect(piped.stderr).toContain("pgline:p.sql:3: error: connection to server was lost\n")
      })
  )

  it.effect(
    "notifications after LISTEN are printed as psql prints them, after the command they came with",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const result = yield* runScript(
          [{ script: "listen c;\nnotify c, 'x';\nbegin;\nnotify c;\nselect 1 as one;\ncommit;\n" }],
          { connection }
        )
        // The script's own backend sent them: its process id, whatever it is.
        const pid = /PID (\d+)\./.exec(result.stdout)?.[1]
        expect(Number(pid)).toBeGreaterThan(0)
        expect(result.stdout).toBe(
          [
            "LISTEN",
            "NOTIFY",
            `Asynchronous notification "c" with payload "x" received from server process with PID ${pid}.`,
            "BEGIN",
            "NOTIFY",
            " one ",
            "-----",
            "   1",
            "(1 row)",
            "",
            "COMMIT",
            `Asynchronous notification "c" received from server process with PID ${pid}.`,
            ""
          ].join("\n")
        )
        expect(result.stderr).toBe("")
        expect(result.exitCode).toBe(0)
        // A logger the caller installed still hears the client's log lines (only the default,
        // stdout logger is replaced): here a pipeline the script left open with an unread error.
        const heard: Array<unknown> = []
        const mine = Logger.make(({ message }) => {
          heard.push(message)
        })
        const open = yield* runScript([{ script: "\\startpipeline\nselect 1/0 \\bind \\sendpipeline\n" }], {
          connection
        }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([Logger.defaultLogger, mine])))
        expect(open.stdout).toBe("")
        expect(JSON.stringify(heard)).toContain("a pipeline closed with an error nobody read")
      })
  )

  it.effect(
    "ON_ERROR_STOP set by an earlier action stops the later ones; -v values are checked as \\set checks them",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const stopped = yield* runScript(
          [{ command: "\\set ON_ERROR_STOP on" }, { command: "select 1/0" }, { command: "select 2 as two" }],
          { connection }
        )
        expect(stopped).toEqual({ exitCode: 1, stdout: "", stderr: "ERROR:  division by zero\n" })
        const script = { script: "select 1/0;\nselect 2 as b;\n", fileName: "s.sql" }
        const empty = yield* runScript([script], { connection, variables: { ON_ERROR_STOP: "", QUIET: "" } })
        expect(empty).toEqual({
          exitCode: 3,
          stdout: "",
          stderr: "pgline:s.sql:1: ERROR:  division by zero\n"
        })
        const invalid = yield* runScript([script], { connection, variables: { ON_ERROR_STOP: "maybe" } })
        expect(invalid).toEqual({
          exitCode: 1,
          stdout: "",
          stderr: 'pgline: error: unrecognized value "maybe" for "ON_ERROR_STOP": Boolean expected\n'
        })
      })
  )

  it.effect(
    "standard_conforming_strings off is refused, nothing sent; an E'…' string's backslash escapes a quote",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const result = yield* runScript(
          [
            {
              script:
                "set standard_conforming_strings = off;\nselect E'O\\'Brien' as name, 'a\\' as b;\n\\echo after\n",
              fileName: "s.sql"
            }
          ],
          { connection, quiet: true, format: "unaligned", tuplesOnly: true }
        )
        expect(result.exitCode).toBe(0)
        expect(result.stdout).toBe("O'Brien|a\\\nafter\n")
        expect(result.stderr).toContain("pgline:s.sql:1: ")
        expect(result.stderr).toContain("standard_conforming_strings is OFF")
      })
  )

  it.effect(
    "an error in a later statement of a \\; string has its LINE and caret; an error sets ROW_COUNT to 0",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const result = yield* runScript(
          [
            {
              script:
                "select 1 from generate_series(1, 3);\nselect 1 as a \\; select bad4;\n\\echo :ROW_COUNT :ERROR\n",
              fileName: "m.sql"
            }
          ],
          { connection, format: "unaligned", tuplesOnly: true }
        )
        expect(result.stdout).toBe("1\n1\n1\n1\n0 true\n")
        expect(result.stderr).toBe(
          'pgline:m.sql:2: ERROR:  column "bad4" does not exist\nLINE 1: select 1 as a ; select bad4;\n                               ^\n'
        )
      })
  )

  it.effect(
    "SET client_encoding other than UTF8 is refused and the script goes on; any DateStyle and extra_float_digits print",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const result = yield* runScript(
          [
            {
              script:
                "set client_encoding = 'LATIN1';\nset datestyle = 'German';\nset intervalstyle = 'sql_standard';\nset extra_float_digits = 0;\nselect '2024-05-01'::date as d, interval '1 day 2 hours' as i, 1.2345678901234567::float8 as f;\n"
            }
          ],
          { connection: `${info.url}?sslmode=disable` }
        )
        expect(result.exitCode).toBe(0)
        expect(result.stderr).toContain("refused (nothing was sent): client_encoding is LATIN1")
        // What psql prints for the same statements.
        expect(result.stdout).toBe(
          "SET\nSET\nSET\n     d      |     i     |        f         \n------------+-----------+------------------\n 01.05.2024 | 1 2:00:00 | 1.23456789012346\n(1 row)\n\n"
        )
      })
  )

  it.effect(
    "named statements in pipelines: a failed \\parse frees the name, and \\bind_named runs what the server has",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const connection = `${info.url}?sslmode=disable`
        const script = [
          // A \\parse that fails leaves the name to an SQL PREPARE, which \\bind_named then runs.
          "\\startpipeline",
          "selec 1 \\parse s4",
          "\\endpipeline",
          "prepare s4 as select 5 as five;",
          "\\startpipeline",
          "\\bind_named s4 \\sendpipeline",
          "\\endpipeline",
          // DEALLOCATE frees the name on the server: the new \\parse's statement is the one bound.
          "select 1::int4 as a \\parse s2",
          "\\startpipeline",
          "deallocate s2;",
          "\\syncpipeline",
          "select 'hello'::text as b, 2 as c \\parse s2",
          "\\bind_named s2 \\sendpipeline",
          "\\endpipeline",
          // A name \\parse'd again after a sync, its first \\parse (which fails) not yet answered.
          "\\startpipeline",
          "selec 1 \\parse s6",
          "\\syncpipeline",
          "select 6 as six \\parse s6",
          "\\bind_named s6 \\sendpipeline",
          "\\endpipeline",
          // A \\parse of a taken name fails (42P05); bound in a later segment, as psql's Bind by name,
          // the name runs the statement the server has: the first.
          "\\startpipeline",
          "select 1 as one \\parse s1",
          "\\syncpipeline",
          "select 2 as two \\parse s1",
          "\\syncpipeline",
          "\\bind_named s1 \\sendpipeline",
          "\\endpipeline",
          // The same pipeline: a failed \\parse, then an SQL PREPARE of its name, then \\bind_named.
          "\\startpipeline",
          "selec 1 \\parse s7",
          "\\syncpipeline",
          "prepare s7 as select 7 as seven;",
          "\\bind_named s7 \\sendpipeline",
          "\\endpipeline",
          // An SQL DEALLOCATE (or DEALLOCATE ALL) drops a \\parse'd statement, an SQL PREPARE takes its
          // name: \\bind_named runs the new one, in a pipeline too.
          "select 1::int4 as a \\parse s8",
          "deallocate s8;",
          "prepare s8 as select 'abcd'::text as z, 2 as y;",
          "\\bind_named s8 \\g",
          "\\startpipeline",
          "select 1::int4 as a \\parse s9",
          "\\syncpipeline",
          "\\getresults",
          "deallocate all;",
          "\\syncpipeline",
          "prepare s9 as select 'abcd'::text as z, 2 as y;",
          "\\syncpipeline",
          "\\bind_named s9 \\sendpipeline",
          "\\endpipeline",
          // A \\close_prepared after a \\parse not yet read: the name is free for an SQL PREPARE.
          "\\startpipeline",
          "select 1::int4 as a \\parse s10",
          "\\close_prepared s10",
          "\\endpipeline",
          "prepare s10 as select 'efgh'::text as a;",
          "\\bind_named s10 \\g",
          "\\startpipeline",
          "\\bind_named s10 \\sendpipeline",
          "\\endpipeline",
          ""
        ].join("\n")
        const r = yield* runScript([{ script, fileName: "n.sql" }], {
          connection,
          quiet: true,
          format: "unaligned",
          tuplesOnly: true
        })
        expect(r.stdout).toBe("5\nhello|2\n6\n1\n7\nabcd|2\nabcd|2\nefgh\nefgh\n")
        expect(r.stderr.match(/syntax error at or near "selec"/g)).toHaveLength(3)
        expect(r.stderr.match(/prepared statement "s1" already exists/g)).toHaveLength(1)
        expect(r.stderr).not.toContain("lost")
        expect(r.exitCode).toBe(0)
      })
  )
})
