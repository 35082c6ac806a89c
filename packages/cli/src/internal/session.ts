/**
 * Runs a psql-style script on one reserved connection, the way psql 18 does: statements ended by
 * `;` go out as simple queries (or, after \bind, with the extended protocol), meta-commands change
 * settings or drive a pipeline (\startpipeline … \endpipeline, \sendpipeline, \syncpipeline,
 * \flushrequest, \flush, \getresults), named statements come from \parse and go with
 * \bind_named / \close_prepared. Results print as psql prints them (format.ts); errors go to the
 * error stream with psql's prefix (`pgline:FILE:LINE: `) and texts; the outcome is psql's exit code.
 *
 * What comes from where: lexer.ts reads the script item by item (variables substituted as it
 * goes); pgline's PgConnection runs statements, its Pipeline queues them and hands back one handle
 * per command; the queue of pending handles and psql's counters (commands, syncs, available
 * results) decide what \getresults reads. Values arrive as the server's text (the client is opened
 * with text results and array rows), so nothing is converted before printing.
 *
 * Not here: COPY (refused with a message; pgline's copyFrom/copyTo are the way), \copy, \i, \o,
 * \x, \gset, \gexec, \watch, \crosstabview, \if, psqlrc files, the pager, interactive input.
 */
import {
  type PgConnection,
  type Pipeline,
  type PreparedStatement,
  type QueryResult,
  ScriptFailed
} from "@pgline/client"
import { Cause, Effect, Exit, Scope } from "effect"
import { defaultPrintSettings, formatTable, formatTiming, type PrintSettings } from "./format.ts"
import { type Item, LexError, quoteIdent, quoteLiteral, ScriptLexer } from "./lexer.ts"

/** psql's exit statuses. */
export const EXIT_SUCCESS = 0
export const EXIT_FAILURE = 1
export const EXIT_BADCONN = 2
export const EXIT_USER = 3

export interface SessionOptions {
  /** `-v name=value` / `--set`: variables set before the script runs. */
  readonly variables?: Readonly<Record<string, string>>
  /** `-q`: no command tags or informational messages. */
  readonly quiet?: boolean
  readonly print?: Partial<PrintSettings>
  /** Writes to standard output (whole lines). */
  readonly out: (text: string) => void
  /** Writes to standard error (whole lines). */
  readonly err: (text: string) => void
}

/** A command's queued result in a pipeline: a statement's, a \parse / \close_prepared's, or a sync's. */
type Pending =
  | {
      readonly _tag: "Result"
      readonly handle: Effect.Effect<QueryResult, unknown>
      readonly text: string | undefined
    }
  | {
      readonly _tag: "Empty"
      readonly handle: Effect.Effect<unknown, unknown>
      readonly text: string | undefined
      /** Queued by pgline on its own (closing what \\parse '' replaces): not one of psql's results. */
      readonly silent?: boolean
    }
  | { readonly _tag: "Sync"; readonly handle: Effect.Effect<unknown, unknown> }

interface PipelineState {
  readonly scope: Scope.Closeable
  readonly pipeline: Pipeline
  /** Queued results in order; `head` is the next to read (a shift per read would be quadratic). */
  readonly pending: Array<Pending>
  head: number
  commands: number
  syncs: number
  available: number
}

type SendMode =
  | { readonly _tag: "Query" }
  | { readonly _tag: "Params"; readonly params: ReadonlyArray<string> }
  | {
      readonly _tag: "Prepared"
      readonly name: string
      readonly params: ReadonlyArray<string>
    }

const QUERY: SendMode = { _tag: "Query" }

/** psql's boolean variable values: prefixes of true/false/yes/no, on/off, 1/0. */
const parseBool = (value: string): boolean | undefined => {
  const v = value.toLowerCase()
  if (v === "") return undefined
  if ("true".startsWith(v) || "yes".startsWith(v) || v === "1") return true
  if ("false".startsWith(v) || "no".startsWith(v) || v === "0") return false
  if (v.length >= 2 && "on".startsWith(v)) return true
  if (v.length >= 2 && "off".startsWith(v)) return false
  return undefined
}

/** Variables whose value psql checks as a boolean when set (an empty value means on). */
const BOOLEAN_VARIABLES = ["ON_ERROR_STOP", "QUIET"]

