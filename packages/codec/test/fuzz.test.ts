/**
 * Fuzzing in the suite: ~2 s of random and mutated inputs through both parsers in random
 * chunkings. Every outcome must be a message or a typed error; see support/Fuzz.ts for the
 * invariants. bench/fuzz-codec.ts runs the same engine for millions of inputs.
 */
import { expect, it } from "vitest"
import { fuzzOne, loadGoldens, makeInput, newStats } from "./support/Fuzz.ts"
import { prng } from "./support/Decode.ts"

const BUDGET_MS = 2000

it("random and mutated streams yield only messages or typed errors, in any chunking", () => {
  const goldens = loadGoldens()
  const rand = prng(20251121)
  const stats = newStats()
  const start = performance.now()
  while (performance.now() - start < BUDGET_MS) {
    for (let i = 0; i < 100; i++) fuzzOne(makeInput(rand, goldens), rand, stats, true)
  }
  // The mix must exercise every outcome, not only one kind of rejection.
  expect(stats.inputs).toBeGreaterThan(5_000)
  expect(stats.clean).toBeGreaterThan(0)
  expect(stats.incomplete).toBeGreaterThan(0)
  for (const reason of [
    "UnknownMessageType",
    "InvalidLength",
    "Truncated",
    "TrailingBytes",
    "MessageTooLarge"
  ]) {
    expect(stats.errors[reason], reason).toBeGreaterThan(0)
  }
})
