/**
 * Fuzzes the codec's parsers: N random and mutated inputs (default 1,000,000) through
 * BackendParser and FrontendParser in random chunkings, using the engine of
 * packages/codec/test/fuzz.test.ts. Every outcome must be a message or a typed ProtocolError; a
 * throw, a hang or a chunking-dependent result fails the run and prints the offending input.
 *
 *   node bench/fuzz-codec.ts [count] [seed]
 */
import { prng } from "../packages/codec/test/support/Decode.ts"
import { fuzzOne, loadGoldens, makeInput, newStats } from "../packages/codec/test/support/Fuzz.ts"

const count = Number(process.argv[2] ?? 1_000_000)
const seed = Number(process.argv[3] ?? Date.now() % 0x7fffffff)
const goldens = loadGoldens()
const rand = prng(seed)
const stats = newStats()
const start = performance.now()
let last = start

for (let i = 0; i < count; i++) {
  const input = makeInput(rand, goldens)
  try {
    fuzzOne(input, rand, stats, true)
  } catch (e) {
    console.error(`FAIL at input #${i} (seed ${seed}): ${(e as Error).message}`)
    console.error(`input (${input.length} bytes): ${Buffer.from(input).toString("hex")}`)
    process.exit(1)
  }
  const now = performance.now()
  if (now - last > 5000) {
    console.log(`  ${i + 1} inputs, ${((now - start) / 1000).toFixed(1)} s`)
    last = now
  }
}

const seconds = (performance.now() - start) / 1000
console.log(`fuzz-codec: ${stats.inputs} inputs (seed ${seed}) in ${seconds.toFixed(1)} s`)
console.log(
  `  ${(stats.inputs / seconds).toFixed(0)} inputs/s, ${(stats.bytes / 1e6).toFixed(1)} MB, ${stats.messages} messages`
)
console.log(`  outcomes: ${stats.clean} clean, ${stats.incomplete} incomplete tail, errors by reason:`)
for (const [reason, n] of Object.entries(stats.errors).sort((a, b) => b[1] - a[1]))
  console.log(`    ${reason}: ${n}`)
console.log("  no throw, no hang, chunked == whole for every input")