/** What \set and -v store for `name`: psql's checks for the variables it knows, or its complaint. */
export const checkVariable = (
  name: string,
  value: string
): { readonly value: string } | { readonly error: string } => {
  if (!BOOLEAN_VARIABLES.includes(name)) return { value }
  if (value === "") return { value: "on" }
  if (parseBool(value) === undefined)
    return { error: `unrecognized value "${value}" for "${name}": Boolean expected` }
  return { value }
}

/** The text of a server error as libpq composes it (default verbosity), with LINE and caret when a position is known. */
export const serverErrorText = (error: Record<string, unknown>, query: string | undefined): string => {
  const severity = String(error["severity"] ?? "ERROR")
  let text = `${severity}:  ${String(error["message"] ?? "")}`
  const position = error["position"]
  if (position !== undefined && query !== undefined) {
    const at = Number(position) - 1
    const chars = [...query]
    if (at >= 0 && at <= chars.length) {
      let line = 1
      let start = 0
      for (let i = 0; i < at; i++) {
        if (chars[i] === "\n") {
          line++
          start = i + 1
        }
      }
      let end = start
      while (end < chars.length && chars[end] !== "\n") end++
      const lineText = chars.slice(start, end).map((c) => (c === "\t" ? " " : c))
      const column = at - start
      // Long lines are cut to about 60 columns around the error, marked with "...".
      let shown = lineText.join("")
      let caretAt = column
      if (lineText.length > 60) {
        let from = Math.max(0, column - 50)
        let to = Math.min(lineText.length, from + 60)
        if (to - from < 60) from = Math.max(0, to - 60)
        const head = from > 0 ? "..." : ""
        const tail = to < lineText.length ? "..." : ""
        if (tail !== "") to = Math.min(to, lineText.length)
        shown = head + lineText.slice(from, to).join("") + tail
        caretAt = column - from + head.length
      }
      const label = `LINE ${line}: `
      text += `\n${label}${shown}\n${" ".repeat(label.length + caretAt)}^`
    }
  }
  for (const [key, label] of [
    ["detail", "DETAIL"],
    ["hint", "HINT"],
    ["internalQuery", "QUERY"],
    ["where", "CONTEXT"]
  ] as const) {
    const value = error[key]
    if (typeof value === "string" && value !== "") text += `\n${label}:  ${value}`
  }
  return text
}

const isServerError = (e: unknown): e is Record<string, unknown> & { code: string } =>
  typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" && "severity" in e

/** The client's refusal of a statement it knows is gone (StatementRejected `Closed`). */
const isClosedStatement = (e: unknown): boolean =>
  typeof e === "object" &&
  e !== null &&
  (e as { _tag?: unknown })._tag === "StatementRejected" &&
  (e as { reason?: unknown }).reason === "Closed"

/**
 * SQL EXECUTE of a statement prepared under `name`, the values as literals (EXECUTE coerces them to
 * the statement's parameter types, which a bound parameter of unknown type could not be).
 */
const executeText = (name: string, params: ReadonlyArray<string>): string =>
  `execute ${quoteIdent(name)}${params.length === 0 ? "" : `(${params.map(quoteLiteral).join(", ")})`}`

export class Session {
  private readonly conn: PgConnection
  private readonly options: SessionOptions
  private readonly variables = new Map<string, string>()
  private print: PrintSettings
  private timing = false
  /** The line being run, for error prefixes; the file name when the input is a file (-f). */
  private line = 0
  private file: string | undefined
  private previous = ""
  private mode: SendMode = QUERY
  private pipe: PipelineState | undefined
  private readonly named = new Map<string, PreparedStatement>()
  /**
   * Names \\parse queued in the open pipeline whose answer has not been read yet, each with the
   * latest such \\parse's token.
   */
  private readonly parsed = new Map<string, object>()

  constructor(conn: PgConnection, options: SessionOptions) {
    this.conn = conn
    this.options = options
    this.print = { ...defaultPrintSettings, ...options.print }
    for (const [k, v] of [
      ["LAST_ERROR_MESSAGE", ""],
      ["LAST_ERROR_SQLSTATE", "00000"],
      ["PIPELINE_SYNC_COUNT", "0"],
      ["PIPELINE_COMMAND_COUNT", "0"],
      ["PIPELINE_RESULT_COUNT", "0"]
    ])
      this.variables.set(k, v)
    if (options.quiet === true) this.variables.set("QUIET", "on")
    // Checked by the caller first (checkVariable), so an invalid value is not stored.
    for (const [k, v] of Object.entries(options.variables ?? {})) {
      const checked = checkVariable(k, v)
      if ("value" in checked) this.variables.set(k, checked.value)
    }
  }

