/**
 * Malformed input: every kind of broken frame yields a typed ProtocolError value (never a throw),
 * at the right stream offset, before any oversize allocation, and the parser stays failed.
 */
import { describe, expect, it } from "vitest"
import { encodeBackend } from "../src/Backend.ts"
import { encodeFrontend } from "../src/Frontend.ts"
import { BackendParser, FrontendParser, ProtocolError, type ProtocolErrorReason } from "../src/Parser.ts"
import { drainBackend, drainFrontend } from "./support/Decode.ts"

/** A typed frame with an arbitrary (possibly lying) body. */
const frame = (type: string, body: ReadonlyArray<number>, length = body.length + 4): Uint8Array => {
  const b = new Uint8Array(5 + body.length)
  b[0] = type.charCodeAt(0)
  new DataView(b.buffer).setInt32(1, length)
  b.set(body, 5)
  return b
}
const i32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
const i16 = (n: number) => [(n >>> 8) & 0xff, n & 0xff]
const cs = (s: string) => [...new TextEncoder().encode(s), 0]

const expectBackendError = (bytes: Uint8Array, reason: ProtocolErrorReason, offset?: number) => {
  // Whole, and byte by byte: same verdict.
  for (const chunks of [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))]) {
    const r = drainBackend(chunks)
    expect(r.error, `expected ${reason}`).toBeInstanceOf(ProtocolError)
    expect(r.error!.reason).toBe(reason)
    expect(r.error!._tag).toBe("ProtocolError")
    if (offset !== undefined) expect(r.error!.offset).toBe(offset)
  }
}

