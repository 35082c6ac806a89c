/**
 * RawSession against a real PostgreSQL 18 (started by TempPostgres): the probe other codec tests
 * rely on really speaks the protocol, and its raw capture replays to the same messages.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { encodeFrontend } from "../src/Frontend.ts"
import { type BackendMessage, PROTOCOL_3_2 } from "../src/Protocol.ts"
import { drainBackend, normalize, str, text } from "./support/Decode.ts"
import { RawSession } from "./support/RawSession.ts"
import { startTempPostgres, type TempPostgres } from "./support/TempPostgres.ts"

let pg: TempPostgres
beforeAll(async () => {
  pg = await startTempPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

const connect = (protocolVersion?: number) =>
  RawSession.connect({
    host: pg.host,
    port: pg.port,
    user: pg.user,
    database: pg.database,
    ...(protocolVersion === undefined ? {} : { protocolVersion })
  })

describe("RawSession (PostgreSQL 18)", () => {
  it("runs an extended-protocol round trip and captures the exact bytes", async () => {
    const s = await connect()
    s.takeRaw()
    const msgs = await s.roundTrip([
      { type: "Parse", name: "", query: "select $1::text || '!' as x, null::int4 as y", parameterTypes: [] },
      {
        type: "Bind",
        portal: "",
        statement: "",
        parameterFormats: [],
        parameters: [text("hi")],
        resultFormats: []
      },
      { type: "Describe", target: "P", name: "" },
      { type: "Execute", portal: "", maxRows: 0 },
      { type: "Sync" }
    ])
    expect(msgs.map((m) => m.type)).toEqual([
      "ParseComplete",
      "BindComplete",
      "RowDescription",
      "DataRow",
      "CommandComplete",
      "ReadyForQuery"
    ])
    const row = msgs[3] as Extract<BackendMessage, { type: "DataRow" }>
    expect(str(row.bytes.subarray(row.offsets[0]!, row.offsets[0]! + row.lengths[0]!))).toBe("hi!")
    expect(row.lengths[1]).toBe(-1)
    // The captured bytes decode, in one-byte chunks, to exactly what the session saw.
    const raw = s.takeRaw()
    const replay = drainBackend(Array.from(raw, (b) => Uint8Array.of(b)))
    expect(normalize(replay.messages)).toEqual(normalize(msgs))
    await s.close()
  })

  it("reports server errors as messages and continues after Sync", async () => {
    const s = await connect()
    const msgs = await s.roundTrip([{ type: "Query", query: "select 1/0" }])
    const err = msgs.find((m) => m.type === "ErrorResponse")
    expect(err?.type === "ErrorResponse" && err.fields.code).toBe("22012")
    const again = await s.roundTrip([{ type: "Query", query: "select 2" }])
    expect(again.at(-1)).toEqual({ type: "ReadyForQuery", status: "I" })
    await s.close()
  })

  it("speaks protocol 3.2: a 32-byte cancel key", async () => {
    const s = await connect(PROTOCOL_3_2)
    const key = s.startupMessages.find((m) => m.type === "BackendKeyData")
    expect(key?.type === "BackendKeyData" && key.secretKey.length).toBe(32)
    await s.close()
  })

  it("the server rejects a malformed frame with an ErrorResponse (08P01)", async () => {
    const s = await connect()
    // A Bind declaring 2 parameter formats but carrying none: the server's own parser must refuse it.
    s.send({ type: "Parse", name: "", query: "select 1", parameterTypes: [] })
    s.sendBytes(Uint8Array.of(0x42, 0, 0, 0, 10, 0, 0, 0, 2, 0, 1))
    s.sendBytes(encodeFrontend({ type: "Sync" }))
    const msgs = await s.readUntil((m) => m.type === "ErrorResponse")
    const err = msgs.at(-1)
    expect(err?.type === "ErrorResponse" && err.fields.code).toBe("08P01")
    await s.close()
  })
})