  private get quiet(): boolean {
    return parseBool(this.variables.get("QUIET") ?? "off") === true
  }

  /** ON_ERROR_STOP as it is now (a \\set in an earlier action counts for the ones after it). */
  get onErrorStop(): boolean {
    return parseBool(this.variables.get("ON_ERROR_STOP") ?? "off") === true
  }

  private prefix(): string {
    return this.file === undefined ? "" : `pgline:${this.file}:${this.line}: `
  }

  /** A message from pgline itself (psql's pg_log_error): `error: ` after the prefix when there is one. */
  private error(message: string): void {
    this.options.err(`${this.prefix()}${this.file === undefined ? "" : "error: "}${message}\n`)
  }

  private warning(message: string): void {
    this.options.err(`${this.prefix()}${this.file === undefined ? "" : "warning: "}${message}\n`)
  }

  /** A server's message or a libpq-level one (psql's pg_log_info): the prefix only. */
  private info(message: string): void {
    this.options.err(`${this.prefix()}${message}\n`)
  }

  /** Notifications received since the last command ended, printed after it as psql does. */
  private notifications: Array<{
    readonly channel: string
    readonly payload: string
    readonly processId: number
  }> = []

  /** A notification on the script's connection (after its LISTEN): printed once the running command ends. */
  notification(n: { readonly channel: string; readonly payload: string; readonly processId: number }): void {
    this.notifications.push(n)
  }

  /** psql's lines for the notifications received so far, on standard output. */
  private printNotifications(): void {
    if (this.notifications.length === 0) return
    const received = this.notifications
    this.notifications = []
    for (const n of received)
      this.options.out(
        n.payload === ""
          ? `Asynchronous notification "${n.channel}" received from server process with PID ${n.processId}.\n`
          : `Asynchronous notification "${n.channel}" with payload "${n.payload}" received from server process with PID ${n.processId}.\n`
      )
  }

  /** A notice from the server while the script runs (ClientSettings.onNotice). */
  notice(fields: Record<string, unknown>): void {
    if (this.closing) return
    this.info(serverErrorText(fields, undefined))
  }

  private setPipelineVariables(): void {
    const p = this.pipe
    this.variables.set("PIPELINE_SYNC_COUNT", String(p?.syncs ?? 0))
    this.variables.set("PIPELINE_COMMAND_COUNT", String(p?.commands ?? 0))
    this.variables.set("PIPELINE_RESULT_COUNT", String(p?.available ?? 0))
  }

  /** One of psql's commands queued in the pipeline: its result waits in `pending`. */
  private enqueued(p: PipelineState, entry: Pending): "ok" {
    p.pending.push(entry)
    p.commands++
    this.setPipelineVariables()
    return "ok"
  }

  /** A sync or flush request: every command queued so far has a result the server will send. */
  private makeAvailable(p: PipelineState): void {
    p.available += p.commands
    p.commands = 0
  }

  /** Prints one result as psql does: a table (plus the tag of a DML … RETURNING), or the command tag. */
  private printResult(result: QueryResult): void {
    // Rows came (a RowDescription was sent) when there are fields, or rows of zero columns
    // (`select from t`); CREATE TABLE AS … has neither and prints its tag.
    if (result.fields.length > 0 || (result.command === "SELECT" && result.rows.length > 0)) {
      const rows = result.rows as unknown as ReadonlyArray<ReadonlyArray<string | null>>
      this.options.out(formatTable({ fields: result.fields, rows }, this.print))
      if (!this.quiet && /^(INSERT|UPDATE|DELETE|MERGE)\b/.test(result.tag))
        this.options.out(`${result.tag}\n`)
    } else if (!this.quiet && result.command !== "") this.options.out(`${result.tag}\n`)
    // An empty query (a lone `;`) prints nothing.
    this.variables.set("ERROR", "false")
    this.variables.set("SQLSTATE", "00000")
    this.variables.set("ROW_COUNT", String(result.rowCount))
  }

  /** Reports a failure as a command's outcome: "lost" when the connection is gone (exit 2). */
  private failure(error: unknown, query: string | undefined): "failed" | "lost" {
    return this.report(error, query) ? "failed" : "lost"
  }

