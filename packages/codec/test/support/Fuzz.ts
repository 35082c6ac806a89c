/**
 * Fuzz engine shared by fuzz.test.ts (a fixed count and seed in the suite) and bench/fuzz-codec.ts
 * (millions of inputs). Inputs are random bytes, random well-framed junk, and golden server streams
 * mutated by bit flips, truncation, splicing and length-field corruption. Each input goes through both
 * parsers in a random chunking and must yield only messages or one typed error, terminate, never
 * throw, and decode identically in one chunk.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type AuthResponseKind, BackendParser, FrontendParser, ProtocolError } from "../../src/Parser.ts"
import { normalize } from "./Decode.ts"

export const loadGoldens = (): Array<Uint8Array> => {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "golden")
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".bin"))
    .sort()
    .map((f) => new Uint8Array(fs.readFileSync(path.join(dir, f))))
}

type Rand = () => number
const int = (rand: Rand, n: number): number => Math.floor(rand() * n)

const BACKEND_TYPES = "RK23CdcGHWDIEVvnNAtS1sZT"
const FRONTEND_TYPES = "BCdcfDEHFpPQSX"

/** Offsets of the message headers in a well-formed typed stream. */
const headers = (b: Uint8Array): Array<number> => {
  const out: Array<number> = []
  let at = 0
  while (at + 5 <= b.length) {
    out.push(at)
    const len = new DataView(b.buffer, b.byteOffset).getInt32(at + 1)
    if (len < 4) break
    at += 1 + len
  }
  return out
}

/** Random frames with plausible type bytes and small, sometimes lying, lengths. */
const junkFrames = (rand: Rand, types: string): Uint8Array => {
  const parts: Array<number> = []
  const n = 1 + int(rand, 6)
  for (let i = 0; i < n; i++) {
    const body = Array.from({ length: int(rand, 24) }, () => (rand() < 0.3 ? 0 : int(rand, 256)))
    const len = rand() < 0.8 ? body.length + 4 : int(rand, 40) - 4
    parts.push(
      types.charCodeAt(int(rand, types.length)),
      (len >>> 24) & 0xff,
      (len >>> 16) & 0xff,
      (len >>> 8) & 0xff,
      len & 0xff
    )
    parts.push(...body)
  }
  return Uint8Array.from(parts)
}

export const makeInput = (rand: Rand, goldens: ReadonlyArray<Uint8Array>): Uint8Array => {
  const r = rand()
  if (r < 0.1) return Uint8Array.from({ length: int(rand, 64) }, () => int(rand, 256))
  if (r < 0.2) return junkFrames(rand, BACKEND_TYPES)
  const src = goldens[int(rand, goldens.length)]!
  const b = Uint8Array.from(src)
  const kind = int(rand, 5)
  if (kind === 0) {
    // Bit flips.
    const flips = 1 + int(rand, 8)
    for (let i = 0; i < flips; i++) b[int(rand, b.length)]! ^= 1 << int(rand, 8)
    return b
  }
  if (kind === 1) return b.subarray(0, int(rand, b.length + 1)) // truncation
  if (kind === 2) {
    // Splice: a slice of another golden (or random bytes) replaces a slice of this one.
    const other =
      rand() < 0.7
        ? goldens[int(rand, goldens.length)]!
        : Uint8Array.from({ length: 16 }, () => int(rand, 256))
    const from = int(rand, other.length)
    const piece = other.subarray(from, from + int(rand, 64))
    const at = int(rand, b.length)
    const cutLen = int(rand, 32)
    const out = new Uint8Array(at + piece.length + Math.max(0, b.length - at - cutLen))
    out.set(b.subarray(0, at))
    out.set(piece, at)
    out.set(b.subarray(Math.min(b.length, at + cutLen)), at + piece.length)
    return out
  }
  if (kind === 3) {
    // Length-field corruption on a real message boundary.
    const hs = headers(src)
    const at = hs[int(rand, hs.length)]! + 1
    const view = new DataView(b.buffer)
    const old = view.getInt32(at)
    const choices = [0, 3, 4, 5, old - 1, old + 1, old * 2, 0x7fffffff, -1, 0x40000005, int(rand, 1 << 16)]
    view.setInt32(at, choices[int(rand, choices.length)]!)
    return b
  }
  // Type byte replaced on a real boundary.
  const hs = headers(src)
  b[hs[int(rand, hs.length)]!] =
    rand() < 0.5 ? int(rand, 256) : BACKEND_TYPES.charCodeAt(int(rand, BACKEND_TYPES.length))
  return b
}