describe("BackendParser: malformed frames are typed errors", () => {
  it("a declared length above maxMessageSize fails from the header alone", () => {
    const p = new BackendParser({ maxMessageSize: 1024 })
    p.push(Uint8Array.of(0x44, 0x00, 0x00, 0x04, 0x01)) // 'D' claiming 1025 bytes, no body sent
    const e = p.next()
    expect(e).toBeInstanceOf(ProtocolError)
    expect((e as ProtocolError).reason).toBe("MessageTooLarge")
    expect((e as ProtocolError).messageType).toBe("D")
    // The default bound: a 2 GiB claim (negative as int32) and 1.5 GiB both refused.
    expectBackendError(Uint8Array.of(0x44, 0x60, 0, 0, 0), "MessageTooLarge")
    expectBackendError(Uint8Array.of(0x44, 0xff, 0xff, 0xff, 0xff), "InvalidLength")
  })

  it("accepts exactly maxMessageSize", () => {
    const msg = encodeBackend({ type: "CopyData", data: new Uint8Array(100) })
    const r = drainBackend([msg], { maxMessageSize: 104 })
    expect(r.error).toBeUndefined()
    expect(r.messages).toHaveLength(1)
    expect(drainBackend([msg], { maxMessageSize: 103 }).error?.reason).toBe("MessageTooLarge")
  })

  it("a length below 4", () => {
    expectBackendError(frame("Z", [], 3), "InvalidLength", 1)
    expectBackendError(frame("Z", [], 0), "InvalidLength", 1)
  })

  it("an unknown type byte, at its absolute offset after valid messages", () => {
    const ok = encodeBackend({ type: "ParseComplete" }, { type: "BindComplete" })
    const bytes = new Uint8Array([...ok, ...frame("x", [])])
    expectBackendError(bytes, "UnknownMessageType", 10)
    expectBackendError(Uint8Array.of(0, 0, 0, 0, 4), "UnknownMessageType", 0)
  })

  it("fails on an unknown type without waiting for the body", () => {
    const p = new BackendParser()
    p.push(Uint8Array.of(0x78, 0x10, 0, 0, 0)) // 'x' claiming 256 MiB
    expect((p.next() as ProtocolError).reason).toBe("UnknownMessageType")
  })

  it("truncated strings and counts past the body", () => {
    expectBackendError(frame("C", [0x53, 0x45, 0x4c]), "Truncated") // tag without NUL
    expectBackendError(frame("S", cs("name")), "Truncated") // ParameterStatus without value
    expectBackendError(frame("D", [...i16(2), ...i32(1), 0x31]), "Truncated") // 2 columns, 1 present
    expectBackendError(frame("D", [...i16(1), ...i32(10), 0x31]), "Truncated") // value past the end
    expectBackendError(frame("D", [0x00]), "Truncated") // no column count
    expectBackendError(frame("T", [...i16(1), ...cs("a"), 0, 0]), "Truncated")
    expectBackendError(frame("t", [...i16(3), ...i32(23)]), "Truncated")
    expectBackendError(frame("E", [0x53, ...cs("ERROR")]), "Truncated") // no terminator
    expectBackendError(frame("R", [...i32(10), ...cs("SCRAM-SHA-256")]), "Truncated") // SASL list unterminated
    expectBackendError(frame("A", [...i32(1), ...cs("chan")]), "Truncated")
    expectBackendError(frame("v", [...i32(0), ...i32(2), ...cs("x")]), "Truncated")
    expectBackendError(frame("G", [0, ...i16(3), ...i16(0)]), "Truncated")
    expectBackendError(frame("V", [...i32(8), 1, 2]), "Truncated")
  })

  it("trailing bytes after the fields", () => {
    expectBackendError(frame("D", [...i16(0), 0x99]), "TrailingBytes")
    expectBackendError(frame("C", [...cs("SELECT 1"), 0x41]), "TrailingBytes")
    expectBackendError(frame("E", [0x53, ...cs("ERROR"), 0, 0x41]), "TrailingBytes")
  })

  it("bad values: status, formats, auth code, negative lengths and counts", () => {
    expectBackendError(frame("Z", [0x58]), "InvalidValue", 5)
    expectBackendError(frame("Z", [0x49, 0x49]), "InvalidLength")
    expectBackendError(
      frame("T", [...i16(1), ...cs("a"), ...i32(0), ...i16(0), ...i32(23), ...i16(4), ...i32(-1), ...i16(2)]),
      "InvalidValue"
    )
    expectBackendError(frame("H", [2, ...i16(0)]), "InvalidValue")
    expectBackendError(frame("R", i32(99)), "InvalidValue")
    expectBackendError(frame("R", [...i32(5), 1, 2, 3]), "InvalidLength") // MD5 salt must be 4 bytes
    expectBackendError(frame("R", [...i32(0), 1]), "InvalidLength")
    expectBackendError(frame("D", [...i16(1), ...i32(-2)]), "InvalidValue")
    expectBackendError(frame("v", [...i32(0), ...i32(-1)]), "InvalidValue")
    expectBackendError(frame("V", i32(-5)), "InvalidValue")
  })

  it("fixed-size messages with a body, and cancel keys outside 4..256 bytes", () => {
    for (const t of ["1", "2", "3", "c", "I", "n", "s"]) expectBackendError(frame(t, [0]), "InvalidLength")
    expectBackendError(frame("K", [...i32(1), 1, 2, 3]), "InvalidLength")
    expectBackendError(frame("K", [...i32(1), ...new Array(257).fill(1)]), "InvalidLength")
  })

  it("stays failed: the same error again, even after valid bytes", () => {
    const p = new BackendParser()
    p.push(frame("x", []))
    const e = p.next()
    expect(e).toBeInstanceOf(ProtocolError)
    p.push(encodeBackend({ type: "ReadyForQuery", status: "I" }))
    expect(p.next()).toBe(e)
    expect(p.next()).toBe(e)
    expect(p.error).toBe(e)
  })

  it("returns undefined (not an error) while a valid message is incomplete", () => {
    const bytes = encodeBackend({ type: "CommandComplete", tag: "SELECT 1" })
    const p = new BackendParser()
    for (let i = 0; i < bytes.length - 1; i++) {
      p.push(bytes.subarray(i, i + 1))
      expect(p.next()).toBeUndefined()
    }
    p.push(bytes.subarray(bytes.length - 1))
    expect(p.next()).toEqual({ type: "CommandComplete", tag: "SELECT 1" })
    expect(p.next()).toBeUndefined()
    expect(p.bufferedBytes).toBe(0)
  })
})

