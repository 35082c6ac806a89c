#!/usr/bin/env node
/**
 * The `pgline` command: runs SQL scripts the way psql does, psql 18's pipeline meta-commands
 * included, on pgline.
 *
 *   pgline [OPTION]... [DBNAME [USERNAME]]
 *
 * Connection: a URL or conninfo string as DBNAME (or -d), -h, -p, -U, and libpq's environment
 * variables and password file as everywhere in pgline. Actions run in command-line order: -c SQL
 * (one simple query, or one meta-command when it starts with a backslash) and -f FILE (`-` for
 * standard input; read when its turn comes); with neither, the script is read from standard input.
 * Options: -v/--set NAME=VALUE, -q, -A, -t, -F SEP, -X (accepted; no psqlrc is ever read). Exit
 * status as psql's.
 */
import { readFileSync } from "node:fs"
import { PgConfig } from "@pgline/client"
import { Effect } from "effect"
import { runScript, type ScriptAction, type ScriptOptions } from "./Script.ts"

const usage = `pgline runs SQL scripts like psql, with psql 18's pipeline meta-commands.

Usage:
  pgline [OPTION]... [DBNAME [USERNAME]]

Options:
  -c, --command=COMMAND    run one command (SQL or a meta-command) and continue
  -f, --file=FILENAME      run the commands of a file (- for standard input)
  -v, --set=NAME=VALUE     set a variable (e.g. -v ON_ERROR_STOP=1)
  -X, --no-psqlrc          accepted for psql compatibility (no startup file is read)
  -q, --quiet              no command tags or informational messages
  -A, --no-align           unaligned output
  -t, --tuples-only        rows only
  -F, --field-separator=S  field separator for unaligned output (default "|")
  -d, --dbname=DBNAME      database name, URL or connection string
  -h, --host=HOSTNAME      server host or socket directory
  -p, --port=PORT          server port
  -U, --username=USERNAME  user name
      --help               this help
      --version            the version

Meta-commands: \\bind \\bind_named \\parse \\close_prepared \\startpipeline \\sendpipeline
\\syncpipeline \\flushrequest \\flush \\getresults [N] \\endpipeline \\g \\set \\unset \\echo \\timing \\q
`

interface Parsed {
  readonly actions: Array<ScriptAction>
  readonly variables: Record<string, string>
  readonly settings: {
    quiet?: boolean
    format?: "aligned" | "unaligned"
    tuplesOnly?: boolean
    fieldSeparator?: string
  }
  readonly connection: Record<string, string | number>
  readonly positional: Array<string>
}

const fail = (message: string): never => {
  process.stderr.write(`pgline: error: ${message}\nTry "pgline --help" for more information.\n`)
  process.exit(1)
}

/** Short options that take a value, and those that are flags. */
const WITH_VALUE = "cfvFdhpU"
const FLAGS = "XqAtV?"
const LONG_WITH_VALUE = [
  "--command",
  "--file",
  "--set",
  "--variable",
  "--field-separator",
  "--dbname",
  "--host",
  "--port",
  "--username"
]

/**
 * getopt's rules: `-Atq` is `-A -t -q`; an option taking a value takes the rest of its word
 * (`-p5432`, `-F,`, `-qc select 1`, `-vX=1`) or else the next word; `--` ends the options (what
 * follows is positional, returned after the marker).
 */
const expand = (argv: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k]!
    if (arg === "--") {
      out.push(...argv.slice(k))
      break
    }
    if (arg.length <= 2 || !arg.startsWith("-") || arg.startsWith("--")) {
      out.push(arg)
      // The value of an option given as its own word is taken as it is (`-c -x`, `-F -`).
      const takesValue = arg.length === 2 ? WITH_VALUE.includes(arg[1]!) : LONG_WITH_VALUE.includes(arg)
      if (takesValue && k + 1 < argv.length) out.push(argv[++k]!)
      continue
    }
    for (let i = 1; i < arg.length; i++) {
      const c = arg[i]!
      if (WITH_VALUE.includes(c)) {
        out.push(`-${c}`)
        if (i + 1 < arg.length) out.push(arg.slice(i + 1))
        else if (k + 1 < argv.length) out.push(argv[++k]!)
        break
      }
      if (!FLAGS.includes(c)) fail(`invalid option -- '${c}'`)
      out.push(`-${c}`)
    }
  }
  return out
}

