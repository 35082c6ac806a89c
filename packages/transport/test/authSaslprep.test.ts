/**
 * SASLprep: RFC 4013 section 3's examples, the mapping/prohibition/bidi rules, and the
 * PostgreSQL-compatible password preparation with its fallback to the raw password. Hermetic.
 */
import { describe, expect, it } from "vitest"
import { saslprep, saslprepPassword } from "../src/internal/auth/saslprep.ts"
import { inTable, unassigned } from "../src/internal/auth/stringprepTables.ts"

const prepared = (s: string) => {
  const r = saslprep(s)
  if (!r.ok) throw new Error(`expected success, got ${JSON.stringify(r.error)}`)
  return r.value
}
const failure = (s: string) => {
  const r = saslprep(s)
  if (r.ok) throw new Error(`expected failure, got ${JSON.stringify(r.value)}`)
  return r.error
}

describe("RFC 4013 section 3 examples", () => {
  it("1: SOFT HYPHEN mapped to nothing", () => expect(prepared("I\u00ADX")).toBe("IX"))
  it("2: no transformation", () => expect(prepared("user")).toBe("user"))
  it("3: case preserved, will not match #2", () => expect(prepared("USER")).toBe("USER"))
  it("4: output is NFKC, input in ISO 8859-1", () => expect(prepared("\u00AA")).toBe("a"))
  it("5: output is NFKC, will match #1", () => expect(prepared("\u2168")).toBe("IX"))
  it("6: error - prohibited character", () =>
    expect(failure("\u0007")).toMatchObject({ reason: "Prohibited", table: "C.2.1" }))
  it("7: error - check bidi", () => expect(failure("\u0627\u0031")).toMatchObject({ reason: "Bidi" }))
})

describe("mapping (RFC 4013 section 2.1)", () => {
  it("non-ASCII spaces become U+0020", () => {
    for (const sp of ["\u00A0", "\u1680", "\u2000", "\u2007", "\u200A", "\u202F", "\u205F", "\u3000"]) {
      expect(prepared(`a${sp}b`)).toBe("a b")
    }
  })
  it("U+200B is in both C.1.2 and B.1; like PostgreSQL, it becomes a space", () => {
    expect(prepared("a\u200Bb")).toBe("a b")
  })
  it("commonly-mapped-to-nothing characters are removed", () => {
    expect(prepared("a\u034F\u1806\u180B\u200C\u200D\u2060\uFE00\uFE0F\uFEFFb")).toBe("ab")
  })
  it("compatibility characters are normalized (NFKC)", () => {
    expect(prepared("\uFB01")).toBe("fi")
    expect(prepared("\u2460")).toBe("1")
    expect(prepared("\uFF21")).toBe("A")
    expect(prepared("e\u0301")).toBe("\u00E9")
  })
  it("an empty string stays empty", () => expect(prepared("")).toBe(""))
})

describe("prohibited output (RFC 4013 section 2.3) and unassigned code points", () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ["ASCII control", "a\u007Fb", "C.2.1"],
    ["non-ASCII control", "a\u0085b", "C.2.2"],
    ["private use", "a\uE000b", "C.3"],
    ["private use, plane 15", "a\u{F0000}b", "C.3"],
    ["non-character", "a\uFDD0b", "C.4"],
    ["inappropriate for plain text", "a\uFFFDb", "C.6"],
    ["inappropriate for canonical representation", "a\u2FF0b", "C.7"],
    ["change display properties", "a\u200Eb", "C.8"],
    ["tagging", "a\u{E0001}b", "C.9"]
  ]
  for (const [name, input, table] of cases) {
    it(name, () => expect(failure(input)).toMatchObject({ reason: "Prohibited", table }))
  }
  it("a code point unassigned in Unicode 3.2 (table A.1)", () => {
    expect(failure("a\u0221b")).toMatchObject({ reason: "Unassigned", codePoint: 0x221 })
    // U+1F600 was assigned in Unicode 6.0: still unassigned for stringprep.
    expect(failure("\u{1F600}")).toMatchObject({ reason: "Unassigned" })
  })
  it("a lone surrogate is not Unicode text", () => {
    expect(failure("ab\uD800")).toMatchObject({ reason: "InvalidUnicode", index: 2 })
    expect(failure("\uDC00")).toMatchObject({ reason: "InvalidUnicode", index: 0 })
  })
})

describe("bidi (RFC 3454 section 6)", () => {
  it("all right-to-left is fine", () => expect(prepared("\u0627\u0628")).toBe("\u0627\u0628"))
  it("RandAL at both ends with neutral characters inside is fine", () => {
    expect(prepared("\u05D0 1 \u05D1")).toBe("\u05D0 1 \u05D1")
  })
  it("RandAL with an L character is refused", () => {
    expect(failure("\u0627a\u0628")).toMatchObject({ reason: "Bidi" })
  })
  it("RandAL not at the end is refused", () =>
    expect(failure("\u0627\u0628 ")).toMatchObject({ reason: "Bidi" }))
  it("RandAL not at the start is refused", () => expect(failure("1\u05D0")).toMatchObject({ reason: "Bidi" }))
})

describe("saslprepPassword (PostgreSQL's preparation with raw fallback)", () => {
  it("prepares what SASLprep accepts", () => {
    expect(saslprepPassword("I\u00ADX")).toBe("IX")
    expect(saslprepPassword("\u2168")).toBe("IX")
    expect(saslprepPassword("pass\u00A0word")).toBe("pass word")
  })
  it("passes ASCII through untouched, even control characters", () => {
    expect(saslprepPassword("\u0007secret\u007F")).toBe("\u0007secret\u007F")
    expect(saslprepPassword("")).toBe("")
  })
  it("falls back to the raw password on prohibited, unassigned or bidi failures", () => {
    for (const pw of ["a\uE000b", "a\u0221b", "\u0627a\u0628", "\u0627\u0031", "pw\u0085"]) {
      expect(saslprepPassword(pw)).toBe(pw)
    }
  })
  it("falls back when nothing is left after mapping", () => {
    expect(saslprepPassword("\u00AD")).toBe("\u00AD")
    expect(saslprepPassword("\u200C\uFEFF")).toBe("\u200C\uFEFF")
  })
  it("falls back on a lone surrogate", () => expect(saslprepPassword("pw\uD800é")).toBe("pw\uD800é"))
  it("checks before normalizing, as the server does (U+FB1D)", () => {
    // HEBREW LETTER YOD WITH HIRIQ is RandAL, but its NFKC ends in a non-spacing mark: the RFC
    // refuses the string, the server accepts it and hashes the normalized form.
    expect(failure("\uFB1D")).toMatchObject({ reason: "Bidi" })
    expect(saslprepPassword("\uFB1D")).toBe("\u05D9\u05B4")
  })
})

describe("table A.1 sanity against current Unicode data", () => {
  it("every code point unassigned today (not a non-character) is in A.1", () => {
    const cn = /^\p{Cn}$/u
    let checked = 0
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) continue
      if (cn.test(String.fromCodePoint(cp))) {
        checked++
        if (!inTable(unassigned, cp)) throw new Error(`U+${cp.toString(16)} unassigned today but not in A.1`)
      }
    }
    expect(checked).toBeGreaterThan(800_000)
  })
})
