/**
 * Captures the golden backend byte streams the codec tests replay: each scenario below sends real
 * frontend messages to a real PostgreSQL 18 and records, byte for byte, what the server answered.
 *
 *   node packages/codec/test/golden/capture.ts            # starts a throwaway server
 *   PGHOST=127.0.0.1 PGPORT=5432 node packages/codec/...   # or uses a running one (trust auth)
 *
 * Writes `<scenario>.bin` (raw backend bytes) and `manifest.json` (server version, and per scenario
 * what was sent) next to this file. It records no decoded messages: golden.test.ts asserts facts
 * that follow from the protocol and the SQL, not from our own parser's past output.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type FrontendMessage, PROTOCOL_3_0, PROTOCOL_3_2 } from "../../src/Protocol.ts"
import { RawSession } from "../support/RawSession.ts"
import { startTempPostgres } from "../support/TempPostgres.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const text = (s: string) => new TextEncoder().encode(s)
const int4 = (n: number) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setInt32(0, n)
  return b
}

interface Target {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
}

const captured: Record<string, { readonly description: string; readonly sent: ReadonlyArray<string> }> = {}

const save = (name: string, description: string, sent: ReadonlyArray<FrontendMessage>, bytes: Uint8Array) => {
  fs.writeFileSync(path.join(here, `${name}.bin`), bytes)
  captured[name] = { description, sent: sent.map((m) => m.type) }
  console.log(`${name}: ${bytes.length} bytes`)
}

const run = async (t: Target) => {
  const connect = (protocolVersion = PROTOCOL_3_0, parameters: Record<string, string> = {}) =>
    RawSession.connect({ host: t.host, port: t.port, user: t.user, database: t.database, protocolVersion, parameters })

  // startup: AuthenticationOk, ParameterStatus*, BackendKeyData (4-byte key), ReadyForQuery.
  const s = await connect()
  const startup: FrontendMessage = {
    type: "StartupMessage",
    protocolVersion: PROTOCOL_3_0,
    parameters: { user: t.user, database: t.database }
  }
  save("startup", "protocol 3.0 startup with trust auth", [startup], s.takeRaw())

  // Setup, not captured.
  await s.roundTrip([
    {
      type: "Query",
      query:
        "drop table if exists pgline_u, pgline_copy; create table pgline_u (id int primary key, v text);" +
        " insert into pgline_u values (1, 'one'); create table pgline_copy (a int, b text)"
    }
  ])
  const oidReply = await s.roundTrip([{ type: "Query", query: "select 'int4pl'::regproc::oid::int4" }])
  const oidRow = oidReply.find((m) => m.type === "DataRow")
  if (oidRow?.type !== "DataRow") throw new Error("no oid for int4pl")
  const int4plOid = Number(
    new TextDecoder().decode(oidRow.bytes.subarray(oidRow.offsets[0]!, oidRow.offsets[0]! + oidRow.lengths[0]!))
  )
  s.takeRaw()

  const scenario = async (name: string, description: string, msgs: ReadonlyArray<FrontendMessage>) => {
    await s.roundTrip(msgs)
    save(name, description, msgs, s.takeRaw())
  }

  await scenario("simple-query", "simple query returning 3 rows with a NULL column", [
    {
      type: "Query",
      query: "select g as n, 'row ' || g as label, null::int4 as nothing from generate_series(1, 3) g"
    }
  ])

  await scenario("extended", "Parse/Describe/Bind/Describe/Execute a SELECT, an INSERT, Close, Sync", [
    {
      type: "Parse",
      name: "s1",
      query: "select $1::int4 + 1 as n, $2::text as t, null::bool as z",
      parameterTypes: []
    },
    { type: "Describe", target: "S", name: "s1" },
    {
      type: "Bind",
      portal: "",
      statement: "s1",
      parameterFormats: [],
      parameters: [text("41"), null],
      resultFormats: []
    },
    { type: "Describe", target: "P", name: "" },
    { type: "Execute", portal: "", maxRows: 0 },
    { type: "Parse", name: "", query: "insert into pgline_u values ($1, $2)", parameterTypes: [23, 25] },
    {
      type: "Bind",
      portal: "",
      statement: "",
      parameterFormats: [1, 0],
      parameters: [int4(2), text("two")],
      resultFormats: []
    },
    { type: "Describe", target: "P", name: "" },
    { type: "Execute", portal: "", maxRows: 0 },
    { type: "Close", target: "S", name: "s1" },
    { type: "Sync" }
  ])

  await scenario("error-undefined-table", "simple query on a missing table (42P01 with position)", [
    { type: "Query", query: "select * from pgline_missing_table" }
  ])

  await scenario("error-unique", "duplicate key in a pipeline: 23505, the next statement skipped", [
    { type: "Parse", name: "", query: "insert into pgline_u values (1, 'dup')", parameterTypes: [] },
    { type: "Bind", portal: "", statement: "", parameterFormats: [], parameters: [], resultFormats: [] },
    { type: "Execute", portal: "", maxRows: 0 },
    { type: "Parse", name: "", query: "select 1", parameterTypes: [] },
    { type: "Bind", portal: "", statement: "", parameterFormats: [], parameters: [], resultFormats: [] },
    { type: "Execute", portal: "", maxRows: 0 },
    { type: "Sync" }
  ])

  await scenario("notice", "RAISE NOTICE in a DO block", [
    { type: "Query", query: "do $$ begin raise notice 'hello %', 42; end $$" }
  ])

  await s.roundTrip([{ type: "Query", query: "listen pgline_chan" }])
  s.takeRaw()
  await scenario("notify", "NOTIFY to a channel this session listens on", [
    { type: "Query", query: "notify pgline_chan, 'payload-1'" }
  ])

  await scenario("copy-out", "COPY ... TO STDOUT of 3 rows", [
    { type: "Query", query: "copy (select g, 'x' || g from generate_series(1, 3) g) to stdout" }
  ])

  // COPY FROM STDIN: the server waits for data after CopyInResponse.
  const copyIn: ReadonlyArray<FrontendMessage> = [{ type: "Query", query: "copy pgline_copy from stdin" }]
  s.send(...copyIn)
  await s.readUntil((m) => m.type === "CopyInResponse")
  const copyData: ReadonlyArray<FrontendMessage> = [
    { type: "CopyData", data: text("1\ta\n2\tb\n") },
    { type: "CopyDone" }
  ]
  s.send(...copyData)
  await s.readUntil((m) => m.type === "ReadyForQuery")
  save("copy-in", "COPY FROM STDIN of 2 rows", [...copyIn, ...copyData], s.takeRaw())

  await scenario("empty-query", "simple query with an empty string", [{ type: "Query", query: "" }])

  await scenario("portal-suspended", "Execute with a row limit of 2 over 5 rows, then the rest", [
    { type: "Parse", name: "", query: "select g from generate_series(1, 5) g", parameterTypes: [] },
    { type: "Bind", portal: "p1", statement: "", parameterFormats: [], parameters: [], resultFormats: [] },
    { type: "Execute", portal: "p1", maxRows: 2 },
    { type: "Execute", portal: "p1", maxRows: 2 },
    { type: "Execute", portal: "p1", maxRows: 0 },
    { type: "Sync" }
  ])

  await scenario("function-call", "FunctionCall int4pl(40, 2), binary arguments and result (answers with its own ReadyForQuery)", [
    {
      type: "FunctionCall",
      functionOid: int4plOid,
      argumentFormats: [1],
      arguments: [int4(40), int4(2)],
      resultFormat: 1
    }
  ])
  await s.close()

  // Protocol 3.2 (PostgreSQL 18): BackendKeyData carries a longer secret key.
  const s32 = await connect(PROTOCOL_3_2)
  save(
    "startup-3.2",
    "protocol 3.2 startup: long cancel key",
    [{ type: "StartupMessage", protocolVersion: PROTOCOL_3_2, parameters: { user: t.user, database: t.database } }],
    s32.takeRaw()
  )
  await s32.close()

  // An unsupported minor version and an unknown _pq_ option: NegotiateProtocolVersion first.
  const negotiateVersion = PROTOCOL_3_0 + 9999
  const sNeg = await connect(negotiateVersion, { "_pq_.pgline_unknown": "1" })
  save(
    "negotiate",
    "startup asking for 3.9999 with an unknown _pq_ option",
    [
      {
        type: "StartupMessage",
        protocolVersion: negotiateVersion,
        parameters: { user: t.user, database: t.database, "_pq_.pgline_unknown": "1" }
      }
    ],
    sNeg.takeRaw()
  )
  await sNeg.close()

  const version = await RawSession.connect({ host: t.host, port: t.port, user: t.user, database: t.database })
  const serverVersion = version.startupMessages.find(
    (m) => m.type === "ParameterStatus" && m.name === "server_version"
  )
  await version.close()
  fs.writeFileSync(
    path.join(here, "manifest.json"),
    JSON.stringify(
      {
        note: "Raw backend byte streams captured by capture.ts; see golden.test.ts for the assertions.",
        serverVersion: serverVersion?.type === "ParameterStatus" ? serverVersion.value : "unknown",
        scenarios: captured
      },
      null,
      2
    ) + "\n"
  )
}

const main = async () => {
  if (process.env.PGHOST !== undefined && process.env.PGPORT !== undefined) {
    await run({
      host: process.env.PGHOST,
      port: Number(process.env.PGPORT),
      user: process.env.PGUSER ?? "postgres",
      database: process.env.PGDATABASE ?? "postgres"
    })
    return
  }
  const pg = await startTempPostgres()
  try {
    await run(pg)
  } finally {
    await pg.stop()
  }
}

await main()
