/**
 * A small SQL lexer for the checks a pipeline makes at queue time: how many statements a text
 * holds and which command starts it. It understands what can hide a semicolon or a keyword:
 * '…' and E'…' strings, "…" identifiers, $tag$…$tag$ dollar quotes, -- and nested block comments.
 * It does not parse SQL beyond that.
 */

/**
 * PostgreSQL's identifier characters: a letter, `_` or any non-ASCII character starts one (the
 * server's lexer takes every byte from 0x80 on as a letter), digits and `$` may follow. The same
 * rule gives dollar-quote tags, without `$`.
 */
const WORD_START = /[A-Za-z_\u0080-\uffff]/
const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/
/** A dollar-quote delimiter where `lastIndex` points (a tag of any length). */
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y
const KEYWORD = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/
const KEYWORDS =
  /^([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)(?:\s+([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*))?/

/**
 * When a comment starts at `i` (`--` to the end of the line, or a block comment, which nests), the
 * index just after it; otherwise `i`.
 */
const skipComment = (text: string, i: number): number => {
  const n = text.length
  if (text[i] === "-" && text[i + 1] === "-") {
    const nl = text.indexOf("\n", i)
    return nl < 0 ? n : nl + 1
  }
  if (text[i] !== "/" || text[i + 1] !== "*") return i
  let depth = 1
  let j = i + 2
  while (j < n && depth > 0) {
    if (text[j] === "/" && text[j + 1] === "*") {
      depth++
      j += 2
    } else if (text[j] === "*" && text[j + 1] === "/") {
      depth--
      j += 2
    } else j++
  }
  return j
}

/**
 * Walks the text outside strings, quoted identifiers, dollar quotes and comments, reporting each
 * top-level semicolon, the first meaningful character after each statement start, and each $n
 * placeholder.
 */
const lex = (
  text: string,
  onSemicolon: (at: number) => void,
  onMeaningful: () => void,
  onPlaceholder: (n: number) => void,
  onWord?: (word: string) => void,
  onToken?: (c: string) => void,
  onQuoted?: (kind: "string" | "ident" | "dollar", start: number, end: number, escapes: boolean) => void
): void => {
  const n = text.length
  let i = 0
  while (i < n) {
    const c = text[i]!
    const afterComment = skipComment(text, i)
    if (afterComment !== i) {
      i = afterComment
      continue
    }
    if (c === ";") {
      onSemicolon(i)
      i++
      continue
    }
    if (!/\s/.test(c)) {
      onMeaningful()
      // Anything but a word (punctuation, a quote, a number): what separates two words.
      if (onToken !== undefined && !(WORD_START.test(c) && !(i > 0 && WORD_CHAR.test(text[i - 1]!))))
        onToken(c)
    }
    if (c === "'" || c === '"') {
      // E'…' strings allow backslash escapes; standard strings only ''. The E must stand alone
      // (date'…' is a typed literal, not an escape string).
      const escapes =
        c === "'" &&
        i > 0 &&
        (text[i - 1] === "E" || text[i - 1] === "e") &&
        !(i > 1 && WORD_CHAR.test(text[i - 2]!))
      const end = quotedEnd(text, i, c, escapes)
      onQuoted?.(c === "'" ? "string" : "ident", i, end, escapes)
      i = end
      continue
    }
    if (c === "$" && !(i > 0 && WORD_CHAR.test(text[i - 1]!))) {
      DOLLAR_TAG.lastIndex = i
      const m = DOLLAR_TAG.exec(text)
      // $1 placeholders are not dollar quotes; a tag cannot follow an identifier character.
      if (m !== null) {
        const tag = m[0]
        const end = text.indexOf(tag, i + tag.length)
        onQuoted?.("dollar", i + tag.length, end < 0 ? n : end, false)
        i = end < 0 ? n : end + tag.length
        continue
      }
      const digits = /^\$([0-9]+)/.exec(text.slice(i, i + 12))
      if (digits !== null) {
        onPlaceholder(Number(digits[1]))
        i += digits[0].length
        continue
      }
    }
    if (onWord !== undefined && WORD_START.test(c) && !(i > 0 && WORD_CHAR.test(text[i - 1]!))) {
      let j = i + 1
      while (j < n && WORD_CHAR.test(text[j]!)) j++
      onWord(text.slice(i, j).toUpperCase())
      i = j
      continue
    }
    i++
  }
}

/**
 * Splits the text at top-level semicolons, dropping empty statements (whitespace and comments only).
 * Semicolons inside the body of CREATE FUNCTION / PROCEDURE … BEGIN ATOMIC … END (and of CASE …
 * END within it) belong to that body, as the server reads it.
 */
export const statementsOf = (text: string): Array<string> => {
  const out: Array<string> = []
  let start = 0
  let meaningful = false
  /** The statement's first words, up to FUNCTION / PROCEDURE of CREATE [OR REPLACE]. */
  let head = ""
  let routine = false
  let previous = ""
  let afterDot = false
  let parens = 0
  let atomic = 0
  const push = (end: number) => {
    // Inside parentheses (a rule's action list) or a BEGIN ATOMIC body the statement goes on.
    if ((atomic > 0 || parens > 0) && end < text.length) {
      previous = ""
      return
    }
    if (meaningful) out.push(text.slice(start, end))
    start = end + 1
    meaningful = false
    head = ""
    routine = false
    previous = ""
    parens = 0
    atomic = 0
  }
  lex(
    text,
    push,
    () => {
      meaningful = true
    },
    () => {},
    (word) => {
      // t.end, t.case: a qualified name's part is no keyword.
      const qualified = afterDot
      afterDot = false
      if (qualified) {
        previous = ""
        return
      }
      if (head.length < 40 && !routine) {
        head = head === "" ? word : `${head} ${word}`
        routine = /^CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE)$/.test(head)
      } else if (routine && parens === 0) {
        // BEGIN ATOMIC as two adjacent words opens the body; CASE … END nests inside it.
        if (word === "ATOMIC" && previous === "BEGIN") atomic++
        else if (atomic > 0 && word === "CASE") atomic++
        else if (atomic > 0 && word === "END") atomic--
      }
      previous = word
    },
    (c) => {
      if (c === "(") parens++
      else if (c === ")" && parens > 0) parens--
      previous = ""
      afterDot = c === "."
    }
  )
  push(text.length)
  return out
}

/** The highest $n placeholder of the text (0 when it has none). */
export const highestPlaceholder = (text: string): number => {
  let highest = 0
  lex(
    text,
    () => {},
    () => {},
    (n) => {
      if (n > highest) highest = n
    }
  )
  return highest
}

/**
 * Index of the first character after leading whitespace, comments (block comments nest) and
 * semicolons: the server drops the empty statements these end, so `;begin` is BEGIN.
 */
const skipTrivia = (text: string): number => {
  let i = 0
  const n = text.length
  for (;;) {
    while (i < n && (text[i] === ";" || /\s/.test(text[i]!))) i++
    const afterComment = skipComment(text, i)
    if (afterComment === i) return i
    i = afterComment
  }
}

/** The first keyword of a statement, upper-cased ("" when none). */
export const firstKeyword = (statement: string): string => {
  const m = KEYWORD.exec(statement.slice(skipTrivia(statement)))
  return m === null ? "" : m[0].toUpperCase()
}

/** The first two keywords of a statement, upper-cased ("" for a missing one). */
export const leadingKeywords = (statement: string): readonly [string, string] => {
  const m = KEYWORDS.exec(statement.slice(skipTrivia(statement)))
  return m === null ? ["", ""] : [m[1]!.toUpperCase(), (m[2] ?? "").toUpperCase()]
}

/**
 * Whether a statement opens, ends or marks a transaction block (BEGIN, START TRANSACTION, COMMIT,
 * END, ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION). COMMIT PREPARED and ROLLBACK
 * PREPARED are not: they finish a two-phase transaction of another session and leave this one's
 * state alone. A comment between the two keywords hides the second (such texts are refused too).
 */
export const isTransactionControl = (text: string): boolean => {
  const [first, second] = leadingKeywords(text)
  switch (first) {
    case "BEGIN":
    case "START":
    case "END":
    case "ABORT":
    case "SAVEPOINT":
    case "RELEASE":
      return true
    case "COMMIT":
    case "ROLLBACK":
      return second !== "PREPARED"
    case "PREPARE":
      return second === "TRANSACTION"
    default:
      return false
  }
}

/**
 * Whether a statement ends a transaction block: COMMIT, END, ROLLBACK (not ROLLBACK [WORK |
 * TRANSACTION] TO, which stays inside), ABORT, PREPARE TRANSACTION, with or without AND CHAIN; not
 * COMMIT / ROLLBACK PREPARED (another session's two-phase transaction). Comments between the words
 * are skipped. Inside withTransaction or a pipeline transaction such a statement would end the
 * block early and leave the rest outside it.
 */
export const endsTransactionBlock = (statement: string): boolean => {
  switch (firstKeyword(statement)) {
    case "END":
    case "ABORT":
      return true
    case "COMMIT":
    case "ROLLBACK":
    case "PREPARE": {
      const tokens = tokensOf(statement)
      // PREPARE TRANSACTION 'gid'; PREPARE transaction AS … names a statement "transaction".
      if (tokens[0]?.value === "PREPARE")
        return tokens[1]?.kind === "word" && tokens[1].value === "TRANSACTION" && tokens[2]?.kind === "string"
      const words = tokens.filter((t) => t.kind === "word").map((t) => t.value)
      const next = words[1] === "WORK" || words[1] === "TRANSACTION" ? words[2] : words[1]
      return next !== "PREPARED" && !(words[0] === "ROLLBACK" && next === "TO")
    }
    default:
      return false
  }
}

/**
 * Whether a statement is COPY … FROM STDIN or COPY … TO STDOUT: the copy protocol, which a
 * statement run for its result cannot carry (the data would be dropped, or the server would wait
 * for data that never comes). COPY to or from a server-side file or program is not.
 */
export const isCopyStdio = (text: string): boolean => copyDirection(text) !== undefined

/**
 * Which way a COPY statement moves data through the connection: "in" for COPY … FROM STDIN (or
 * FROM STDOUT: the server reads either as the client), "out" for COPY … TO STDOUT (or TO STDIN),
 * undefined for anything else (including COPY to or from a server file).
 */
export const copyDirection = (text: string): "in" | "out" | undefined => {
  if (firstKeyword(text) !== "COPY") return undefined
  let direction: "in" | "out" | undefined
  let previous = ""
  let depth = 0
  lex(
    text,
    () => {},
    () => {},
    () => {},
    (word) => {
      // The COPY's own FROM / TO STDIN / STDOUT, outside parentheses: a column list, or a query's
      // FROM a table named stdout, is not the target. The server takes either word for the
      // client in either direction (TO STDIN sends the rows out).
      if (
        depth === 0 &&
        (word === "STDIN" || word === "STDOUT") &&
        (previous === "FROM" || previous === "TO")
      )
        direction = previous === "FROM" ? "in" : "out"
      previous = word
    },
    (c) => {
      if (c === "(") depth++
      else if (c === ")" && depth > 0) depth--
      previous = ""
    }
  )
  return direction
}

type Token =
  | { readonly kind: "word"; readonly value: string }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "ident"; readonly value: string }
  | { readonly kind: "punct"; readonly value: string }

