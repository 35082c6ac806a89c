/**
 * Fuzzing in the suite: a fixed number of random and mutated inputs from a fixed seed through both
 * parsers in random chunkings, so every machine does the same work and a failure replays exactly.
 * Every outcome must be a message or a typed error; see support/Fuzz.ts for the invariants.
 * bench/fuzz-codec.ts runs the same engine for millions of inputs.
 */
import { expect, it } from "vitest"
import { fuzzOne, loadGoldens, makeInput, newStats } from "./support/Fuzz.ts"
import { prng } from "./support/Decode.ts"

const SEED = 20251121
// A fixed amount of work, not a time budget: 36,000 inputs took 1.8–2.2 s in five runs on this
// project's 2-core machine (the test alone, as vitest reports it). A hang inside a parser is caught
// by the test timeout, which is only a liveness limit.
const COUNT = 36_000

it(`${COUNT} random and mutated streams yield only messages or typed errors, in any chunking`, () => {
  const goldens = loadGoldens()
  const rand = prng(SEED)
  const stats = newStats()
  // fuzzOne throws (failing the test) on a throw from a parser, on more outcomes than the input can
  // hold (a loop), and when the chunked and the one-piece decodings differ.
  for (let i = 0; i < COUNT; i++) fuzzOne(makeInput(rand, goldens), rand, stats, true)
  expect(stats.inputs).toBe(COUNT)
  // The mix must exercise every outcome, not only one kind of rejection.
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
