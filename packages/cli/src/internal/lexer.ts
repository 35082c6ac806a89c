/**
 * Splits a psql-style script into what the runner executes, in order: SQL statements (ended by a
 * semicolon outside quotes, comments, parentheses and BEGIN ATOMIC bodies) and backslash
 * meta-commands with their arguments, as psql's lexer does. Variables (`:name`, `:'name'`,
 * `:"name"`) are substituted in SQL text and in meta-command arguments when the item is read, so a
 * `\set` earlier in the script applies to what follows it.
 *
 * It only reads text; it runs nothing and knows no meta-command's meaning beyond how its
 * arguments are written.
 */

/** A piece of the script: SQL ended by `;`, or a meta-command (which may send the SQL before it). */
export type Item =
  | {
      readonly _tag: "Sql"
      /** The statement's text, its semicolon included (as psql sends it). */
      readonly text: string
      /** The line its semicolon is on (1-based): what error messages name, as psql does. */
      readonly line: number
    }
  | {
      readonly _tag: "Meta"
      /** The command without its backslash (`bind`, `g`, `startpipeline`, …). */
      readonly command: string
      readonly args: ReadonlyArray<string>
      /** SQL typed before the command on the same statement and not yet ended (the query buffer). */
      readonly buffer: string
      /** The line the command is on. */
      readonly line: number
    }

