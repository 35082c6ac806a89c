/**
 * Property tests: for every built-in type, its arrays and the range types, encoding a generated
 * value and decoding the result gives the value back, in binary and in text. The server's view of
 * the same values is checked by types.integration.test.ts. PGLINE_FC_RUNS=5000 runs a longer search.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ByteWriter, encodeBinary, Oid, TypeEncodeError } from "../src/index.ts"
import { allCases, expected, label, registries } from "./support/TypeArbitraries.ts"

const w = new ByteWriter(64)
const utf8 = new TextEncoder()

describe("encode → decode is the identity", () => {
  for (const c of allCases) {
    const codec = (c.exact ? registries.exact : registries.date).get(c.oid)!
    it(`${label(c)}: binary and text`, () => {
      fc.assert(
        fc.property(c.arb, (v) => {
          const bytes = encodeBinary(codec, v, w)
          expect(codec.binaryDecode!(bytes, 0, bytes.length)).toEqual(expected(c, v))
          const text = utf8.encode(codec.textEncode(v))
          expect(codec.textDecode(text, 0, text.length)).toEqual(expected(c, v))
        }),
        { numRuns: Number(process.env.PGLINE_FC_RUNS ?? 100) }
      )
    })
  }
})

describe("encodeParameterInto appends what encodeParameter returns", () => {
  // A statement's parameters are encoded one after the other into one buffer: each value's bytes
  // must be exactly encodeParameter's, whatever the buffer held before.
  const prefix = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x01])
  for (const c of allCases) {
    const registry = c.exact ? registries.exact : registries.date
    it(`${label(c)}: declared and inferred type`, () => {
      fc.assert(
        fc.property(c.arb, fc.boolean(), (v, declared) => {
          if (v === null || v === undefined) return
          const oid = declared ? c.oid : undefined
          const out = new ByteWriter(8)
          out.raw(prefix)
          let alone: ReturnType<typeof registry.encodeParameter>
          try {
            alone = registry.encodeParameter(v, oid)
          } catch (error) {
            // Some values fit only their declared type (a JS array as json): both refuse alike.
            expect(() => registry.encodeParameterInto(v, oid, out)).toThrow(error as Error)
            return
          }
          const format = registry.encodeParameterInto(v, oid, out)
          expect(format).toBe(alone.format)
          expect(out.bytes.slice(0, prefix.length)).toEqual(prefix)
          expect(out.bytes.slice(prefix.length, out.length)).toEqual(alone.bytes)
        }),
        { numRuns: Number(process.env.PGLINE_FC_RUNS ?? 100) }
      )
    })
  }

  it("bytes of a type without a codec, strings, and a value that cannot be encoded", () => {
    const registry = registries.date
    const out = new ByteWriter(4)
    expect(registry.encodeParameterInto(new Uint8Array([1, 2, 3]), 999999, out)).toBe(1)
    expect(registry.encodeParameterInto("é", Oid.text, out)).toBe(0)
    expect(registry.encodeParameterInto(5, 123456, out)).toBe(0)
    expect(out.bytes.slice(0, out.length)).toEqual(new Uint8Array([1, 2, 3, 0xc3, 0xa9, 0x35]))
    expect(() => registry.encodeParameterInto(1.5, Oid.int4, out)).toThrow(TypeEncodeError)
  })
})