/**
 * One statement's tokens for the checks below: words upper-cased, string literals by their
 * content ('…', E'…', $tag$…$tag$), quoted identifiers by name, anything else one character at a
 * time; comments and whitespace dropped. Escapes are not interpreted beyond doubled quotes.
 */
const tokensOf = (text: string): Array<Token> => {
  const out: Array<Token> = []
  const punct = (value: string) => out.push({ kind: "punct", value })
  lex(
    text,
    () => punct(";"),
    () => {},
    () => punct("$"),
    (value) => out.push({ kind: "word", value }),
    // Quotes and $ come back whole through onQuoted (or as a placeholder).
    (c) => {
      if (c !== "'" && c !== '"' && c !== "$") punct(c)
    },
    (kind, start, end, escapes) => {
      if (kind === "dollar") {
        out.push({ kind: "string", value: text.slice(start, end) })
        return
      }
      // The E of E'…' came as a word of its own.
      const last = out[out.length - 1]
      if (escapes && last?.kind === "word" && last.value === "E") out.pop()
      const quote = kind === "string" ? "'" : '"'
      const body = text.slice(start + 1, end - 1)
      out.push({
        kind,
        value: escapes
          ? body.replace(/\\([\s\S])|''/g, (_, escaped: string | undefined) => escaped ?? "'")
          : body.replaceAll(quote + quote, quote)
      })
    }
  )
  return out
}

