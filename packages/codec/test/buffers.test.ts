/**
 * Buffers that grow for one huge frame give the space back: the frame Writer once empty again
 * (after take or reset) and the binary-parameter ByteWriter on reset go back to their initial
 * size above 1 MiB, and keep their capacity below it (steady pipelining never reallocates).
 */
import { describe, expect, it } from "@effect/vitest"
import { TypeRegistry } from "../src/TypeRegistry.ts"
import { ByteWriter } from "../src/types/ByteWriter.ts"
import { SHRINK_ABOVE, Writer } from "../src/Writer.ts"

describe("buffers after a huge frame", () => {
  it("Writer: take() of a 5 MB frame leaves the initial capacity; below 1 MiB it keeps what it grew to", () => {
    const w = new Writer(16 * 1024)
    w.bytes(new Uint8Array(5 * 1024 * 1024).fill(7))
    expect(w.buf.length).toBeGreaterThan(SHRINK_ABOVE)
    const out = w.take()
    expect(out.length).toBe(5 * 1024 * 1024)
    expect(out[out.length - 1]).toBe(7)
    expect(w.buf.length).toBe(16 * 1024)
    w.bytes(new Uint8Array(512 * 1024))
    w.take()
    expect(w.buf.length).toBe(512 * 1024)
  })

  it("Writer: reset() shrinks too", () => {
    const w = new Writer(1024)
    w.bytes(new Uint8Array(3 * 1024 * 1024))
    w.reset()
    expect(w.buf.length).toBe(1024)
    expect(w.length).toBe(0)
  })

  it("ByteWriter: reset() after a 5 MB value goes back to 1 KiB", () => {
    const b = new ByteWriter()
    b.raw(new Uint8Array(5 * 1024 * 1024))
    expect(b.bytes.length).toBeGreaterThanOrEqual(5 * 1024 * 1024)
    b.reset()
    expect(b.bytes.length).toBe(1024)
  })

  it("a 5 MB bytea parameter encodes whole and leaves the registry's scratch buffer small", () => {
    const registry = new TypeRegistry()
    const value = new Uint8Array(5 * 1024 * 1024).fill(3)
    const bytes = registry.encodeParameter(value, 17).bytes ?? new Uint8Array(0)
    expect(bytes.length).toBe(value.length)
    expect(bytes[bytes.length - 1]).toBe(3)
    const scratch = (registry as unknown as { writer: ByteWriter }).writer
    expect(scratch.bytes.length).toBeLessThanOrEqual(SHRINK_ABOVE)
  })
})
