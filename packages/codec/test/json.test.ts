/**
 * parseJsonBytes against JSON.parse, the reference: the same value (same key order, same -0, same
 * own "__proto__" members) for every valid document, and a SyntaxError for every invalid one,
 * whether the fast path handles the text or hands it over.
 */
import { spawnSync } from "node:child_process"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { NOT_HANDLED, parseJsonBytes, parseJsonFast } from "../src/types/Json.ts"

const runs = Number(process.env.PGLINE_FC_RUNS ?? 300)

/** The outcome of parsing, comparable with toEqual: a value (with its key order) or a failure. */
const outcome = (
  f: () => unknown
): { ok: true; value: unknown; order: string } | { ok: false; kind: string } => {
  try {
    const value = f()
    return { ok: true, value, order: JSON.stringify(value) ?? "undefined" }
  } catch (e) {
    return { ok: false, kind: (e as Error).constructor.name }
  }
}

/** Parses `text` placed inside a larger buffer (bytes before and after), as a DataRow column is. */
const viaBytes = (text: string, asBuffer: boolean) => {
  const inner = new TextEncoder().encode(text)
  const outer = new Uint8Array(inner.length + 7)
  // Bytes around it that would close or continue a document: a parser reading outside its range
  // would accept them.
  const around = '}]",1 '
  for (let i = 0; i < outer.length; i++) outer[i] = around.charCodeAt(i % around.length)
  outer.set(inner, 3)
  const bytes = asBuffer ? Buffer.from(outer.buffer, outer.byteOffset, outer.length) : outer
  return parseJsonBytes(bytes, 3, 3 + inner.length)
}

const agrees = (text: string) => {
  const expected = outcome(() => JSON.parse(text))
  expect(
    outcome(() => viaBytes(text, true)),
    text
  ).toEqual(expected)
  expect(
    outcome(() => viaBytes(text, false)),
    text
  ).toEqual(expected)
}

/** Formats a value the ways servers and clients print JSON (jsonb_out puts a space after , and :). */
const layouts = (v: unknown): Array<string> => {
  const compact = JSON.stringify(v)
  return [
    compact,
    JSON.stringify(v, null, 1),
    JSON.stringify(v, null, "\t").replace(/\n/g, "\r\n"),
    // jsonb's own output style, approximated outside strings by re-serialising with spacing.
    compact.length < 2000 ? jsonbStyle(v) : compact
  ]
}

