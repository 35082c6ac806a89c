/**
 * Golden scripts: each test/golden/<case>.sql runs through runScript on a fresh database, and its
 * standard output, error stream and exit status must equal <case>.stdout, <case>.stderr and
 * <case>.code byte for byte. Those files are what psql 18.6 printed for the same script, options
 * and server (PostgreSQL 18), with psql's `psql:` message prefix written `pgline:`, and three
 * corrections where psql 18.6 misbehaves: a libpq error text that psql prints again with every
 * later failure (its error buffer is not cleared) is printed once; \flush succeeds; and with
 * ON_ERROR_STOP a pipeline error read by \endpipeline stops the script with status 3, as psql's
 * documentation says (psql 18.6 forgets the error when it reads the final sync and goes on, so
 * import_stop's expected output is psql's cut at that point).
 *
 * Together the scripts run every meta-command pgline implements, in and out of pipelines, with
 * the error cases: a failing statement and the silently skipped rest of its segment, an aborted
 * result read first, misuse of \g, \sendpipeline, \syncpipeline, \endpipeline and \getresults,
 * an unknown command, a duplicate key in the import pattern (COMMIT answered ROLLBACK), and
 * ON_ERROR_STOP stopping a script (exit 3).
 */
import { expect, layer } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Effect, Layer } from "effect"
import { runScript, type ScriptOptions } from "../src/index.ts"

const here = join(dirname(fileURLToPath(import.meta.url)), "golden")

interface Case {
  readonly name: string
  readonly script: string
  readonly options: Omit<ScriptOptions, "connection">
  /** What the database holds afterwards. */
  readonly after?: { readonly sql: string; readonly rows: ReadonlyArray<Record<string, unknown>> }
}

const cases: ReadonlyArray<Case> = [
  { name: "basics", script: "basics.sql", options: {} },
  {
    name: "basics_quiet_unaligned",
    script: "basics.sql",
    options: { quiet: true, format: "unaligned", tuplesOnly: true }
  },
  { name: "pipeline", script: "pipeline.sql", options: {} },
  {
    name: "pipeline_unaligned",
    script: "pipeline.sql",
    options: { format: "unaligned", fieldSeparator: "," }
  },
  { name: "pipeline_errors", script: "pipeline_errors.sql", options: {} },
  { name: "import", script: "import.sql", options: {} },
  {
    name: "import_stop",
    script: "import.sql",
    options: { variables: { ON_ERROR_STOP: "1" } },
    // Stopped after \endpipeline read the duplicate key: COMMIT never ran, nothing was imported.
    after: { sql: "select count(*)::int as n from strict", rows: [{ n: 0 }] }
  },
  { name: "stop", script: "stop.sql", options: { variables: { ON_ERROR_STOP: "1" } } }
]

/** A fresh database on the test server for one case (its tables do not meet another case's). */
const databaseUrl = (name: string) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    const admin = Context.get(
      yield* Layer.build(PgClient.layer({ url: info.url, sslmode: "disable", max: 1 })),
      PgClient
    )
    yield* admin.query(`drop database if exists golden_${name}`)
    yield* admin.query(`create database golden_${name}`)
    const url = new URL(info.url)
    url.pathname = `/golden_${name}`
    url.searchParams.set("sslmode", "disable")
    return url.toString()
  })

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })(
  "pgline scripts against psql 18's output",
  (it) => {
    for (const c of cases) {
      it.effect(`${c.name}: ${c.script} ${JSON.stringify(c.options)}`, () =>
        Effect.gen(function* () {
          const url = yield* databaseUrl(c.name)
          const result = yield* runScript(
            [{ script: readFileSync(join(here, c.script), "utf8"), fileName: c.script }],
            {
              ...c.options,
              connection: url
            }
          )
          expect(result.stderr).toBe(readFileSync(join(here, `${c.name}.stderr`), "utf8"))
          expect(result.stdout).toBe(readFileSync(join(here, `${c.name}.stdout`), "utf8"))
          expect(result.exitCode).toBe(Number(readFileSync(join(here, `${c.name}.code`), "utf8").trim()))
          if (c.after !== undefined) {
            const pg = Context.get(yield* Layer.build(PgClient.layer({ url, max: 1 })), PgClient)
            expect((yield* pg.query(c.after.sql)).rows).toEqual(c.after.rows)
          }
        })
      )
    }
  }
)
