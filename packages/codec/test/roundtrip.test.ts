/**
 * Encoders and parsers agree: every message type, encoded with Frontend/Backend encoders and fed
 * to the matching parser in random chunkings, decodes to what was encoded. Property-based
 * (fast-check) plus one explicit example per message type so a failure names the message.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { encodeBackend } from "../src/Backend.ts"
import {
  beginBind,
  encodeBind,
  encodeExecute,
  encodeFrontend,
  encodeParse,
  encodeSync,
  endBind,
  FLUSH_FRAME,
  SSL_REQUEST_FRAME,
  SYNC_FRAME
} from "../src/Frontend.ts"
import type { AuthResponseKind } from "../src/Parser.ts"
import { FrontendParser, ProtocolError } from "../src/Parser.ts"
import type {
  BackendMessage,
  DataRow,
  ErrorFields,
  FormatCode,
  FrontendMessage,
  StartupPacket
} from "../src/Protocol.ts"
import { PROTOCOL_3_0, PROTOCOL_3_2 } from "../src/Protocol.ts"
import { EncodeError, Writer } from "../src/Writer.ts"
import { cut, drainBackend, normalize, prng, randomSizes, text } from "./support/Decode.ts"

/** Every BackendMessage type; the Record type makes the compiler check the list is complete. */
const ALL_BACKEND_TYPES: Record<BackendMessage["type"], true> = {
  AuthenticationOk: true,
  AuthenticationKerberosV5: true,
  AuthenticationCleartextPassword: true,
  AuthenticationMD5Password: true,
  AuthenticationGSS: true,
  AuthenticationGSSContinue: true,
  AuthenticationSSPI: true,
  AuthenticationSASL: true,
  AuthenticationSASLContinue: true,
  AuthenticationSASLFinal: true,
  BackendKeyData: true,
  BindComplete: true,
  CloseComplete: true,
  CommandComplete: true,
  CopyData: true,
  CopyDone: true,
  CopyInResponse: true,
  CopyOutResponse: true,
  CopyBothResponse: true,
  DataRow: true,
  EmptyQueryResponse: true,
  ErrorResponse: true,
  FunctionCallResponse: true,
  NegotiateProtocolVersion: true,
  NoData: true,
  NoticeResponse: true,
  NotificationResponse: true,
  ParameterDescription: true,
  ParameterStatus: true,
  ParseComplete: true,
  PortalSuspended: true,
  ReadyForQuery: true,
  RowDescription: true
}

// --- arbitraries -------------------------------------------------------------------------------------

/** Strings the protocol can carry NUL-terminated: any printable text, short and long, no NUL. */
const cstr = fc
  .oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: "grapheme", maxLength: 12 }),
    fc.string({ unit: "grapheme", minLength: 60, maxLength: 120 }),
    fc.string({ minLength: 60, maxLength: 300 })
  )
  .filter((s) => !s.includes("\0"))
const bytes = fc.uint8Array({ maxLength: 40 }).map((b) => b as Uint8Array)
const nullableBytes = fc.option(bytes, { nil: null })
const format = fc.constantFrom<FormatCode>(0, 1)
const formats = fc.array(format, { maxLength: 5 })
const oid = fc.integer({ min: 0, max: 0xffffffff })
const int16 = fc.integer({ min: -32768, max: 32767 })
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff })

/** A DataRow object as the parser would produce it, built from column values. */
export const dataRow = (values: ReadonlyArray<Uint8Array | null>): DataRow => {
  const total = values.reduce((n, v) => n + (v?.length ?? 0), 0)
  const out = new Uint8Array(total)
  const offsets: Array<number> = new Array(values.length)
  const lengths: Array<number> = new Array(values.length)
  let at = 0
  values.forEach((v, i) => {
    offsets[i] = at
    lengths[i] = v === null ? -1 : v.length
    if (v !== null) {
      out.set(v, at)
      at += v.length
    }
  })
  return { type: "DataRow", bytes: out, columnCount: values.length, offsets, lengths }
}