const jsonbStyle = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(jsonbStyle).join(", ")}]`
  if (v !== null && typeof v === "object")
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${jsonbStyle(x)}`)
      .join(", ")}}`
  return JSON.stringify(v)
}

describe("parseJsonBytes agrees with JSON.parse", () => {
  it("on generated JSON values in several layouts", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        for (const text of layouts(v)) agrees(text)
      }),
      { numRuns: runs }
    )
  })

  it("on small ASCII documents (the fast path's domain)", () => {
    const key = fc.string({
      unit: fc.constantFrom("a", "b", "id", "0", "1", " ", "é", "\\", '"'),
      maxLength: 4
    })
    const leaf = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(0, -0, 1e21, 2 ** 53, -(2 ** 53) - 2, 123456789012345, 1234567890123456),
      fc.boolean(),
      fc.constant(null),
      fc.string({ maxLength: 20 })
    )
    const doc = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small" }, leaf, tie("array"), tie("object")),
      array: fc.array(tie("value"), { maxLength: 4 }),
      object: fc.dictionary(key, tie("value"), { maxKeys: 4 })
    })).value
    fc.assert(
      fc.property(doc, (v) => {
        for (const text of layouts(v)) agrees(text)
      }),
      { numRuns: runs * 3 }
    )
  })

  it("on mutated documents (mostly invalid JSON)", () => {
    const base = '{"id": 12, "ok": true, "tags": ["a", "b"], "n": -1.5e3, "z": null, "s": "x y"}'
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 127 }), fc.boolean()), {
          minLength: 1,
          maxLength: 3
        }),
        (edits) => {
          let text = base
          for (const [at, code, insert] of edits) {
            const ch = String.fromCharCode(code)
            text = insert
              ? text.slice(0, at) + ch + text.slice(at)
              : text.slice(0, at) + ch + text.slice(at + 1)
          }
          agrees(text)
        }
      ),
      { numRuns: runs * 3 }
    )
  })

  it.each([
    ["", "empty"],
    ["   ", "blank"],
    ["0", "zero"],
    ["-0", "negative zero"],
    ["01", "leading zero"],
    ["-", "lone minus"],
    ["1.", "dot without digits"],
    [".5", "no integer part"],
    ["1e", "empty exponent"],
    ["1E+2", "exponent with sign"],
    ["1e400", "overflow to Infinity"],
    ["-1e-400", "underflow to -0"],
    ["123456789012345", "15 digits"],
    ["1234567890123456789", "19 digits (rounded like JSON.parse)"],
    ["9007199254740993", "2^53 + 1"],
    ['"\\u00e9\\n"', "escapes"],
    ['"é"', "non-ASCII"],
    ['"a\tb"', "raw control character (invalid)"],
    ["[1,]", "trailing comma"],
    ['{"a" 1}', "missing colon"],
    ['{"a":1,"a":2}', "duplicate keys (last wins, first position)"],
    ['{"b":1,"a":2,"1":3,"0":4}', "integer-like keys ordered by the engine"],
    ["{", "open object at the end of the range"],
    ["[", "open array at the end of the range"],
    ['{"a":1,', "object cut after a comma"],
    ["[1,", "array cut after a comma"],
    ['"abc', "unterminated string"],
    ["tru", "truncated literal"],
    ["nul", "truncated null"],
    ["truex", "literal with trailing garbage"],
    [" \r\n\t[ 1 , 2 ]\r\n ", "every JSON whitespace"],
    ["[1] [2]", "two documents"],
    ['{"Aa": 1, "BB": 2}', "keys with the same hash and length"],
    ['[{"BB": 1}, {"Aa": 2}, {"BB": 3}]', "cached key replaced by a colliding one"]
  ])("%j (%s)", (text) => {
    agrees(text)
  })

  it("a __proto__ member is an own property, not the prototype", () => {
    const text = '{"__proto__": {"polluted": true}, "a": 1}'
    for (const asBuffer of [true, false]) {
      const v = viaBytes(text, asBuffer) as Record<string, unknown>
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
      expect(Object.getOwnPropertyNames(v)).toEqual(["__proto__", "a"])
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    }
  })

  it("a setter added to Object.prototype is not run: keys it owns are left to JSON.parse", () => {
    let calls = 0
    Object.defineProperty(Object.prototype, "pglineTrap", {
      configurable: true,
      set() {
        calls++
      }
    })
    try {
      const v = viaBytes('{"pglineTrap": 1, "b": 2}', true) as Record<string, unknown>
      expect(Object.getOwnPropertyNames(v)).toEqual(["pglineTrap", "b"])
      expect(calls).toBe(0)
    } finally {
      delete (Object.prototype as Record<string, unknown>).pglineTrap
    }
  })

  it("deep nesting and large documents go to JSON.parse and still agree", () => {
    agrees(`${"[".repeat(5000)}1${"]".repeat(5000)}`)
    agrees(`${'{"a":'.repeat(100)}1${"}".repeat(100)}`)
    const big = { rows: Array.from({ length: 200 }, (_, i) => ({ i, name: `row ${i}`, v: i / 7 })) }
    agrees(JSON.stringify(big))
  })

  it("objects of a key sequence seen before (built by its compiled literal) agree with JSON.parse", () => {
    // The first object of a key sequence is built key by key, later ones by the literal compiled
    // for the sequence: parse each document several times so both builds are compared.
    for (const text of [
      '{"id": 7, "ok": true, "tags": ["a", "b"]}',
      '{"a":1,"a":2}',
      '{"a":1,"b":2,"a":3}',
      '{"b":1,"a":2,"1":3,"0":4}',
      '{"x": {"x": {"x": [1, {"x": 2}]}}}',
      '[{"k": 1, "v": [2, 3]}, {"k": 4, "v": []}, {"k": 5}, {}]',
      '{"a": 1, "b": [1, 2, 3], "c": {"a": 1, "b": [1, 2, 3]}}'
    ])
      for (let i = 0; i < 4; i++) agrees(text)
  })

  it("more key sequences than the shape cache keeps, and objects wider than a cached shape, still agree", () => {
    for (let i = 0; i < 3000; i++) agrees(`{"k${i}": ${i}, "w${i % 7}": [${i}, "s"], "z": null}`)
    const wide = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`c${i}`, i]))
    for (let i = 0; i < 3; i++) agrees(JSON.stringify(wide))
    // After the caches are full, earlier sequences still parse as before.
    for (let i = 0; i < 3; i++) agrees('{"id": 7, "ok": true, "tags": ["a", "b"]}')
  })

  it("a document given up part way leaves nothing behind for the next one", () => {
    for (let i = 0; i < 3; i++) {
      agrees('[1, [2, {"a": [3, {"b": "\\n"}]}]]')
      agrees('{"a": [1, 2, {"b": 3}], "c": "é"}')
      agrees('[1, [2, {"a": [3, {"b": 4}]}]]')
      agrees('{"a": [1, 2, {"b": 3}], "c": "d"}')
    }
  })

  /** Runs `lines` (with parseJsonBytes imported) in a child Node process with `flag`; what it printed, parsed. */
  const inChild = (flag: string, lines: ReadonlyArray<string>): unknown => {
    const script = [
      `import { parseJsonBytes } from ${JSON.stringify(new URL("../src/types/Json.ts", import.meta.url).href)}`,
      ...lines
    ].join("\n")
    const child = spawnSync(process.execPath, [flag, "--input-type=module", "-e", script], {
      encoding: "utf8"
    })
    expect(child.stderr).toBe("")
    return JSON.parse(child.stdout)
  }

  it("without code generation (--disallow-code-generation-from-strings) objects are built key by key and agree", () => {
    const docs = ['{"id": 7, "ok": true, "tags": ["a", "b"]}', '{"a":1,"a":2}', '{"b":1,"a":2,"1":3,"0":4}']
    const out = inChild("--disallow-code-generation-from-strings", [
      `const docs = ${JSON.stringify(docs)}`,
      "const out = []",
      "for (const d of docs) for (let i = 0; i < 3; i++) { const b = Buffer.from(d); out.push(JSON.stringify(parseJsonBytes(b, 0, b.length))) }",
      "console.log(JSON.stringify(out))"
    ])
    expect(out).toEqual(docs.flatMap((d) => [0, 1, 2].map(() => JSON.stringify(JSON.parse(d)))))
  })

  it("with Object.prototype.__proto__ deleted (--disable-proto=delete), a __proto__ member stays an own property", () => {
    const out = inChild("--disable-proto=delete", [
      "const out = []",
      "for (let i = 0; i < 3; i++) {",
      '  const b = Buffer.from(\'{"__proto__": {"x": 1}, "a": 2}\')',
      "  const v = parseJsonBytes(b, 0, b.length)",
      "  out.push([Object.getOwnPropertyNames(v), Object.getPrototypeOf(v) === Object.prototype, v.x === undefined])",
      "}",
      "console.log(JSON.stringify(out))"
    ])
    expect(out).toEqual([0, 1, 2].map(() => [["__proto__", "a"], true, true]))
  })

  it("the fast path takes typical small documents and declines the rest", () => {
    const fast = (text: string) => {
      const bytes = Buffer.from(text)
      return parseJsonFast(bytes, 0, bytes.length)
    }
    expect(fast('{"id": 1, "ok": true, "tags": ["a", "b"]}')).toEqual({ id: 1, ok: true, tags: ["a", "b"] })
    expect(fast('[1.5, -2e3, null, false, {}, [], "a long string of more than sixteen bytes"]')).toEqual([
      1.5,
      -2e3,
      null,
      false,
      {},
      [],
      "a long string of more than sixteen bytes"
    ])
    for (const declined of [
      '"\\n"',
      '"é"',
      '{"__proto__": 1}',
      "01",
      "[1,]",
      "x".repeat(600),
      "[".repeat(100)
    ])
      expect(fast(declined)).toBe(NOT_HANDLED)
  })
})
