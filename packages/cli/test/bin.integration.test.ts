/**
 * The `pgline` command as a process: connection settings from a URL, from -h/-p/-U/-d with the
 * password in PGPASSWORD, actions in command-line order, a script on standard input, and psql's
 * exit statuses (1 for a failed -c or a missing file, 2 for no server, 3 when ON_ERROR_STOP stops
 * a script); a missing file failing only its action, attached short-option values, `--`, and a
 * URL's settings winning over -h/-p/-U. Runs the TypeScript entry with Node 24 (the consumer test runs the built one).
 */
import { execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "bin.ts")

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the command with `args` (and `input` on standard input), PG* variables from `env` only. */
const pgline = (args: ReadonlyArray<string>, env: Record<string, string> = {}, input = "") =>
  Effect.promise(
    () =>
      new Promise<Ran>((resolve) => {
        const clean: NodeJS.ProcessEnv = {}
        for (const [k, v] of Object.entries(process.env))
          if (!k.startsWith("PG") && k !== "NODE_OPTIONS") clean[k] = v
        const child = execFile(
          process.execPath,
          ["--conditions=@pgline/source", bin, ...args],
          { env: { ...clean, ...env }, timeout: 60_000 },
          (error, stdout, stderr) =>
            resolve({
              code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
              stdout,
              stderr
            })
        )
        child.stdin?.end(input)
      })
  )

const tempScript = (text: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(join(tmpdir(), "pgline-cli-"))
      writeFileSync(join(dir, "script.sql"), text)
      return dir
    }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.map((dir) => join(dir, "script.sql")))

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("the pgline command", (it) => {
  it.effect(
    "runs -c with a URL, unaligned rows only; -h -p -U -d with PGPASSWORD; a script on standard input",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const url = `${info.url}?sslmode=disable`
        const a = yield* pgline(["-X", "-A", "-t", "-c", "select 40 + 2 as answer, 'x' as y", url])
        expect(a).toEqual({ code: 0, stdout: "42|x\n", stderr: "" })
        const b = yield* pgline(
          [
            "-h",
            info.host,
            "-p",
            String(info.port),
            "-U",
            info.user,
            "-d",
            info.database,
            "-At",
            "-c",
            "select current_user"
          ],
          { PGPASSWORD: info.password, PGSSLMODE: "disable" }
        )
        expect(b).toEqual({ code: 0, stdout: `${info.user}\n`, stderr: "" })
        const c = yield* pgline(["-X", "-q", url], {}, "\\set n 7\nselect :n * 6 as v;\n")
        expect(c).toEqual({ code: 0, stdout: " v  \n----\n 42\n(1 row)\n\n", stderr: "" })
      })
  )

  it.effect(
    "exit statuses: 1 for a failed -c or a missing file, 2 without a server, 3 when ON_ERROR_STOP stops",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const url = `${info.url}?sslmode=disable`
        const failedCommand = yield* pgline(["-X", "-c", "select 1/0", url])
        expect(failedCommand).toEqual({ code: 1, stdout: "", stderr: "ERROR:  division by zero\n" })
        const missing = yield* pgline(["-X", "-f", "no-such-file.sql", url])
        expect(missing.code).toBe(1)
        expect(missing.stderr).toContain("no-such-file.sql: No such file or directory")
        const noServer = yield* pgline([
          "-X",
          "-c",
          "select 1",
          "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=5"
        ])
        expect(noServer.code).toBe(2)
        expect(noServer.stderr).toMatch(/^pgline: error: /)
        const script = yield* tempScript("select 1 as one;\nselect * from no_such_table;\nselect 2 as two;\n")
        const stopped = yield* pgline([
          "-X",
          "-v",
          "ON_ERROR_STOP=1",
          "-f",
          script,
          "-c",
          "select 9 as nine",
          url
        ])
        expect(stopped.code).toBe(3)
        expect(stopped.stdout).toBe(" one \n-----\n   1\n(1 row)\n\n")
        expect(stopped.stderr).toBe(
          `pgline:${script}:2: ERROR:  relation "no_such_table" does not exist\nLINE 1: select * from no_such_table;\n                      ^\n`
        )
        // Without ON_ERROR_STOP every action runs and the last one decides.
        const goesOn = yield* pgline(["-X", "-At", "-f", script, "-c", "select 9", url])
        expect(goesOn.code).toBe(0)
        expect(goesOn.stdout).toBe("1\n2\n9\n")
      })
  )

  it.effect("standard output closed by its reader: a quiet exit with status 1, no stack trace", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const ran = yield* Effect.promise(
        () =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(
              process.execPath,
              [
                "--conditions=@pgline/source",
                bin,
                "-X",
                "-c",
                "select repeat('x', 100) from generate_series(1, 200000)",
                info.url
              ],
              { env: { ...process.env, NODE_OPTIONS: "" }, stdio: ["ignore", "pipe", "pipe"] }
            )
            let stderr = ""
            child.stderr.on("data", (d) => {
              stderr += d
            })
            // Like `| head -1`: read the first chunk, then close the pipe.
            child.stdout.once("data", () => child.stdout.destroy())
            child.on("exit", (code) => resolve({ code, stderr }))
          })
      )
      expect(ran).toEqual({ code: 1, stderr: "" })
    })
  )

  it.effect("--help lists the pipeline meta-commands; an unknown option is refused", () =>
    Effect.gen(function* () {
      const help = yield* pgline(["--help"])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("\\startpipeline")
      const bad = yield* pgline(["--no-such-option"])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain('unrecognized option "--no-such-option"')
    })
  )

  it.effect("a missing -f file fails only its own action: the others run, ON_ERROR_STOP stops there", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const url = `${info.url}?sslmode=disable`
      const args = ["-At", "-c", "select 1", "-f", "/no/such/file.sql", "-c", "select 2", url]
      const goesOn = yield* pgline(["-X", ...args])
      expect(goesOn).toEqual({
        code: 0,
        stdout: "1\n2\n",
        stderr: "/no/such/file.sql: No such file or directory\n"
      })
      const stops = yield* pgline(["-X", "-v", "ON_ERROR_STOP=1", ...args])
      expect(stops).toEqual({
        code: 1,
        stdout: "1\n",
        stderr: "/no/such/file.sql: No such file or directory\n"
      })
    })
  )

  it.effect("short options take attached values of any kind; -- ends the options", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const url = `${info.url}?sslmode=disable`
      const script = yield* tempScript("select 3;\n")
      const attached = yield* pgline(["-X", "-At", "-F,", "-c", "select 1, 2", `-f${script}`, url])
      expect(attached).toEqual({ code: 0, stdout: "1,2\n3\n", stderr: "" })
      const ended = yield* pgline(["-X", "-At", "-c", "select 4", "--", url])
      expect(ended).toEqual({ code: 0, stdout: "4\n", stderr: "" })
    })
  )

  it.effect("the URL beats -h -p -U; positionals are the database, the user, then extra ones ignored", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const url = `${info.url}?sslmode=disable`
      // The URL names the server and user, so the wrong -h, -p and -U give way to it, as in psql.
      const wins = yield* pgline([
        "-X",
        "-At",
        "-p1",
        "-h127.0.0.2",
        "-Unobody",
        "-c",
        "select current_user",
        url
      ])
      expect(wins).toEqual({ code: 0, stdout: `${info.user}\n`, stderr: "" })
      const positional = yield* pgline(["-X", "-At", "-c", "select 4", url, "someone", "extra"])
      expect(positional).toEqual({
        code: 0,
        stdout: "4\n",
        stderr: 'pgline: warning: extra command-line argument "extra" ignored\n'
      })
    })
  )
})