/**
 * Where the string or quoted identifier whose opening `quote` is at `start` ends, just after its
 * closing quote: a doubled quote is one, and with `escapes` (E'…') a backslash takes the next
 * character.
 */
const quotedEnd = (text: string, start: number, quote: string, escapes: boolean): number => {
  let i = start + 1
  while (i < text.length) {
    if (escapes && text[i] === "\\") i += 2
    else if (text[i] === quote) {
      if (text[i + 1] !== quote) break
      i += 2
    } else i++
  }
  return i + 1
}

/** A setting's name as the server looks it up (case-insensitive, quoted or not). */
const isName = (t: Token | undefined, name: string): boolean =>
  t !== undefined && (t.kind === "word" || t.kind === "ident") && t.value.toLowerCase() === name

/** A value as SET takes it: a string's content, a word or a quoted name; undefined otherwise. */
const settingValue = (t: Token | undefined): string | undefined =>
  t === undefined || t.kind === "punct" ? undefined : t.value

/** The settings `settingsSet` looks for (the rest do not change how pgline reads or writes). */
const WATCHED = ["client_encoding", "extra_float_digits", "standard_conforming_strings"] as const

/**
 * The values a text sets for client_encoding, extra_float_digits and standard_conforming_strings (`SET [SESSION | LOCAL]
 * name TO x`, `SET NAMES x` for client_encoding, `set_config('name', x, …)`), one per such
 * statement or call, so one that would change how the session's results are read is refused
 * before it is sent. A value set_config takes from anything but a literal is "(an expression)".
 * Function bodies and SQL built at run time are out of sight.
 */
