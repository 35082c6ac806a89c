/**
 * SASLprep (RFC 4013, a profile of stringprep, RFC 3454) for SCRAM passwords.
 *
 * `saslprep` is the RFC as written: map (non-ASCII spaces to U+0020, "commonly mapped to nothing"
 * removed), NFKC, then refuse prohibited output (RFC 4013 section 2.3), unassigned code points
 * (table A.1, treating the password as a stored string) and strings that break the bidi rules
 * (RFC 3454 section 6).
 *
 * `saslprepPassword` is what a PostgreSQL client must actually send. The server prepares a
 * password it hashes into a SCRAM verifier with its own SASLprep and, when that fails, hashes the
 * password's bytes unchanged; libpq does the same on the client. To produce the same SaltedPassword
 * we mirror that behaviour exactly, including three places where the server departs from the RFC:
 *   - an all-ASCII password is used as is (no check for ASCII control characters);
 *   - a password that maps to nothing is "prohibited" (the raw password is used);
 *   - the prohibited/unassigned/bidi checks run on the mapped string before NFKC, not after.
 * Any failure falls back to the password unchanged; it never refuses a password.
 *
 * Normalization uses the runtime's NFKC (current Unicode). Stringprep pins Unicode 3.2, but every
 * code point unassigned in 3.2 is rejected before normalization matters, and NFKC is stable for
 * assigned code points apart from a handful of 2003-era corrigenda; PostgreSQL itself normalizes
 * with its current Unicode tables, so this matches the server.
 *
 * Not here: case folding (SASLprep has none) and any use for user names (PostgreSQL's SCRAM sends
 * an empty user name).
 */
import {
  asciiControl,
  changeDisplayOrDeprecated,
  type CodePointTable,
  inappropriateForCanonical,
  inappropriateForPlainText,
  inTable,
  l,
  mappedToNothing,
  nonAsciiControl,
  nonAsciiSpace,
  nonCharacter,
  privateUse,
  randAL,
  surrogate,
  tagging,
  unassigned
} from "./stringprepTables.ts"

/** Why strict SASLprep refused a string. */
export type SaslprepFailure =
  | { readonly reason: "Prohibited"; readonly codePoint: number; readonly table: string }
  | { readonly reason: "Unassigned"; readonly codePoint: number }
  | { readonly reason: "Bidi"; readonly detail: string }
  | { readonly reason: "InvalidUnicode"; readonly index: number }

export type SaslprepResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly error: SaslprepFailure }

/** RFC 4013 section 2.3, in the order the RFC lists them (the name is the RFC 3454 table). */
const prohibitedTables: ReadonlyArray<readonly [string, CodePointTable]> = [
  ["C.1.2", nonAsciiSpace],
  ["C.2.1", asciiControl],
  ["C.2.2", nonAsciiControl],
  ["C.3", privateUse],
  ["C.4", nonCharacter],
  ["C.5", surrogate],
  ["C.6", inappropriateForPlainText],
  ["C.7", inappropriateForCanonical],
  ["C.8", changeDisplayOrDeprecated],
  ["C.9", tagging]
]

const prohibitedBy = (cp: number): string | undefined => {
  for (const [name, table] of prohibitedTables) if (inTable(table, cp)) return name
  return undefined
}

/** Code points of `s`, or the index of the first lone surrogate (not representable in UTF-8). */
const codePoints = (s: string): number[] | number => {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        out.push(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000)
        i++
        continue
      }
      return i
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i
    out.push(c)
  }
  return out
}

/**
 * RFC 3454 section 3 with SASLprep's mapping (RFC 4013 section 2.1). U+200B is in both C.1.2 and
 * B.1; like PostgreSQL we test C.1.2 first, so it becomes a space.
 */
const map = (cps: ReadonlyArray<number>): number[] => {
  const out: number[] = []
  for (const cp of cps) {
    if (cp < 0x80) out.push(cp)
    else if (inTable(nonAsciiSpace, cp)) out.push(0x20)
    else if (!inTable(mappedToNothing, cp)) out.push(cp)
  }
  return out
}

/** Prohibited output, unassigned code points and the bidi rules (RFC 3454 sections 5-7). */
const check = (cps: ReadonlyArray<number>): SaslprepFailure | undefined => {
  let hasRandAL = false
  let hasL = false
  for (const cp of cps) {
    const table = prohibitedBy(cp)
    if (table !== undefined) return { reason: "Prohibited", codePoint: cp, table }
    if (inTable(unassigned, cp)) return { reason: "Unassigned", codePoint: cp }
    if (inTable(randAL, cp)) hasRandAL = true
    else if (inTable(l, cp)) hasL = true
  }
  if (hasRandAL) {
    if (hasL) return { reason: "Bidi", detail: "a string with a RandALCat character has an LCat character" }
    if (!inTable(randAL, cps[0]!) || !inTable(randAL, cps[cps.length - 1]!)) {
      return { reason: "Bidi", detail: "a string with a RandALCat character must start and end with one" }
    }
  }
  return undefined
}

const fromCodePoints = (cps: ReadonlyArray<number>): string => {
  let s = ""
  // Chunked: String.fromCodePoint(...cps) would overflow the argument limit on huge inputs.
  for (let i = 0; i < cps.length; i += 4096) s += String.fromCodePoint(...cps.slice(i, i + 4096))
  return s
}

const nfkc = (cps: ReadonlyArray<number>): number[] =>
  codePoints(fromCodePoints(cps).normalize("NFKC")) as number[]

/** Strict RFC 4013 SASLprep for a stored string (unassigned code points are refused). */
export const saslprep = (input: string): SaslprepResult => {
  const cps = codePoints(input)
  if (typeof cps === "number") return { ok: false, error: { reason: "InvalidUnicode", index: cps } }
  // Unassigned code points are refused in the input too: normalizing one with today's Unicode
  // could otherwise turn it into something the output check accepts.
  for (const cp of cps) {
    if (inTable(unassigned, cp)) return { ok: false, error: { reason: "Unassigned", codePoint: cp } }
  }
  const out = nfkc(map(cps))
  const failure = check(out)
  return failure === undefined ? { ok: true, value: fromCodePoints(out) } : { ok: false, error: failure }
}

const allAscii = /^[\x00-\x7f]*$/

/**
 * The password PostgreSQL's SCRAM hashes: SASLprep as the server applies it, or the password
 * unchanged when that fails (invalid Unicode, prohibited or unassigned characters, bidi rules,
 * nothing left after mapping). Never fails.
 */
export const saslprepPassword = (password: string): string => {
  if (allAscii.test(password)) return password
  const cps = codePoints(password)
  // A lone surrogate cannot be encoded as UTF-8; the server would see invalid UTF-8 and fall back.
  if (typeof cps === "number") return password
  const mapped = map(cps)
  if (mapped.length === 0) return password
  if (check(mapped) !== undefined) return password
  return fromCodePoints(nfkc(mapped))
}