const UNKNOWN_CODES = "abefghijklmoruvwxyzABGIJKNOQTUXYZ0123456789"
const errorFields: fc.Arbitrary<ErrorFields> = fc
  .record(
    {
      severity: cstr,
      code: cstr,
      message: cstr,
      severityLocalized: cstr,
      detail: cstr,
      hint: cstr,
      position: cstr,
      internalPosition: cstr,
      internalQuery: cstr,
      where: cstr,
      schema: cstr,
      table: cstr,
      column: cstr,
      dataType: cstr,
      constraint: cstr,
      file: cstr,
      line: cstr,
      routine: cstr,
      unknown: fc.dictionary(fc.constantFrom(...UNKNOWN_CODES.split("")), cstr, { minKeys: 1, maxKeys: 3 })
    },
    { requiredKeys: ["severity", "code", "message"] }
  )
  .map((f) => f as ErrorFields)

const backend: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc.constantFrom<BackendMessage>(
    { type: "AuthenticationOk" },
    { type: "AuthenticationKerberosV5" },
    { type: "AuthenticationCleartextPassword" },
    { type: "AuthenticationGSS" },
    { type: "AuthenticationSSPI" },
    { type: "BindComplete" },
    { type: "CloseComplete" },
    { type: "CopyDone" },
    { type: "EmptyQueryResponse" },
    { type: "NoData" },
    { type: "ParseComplete" },
    { type: "PortalSuspended" }
  ),
  fc
    .uint8Array({ minLength: 4, maxLength: 4 })
    .map((salt): BackendMessage => ({ type: "AuthenticationMD5Password", salt })),
  bytes.map((data): BackendMessage => ({ type: "AuthenticationGSSContinue", data })),
  fc
    .array(
      cstr.filter((s) => s !== ""),
      { maxLength: 3 }
    )
    .map((mechanisms): BackendMessage => ({ type: "AuthenticationSASL", mechanisms })),
  bytes.map((data): BackendMessage => ({ type: "AuthenticationSASLContinue", data })),
  bytes.map((data): BackendMessage => ({ type: "AuthenticationSASLFinal", data })),
  fc
    .tuple(int32, fc.uint8Array({ minLength: 4, maxLength: 256 }))
    .map(([processId, secretKey]): BackendMessage => ({ type: "BackendKeyData", processId, secretKey })),
  cstr.map((tag): BackendMessage => ({ type: "CommandComplete", tag })),
  bytes.map((data): BackendMessage => ({ type: "CopyData", data })),
  fc
    .tuple(fc.constantFrom("CopyInResponse", "CopyOutResponse", "CopyBothResponse"), format, formats)
    .map(
      ([type, f, columnFormats]): BackendMessage => ({ type, format: f, columnFormats }) as BackendMessage
    ),
  fc.array(nullableBytes, { maxLength: 12 }).map(dataRow),
  errorFields.map((fields): BackendMessage => ({ type: "ErrorResponse", fields })),
  errorFields.map((fields): BackendMessage => ({ type: "NoticeResponse", fields })),
  nullableBytes.map((result): BackendMessage => ({ type: "FunctionCallResponse", result })),
  fc.tuple(int32, fc.array(cstr, { maxLength: 3 })).map(
    ([v, unrecognizedOptions]): BackendMessage => ({
      type: "NegotiateProtocolVersion",
      newestProtocolVersion: v,
      unrecognizedOptions
    })
  ),
  fc.tuple(int32, cstr, cstr).map(
    ([processId, channel, payload]): BackendMessage => ({
      type: "NotificationResponse",
      processId,
      channel,
      payload
    })
  ),
  fc
    .array(oid, { maxLength: 8 })
    .map((parameterTypes): BackendMessage => ({ type: "ParameterDescription", parameterTypes })),
  fc.tuple(cstr, cstr).map(([name, value]): BackendMessage => ({ type: "ParameterStatus", name, value })),
  fc
    .constantFrom("I", "T", "E")
    .map((status): BackendMessage => ({ type: "ReadyForQuery", status }) as BackendMessage),
  fc
    .array(
      fc.record({
        name: cstr,
        tableOid: oid,
        columnAttribute: int16,
        typeOid: oid,
        typeSize: int16,
        typeModifier: int32,
        format
      }),
      { maxLength: 6 }
    )
    .map((fields): BackendMessage => ({ type: "RowDescription", fields }))
)

