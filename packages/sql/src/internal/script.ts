/**
 * Which statement of a migration script ends or opens a transaction block (BEGIN, START
 * TRANSACTION, COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION), read from the text before it
 * runs. It splits the script at the semicolons the server splits it at: not inside '…' and E'…'
 * strings, "…" identifiers, $tag$…$tag$ bodies, -- and (nested) block comments, nor inside a
 * `BEGIN ATOMIC … END` function body. It does not parse SQL beyond that: SQL the script builds
 * and runs itself is out of its sight (the migrator checks the transaction after the script too).
 */

/** A dollar-quote delimiter where `lastIndex` points (a tag of any length, as the server reads it). */
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y

/**
 * The words of `text` outside quotes and comments, with each `;` and any other punctuation
 * character as a word of its own (so two words are adjacent only when nothing stands between).
 */
const words = (text: string): Array<string> => {
  const out: Array<string> = []
  const n = text.length
  let i = 0
  // Letters include every character from U+0080 on, as in PostgreSQL's lexer (identifiers, tags).
  const isWordChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c)
  while (i < n) {
    const c = text[i]!
    if (c === "-" && text[i + 1] === "-") {
      const nl = text.indexOf("\n", i)
      i = nl < 0 ? n : nl + 1
    } else if (c === "/" && text[i + 1] === "*") {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        if (text[i] === "/" && text[i + 1] === "*") {
          depth++
          i += 2
        } else if (text[i] === "*" && text[i + 1] === "/") {
          depth--
          i += 2
        } else i++
      }
    } else if (c === "'") {
      // E'…' allows backslash escapes; the E must stand alone (date'…' is a typed literal).
      const escapes = (text[i - 1] === "E" || text[i - 1] === "e") && !isWordChar(text[i - 2])
      i++
      while (i < n) {
        if (escapes && text[i] === "\\") i += 2
        else if (text[i] === "'") {
          if (text[i + 1] !== "'") break
          i += 2
        } else i++
      }
      i++
    } else if (c === '"') {
      i++
      while (i < n) {
        if (text[i] !== '"') i++
        else if (text[i + 1] === '"') i += 2
        else break
      }
      i++
    } else if (c === "$" && !isWordChar(text[i - 1])) {
      DOLLAR_TAG.lastIndex = i
      const tag = DOLLAR_TAG.exec(text)?.[0]
      if (tag === undefined) i++
      else {
        const end = text.indexOf(tag, i + tag.length)
        i = end < 0 ? n : end + tag.length
      }
    } else if (c === ";") {
      out.push(";")
      i++
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c) && !isWordChar(text[i - 1])) {
      let j = i + 1
      while (isWordChar(text[j])) j++
      out.push(text.slice(i, j).toUpperCase())
      i = j
    } else {
      if (!/\s/.test(c)) out.push(c)
      i++
    }
  }
  return out
}

/** Whether the statement at `start` is CREATE [OR REPLACE] FUNCTION / PROCEDURE. */
const isRoutine = (ws: ReadonlyArray<string>, start: number): boolean => {
  if (ws[start] !== "CREATE") return false
  const at = ws[start + 1] === "OR" && ws[start + 2] === "REPLACE" ? start + 3 : start + 1
  return ws[at] === "FUNCTION" || ws[at] === "PROCEDURE"
}

/** Whether a statement starting with these two words opens or ends a transaction block. */
const endsBlock = (first: string, second: string | undefined): boolean => {
  switch (first) {
    case "BEGIN":
    case "START":
    case "END":
    case "ABORT":
      return true
    // COMMIT / ROLLBACK PREPARED finish another session's two-phase transaction; ROLLBACK TO
    // [SAVEPOINT] stays inside the block.
    case "COMMIT":
      return second !== "PREPARED"
    case "ROLLBACK":
      return second !== "PREPARED" && second !== "TO"
    case "PREPARE":
      return second === "TRANSACTION"
    default:
      return false
  }
}

/** The first transaction control statement's leading words ("COMMIT"), or undefined when none. */
export const transactionControlIn = (text: string): string | undefined => {
  const ws = words(text)
  let start = 0
  // Depth of BEGIN ATOMIC … END (and CASE … END inside it) and of parentheses (a rule's action
  // list): semicolons there do not end anything.
  let atomic = 0
  let parens = 0
  for (let i = 0; i <= ws.length; i++) {
    const w = ws[i]
    if (w === undefined || (w === ";" && atomic === 0 && parens === 0)) {
      const first = ws[start]
      if (i > start && endsBlock(first!, ws[start + 1]))
        return first === "START" || first === "PREPARE" ? `${first} TRANSACTION` : first
      start = i + 1
      atomic = 0
      parens = 0
    } else if (w === "(") parens++
    else if (w === ")") parens = Math.max(0, parens - 1)
    else if (parens === 0 && ws[i - 1] !== "." && isRoutine(ws, start)) {
      // BEGIN and ATOMIC adjacent open the body; a qualified name's part (t.end) is no keyword.
      if (w === "BEGIN" && ws[i + 1] === "ATOMIC") atomic++
      else if (atomic > 0 && w === "CASE") atomic++
      else if (atomic > 0 && w === "END") atomic--
    }
  }
  return undefined
}