export interface FuzzStats {
  inputs: number
  bytes: number
  messages: number
  errors: Record<string, number>
  clean: number
  incomplete: number
}

export const newStats = (): FuzzStats => ({
  inputs: 0,
  bytes: 0,
  messages: 0,
  errors: {},
  clean: 0,
  incomplete: 0
})

/** Pull until undefined or error; checks each outcome's shape. Returns outcomes (for comparison). */
const pullAll = (
  p: BackendParser | FrontendParser,
  out: Array<unknown>,
  budget: number
): ProtocolError | undefined => {
  for (;;) {
    const m = p.next()
    if (m === undefined) return undefined
    if (m instanceof ProtocolError) {
      if (p.next() !== m) throw new Error("parser did not stay failed")
      out.push(m)
      return m
    }
    if (typeof m.type !== "string") throw new Error("message without a type")
    if (m.type === "DataRow") {
      for (let i = 0; i < m.columnCount; i++) {
        if (m.lengths[i]! < -1 || m.offsets[i]! + Math.max(0, m.lengths[i]!) > m.bytes.length) {
          throw new Error("DataRow column outside its buffer")
        }
      }
    }
    out.push(m)
    // Every message consumes at least 5 bytes (4 for startup packets): more outcomes than that is a loop.
    if (out.length > budget) throw new Error("more messages than the input can hold")
  }
}

const KINDS: ReadonlyArray<AuthResponseKind> = ["password", "sasl-initial", "sasl", "gss"]

/**
 * Run one input through both parsers in a random chunking and in one piece; throws (a test
 * failure) if any invariant breaks. `compare` also checks the two decodings agree (costlier).
 */
export const fuzzOne = (input: Uint8Array, rand: Rand, stats: FuzzStats, compare: boolean): void => {
  stats.inputs++
  stats.bytes += input.length
  const budget = input.length / 4 + 1
  const maxMessageSize = rand() < 0.3 ? 64 : undefined
  const options = maxMessageSize === undefined ? {} : { maxMessageSize }

  const chunked: Array<unknown> = []
  const p = new BackendParser(options)
  let err: ProtocolError | undefined
  let at = 0
  while (at < input.length && err === undefined) {
    const n = rand() < 0.3 ? 1 : 1 + int(rand, 700)
    p.push(input.subarray(at, at + n))
    at += n
    err = pullAll(p, chunked, budget)
  }
  if (err !== undefined) stats.errors[err.reason] = (stats.errors[err.reason] ?? 0) + 1
  else if (p.bufferedBytes > 0) stats.incomplete++
  else stats.clean++
  stats.messages += chunked.length

  if (compare) {
    const whole: Array<unknown> = []
    const q = new BackendParser(options)
    q.push(input)
    pullAll(q, whole, budget)
    const a = JSON.stringify(normalize(chunked))
    const b = JSON.stringify(normalize(whole))
    if (a !== b) throw new Error(`chunked and whole decodings differ:\n${a}\n${b}`)
  }

  // The frontend parser: the same bytes, or random frontend frames, half of the time after a valid
  // StartupMessage prefix (13 bytes: one message, hence the + 4 in the budget).
  const f = new FrontendParser(options)
  f.expectAuthResponse(KINDS[int(rand, KINDS.length)]!)
  if (rand() < 0.5) f.push(Uint8Array.of(0, 0, 0, 13, 0, 3, 0, 0, 0x75, 0, 0x78, 0, 0))
  const body = rand() < 0.5 ? input : junkFrames(rand, FRONTEND_TYPES)
  f.push(body)
  // The budget follows the bytes this parser got: random frames can be longer than the input.
  pullAll(f, [], body.length / 4 + 1 + 4)
}