const startupPacket: fc.Arbitrary<StartupPacket> = fc.oneof(
  fc.constantFrom<StartupPacket>({ type: "SSLRequest" }, { type: "GSSENCRequest" }),
  fc
    .tuple(int32, fc.uint8Array({ minLength: 4, maxLength: 256 }))
    .map(([processId, secretKey]): StartupPacket => ({ type: "CancelRequest", processId, secretKey }))
)
const startupMessage: fc.Arbitrary<FrontendMessage> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(PROTOCOL_3_0, PROTOCOL_3_2),
      fc.integer({ min: 0, max: 0xffff }).map((m) => (3 << 16) | m)
    ),
    fc.dictionary(
      fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !s.includes("\0")),
      cstr
    )
  )
  .map(
    ([protocolVersion, parameters]): FrontendMessage => ({
      type: "StartupMessage",
      protocolVersion,
      parameters
    })
  )

const typedFrontend: fc.Arbitrary<FrontendMessage> = fc.oneof(
  fc.constantFrom<FrontendMessage>(
    { type: "Sync" },
    { type: "Flush" },
    { type: "Terminate" },
    { type: "CopyDone" }
  ),
  cstr.map((password): FrontendMessage => ({ type: "PasswordMessage", password })),
  fc
    .tuple(cstr, nullableBytes)
    .map(([mechanism, data]): FrontendMessage => ({ type: "SASLInitialResponse", mechanism, data })),
  bytes.map((data): FrontendMessage => ({ type: "SASLResponse", data })),
  bytes.map((data): FrontendMessage => ({ type: "GSSResponse", data })),
  fc
    .tuple(cstr, cstr, fc.array(oid, { maxLength: 6 }))
    .map(
      ([name, query, parameterTypes]): FrontendMessage => ({ type: "Parse", name, query, parameterTypes })
    ),
  fc.tuple(cstr, cstr, formats, fc.array(nullableBytes, { maxLength: 8 }), formats).map(
    ([portal, statement, parameterFormats, parameters, resultFormats]): FrontendMessage => ({
      type: "Bind",
      portal,
      statement,
      parameterFormats,
      parameters,
      resultFormats
    })
  ),
  fc
    .tuple(fc.constantFrom("Describe", "Close"), fc.constantFrom("S", "P"), cstr)
    .map(([type, target, name]): FrontendMessage => ({ type, target, name }) as FrontendMessage),
  fc.tuple(cstr, int32).map(([portal, maxRows]): FrontendMessage => ({ type: "Execute", portal, maxRows })),
  cstr.map((query): FrontendMessage => ({ type: "Query", query })),
  bytes.map((data): FrontendMessage => ({ type: "CopyData", data })),
  cstr.map((message): FrontendMessage => ({ type: "CopyFail", message })),
  fc.tuple(oid, formats, fc.array(nullableBytes, { maxLength: 5 }), format).map(
    ([functionOid, argumentFormats, args, resultFormat]): FrontendMessage => ({
      type: "FunctionCall",
      functionOid,
      argumentFormats,
      arguments: args,
      resultFormat
    })
  )
)

const AUTH_KIND: Partial<Record<FrontendMessage["type"], AuthResponseKind>> = {
  PasswordMessage: "password",
  SASLInitialResponse: "sasl-initial",
  SASLResponse: "sasl",
  GSSResponse: "gss"
}

/**
 * Decode a client stream the way a fake server does: before each 'p' message it tells the parser
 * which authentication response to expect (here: the type of the message we know comes next).
 */
const decodeFrontendStream = (
  chunks: ReadonlyArray<Uint8Array>,
  expected: ReadonlyArray<FrontendMessage>
) => {
  const p = new FrontendParser()
  const out: Array<FrontendMessage | ProtocolError> = []
  for (const c of chunks) {
    p.push(c)
    for (;;) {
      const kind = AUTH_KIND[expected[out.length]?.type ?? "Sync"]
      if (kind !== undefined) p.expectAuthResponse(kind)
      const m = p.next()
      if (m === undefined) break
      out.push(m)
      if (m instanceof ProtocolError) return out
    }
  }
  expect(p.bufferedBytes).toBe(0)
  return out
}

