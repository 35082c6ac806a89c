/**
 * Test helpers: drive the parsers over a byte stream cut into given chunks, and normalise messages
 * to plain data (DataRow -> its column values, Uint8Array -> number arrays) so results from
 * different chunkings, which reference different buffers, compare with toEqual.
 */
import { BackendParser, FrontendParser, ProtocolError, type ParserOptions } from "../../src/Parser.ts"
import type { BackendMessage, FrontendMessage } from "../../src/Protocol.ts"

/** Deterministic PRNG (mulberry32) so random chunkings are reproducible from a seed. */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cut `bytes` at the given sizes (the last chunk takes the rest). */
export const cut = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let at = 0
  for (const n of sizes) {
    if (at >= bytes.length) break
    out.push(bytes.subarray(at, Math.min(bytes.length, at + n)))
    at += n
  }
  if (at < bytes.length) out.push(bytes.subarray(at))
  return out
}

export const randomSizes = (rand: () => number, total: number, max: number): Array<number> => {
  const sizes: Array<number> = []
  let sum = 0
  while (sum < total) {
    const n = 1 + Math.floor(rand() * max)
    sizes.push(n)
    sum += n
  }
  return sizes
}

export const normalize = (m: unknown): unknown => {
  if (m instanceof Uint8Array) return Array.from(m)
  if (m instanceof ProtocolError) return { _tag: m._tag, reason: m.reason, offset: m.offset }
  if (typeof m !== "object" || m === null) return m
  if ("type" in m && m.type === "DataRow") {
    const r = m as unknown as Extract<BackendMessage, { type: "DataRow" }>
    const values: Array<Array<number> | null> = []
    for (let i = 0; i < r.columnCount; i++) {
      values.push(
        r.lengths[i] === -1
          ? null
          : Array.from(r.bytes.subarray(r.offsets[i]!, r.offsets[i]! + r.lengths[i]!))
      )
    }
    return { type: "DataRow", values }
  }
  if (Array.isArray(m)) return m.map(normalize)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(m)) out[k] = normalize(v)
  return out
}

export interface Drained<M> {
  readonly messages: Array<M>
  readonly error: ProtocolError | undefined
  /** Bytes left buffered at the end (an incomplete trailing message). */
  readonly leftover: number
}

/** Pushes every chunk and collects messages until the end or the parser's first error. */
const drain = <M>(
  p: { push(chunk: Uint8Array): void; next(): M | ProtocolError | undefined; readonly bufferedBytes: number },
  chunks: Iterable<Uint8Array>
): Drained<M> => {
  const messages: Array<M> = []
  for (const c of chunks) {
    p.push(c)
    for (;;) {
      const m = p.next()
      if (m === undefined) break
      if (m instanceof ProtocolError) return { messages, error: m, leftover: p.bufferedBytes }
      messages.push(m)
    }
  }
  return { messages, error: undefined, leftover: p.bufferedBytes }
}

/** Push every chunk, pulling messages after each push; stops at the first error. */
export const drainBackend = (
  chunks: Iterable<Uint8Array>,
  options?: ParserOptions
): Drained<BackendMessage> => drain(new BackendParser(options), chunks)

export const drainFrontend = (
  chunks: Iterable<Uint8Array>,
  setup?: (p: FrontendParser) => void
): Drained<FrontendMessage> => {
  const p = new FrontendParser()
  setup?.(p)
  return drain(p, chunks)
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array | Array<number> | null): string | null =>
  b === null ? null : new TextDecoder().decode(b instanceof Uint8Array ? b : Uint8Array.from(b))