  /** Reports a failure; false when the connection is gone (the caller stops with exit 2). */
  private report(error: unknown, query: string | undefined): boolean {
    if (isServerError(error)) {
      this.info(serverErrorText(error, query))
      if (error["severity"] === "FATAL" || error["severity"] === "PANIC") {
        // The server ends the session after these (pg_terminate_backend, a shutdown): the script
        // cannot go on, and psql says what libpq says when the socket then closes.
        this.info(
          "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request."
        )
        this.error("connection to server was lost")
        return false
      }
      this.variables.set("ERROR", "true")
      this.variables.set("SQLSTATE", error.code)
      this.variables.set("ROW_COUNT", "0")
      this.variables.set("LAST_ERROR_MESSAGE", String(error["message"] ?? ""))
      this.variables.set("LAST_ERROR_SQLSTATE", error.code)
      return true
    }
    const tag = (error as { _tag?: string } | null)?._tag
    if (tag === "ConnectionLost" || tag === "ProtocolFailure") {
      // pgline's own reason to close (a SET it cannot read results in): said before psql's line.
      if (tag === "ProtocolFailure" && (error as { reason?: string }).reason === "UnsupportedSetting")
        this.error((error as { message: string }).message)
      this.error("connection to server was lost")
      return false
    }
    if (tag === "PipelineAborted") {
      this.info("Pipeline aborted, command did not run")
      return true
    }
    const message = (error as { message?: string } | null)?.message ?? String(error)
    this.info(`ERROR:  ${message}`)
    this.variables.set("ERROR", "true")
    this.variables.set("ROW_COUNT", "0")
    return true
  }

