/**
 * `runScript`: runs psql-style SQL scripts (statements, psql 18's pipeline meta-commands, \set,
 * \echo, \timing) against a PostgreSQL server from Effect code, with the output, error stream and
 * exit status psql would give. The `pgline` command is this plus argument parsing.
 *
 * It opens its own connection for the run (one session, like psql: a script's SET, PREPARE and
 * temporary tables last until it ends), with results as the server's text so that values print
 * exactly as psql prints them. It does not read psqlrc files and has no interactive mode.
 */
import { readFileSync } from "node:fs"
import { TypeRegistry } from "@pgline/codec"
import { PgClient, type PgClientOptions } from "@pgline/client"
import { Effect, Exit, Logger } from "effect"
import type { PrintSettings } from "./internal/format.ts"
import { checkVariable, EXIT_BADCONN, EXIT_FAILURE, EXIT_SUCCESS, Session } from "./internal/session.ts"

/**
 * One thing to run, in order: SQL given inline (`-c`), a script's text (named for error messages),
 * or a script file (`-f`; `-` is standard input), read when its turn comes.
 */
export type ScriptAction =
  | { readonly command: string }
  | { readonly script: string; readonly fileName?: string }
  | { readonly file: string }

export interface ScriptOptions {
  /** Where to connect (a URL or libpq settings; PG* variables fill in the rest as everywhere in pgline). */
  readonly connection?: Exclude<PgClientOptions, string> | string
  /**
   * Variables set before the first action (`-v name=value`), e.g. `{ ON_ERROR_STOP: "1" }`;
   * ON_ERROR_STOP and QUIET are checked as \set checks them (empty is on, an invalid value ends
   * the run with status 1 before it connects).
   */
  readonly variables?: Readonly<Record<string, string>>
  /** `-q`: no command tags or informational messages. */
  readonly quiet?: boolean
  /** Output format: aligned (default) or unaligned (`-A`), tuples only (`-t`), the field separator (`-F`). */
  readonly format?: "aligned" | "unaligned"
  readonly tuplesOnly?: boolean
  readonly fieldSeparator?: string
  /** Receives standard output as it is produced (collected into the result otherwise). */
  readonly stdout?: (text: string) => void
  /** Receives the error stream as it is produced (collected into the result otherwise). */
  readonly stderr?: (text: string) => void
}

export interface ScriptResult {
  /** psql's exit status: 0 success, 1 a failed `-c` (or the tool's own failure), 2 connection failure, 3 ON_ERROR_STOP stopped a script. */
  readonly exitCode: number
  /** What was written to standard output, when no `stdout` writer was given. */
  readonly stdout: string
  /** What was written to the error stream, when no `stderr` writer was given. */
  readonly stderr: string
}

const errnoText: Readonly<Record<string, string>> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EISDIR: "Is a directory"
}

/** A `-f` file's text, or undefined after saying why it cannot be read (psql's wording). */
const readScript = (
  file: string,
  err: (text: string) => void
): { readonly script: string; readonly fileName: string } | undefined => {
  try {
    return {
      script: readFileSync(file === "-" ? 0 : file, "utf8"),
      fileName: file === "-" ? "<stdin>" : file
    }
  } catch (e) {
    const error = e as NodeJS.ErrnoException
    err(`${file}: ${errnoText[error.code ?? ""] ?? error.message}\n`)
    return undefined
  }
}

/**
 * Runs `actions` in order on one connection, as `psql -c … -f …` would, and never fails: every
 * failure is in the output and the exit code (2 when the connection cannot be opened or is lost).
 *
 * @example
 * ```ts
 * const result = yield* runScript([{ script: "select 1 as one;\n" }], { connection: url })
 * result.stdout // " one \n-----\n   1\n(1 row)\n\n"
 * ```
 */
export const runScript = (
  actions: ReadonlyArray<ScriptAction>,
  options: ScriptOptions = {}
): Effect.Effect<ScriptResult> =>
  Effect.gen(function* () {
    let stdout = ""
    let stderr = ""
    const out = options.stdout ?? ((t: string) => (stdout += t))
    const err = options.stderr ?? ((t: string) => (stderr += t))
    // psql refuses an invalid -v value for a variable it checks before it connects.
    for (const [name, value] of Object.entries(options.variables ?? {})) {
      const checked = checkVariable(name, value)
      if ("error" in checked) {
        err(`pgline: error: ${checked.error}\n`)
        return { exitCode: EXIT_FAILURE, stdout, stderr }
      }
    }
    let session: Session | undefined
    const connection =
      typeof options.connection === "string" ? { url: options.connection } : options.connection
    const layer = PgClient.layer({
      ...connection,
      max: 1,
      min: 0,
      rows: "arrays",
      types: new TypeRegistry({ results: "text" }),
      onNotice: (notice) => session?.notice(notice as unknown as Record<string, unknown>),
      onNotification: (n) => session?.notification(n)
    })
    const print: Partial<PrintSettings> = {
      ...(options.format !== undefined ? { format: options.format } : {}),
      ...(options.tuplesOnly !== undefined ? { tuplesOnly: options.tuplesOnly } : {}),
      ...(options.fieldSeparator !== undefined ? { fieldSep: options.fieldSeparator } : {})
    }
    const run = Effect.gen(function* () {
      const pg = yield* PgClient
      const conn = yield* pg.reserve
      const s = new Session(conn, {
        out,
        err,
        print,
        ...(options.quiet !== undefined ? { quiet: options.quiet } : {}),
        ...(options.variables !== undefined ? { variables: options.variables } : {})
      })
      session = s
      let code = EXIT_SUCCESS
      for (const action of actions) {
        if ("command" in action) {
          const outcome = yield* s.runCommand(action.command)
          if (outcome === "lost") return EXIT_BADCONN
          code = outcome === "ok" ? EXIT_SUCCESS : EXIT_FAILURE
        } else {
          const script = "file" in action ? readScript(action.file, err) : action
          if (script === undefined) code = EXIT_FAILURE
          else code = yield* s.runScript(script.script, script.fileName)
          if (code === EXIT_BADCONN) return code
          // A pipeline the script left open ends with it (rolled back: it was never synced).
          yield* s.close()
        }
        if (code !== EXIT_SUCCESS && s.onErrorStop) break
      }
      yield* s.close()
      return code
    })
    // The reserved connection goes back before the pool closes (the pool would wait for it otherwise).
    // The client's own log lines (a callback's error, say) go to the error stream: the default
    // logger writes to standard output, which carries only the results.
    const logger = Logger.make<unknown, void>(({ message }) => {
      const parts = Array.isArray(message) ? message : [message]
      err(`${parts.map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")}\n`)
    })
    // Only Effect's default logger (the one that prints to standard output) is replaced: loggers a
    // library caller installed keep receiving the client's log lines.
    const current = yield* Effect.service(Logger.CurrentLoggers)
    const loggers = new Set([...current].filter((l) => l !== Logger.defaultLogger))
    loggers.add(logger)
    const exit = yield* Effect.exit(Effect.provide(Effect.scoped(run), layer)).pipe(
      Effect.provideService(Logger.CurrentLoggers, loggers)
    )
    if (Exit.isSuccess(exit)) return { exitCode: exit.value, stdout, stderr }
    // The connection could not be opened (or failed in a way no statement reported).
    const e = exit.cause.reasons[0]
    const error = e !== undefined && "error" in e ? (e.error as { message?: string }) : undefined
    err(`pgline: error: ${error?.message ?? "the connection failed"}\n`)
    return { exitCode: EXIT_BADCONN, stdout, stderr }
  })