describe("FrontendParser: malformed startup packets and frames", () => {
  const startupBytes = encodeFrontend({
    type: "StartupMessage",
    protocolVersion: 196608,
    parameters: { user: "u" }
  })
  const expectFrontendError = (bytes: Uint8Array, reason: ProtocolErrorReason) => {
    for (const chunks of [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))]) {
      const r = drainFrontend(chunks)
      expect(r.error?.reason, `expected ${reason}`).toBe(reason)
    }
  }
  it("startup length out of range, unknown protocol, bad cancel key, unterminated parameters", () => {
    expectFrontendError(Uint8Array.of(0, 0, 0, 4, 0, 3, 0, 0), "InvalidLength")
    expectFrontendError(Uint8Array.of(0, 0, 0x27, 0x11, 0, 3, 0, 0), "MessageTooLarge") // 10001
    expectFrontendError(Uint8Array.of(0, 0, 0, 9, 0, 2, 0, 0, 0), "InvalidValue") // protocol 2.0
    expectFrontendError(Uint8Array.of(0, 0, 0, 9, 0x04, 0xd2, 0x16, 0x2f, 0), "InvalidLength") // long SSLRequest
    expectFrontendError(Uint8Array.of(0, 0, 0, 14, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 9, 9), "InvalidLength")
    expectFrontendError(Uint8Array.of(0, 0, 0, 11, 0, 3, 0, 0, 0x75, 0x00, 0x76), "Truncated")
  })
  it("typed frames after startup", () => {
    const after = (bytes: ReadonlyArray<number> | Uint8Array) => new Uint8Array([...startupBytes, ...bytes])
    expectFrontendError(after(frame("Z", [])), "UnknownMessageType")
    expectFrontendError(after(frame("S", [1])), "InvalidLength")
    expectFrontendError(after(frame("D", [0x58, ...cs("x")])), "InvalidValue")
    expectFrontendError(
      after(frame("B", [...cs(""), ...cs(""), ...i16(1), ...i16(7), ...i16(0), ...i16(0)])),
      "InvalidValue"
    )
    expectFrontendError(
      after(frame("B", [...cs(""), ...cs(""), ...i16(0), ...i16(2), ...i32(-1)])),
      "Truncated"
    )
    expectFrontendError(after(frame("E", [...cs(""), 0, 0])), "Truncated")
    expectFrontendError(after(frame("P", [...cs("a"), ...cs("q"), ...i16(1)])), "Truncated")
    expectFrontendError(after(frame("Q", [0x61])), "Truncated")
  })
  it("stays failed", () => {
    const p = new FrontendParser()
    p.push(Uint8Array.of(0, 0, 0, 4))
    const e = p.next()
    expect(e).toBeInstanceOf(ProtocolError)
    p.push(startupBytes)
    expect(p.next()).toBe(e)
  })
})

describe("CommandComplete tags handed out again", () => {
  // A repeated tag is the same string as the one before it; a tag is never taken for a cached one
  // whose characters match its bytes without being its UTF-8 text.
  const tags = (bodies: ReadonlyArray<ReadonlyArray<number>>) => {
    const p = new BackendParser()
    for (const body of bodies) p.push(frame("C", [...body, 0]))
    return bodies.map(() => (p.next() as { readonly tag: string }).tag)
  }
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0))

  it("the same tag twice is the same string; a different one is decoded", () => {
    const [a, b, c] = tags([ascii("INSERT 0 1"), ascii("INSERT 0 1"), ascii("INSERT 0 2")])
    expect(a).toBe("INSERT 0 1")
    expect(b).toBe("INSERT 0 1")
    expect(c).toBe("INSERT 0 2")
  })

  it("bytes that are not ASCII are decoded as UTF-8 every time", () => {
    // "Ãx" in UTF-8 (C3 83 78), then C3 78 (invalid UTF-8), whose bytes equal "Ãx"'s char codes.
    expect(
      tags([
        [0xc3, 0x83, 0x78],
        [0xc3, 0x78],
        [0xc3, 0x78],
        [0x41, 0x42]
      ])
    ).toEqual(["Ãx", "\uFFFDx", "\uFFFDx", "AB"])
  })

  it("messages without a body are read-only", () => {
    const p = new BackendParser()
    p.push(frame("2", []))
    p.push(frame("2", []))
    const first = p.next()
    expect(first).toEqual({ type: "BindComplete" })
    expect(Object.isFrozen(first)).toBe(true)
    expect(p.next()).toEqual({ type: "BindComplete" })
  })
})