  /** Times `effect` when \timing is on, printing psql's `Time:` line after it. */
  private timed<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    if (!this.timing) return effect
    return Effect.suspend(() => {
      const started = performance.now()
      return Effect.ensuring(
        effect,
        Effect.sync(() => this.options.out(`${formatTiming(performance.now() - started)}\n`))
      )
    })
  }

  /** Runs a script: psql's exit code (0, or 3 when ON_ERROR_STOP stopped it, 2 when the connection broke). */
  runScript(text: string, file: string | undefined): Effect.Effect<number> {
    const self = this
    return Effect.gen(function* () {
      self.file = file
      const lexer = new ScriptLexer(
        text,
        (name) => self.variables.get(name),
        () => self.conn.parameter("standard_conforming_strings") !== "off"
      )
      let code = EXIT_SUCCESS
      for (;;) {
        let item: Item | undefined
        try {
          item = lexer.next()
        } catch (e) {
          if (!(e instanceof LexError)) throw e
          self.line = e.line
          self.error(e.message)
          if (self.onErrorStop) return EXIT_USER
          continue
        }
        if (item === undefined) break
        self.line = item.line
        const stop = self.onErrorStop
        const outcome = yield* self.run(item)
        self.printNotifications()
        if (self.carry !== "") {
          lexer.seed(self.carry)
          self.carry = ""
        }
        if (outcome === "lost") return EXIT_BADCONN
        if (outcome === "quit") break
        if (outcome === "failed" && stop) {
          code = EXIT_USER
          break
        }
      }
      return code
    })
  }

  /** `-c` with SQL: the text as one simple query, every result printed; false on failure. */
  runCommand(text: string): Effect.Effect<"ok" | "failed" | "lost"> {
    return Effect.ensuring(
      this.runCommandNow(text),
      Effect.sync(() => this.printNotifications())
    )
  }

  private runCommandNow(text: string): Effect.Effect<"ok" | "failed" | "lost"> {
    this.file = undefined
    if (text.startsWith("\\")) {
      // One meta-command (what follows `\\` is ignored, as psql does).
      const lexer = new ScriptLexer(text.split("\\\\")[0]!, (name) => this.variables.get(name))
      const item = lexer.next()
      return item === undefined
        ? Effect.succeed("ok")
        : Effect.map(this.run(item, true), (o) => (o === "quit" ? "ok" : o))
    }
    return this.simple(text)
  }

  /**
   * Ends a pipeline the script left open. Nothing of it was synced, so (as when psql exits) none
   * of it may take effect: a ROLLBACK is queued before the pipeline's closing sync, which aborts
   * the segment's implicit transaction or an explicit block (its warning is not shown).
   */
  close(): Effect.Effect<void> {
    const p = this.pipe
    this.pipe = undefined
    if (p === undefined) return Effect.void
    this.closing = true
    return Effect.ensuring(
      Effect.andThen(Effect.ignore(p.pipeline.execute("rollback")), Scope.close(p.scope, Exit.void)),
      Effect.sync(() => {
        this.closing = false
        this.named.clear()
        this.parsed.clear()
      })
    )
  }

  /** Set while an abandoned pipeline is rolled back: the server's warnings then are not the script's. */
  private closing = false

  private simple(text: string): Effect.Effect<"ok" | "failed" | "lost"> {
    return this.timed(
      Effect.matchEffect(this.conn.script(text), {
        onSuccess: (results) =>
          Effect.sync(() => {
            for (const r of results) this.printResult(r)
            return "ok" as const
          }),
        onFailure: (e) =>
          Effect.sync(() => {
            if (e instanceof ScriptFailed) {
              for (const r of e.results) this.printResult(r)
              // The server parsed the whole string: a position counts from its start, whichever
              // statement failed.
              return this.failure(e.error, text)
            }
            if (
              (e as { _tag?: string })._tag === "StatementRejected" &&
              (e as { reason?: string }).reason === "CopyInQuery"
            ) {
              this.error("COPY FROM STDIN / TO STDOUT is not supported by pgline scripts")
              return "failed" as const
            }
            return this.failure(e, text)
          })
      })
    )
  }

  /** Runs a statement with the extended protocol outside a pipeline (\bind, \bind_named). */
  private extended(text: string, mode: SendMode): Effect.Effect<"ok" | "failed" | "lost"> {
    const run: Effect.Effect<QueryResult, unknown> =
      mode._tag === "Prepared"
        ? this.preparedNamed(
            mode.name,
            (s) => s.execute(mode.params),
            (sql, params) => this.conn.query(sql, params),
            mode.params
          )
        : this.conn.query(text, mode._tag === "Params" ? mode.params : [])
    return this.timed(
      Effect.match(run, {
        onSuccess: (r) => {
          this.printResult(r)
          return "ok" as const
        },
        onFailure: (e) => this.failure(e, mode._tag === "Prepared" ? undefined : text)
      })
    )
  }

  /**
   * A statement prepared by \parse; otherwise (SQL PREPARE made it, or nobody did) it runs as SQL
   * EXECUTE with the values bound, so the server runs it or says it does not exist. Only psql's
   * unnamed statement cannot be reached that way.
   */
  private preparedNamed<A>(
    name: string,
    f: (s: PreparedStatement) => Effect.Effect<A, unknown>,
    viaSql: (text: string, params: ReadonlyArray<string>) => Effect.Effect<A, unknown>,
    params: ReadonlyArray<string>
  ): Effect.Effect<A, unknown> {
    const s = this.named.get(name)
    if (s !== undefined) return this.unlessDropped(name, params, f(s), (sql) => viaSql(sql, []))
    if (name === "")
      return Effect.fail({
        severity: "ERROR",
        code: "26000",
        message: "unnamed prepared statement does not exist"
      })
    return viaSql(executeText(name, params), [])
  }

  /**
   * `run` of a statement \\parse made; if the client reports it gone (an SQL DEALLOCATE or
   * DISCARD ALL dropped it since), SQL EXECUTE instead, so the server runs what it has under the
   * name now (an SQL PREPARE's), as psql's Bind by name does.
   */
  private unlessDropped<A>(
    name: string,
    params: ReadonlyArray<string>,
    run: Effect.Effect<A, unknown>,
    viaSql: (text: string) => Effect.Effect<A, unknown>
  ): Effect.Effect<A, unknown> {
    return Effect.catchIf(run, isClosedStatement, () => {
      this.named.delete(name)
      return viaSql(executeText(this.serverName(name), params))
    })
  }

  /** The text a send uses: the buffer, or the previous query when the buffer is empty (psql's rule). */
  private take(buffer: string): string {
    this.carry = ""
    const text = buffer === "" ? this.previous : buffer
    this.previous = text
    return text
  }

  private run(item: Item, single = false): Effect.Effect<"ok" | "failed" | "lost" | "quit"> {
    if (item._tag === "Sql") {
      const text = this.take(item.text)
      const mode = this.mode
      this.mode = QUERY
      if (this.pipe !== undefined) return this.queue(text, mode)
      return mode._tag === "Query" ? this.simple(text) : this.extended(text, mode)
    }
    return this.meta(item.command, item.args, item.buffer, single)
  }

  /** Queues a statement in the pipeline (SQL; or \sendpipeline): the extended protocol, no Sync. */
  private queue(text: string, mode: SendMode): Effect.Effect<"ok" | "failed" | "lost"> {
    const p = this.pipe!
    // A name whose \\parse in this pipeline is not read yet runs as SQL EXECUTE, as psql's Bind by
    // name does: whatever the server has under the name when it runs (that Parse's statement, or,
    // if it failed, the one the name had or one an SQL PREPARE made since).
    const queued: Effect.Effect<Effect.Effect<QueryResult, unknown>, unknown> = mode._tag === "Prepared"
      ? this.parsed.has(mode.name)
        ? p.pipeline.execute(executeText(this.serverName(mode.name), mode.params))
        : this.named.has(mode.name)
          ? this.unlessDropped(
              mode.name,
              mode.params,
              p.pipeline.executePrepared(this.serverName(mode.name), mode.params),
              (sql) => p.pipeline.execute(sql)
            )
          : this.preparedNamed(
              mode.name,
              (s) => p.pipeline.execute(s, mode.params),
              (sql, params) => p.pipeline.execute(sql, params),
              mode.params
            )
      : p.pipeline.execute(text, mode._tag === "Params" ? mode.params : [])
    return this.timed(
      Effect.match(queued, {
        onSuccess: (handle) =>
          this.enqueued(p, { _tag: "Result", handle, text: mode._tag === "Prepared" ? undefined : text }),
        onFailure: (e) => this.failure(e, text)
      })
    )
  }

  private meta(
    command: string,
    args: ReadonlyArray<string>,
    buffer: string,
    single: boolean
  ): Effect.Effect<"ok" | "failed" | "lost" | "quit"> {
    const self = this
    // What the buffer held stays for the next statement unless this command sends or drops it.
    this.carry = buffer
    const extra = (used: number) => {
      for (const a of args.slice(used)) this.warning(`\\${command}: extra argument "${a}" ignored`)
    }
    const ok = Effect.succeed("ok" as const)
    const failed = Effect.succeed("failed" as const)
    const p = this.pipe
    switch (command) {
      case "bind":
        this.mode = { _tag: "Params", params: args }
        // Armed: a `;` on a later line or \g / \sendpipeline sends it with these values.
        return ok
      case "bind_named": {
        if (args.length === 0) {
          this.error("\\bind_named: missing required argument")
          return failed
        }
        this.mode = { _tag: "Prepared", name: args[0]!, params: args.slice(1) }
        return ok
      }
      case "g":
      case "gx":
        if (p !== undefined) {
          this.error(`\\${command} not allowed in pipeline mode`)
          return failed
        }
        return Effect.suspend(() => {
          const text = this.take(buffer)
          const mode = this.mode
          this.mode = QUERY
          return mode._tag === "Query" ? this.simple(text) : this.extended(text, mode)
        })
      case "parse": {
        if (args.length === 0) {
          this.error("\\parse: missing required argument")
          return failed
        }
        extra(1)
        const name = args[0]!
        return Effect.suspend(() => {
          const text = this.take(buffer)
          this.mode = QUERY
          return this.prepare(name, text)
        })
      }
      case "close_prepared": {
        if (args.length === 0) {
          this.error("\\close_prepared: missing required argument")
          return failed
        }
        extra(1)
        this.discard(buffer)
        return this.closePrepared(args[0]!)
      }
      case "startpipeline":
        extra(0)
        this.discard(buffer)
        if (p !== undefined) return ok
        return this.timed(
          Effect.gen(function* () {
            const scope = yield* Scope.make()
            const pipeline = yield* Scope.provide(scope)(self.conn.pipeline)
            self.pipe = { scope, pipeline, pending: [], head: 0, commands: 0, syncs: 0, available: 0 }
            self.setPipelineVariables()
            return "ok" as const
          }).pipe(Effect.catch((e) => Effect.succeed(this.failure(e, undefined))))
        )
      case "sendpipeline":
        extra(0)
        if (p === undefined) {
          this.error("\\sendpipeline not allowed outside of pipeline mode")
          return failed
        }
        if (this.mode._tag === "Query") {
          this.error("\\sendpipeline must be used after \\bind or \\bind_named")
          return failed
        }
        return Effect.suspend(() => {
          const text = this.take(buffer)
          const mode = this.mode
          this.mode = QUERY
          return this.queue(text, mode)
        })
      case "syncpipeline":
        extra(0)
        this.discard(buffer)
        if (p === undefined) {
          this.info("cannot send pipeline when not in pipeline mode")
          return failed
        }
        return this.timed(
          Effect.match(p.pipeline.sendSync, {
            onSuccess: (handle) => {
              p.pending.push({ _tag: "Sync", handle })
              p.syncs++
              this.makeAvailable(p)
              this.setPipelineVariables()
              return "ok" as const
            },
            onFailure: (e) => this.failure(e, undefined)
          })
        )
      case "flushrequest":
        extra(0)
        this.discard(buffer)
        if (p === undefined) return ok
        return this.timed(
          Effect.map(p.pipeline.flush, () => {
            this.makeAvailable(p)
            this.setPipelineVariables()
            return "ok" as const
          })
        )
      case "flush":
        // pgline writes what is queued at the end of every tick: nothing is left to push. (psql
        // 18.6 reports \flush as failed even when it succeeds; this one succeeds.)
        extra(0)
        this.discard(buffer)
        return this.timed(ok)
      case "getresults": {
        extra(1)
        this.discard(buffer)
        const n = args.length > 0 ? Number.parseInt(args[0]!, 10) : 0
        if (Number.isFinite(n) && n < 0) {
          this.error("\\getresults: invalid number of requested results")
          return failed
        }
        if (p === undefined || (p.available === 0 && p.syncs === 0)) {
          this.info("No pending results to get")
          return failed
        }
        const total = p.available + p.syncs
        return this.timed(this.read(p, !Number.isFinite(n) || n === 0 || n > total ? total : n))
      }
      case "endpipeline":
        extra(0)
        this.discard(buffer)
        if (p === undefined) {
          this.info("cannot send pipeline when not in pipeline mode")
          return failed
        }
        return this.timed(
          Effect.gen(function* () {
            const sync = yield* Effect.exit(p.pipeline.sendSync)
            if (Exit.isSuccess(sync)) {
              p.pending.push({ _tag: "Sync", handle: sync.value })
              p.syncs++
            }
            self.makeAvailable(p)
            const outcome = yield* self.read(p, p.available + p.syncs)
            self.pipe = undefined
            yield* Scope.close(p.scope, Exit.void)
            self.setPipelineVariables()
            return outcome
          })
        )
      case "set": {
        if (args.length === 0) {
          for (const [k, v] of [...this.variables.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
            this.options.out(`${k} = '${v}'\n`)
          return ok
        }
        const name = args[0]!
        if (!/^[A-Za-z0-9_]+$/.test(name)) {
          this.error(`invalid variable name: "${name}"`)
          return failed
        }
        const checked = checkVariable(name, args.slice(1).join(""))
        if ("error" in checked) {
          this.error(checked.error)
          return failed
        }
        this.variables.set(name, checked.value)
        return ok
      }
      case "unset":
        if (args.length === 0) {
          this.error("\\unset: missing required argument")
          return failed
        }
        this.variables.delete(args[0]!)
        return ok
      case "echo": {
        const newline = args[0] !== "-n"
        const words = newline ? args : args.slice(1)
        this.options.out(`${words.join(" ")}${newline ? "\n" : ""}`)
        return ok
      }
      case "timing": {
        const value = args[0]
        if (value === undefined) this.timing = !this.timing
        else {
          const b = parseBool(value)
          if (b === undefined) {
            this.error(`unrecognized value "${value}" for "\\timing": Boolean expected`)
            return failed
          }
          this.timing = b
        }
        if (!this.quiet) this.options.out(`Timing is ${this.timing ? "on" : "off"}.\n`)
        return ok
      }
      case "q":
      case "quit":
        return Effect.succeed("quit" as const)
      default:
        this.error(`invalid command \\${command}`)
        if (single) this.error("Try \\? for help.")
        return failed
    }
  }

  /** Text typed before a failed meta-command: psql keeps its query buffer. */
  private carry = ""

  /** A pipeline-control command discards the query buffer (it becomes the previous query). */
  private discard(buffer: string): void {
    this.carry = ""
    if (buffer !== "") this.previous = buffer
    this.mode = QUERY
  }

  /** The name on the server for a psql statement name ('' is psql's unnamed statement). */
  private serverName(name: string): string {
    return name === "" ? "unnamed statement" : name
  }

  private prepare(name: string, text: string): Effect.Effect<"ok" | "failed" | "lost"> {
    const p = this.pipe
    const options = { name: this.serverName(name) }
    // \parse '' replaces the unnamed statement: the one standing for it is closed first, silently.
    const replaced = name === "" && (this.named.has("") || this.parsed.has(""))
    if (p !== undefined) {
      const self = this
      return this.timed(
        Effect.gen(function* () {
          if (replaced) {
            const closing = yield* p.pipeline.close(options.name)
            p.pending.push({ _tag: "Empty", handle: closing, text: undefined, silent: true })
            self.named.delete(name)
          }
          const handle = yield* p.pipeline.prepare(text, options)
          const token = {}
          self.parsed.set(name, token)
          // Answered: the name is the statement's if it was created; a failed \\parse leaves it as
          // it was (the server's, or free for an SQL PREPARE).
          const settled = Effect.sync(() => {
            if (self.parsed.get(name) === token) self.parsed.delete(name)
          })
          return self.enqueued(p, {
            _tag: "Empty",
            // Not recorded if a \\close_prepared of the name came in between.
            handle: Effect.ensuring(
              Effect.tap(handle, (s) =>
                Effect.sync(() => {
                  if (self.parsed.get(name) === token) self.named.set(name, s)
                })
              ),
              settled
            ),
            text
          })
        }).pipe(Effect.catch((e) => Effect.succeed(this.failure(e, text))))
      )
    }
    const existing = replaced ? this.named.get("") : undefined
    const run =
      existing === undefined
        ? this.conn.prepare(text, options)
        : Effect.andThen(Effect.ignore(existing.close), this.conn.prepare(text, options))
    return this.timed(
      Effect.match(run, {
        onSuccess: (s) => {
          this.named.set(name, s)
          if (!this.quiet) this.options.out("\n")
          return "ok" as const
        },
        onFailure: (e) => this.failure(e, text)
      })
    )
  }

  private closePrepared(name: string): Effect.Effect<"ok" | "failed" | "lost"> {
    const p = this.pipe
    const existing = this.named.get(name)
    this.named.delete(name)
    this.parsed.delete(name)
    if (p !== undefined) {
      return this.timed(
        Effect.match(p.pipeline.close(existing ?? this.serverName(name)), {
          onSuccess: (handle) => this.enqueued(p, { _tag: "Empty", handle, text: undefined }),
          onFailure: (e) => this.failure(e, undefined)
        })
      )
    }
    // Closing a name the server does not know is no error (the protocol says so).
    return this.timed(
      Effect.match(existing === undefined ? Effect.void : existing.close, {
        onSuccess: () => {
          if (!this.quiet) this.options.out("\n")
          return "ok" as const
        },
        onFailure: (e) => this.failure(e, undefined)
      })
    )
  }

  /**
   * Reads `requested` pending results in order (a sync counts as one), printing each. After an
   * error the rest of its segment is dropped silently up to the next sync, as psql does; an
   * aborted result read first says so. Any error makes the read a failure, so ON_ERROR_STOP stops
   * the script after it as psql documents; psql 18.6 itself forgets the failure when it reads the
   * sync that follows, so its \\endpipeline never stops a script.
   */
  private read(p: PipelineState, requested: number): Effect.Effect<"ok" | "failed" | "lost"> {
    const self = this
    return Effect.gen(function* () {
      let success = true
      let first = true
      let discarding = false
      while (requested > 0 && p.head < p.pending.length) {
        const next = p.pending[p.head]!
        p.pending[p.head++] = undefined as never
        // Read entries are dropped in blocks, so memory stays bounded by what is still pending.
        if (p.head > 4096 && p.head * 2 > p.pending.length) {
          p.pending.splice(0, p.head)
          p.head = 0
        }
        if (next._tag === "Empty" && next.silent === true) {
          yield* Effect.exit(next.handle)
          continue
        }
        requested--
        if (next._tag === "Sync") {
          p.syncs--
          const exit = yield* Effect.exit(next.handle)
          // A segment's failure was reported by its statement; only a failure of the sync itself
          // (a deferred constraint at COMMIT, a lost connection) is new here.
          if (Exit.isFailure(exit) && !discarding) {
            const e = Cause.squash(exit.cause)
            if (!self.report(e, undefined)) return "lost" as const
            success = false
          }
          discarding = false
          first = false
          continue
        }
        p.available--
        const exit = yield* Effect.exit(next.handle as Effect.Effect<unknown, unknown>)
        if (discarding) continue
        if (Exit.isSuccess(exit)) {
          if (next._tag === "Result") self.printResult(exit.value as QueryResult)
          else if (!self.quiet) self.options.out("\n")
        } else {
          const e = Cause.squash(exit.cause)
          const aborted = (e as { _tag?: string })._tag === "PipelineAborted"
          if (aborted && !first) {
            discarding = true
            continue
          }
          if (!self.report(e, next.text)) return "lost" as const
          success = false
          discarding = true
        }
        first = false
      }
      self.setPipelineVariables()
      return success ? ("ok" as const) : ("failed" as const)
    })
  }
}
