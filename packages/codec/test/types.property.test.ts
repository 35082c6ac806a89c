/**
 * Property tests: for every built-in type, its arrays and the range types, encoding a generated
 * value and decoding the result gives the value back, in binary and in text. The server's view of
 * the same values is checked by types.integration.test.ts. PGLINE_FC_RUNS=5000 runs a longer search.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ByteWriter, encodeBinary } from "../src/index.ts"
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