/** Why a line could not be read (an unterminated quoted argument, …). */
/** Characters that make a variable's value lex differently from plain text (see `paste`). */
const LEXED = /[;'"\\:\-/*$()[\]\n]/

export class LexError extends Error {
  readonly line: number
  constructor(message: string, line: number) {
    super(message)
    this.line = line
  }
}

/** A dollar-quote delimiter where `lastIndex` points (a tag of any length, as the server reads it). */
const DOLLAR_TAG = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y
const isIdentStart = (c: string) => /[A-Za-z_\u0080-\uffff]/.test(c)
const isIdentChar = (c: string) => /[A-Za-z0-9_$\u0080-\uffff]/.test(c)

/** A SQL literal: the value in single quotes, quotes doubled (psql's :'var'). */
export const quoteLiteral = (value: string): string =>
  value.includes("\\")
    ? ` E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`.trimStart()
    : `'${value.replaceAll("'", "''")}'`

/** A SQL identifier in double quotes (psql's :"var"). */
export const quoteIdent = (value: string): string => `"${value.replaceAll('"', '""')}"`

/**
 * Reads a script item by item. `variables` is consulted at the moment each item is read, so
 * meta-commands executed between reads (\set) affect later items.
 */
export class ScriptLexer {
  /** The script, with the values of the `:name` references read so far pasted in. */
  private text: string
  private pos = 0
  /** Variables whose pasted value is being read, and where it ends (a value naming itself stays as typed). */
  private expanding: Array<{ readonly name: string; end: number }> = []
  private readonly lines: number
  private line = 1
  private readonly variables: (name: string) => string | undefined
  private readonly standardStrings: () => boolean

  /**
   * `standardStrings` tells whether the server has standard_conforming_strings on now (psql asks
   * the connection too): with it off, backslashes escape in plain '…' strings as well.
   */
  constructor(
    text: string,
    variables: (name: string) => string | undefined,
    standardStrings: () => boolean = () => true
  ) {
    this.text = text
    this.variables = variables
    this.standardStrings = standardStrings
    let n = 1
    for (let i = 0; i < text.length; i++) if (text[i] === "\n" && i < text.length - 1) n++
    this.lines = n
  }

  private seeded = ""

  /**
   * Text of the query buffer that a meta-command left in place (\bind, \set, a failed \g, …): the
   * next item starts with it, as psql's buffer keeps it.
   */
  seed(buffer: string): void {
    this.seeded = buffer
  }

  /** The next item; undefined at the end. SQL left without a semicolon at the end is returned too (psql sends it at EOF). */
  next(): Item | undefined {
    let t = this.text
    let buffer = this.seeded
    this.seeded = ""
    let parens = 0
    // Inside CREATE FUNCTION … BEGIN ATOMIC … END: semicolons belong to the body.
    let atomic = 0
    let words = 0
    let routine = false
    let routineBody = false
    while (this.pos < t.length) {
      const c = t[this.pos]!
      if (buffer.trim() === "" && /\s/.test(c)) {
        if (c === "\n") this.line++
        this.pos++
        continue
      }
      if (c === "\n") {
        this.line++
        this.pos++
        // psql skips a completely empty line (it never reaches the query buffer).
        if (t[this.pos] === "\n" || this.pos >= t.length) continue
        buffer += c
        continue
      }
      if (c === "-" && t[this.pos + 1] === "-") {
        const end = t.indexOf("\n", this.pos)
        const stop = end < 0 ? t.length : end
        // A comment before any SQL is not part of a statement.
        if (buffer.trim() !== "") buffer += t.slice(this.pos, stop)
        this.pos = stop
        continue
      }
      if (c === "/" && t[this.pos + 1] === "*") {
        let depth = 0
        let i = this.pos
        while (i < t.length) {
          if (t[i] === "/" && t[i + 1] === "*") {
            depth++
            i += 2
          } else if (t[i] === "*" && t[i + 1] === "/") {
            depth--
            i += 2
            if (depth === 0) break
          } else {
            if (t[i] === "\n") this.line++
            i++
          }
        }
        buffer += t.slice(this.pos, i)
        this.pos = i
        continue
      }
      if (c === "'" || c === '"') {
        // E'…' strings take backslash escapes; standard strings double the quote.
        const escapes = c === "'" && (/(^|[^A-Za-z0-9_])[eE]$/.test(buffer) || !this.standardStrings())
        let i = this.pos + 1
        while (i < t.length) {
          if (escapes && t[i] === "\\") {
            i += 2
            continue
          }
          if (t[i] === c) {
            if (t[i + 1] === c) {
              i += 2
              continue
            }
            break
          }
          if (t[i] === "\n") this.line++
          i++
        }
        buffer += t.slice(this.pos, i + 1)
        this.pos = Math.min(i + 1, t.length)
        continue
      }
      if (c === "$") {
        DOLLAR_TAG.lastIndex = this.pos
        const m = DOLLAR_TAG.exec(t)
        // A dollar quote, unless the $ continues an identifier (a$b$) or is a placeholder ($1).
        if (m !== null && !(buffer.length > 0 && isIdentChar(buffer[buffer.length - 1]!))) {
          const tag = m[0]
          const close = t.indexOf(tag, this.pos + tag.length)
          const end = close < 0 ? t.length : close + tag.length
          const body = t.slice(this.pos, end)
          for (const ch of body) if (ch === "\n") this.line++
          buffer += body
          this.pos = end
          continue
        }
      }
      if (c === ":" && t[this.pos + 1] !== ":" && buffer[buffer.length - 1] !== ":") {
        const sub = this.substitution(this.pos)
        // A plain :name's value is read as if typed there (psql lexes it): a `;` in it ends the
        // statement, a quote in it opens a string. Its lines are not the script's. A value with
        // nothing the lexer reads specially (an identifier, a number: the usual case) is copied as
        // it is, without splicing it into the text (each splice copies the whole script).
        if (sub !== undefined && sub.name !== undefined && LEXED.test(sub.value)) {
          this.paste(sub.name, sub.value, sub.end)
          t = this.text
          continue
        }
        if (sub !== undefined) {
          buffer += sub.value
          this.pos = sub.end
          continue
        }
      }
      if (c === "\\") {
        // `\;` and `\:` put the character itself in the statement (no end, no variable).
        if (t[this.pos + 1] === ";" || t[this.pos + 1] === ":") {
          buffer += t[this.pos + 1]
          this.pos += 2
          continue
        }
        return this.meta(buffer)
      }
      if (c === "(") parens++
      if (c === ")" && parens > 0) parens--
      if (isIdentStart(c)) {
        let i = this.pos + 1
        while (i < t.length && isIdentChar(t[i]!)) i++
        const w = t.slice(this.pos, i)
        const lw = w.toLowerCase()
        if (words === 0) routine = lw === "create"
        else if (routine && words <= 3 && (lw === "function" || lw === "procedure")) routineBody = true
        words++
        // CREATE FUNCTION / PROCEDURE … BEGIN ATOMIC … END: semicolons inside belong to the body.
        if (routineBody && parens === 0) {
          if (lw === "begin") atomic++
          else if (lw === "case" && atomic > 0) atomic++
          else if (lw === "end" && atomic > 0) atomic--
        }
        buffer += w
        this.pos = i
        continue
      }
      if (c === ";" && parens === 0 && atomic === 0) {
        buffer += ";"
        this.pos++
        return { _tag: "Sql", text: buffer.trim(), line: this.line }
      }
      buffer += c
      this.pos++
    }
    return buffer.trim() === "" ? undefined : { _tag: "Sql", text: buffer.trim(), line: this.lastLine() }
  }

  /** Replaces the reference at `pos` (up to `end`) by the variable's value, to be read next. */
  private paste(name: string, value: string, end: number): void {
    const delta = value.length - (end - this.pos)
    this.expanding = this.expanding.filter((e) => e.end > this.pos)
    for (const e of this.expanding) e.end += delta
    this.expanding.push({ name, end: this.pos + value.length })
    this.text = this.text.slice(0, this.pos) + value + this.text.slice(end)
    for (const ch of value) if (ch === "\n") this.line--
  }

  /**
   * `:name`, `:'name'`, `:"name"` at `at`, when the variable is set (psql leaves unknown ones as
   * typed); `name` is given for the plain form, whose value is read as script text.
   */
  private substitution(at: number): { value: string; end: number; name?: string } | undefined {
    const t = this.text
    const quote = t[at + 1]
    if (quote === "'" || quote === '"') {
      const close = t.indexOf(quote, at + 2)
      if (close < 0) return undefined
      const name = t.slice(at + 2, close)
      if (!/^[A-Za-z0-9_]+$/.test(name)) return undefined
      const value = this.variables(name)
      if (value === undefined) return undefined
      return { value: quote === "'" ? quoteLiteral(value) : quoteIdent(value), end: close + 1 }
    }
    const m = /^[A-Za-z0-9_]+/.exec(t.slice(at + 1, at + 65))
    if (m === null) return undefined
    const value = this.variables(m[0])
    if (value === undefined) return undefined
    if (this.expanding.some((e) => e.name === m[0] && e.end > at)) return undefined
    return { value, end: at + 1 + m[0].length, name: m[0] }
  }

  /** A meta-command from `\` to the end of the line or the next `\`, its arguments split as psql does. */
  /** The error for a quote left open; the rest of the line is dropped, as psql drops it. */
  private unterminated(line: number): LexError {
    const end = this.text.indexOf("\n", this.pos)
    this.pos = end < 0 ? this.text.length : end
    return new LexError("unterminated quoted string", line)
  }

  /** The last line of the text (a final statement without `;` is reported there). */
  private lastLine(): number {
    return this.lines
  }

  private meta(buffer: string): Item {
    const t = this.text
    const line = this.line
    let i = this.pos + 1
    let command = ""
    while (i < t.length && !/[\s\\]/.test(t[i]!)) command += t[i++]
    const args: Array<string> = []
    for (;;) {
      while (i < t.length && (t[i] === " " || t[i] === "\t" || t[i] === "\r")) i++
      if (i >= t.length || t[i] === "\n") break
      if (t[i] === "\\") {
        // `\\` ends this command (another may follow on the line); a lone `\` starts the next one.
        if (t[i + 1] === "\\") i += 2
        break
      }
      let arg = ""
      let quoted = false
      while (i < t.length && !/[\s]/.test(t[i]!)) {
        const ch = t[i]!
        if (ch === "'") {
          quoted = true
          let j = i + 1
          let value = ""
          for (;;) {
            if (j >= t.length || t[j] === "\n") throw this.unterminated(line)
            if (t[j] === "'" && t[j + 1] === "'") {
              value += "'"
              j += 2
              continue
            }
            if (t[j] === "'") break
            if (t[j] === "\\" && j + 1 < t.length) {
              const e = t[j + 1]!
              value += e === "n" ? "\n" : e === "t" ? "\t" : e === "r" ? "\r" : e
              j += 2
              continue
            }
            value += t[j]
            j++
          }
          arg += value
          i = j + 1
          continue
        }
        if (ch === '"') {
          // Double quotes stay in the argument (psql keeps them), with what they enclose.
          const close = t.indexOf('"', i + 1)
          const end = close < 0 || t.slice(i, close).includes("\n") ? -1 : close
          if (end < 0) throw this.unterminated(line)
          arg += t.slice(i, end + 1)
          i = end + 1
          continue
        }
        if (ch === ":" && !quoted) {
          const sub = this.substitution(i)
          if (sub !== undefined) {
            arg += sub.value
            i = sub.end
            continue
          }
        }
        if (ch === "\\") break
        arg += ch
        i++
      }
      args.push(arg)
    }
    this.pos = i
    return { _tag: "Meta", command, args, buffer: buffer.trim(), line }
  }
}