const chunkings = (bytes: Uint8Array, seed: number): Array<Array<Uint8Array>> => {
  const rand = prng(seed)
  return [
    [bytes],
    cut(bytes, new Array(bytes.length).fill(1)),
    cut(bytes, randomSizes(rand, bytes.length, 7)),
    cut(bytes, randomSizes(rand, bytes.length, 1000))
  ]
}

// --- tests -------------------------------------------------------------------------------------------

describe("backend encoder -> BackendParser", () => {
  it("round-trips arbitrary message sequences in arbitrary chunkings", () => {
    fc.assert(
      fc.property(fc.array(backend, { maxLength: 20 }), fc.integer(), (msgs, seed) => {
        const bytes = encodeBackend(...msgs)
        for (const chunks of chunkings(bytes, seed)) {
          const r = drainBackend(chunks)
          expect(r.error).toBeUndefined()
          expect(r.leftover).toBe(0)
          expect(normalize(r.messages)).toEqual(normalize(msgs))
        }
      }),
      { numRuns: 300 }
    )
  })

  it("decodes one example of each message type", () => {
    const samples = fc.sample(backend, { numRuns: 2000, seed: 7 })
    const seen = new Set(samples.map((m) => m.type))
    expect([...seen].sort()).toEqual(Object.keys(ALL_BACKEND_TYPES).sort())
    for (const m of samples.slice(0, 400)) {
      const r = drainBackend([encodeBackend(m)])
      expect(normalize(r.messages), m.type).toEqual([normalize(m)])
    }
  })

  it("DataRow exposes offsets/lengths into the buffer, -1 for NULL", () => {
    const bytesIn = encodeBackend(dataRow([text("ab"), null, new Uint8Array(0), text("xyz")]))
    const [row] = drainBackend([bytesIn]).messages
    expect(row?.type).toBe("DataRow")
    if (row?.type !== "DataRow") return
    expect(row.columnCount).toBe(4)
    expect(Array.from(row.lengths)).toEqual([2, -1, 0, 3])
    // 5 header + 2 count + (4 + 2) + 4 + 4 + 4: the offset is where each value starts.
    expect(Array.from(row.offsets)).toEqual([11, 17, 21, 25])
    expect(row.bytes[row.offsets[3]!]).toBe("x".charCodeAt(0))
  })

  it("a message inside a large chunk is decoded in place (no copy)", () => {
    const big = encodeBackend(dataRow([new Uint8Array(600).fill(7), null]), {
      type: "ReadyForQuery",
      status: "I"
    })
    const r = drainBackend([big])
    const row = r.messages[0]
    if (row?.type !== "DataRow") throw new Error("expected a DataRow")
    expect(row.bytes).toBe(big)
    expect(row.offsets[0]).toBe(11)
    expect(Array.from(row.lengths)).toEqual([600, -1])
  })

  it("messages stay valid after later pushes (the parser never reuses their memory)", () => {
    const msgs: Array<BackendMessage> = [dataRow([text("first")]), { type: "CopyData", data: text("copy") }]
    const bytes = encodeBackend(...msgs, ...msgs)
    const r = drainBackend(cut(bytes, new Array(bytes.length).fill(1)))
    expect(normalize(r.messages)).toEqual(normalize([...msgs, ...msgs]))
  })
})