const parse = (raw: ReadonlyArray<string>): Parsed => {
  const argv = expand(raw)
  const parsed: Parsed = { actions: [], variables: {}, settings: {}, connection: {}, positional: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") {
      parsed.positional.push(...argv.slice(i + 1))
      break
    }
    let name = arg
    let value: string | undefined
    if (arg.startsWith("--") && arg.includes("=")) {
      name = arg.slice(0, arg.indexOf("="))
      value = arg.slice(arg.indexOf("=") + 1)
    }
    const next = (): string => {
      if (value !== undefined) return value
      const v = argv[++i]
      if (v === undefined) fail(`option requires an argument -- '${name.replace(/^-+/, "")}'`)
      return v!
    }
    switch (name) {
      case "-c":
      case "--command":
        parsed.actions.push({ command: next() })
        break
      case "-f":
      case "--file":
        // Read when its turn comes: a missing file is that action's failure, as in psql.
        parsed.actions.push({ file: next() })
        break
      case "-v":
      case "--set":
      case "--variable": {
        const v = next()
        const eq = v.indexOf("=")
        if (eq < 0) delete parsed.variables[v]
        else parsed.variables[v.slice(0, eq)] = v.slice(eq + 1)
        break
      }
      case "-X":
      case "--no-psqlrc":
        break
      case "-q":
      case "--quiet":
        parsed.settings.quiet = true
        break
      case "-A":
      case "--no-align":
        parsed.settings.format = "unaligned"
        break
      case "-t":
      case "--tuples-only":
        parsed.settings.tuplesOnly = true
        break
      case "-F":
      case "--field-separator":
        parsed.settings.fieldSeparator = next()
        break
      case "-d":
      case "--dbname":
        parsed.connection["dbname"] = next()
        break
      case "-h":
      case "--host":
        parsed.connection["host"] = next()
        break
      case "-p":
      case "--port":
        parsed.connection["port"] = next()
        break
      case "-U":
      case "--username":
        parsed.connection["user"] = next()
        break
      case "--help":
      case "-?":
        process.stdout.write(usage)
        process.exit(0)
        break
      case "--version":
      case "-V":
        process.stdout.write(`pgline ${version()}\n`)
        process.exit(0)
        break
      default:
        if (arg.startsWith("-") && arg !== "-") fail(`unrecognized option "${arg}"`)
        parsed.positional.push(arg)
    }
  }
  return parsed
}

const version = (): string => {
  try {
    return (
      JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    ).version
  } catch {
    return "unknown"
  }
}

/** libpq's rule: a database name holding `=` or a URI prefix is a full connection string. */
const isConnectionString = (s: string) => s.includes("=") || /^postgres(ql)?:\/\//.test(s)

const main = async () => {
  const parsed = parse(process.argv.slice(2))
  // psql's positionals: the database if -d did not name one, then the user if -U did not.
  const given = { ...parsed.connection }
  for (const arg of parsed.positional) {
    if (given["dbname"] === undefined) given["dbname"] = arg
    else if (given["user"] === undefined) given["user"] = arg
    else if (parsed.settings.quiet !== true)
      process.stderr.write(`pgline: warning: extra command-line argument "${arg}" ignored\n`)
  }
  const connection: Record<string, unknown> = {}
  const db = given["dbname"] as string | undefined
  // A URL or conninfo as the database is expanded after -h/-p/-U (as psql hands them to libpq):
  // what it sets wins, what it leaves out comes from them.
  let fromString: Readonly<Record<string, string>> = {}
  if (db !== undefined) {
    if (isConnectionString(db)) {
      connection["connectionString"] = db
      fromString = await Effect.runPromise(
        PgConfig.parseConnectionString(db).pipe(Effect.orElseSucceed(() => ({})))
      )
    } else connection["database"] = db
  }
  for (const key of ["host", "port", "user"])
    if (given[key] !== undefined && fromString[key] === undefined) connection[key] = given[key]
  const actions =
    parsed.actions.length > 0 ? parsed.actions : [{ script: readFileSync(0, "utf8") } satisfies ScriptAction]
  const options: ScriptOptions = {
    connection,
    variables: parsed.variables,
    ...parsed.settings,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t)
  }
  // Standard output closed by its reader (`pgline … | head`): exit quietly with status 1 (an error
  // of pgline's own, psql's meaning) instead of Node's unhandled-error trace; an open transaction
  // ends with the connection (rolled back).
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e
    process.exit(1)
  })
  process.stderr.on("error", () => {})
  const result = await Effect.runPromise(runScript(actions, options))
  process.exitCode = result.exitCode
}

await main()