export const settingsSet = (text: string): Array<readonly [name: string, value: string]> => {
  if (!/client_encoding|names|extra_float_digits|standard_conforming_strings/i.test(text)) return []
  const out: Array<readonly [string, string]> = []
  for (const statement of statementsOf(text)) {
    const t = tokensOf(statement)
    if (t[0]?.kind === "word" && t[0].value === "SET") {
      let at = 1
      if (t[at]?.kind === "word" && (t[at]!.value === "SESSION" || t[at]!.value === "LOCAL")) at++
      const name = WATCHED.find((n) => isName(t[at], n))
      if (name !== undefined) {
        at++
        if (
          (t[at]?.kind === "word" && t[at]!.value === "TO") ||
          (t[at]?.kind === "punct" && t[at]!.value === "=")
        )
          at++
        // The rest of the statement: a number comes one character at a time ("-", "1", "0").
        if (at < t.length)
          out.push([
            name,
            t
              .slice(at)
              .map((token) => token.value)
              .join("")
          ])
      } else if (t[at]?.kind === "word" && t[at]!.value === "NAMES") {
        const value = settingValue(t[at + 1])
        if (value !== undefined) out.push(["client_encoding", value])
      }
    }
    for (let k = 0; k + 2 < t.length; k++) {
      const call = t[k]!
      if (call.kind !== "word" || call.value !== "SET_CONFIG" || t[k + 1]!.value !== "(") continue
      const nameToken = t[k + 2]!
      const name = WATCHED.find((n) => nameToken.kind === "string" && nameToken.value.toLowerCase() === n)
      if (name === undefined) continue
      // set_config('client_encoding'::text, value, …): a cast after the name is skipped.
      let at = k + 3
      if (t[at]?.value === ":" && t[at + 1]?.value === ":") at += 3
      if (t[at]?.value !== ",") continue
      const value = t[at + 1]
      out.push([name, value?.kind === "string" ? value.value : "(an expression)"])
    }
  }
  return out
}