describe("frontend encoder -> FrontendParser", () => {
  it("round-trips startup packets, StartupMessage and typed messages in arbitrary chunkings", () => {
    fc.assert(
      fc.property(
        fc.array(startupPacket, { maxLength: 3 }),
        startupMessage,
        fc.array(typedFrontend, { maxLength: 20 }),
        fc.integer(),
        (pre, startup, typed, seed) => {
          const msgs = [...pre, startup, ...typed]
          const bytes = encodeFrontend(...msgs)
          for (const chunks of chunkings(bytes, seed)) {
            expect(normalize(decodeFrontendStream(chunks, msgs))).toEqual(normalize(msgs))
          }
        }
      ),
      { numRuns: 300 }
    )
  })

  it("the generators cover every FrontendMessage type", () => {
    const all: Record<FrontendMessage["type"], true> = {
      StartupMessage: true,
      SSLRequest: true,
      GSSENCRequest: true,
      CancelRequest: true,
      PasswordMessage: true,
      SASLInitialResponse: true,
      SASLResponse: true,
      GSSResponse: true,
      Parse: true,
      Bind: true,
      Describe: true,
      Execute: true,
      Close: true,
      Sync: true,
      Flush: true,
      Query: true,
      Terminate: true,
      CopyData: true,
      CopyDone: true,
      CopyFail: true,
      FunctionCall: true
    }
    const gen = fc.oneof(startupPacket, startupMessage, typedFrontend)
    const seen = new Set(fc.sample(gen, { numRuns: 3000, seed: 11 }).map((m) => m.type))
    expect([...seen].sort()).toEqual(Object.keys(all).sort())
  })

  it("fixed frames are the exact bytes of their messages", () => {
    expect(SYNC_FRAME).toEqual(Uint8Array.of(0x53, 0, 0, 0, 4))
    expect(FLUSH_FRAME).toEqual(Uint8Array.of(0x48, 0, 0, 0, 4))
    expect(SSL_REQUEST_FRAME).toEqual(Uint8Array.of(0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f))
    expect(encodeFrontend({ type: "Sync" })).toEqual(SYNC_FRAME)
    expect(encodeFrontend({ type: "GSSENCRequest" })).toEqual(
      Uint8Array.of(0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30)
    )
  })

  it("the positional hot-path encoders produce the same bytes as encodeFrontend", () => {
    const w = new Writer(8) // tiny on purpose: forces growth by doubling mid-frame
    encodeParse(w, "s1", "select $1::int4, $2::text", [23, 0])
    encodeBind(w, "", "s1", [1, 0], [Uint8Array.of(0, 0, 0, 7), null], [1])
    encodeExecute(w, "", 0)
    encodeSync(w)
    const at = beginBind(w, "p", "s1", [1], 2)
    const v = w.beginValue()
    w.i32(7)
    w.endValue(v)
    w.i32(-1)
    endBind(w, at, [1])
    expect(w.take()).toEqual(
      encodeFrontend(
        { type: "Parse", name: "s1", query: "select $1::int4, $2::text", parameterTypes: [23, 0] },
        {
          type: "Bind",
          portal: "",
          statement: "s1",
          parameterFormats: [1, 0],
          parameters: [Uint8Array.of(0, 0, 0, 7), null],
          resultFormats: [1]
        },
        { type: "Execute", portal: "", maxRows: 0 },
        { type: "Sync" },
        {
          type: "Bind",
          portal: "p",
          statement: "s1",
          parameterFormats: [1],
          parameters: [Uint8Array.of(0, 0, 0, 7), null],
          resultFormats: [1]
        }
      )
    )
    expect(w.length).toBe(0)
  })

  it("Writer.take() copies are independent of later writes (small from the slab, large alone)", () => {
    const w = new Writer(16)
    const taken: Array<Uint8Array> = []
    for (let i = 0; i < 3000; i++) {
      w.bytes(new Uint8Array(i % 7 === 0 ? 3000 : 1 + (i % 50)).fill(i & 0xff))
      taken.push(w.take())
    }
    taken.forEach((t, i) => {
      expect(t.length).toBe(i % 7 === 0 ? 3000 : 1 + (i % 50))
      expect(t.every((b) => b === (i & 0xff))).toBe(true)
    })
  })

  it("Writer encodes any string as UTF-8 (fast ASCII path and TextEncoder path agree)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (s) => {
        const w = new Writer(4)
        w.utf8(s)
        expect(w.take()).toEqual(new TextEncoder().encode(s))
      })
    )
  })
})

describe("encoders refuse what the wire cannot carry", () => {
  const refuse = (f: () => void, reason: string) => {
    let thrown: unknown
    try {
      f()
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(EncodeError)
    expect((thrown as EncodeError).reason).toBe(reason)
  }
  it("a NUL inside a NUL-terminated string (short and long)", () => {
    refuse(() => encodeFrontend({ type: "Query", query: "select 1\0; drop table x" }), "NulInString")
    refuse(() => encodeFrontend({ type: "Query", query: "x".repeat(100) + "\0" }), "NulInString")
  })
  it("more than 65535 parameters", () => {
    const params = new Array<Uint8Array | null>(65536).fill(null)
    refuse(() => encodeBind(new Writer(), "", "", [], params, []), "TooManyValues")
  })
})
