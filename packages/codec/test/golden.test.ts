/**
 * Golden streams: backend bytes captured from a real PostgreSQL 18 by golden/capture.ts.
 *
 * For each stream we assert facts that follow from the protocol and the SQL that produced it (the
 * oracle is our knowledge of the server, never our own earlier output), then replay it in every
 * chunking (each 2-chunk split, 1-byte chunks, random sizes) and require identical results.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { encodeBackend } from "../src/Backend.ts"
import type { BackendMessage } from "../src/Protocol.ts"
import { cut, drainBackend, normalize, prng, randomSizes, str } from "./support/Decode.ts"

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "golden")
const load = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(dir, `${name}.bin`)))
const names = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".bin"))
  .map((f) => f.slice(0, -4))
  .sort()

const decode = (name: string): Array<BackendMessage> => {
  const r = drainBackend([load(name)])
  expect(r.error).toBeUndefined()
  expect(r.leftover).toBe(0)
  return r.messages
}
const types = (ms: ReadonlyArray<BackendMessage>) => ms.map((m) => m.type)
const only = <T extends BackendMessage["type"]>(ms: ReadonlyArray<BackendMessage>, type: T) => {
  const found = ms.filter((m): m is Extract<BackendMessage, { type: T }> => m.type === type)
  expect(found.length).toBeGreaterThan(0)
  return found
}
const values = (m: BackendMessage): Array<string | null> => {
  if (m.type !== "DataRow") throw new Error(`not a DataRow: ${m.type}`)
  return Array.from({ length: m.columnCount }, (_, i) =>
    m.lengths[i] === -1 ? null : str(m.bytes.subarray(m.offsets[i]!, m.offsets[i]! + m.lengths[i]!))
  )
}

const checkStartup = (ms: ReadonlyArray<BackendMessage>) => {
  const t = types(ms)
  expect(t[t.length - 1]).toBe("ReadyForQuery")
  expect(t[t.length - 2]).toBe("BackendKeyData")
  const params = new Map(only(ms, "ParameterStatus").map((m) => [m.name, m.value]))
  expect(params.get("server_version")).toMatch(/^18\./)
  expect(params.get("client_encoding")).toBe("UTF8")
  expect(params.get("session_authorization")).toBe("postgres")
  expect(params.get("integer_datetimes")).toBe("on")
  expect(ms[ms.length - 1]).toEqual({ type: "ReadyForQuery", status: "I" })
  const key = only(ms, "BackendKeyData")[0]!
  expect(key.processId).toBeGreaterThan(0)
  return key
}

describe("golden streams: facts known from the protocol and the SQL", () => {
  it("has every scenario", () => {
    expect(names).toEqual([
      "copy-in",
      "copy-out",
      "empty-query",
      "error-undefined-table",
      "error-unique",
      "extended",
      "function-call",
      "negotiate",
      "notice",
      "notify",
      "portal-suspended",
      "simple-query",
      "startup",
      "startup-3.2"
    ])
  })

  it("startup (3.0): AuthenticationOk, ParameterStatus*, 4-byte BackendKeyData, ReadyForQuery", () => {
    const ms = decode("startup")
    expect(ms[0]).toEqual({ type: "AuthenticationOk" })
    expect(checkStartup(ms).secretKey.length).toBe(4)
  })

  it("startup (3.2): the cancel key is longer than 4 bytes (PostgreSQL 18 sends 32)", () => {
    const ms = decode("startup-3.2")
    expect(ms[0]).toEqual({ type: "AuthenticationOk" })
    expect(checkStartup(ms).secretKey.length).toBe(32)
  })

  it("negotiate: 3.9999 plus an unknown _pq_ option gets NegotiateProtocolVersion(3.2, [option])", () => {
    const ms = decode("negotiate")
    expect(ms[0]).toEqual({
      type: "NegotiateProtocolVersion",
      newestProtocolVersion: (3 << 16) | 2,
      unrecognizedOptions: ["_pq_.pgline_unknown"]
    })
    expect(ms[1]).toEqual({ type: "AuthenticationOk" })
    // The session runs at the negotiated 3.2, hence the long key.
    expect(checkStartup(ms).secretKey.length).toBe(32)
  })

  it("simple query: RowDescription, 3 DataRows with a NULL, SELECT 3", () => {
    const ms = decode("simple-query")
    expect(types(ms)).toEqual([
      "RowDescription",
      "DataRow",
      "DataRow",
      "DataRow",
      "CommandComplete",
      "ReadyForQuery"
    ])
    const desc = only(ms, "RowDescription")[0]!
    expect(desc.fields.map((f) => [f.name, f.typeOid, f.typeSize, f.format])).toEqual([
      ["n", 23, 4, 0],
      ["label", 25, -1, 0],
      ["nothing", 23, 4, 0]
    ])
    expect(ms.slice(1, 4).map(values)).toEqual([
      ["1", "row 1", null],
      ["2", "row 2", null],
      ["3", "row 3", null]
    ])
    expect(ms[4]).toEqual({ type: "CommandComplete", tag: "SELECT 3" })
  })

  it("extended: ParameterDescription, both RowDescriptions, NULLs, INSERT 0 1, NoData, CloseComplete", () => {
    const ms = decode("extended")
    expect(types(ms)).toEqual([
      "ParseComplete",
      "ParameterDescription",
      "RowDescription",
      "BindComplete",
      "RowDescription",
      "DataRow",
      "CommandComplete",
      "ParseComplete",
      "BindComplete",
      "NoData",
      "CommandComplete",
      "CloseComplete",
      "ReadyForQuery"
    ])
    expect(ms[1]).toEqual({ type: "ParameterDescription", parameterTypes: [23, 25] })
    const [stmt, portal] = only(ms, "RowDescription")
    expect(stmt!.fields.map((f) => [f.name, f.typeOid])).toEqual([
      ["n", 23],
      ["t", 25],
      ["z", 16]
    ])
    expect(portal).toEqual(stmt)
    expect(values(ms[5]!)).toEqual(["42", null, null])
    expect(only(ms, "CommandComplete").map((m) => m.tag)).toEqual(["SELECT 1", "INSERT 0 1"])
  })

  it("undefined table: ErrorResponse 42P01 with severity, message and position", () => {
    const ms = decode("error-undefined-table")
    expect(types(ms)).toEqual(["ErrorResponse", "ReadyForQuery"])
    const e = only(ms, "ErrorResponse")[0]!.fields
    expect(e.code).toBe("42P01")
    expect(e.severity).toBe("ERROR")
    expect(e.severityLocalized).toBe("ERROR")
    expect(e.message).toBe('relation "pgline_missing_table" does not exist')
    // 1-based character position of the table name in "select * from pgline_missing_table".
    expect(e.position).toBe("15")
    expect(e.file).toMatch(/\.c$/)
    expect(Number(e.line)).toBeGreaterThan(0)
    expect(e.routine).toBeTruthy()
    expect(ms[1]).toEqual({ type: "ReadyForQuery", status: "I" })
  })

  it("unique violation in a pipeline: 23505 with table fields; the rest of the batch is skipped", () => {
    const ms = decode("error-unique")
    // The skipped second statement produces nothing at all until Sync.
    expect(types(ms)).toEqual(["ParseComplete", "BindComplete", "ErrorResponse", "ReadyForQuery"])
    const e = only(ms, "ErrorResponse")[0]!.fields
    expect(e).toMatchObject({
      severity: "ERROR",
      code: "23505",
      message: 'duplicate key value violates unique constraint "pgline_u_pkey"',
      detail: "Key (id)=(1) already exists.",
      schema: "public",
      table: "pgline_u",
      constraint: "pgline_u_pkey"
    })
    expect(e.unknown).toBeUndefined()
  })

  it("notice: NoticeResponse 00000 'hello 42' from RAISE, then DO", () => {
    const ms = decode("notice")
    expect(types(ms)).toEqual(["NoticeResponse", "CommandComplete", "ReadyForQuery"])
    const n = only(ms, "NoticeResponse")[0]!.fields
    expect(n).toMatchObject({ severity: "NOTICE", code: "00000", message: "hello 42" })
    expect(n.where).toContain("RAISE")
    expect(ms[1]).toEqual({ type: "CommandComplete", tag: "DO" })
  })

  it("notify: NotificationResponse from our own backend before ReadyForQuery", () => {
    const ms = decode("notify")
    expect(types(ms)).toEqual(["CommandComplete", "NotificationResponse", "ReadyForQuery"])
    const n = only(ms, "NotificationResponse")[0]!
    expect(n.channel).toBe("pgline_chan")
    expect(n.payload).toBe("payload-1")
    // Captured on the same session as "startup": the notifier is that backend.
    expect(n.processId).toBe(only(decode("startup"), "BackendKeyData")[0]!.processId)
  })

  it("COPY TO STDOUT: CopyOutResponse (text, 2 columns), one CopyData per row, CopyDone, COPY 3", () => {
    const ms = decode("copy-out")
    expect(types(ms)).toEqual([
      "CopyOutResponse",
      "CopyData",
      "CopyData",
      "CopyData",
      "CopyDone",
      "CommandComplete",
      "ReadyForQuery"
    ])
    expect(ms[0]).toEqual({ type: "CopyOutResponse", format: 0, columnFormats: [0, 0] })
    expect(only(ms, "CopyData").map((m) => str(m.data))).toEqual(["1\tx1\n", "2\tx2\n", "3\tx3\n"])
    expect(ms[5]).toEqual({ type: "CommandComplete", tag: "COPY 3" })
  })

  it("COPY FROM STDIN: CopyInResponse (text, 2 columns), then COPY 2", () => {
    const ms = decode("copy-in")
    expect(ms).toEqual([
      { type: "CopyInResponse", format: 0, columnFormats: [0, 0] },
      { type: "CommandComplete", tag: "COPY 2" },
      { type: "ReadyForQuery", status: "I" }
    ])
  })

  it("empty query: EmptyQueryResponse instead of CommandComplete", () => {
    expect(decode("empty-query")).toEqual([
      { type: "EmptyQueryResponse" },
      { type: "ReadyForQuery", status: "I" }
    ])
  })

  it("portal suspended: 2 rows, PortalSuspended, 2 rows, PortalSuspended, last row, SELECT 1", () => {
    const ms = decode("portal-suspended")
    expect(types(ms)).toEqual([
      "ParseComplete",
      "BindComplete",
      "DataRow",
      "DataRow",
      "PortalSuspended",
      "DataRow",
      "DataRow",
      "PortalSuspended",
      "DataRow",
      "CommandComplete",
      "ReadyForQuery"
    ])
    expect(ms.filter((m) => m.type === "DataRow").map((m) => values(m)[0])).toEqual(["1", "2", "3", "4", "5"])
    // The tag counts the rows of the last Execute only.
    expect(ms[9]).toEqual({ type: "CommandComplete", tag: "SELECT 1" })
  })

  it("function call: int4pl(40, 2) answers binary 42 and its own ReadyForQuery", () => {
    expect(decode("function-call")).toEqual([
      { type: "FunctionCallResponse", result: Uint8Array.of(0, 0, 0, 42) },
      { type: "ReadyForQuery", status: "I" }
    ])
  })

  it("re-encoding every decoded stream reproduces the server's bytes exactly", () => {
    for (const name of names) expect(encodeBackend(...decode(name)), name).toEqual(load(name))
  })
})

describe("golden streams in every chunking", () => {
  for (const name of names) {
    it(name, () => {
      const bytes = load(name)
      const reference = normalize(decode(name))
      const same = (chunks: Array<Uint8Array>, how: string) => {
        const r = drainBackend(chunks)
        expect(r.error, how).toBeUndefined()
        expect(r.leftover, how).toBe(0)
        expect(normalize(r.messages), how).toEqual(reference)
      }
      for (let k = 1; k < bytes.length; k++) same([bytes.subarray(0, k), bytes.subarray(k)], `split at ${k}`)
      same(cut(bytes, new Array(bytes.length).fill(1)), "1-byte chunks")
      const rand = prng(name.length * 7919)
      for (let i = 0; i < 50; i++)
        same(cut(bytes, randomSizes(rand, bytes.length, 1 + (i % 40))), `random #${i}`)
    })
  }

  it("all streams back to back, in random chunkings", () => {
    const all = names.map(load)
    const total = all.reduce((n, b) => n + b.length, 0)
    const joined = new Uint8Array(total)
    let at = 0
    for (const b of all) {
      joined.set(b, at)
      at += b.length
    }
    const reference = normalize(names.flatMap(decode))
    const rand = prng(42)
    for (let i = 0; i < 30; i++) {
      const r = drainBackend(cut(joined, randomSizes(rand, total, 1 + Math.floor(rand() * 700))))
      expect(r.error).toBeUndefined()
      expect(normalize(r.messages)).toEqual(reference)
    }
  })
})