/** Whether a command tag says prepared statements were dropped (DEALLOCATE, DISCARD ALL). */
export const dropsStatements = (tag: string): boolean =>
  tag.charCodeAt(0) === 68 && (tag === "DEALLOCATE" || tag === "DEALLOCATE ALL" || tag === "DISCARD ALL")

/**
 * What a statement drops of the session's prepared statements: `DEALLOCATE [PREPARE] name` that
 * name (as the server names it: unquoted names folded to lower case, quoted ones as written),
 * `DEALLOCATE [PREPARE] ALL` and `DISCARD ALL` every one ("all"), and a DEALLOCATE this cannot read
 * (a U&"…" name) every one too; undefined for any other statement. Comments and a final `;` may
 * stand anywhere between the words.
 */
export const droppedStatements = (statement: string): { readonly name: string } | "all" | undefined => {
  const words: Array<{ readonly word: string; readonly quoted: boolean }> = []
  const n = statement.length
  // A DEALLOCATE this cannot read drops what it may: everything.
  const unreadable = () =>
    words.length > 0 && words[0]!.word.toUpperCase() === "DEALLOCATE" ? "all" : undefined
  let i = 0
  while (i < n && words.length < 4) {
    const c = statement[i]!
    const afterComment = skipComment(statement, i)
    if (afterComment !== i) i = afterComment
    else if (c === ";" || /\s/.test(c)) i++
    else if (c === '"') {
      const end = quotedEnd(statement, i, '"', false)
      words.push({ word: statement.slice(i + 1, end - 1).replaceAll('""', '"'), quoted: true })
      i = end
    } else if (WORD_START.test(c)) {
      let j = i + 1
      while (j < n && WORD_CHAR.test(statement[j]!)) j++
      // U&"…" is a name this does not decode.
      if (statement[j] === '"' || statement[j] === "'") return unreadable()
      const word = statement.slice(i, j)
      if (words.length === 0) {
        const first = word.toUpperCase()
        if (first !== "DEALLOCATE" && first !== "DISCARD") return undefined
      }
      words.push({ word, quoted: false })
      i = j
    } else return unreadable()
  }
  const keyword = (k: number) =>
    words[k] === undefined || words[k]!.quoted ? "" : words[k]!.word.toUpperCase()
  if (keyword(0) === "DISCARD") return keyword(1) === "ALL" ? "all" : undefined
  if (keyword(0) !== "DEALLOCATE") return undefined
  const at = keyword(1) === "PREPARE" && words.length > 2 ? 2 : 1
  const target = words[at]
  if (target === undefined || words.length > at + 1) return "all"
  if (target.quoted) return { name: identifierCut(target.word) }
  if (keyword(at) === "ALL") return "all"
  return { name: identifierCut(target.word.replace(/[A-Z]+/g, (c) => c.toLowerCase())) }
}

/** The longest name the server keeps, in UTF-8 bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63

/**
 * A name as the server keeps it: one over 63 UTF-8 bytes is cut to 63, on a character boundary
 * (with a NOTICE), so `DEALLOCATE` of a longer name drops the statement named by its first 63 bytes.
 */
export const identifierCut = (name: string): string => {
  // Up to 21 UTF-16 units no name passes 63 bytes (a unit is at most 3 bytes, a pair 4).
  if (name.length <= 21) return name
  let bytes = 0
  for (let i = 0; i < name.length; ) {
    const code = name.codePointAt(i)!
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4
    if (bytes + size > MAX_IDENTIFIER_BYTES) return name.slice(0, i)
    bytes += size
    i += code >= 0x10000 ? 2 : 1
  }
  return name
}
