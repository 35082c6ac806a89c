/**
 * Codec micro-benchmark: Bind encoding and DataRow decoding, pgline against pg-protocol (the
 * protocol layer of node-postgres) and @effect/sql-pg 4.0.5's own PgProtocol module, in one run.
 *
 *   node bench/codec-micro.ts [rounds]
 *
 * Each case runs in interleaved rounds (so JIT warm-up and GC noise hit every peer alike); the
 * best round is reported. See bench/README.md for what is and is not a like-for-like comparison.
 */
import { makeBindEncoder, encodeBind as effectEncodeBind, makeParser } from "@effect/sql-pg/PgProtocol"
import {
  BackendParser,
  beginBind,
  type DataRow,
  decodeUtf8,
  encodeBackend,
  encodeBind,
  endBind,
  type FormatCode,
  Oid,
  ProtocolError,
  TypeRegistry,
  Writer
} from "@pgline/codec"
import * as Result from "effect/Result"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { serialize } from "pg-protocol"
import { Parser as PgParser } from "pg-protocol/dist/parser.js"

const rounds = Number(process.argv[2] ?? 7)
const te = new TextEncoder()

// --- cases -------------------------------------------------------------------------------------------

interface Case {
  readonly name: string
  /** For peers: the pgline case doing the same work, which the ratio is printed against. */
  readonly vs?: string
  /** Performs `n` operations; returns a value so the work cannot be optimised away. */
  readonly run: (n: number) => unknown
}

const measure = (c: Case, ops: number): number => {
  const t0 = performance.now()
  c.run(ops)
  return ops / ((performance.now() - t0) / 1000)
}

const compare = (title: string, unit: string, ops: number, cases: ReadonlyArray<Case>) => {
  for (const c of cases) {
    // Sanity: every case does real work (a failed Result or an empty parse would return 0).
    if (!((c.run(1) as number) > 0)) throw new Error(`${c.name} produced nothing`)
    c.run(Math.max(1, ops >> 2)) // warm-up
  }
  const best = new Map<string, number>(cases.map((c) => [c.name, 0]))
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) best.set(c.name, Math.max(best.get(c.name)!, measure(c, ops)))
  }
  console.log(`\n${title}`)
  for (const c of cases) {
    const v = best.get(c.name)!
    const ratio = c.vs === undefined ? "" : `  [pgline ${(best.get(c.vs)! / v).toFixed(2)}x: "${c.vs}"]`
    console.log(`  ${c.name.padEnd(52)} ${fmt(v).padStart(9)} ${unit}${ratio}`)
  }
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(1)

// --- Bind: 5 parameters (int4, int8, text, NULL, timestamp text) ---------------------------------------

const int4 = (v: number) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setInt32(0, v)
  return b
}
const textValues = ["9876543210", "hello, world", "2024-05-01 12:34:56.789+00"]
const encodedParams: Array<Uint8Array | null> = [
  int4(42),
  te.encode(textValues[0]),
  te.encode(textValues[1]),
  null,
  te.encode(textValues[2])
]
const formats: Array<FormatCode> = [1, 0, 0, 0, 0]
const noFormats: Array<FormatCode> = []
const pgValues: Array<unknown> = [Buffer.from(int4(42)), textValues[0], textValues[1], null, textValues[2]]
const effectBindStrings = makeBindEncoder<string | Uint8Array | null>((sink, v) => {
  if (v === null) sink.sqlNull()
  else if (typeof v === "string") {
    const t = sink.beginLength()
    sink.utf8(v)
    sink.endLength(t)
  } else sink.raw(v)
  return Result.succeed(undefined)
})
const mixedValues: Array<string | Uint8Array | null> = [
  int4(42),
  textValues[0]!,
  textValues[1]!,
  null,
  textValues[2]!
]

/** Frames appended per Writer before it is drained: a tick's worth of pipelined statements. */
const FRAMES_PER_TICK = 64

const bindCases: Array<Case> = [
  {
    name: "pgline encodeBind into a Writer (bytes params)",
    run: (n) => {
      const w = new Writer()
      for (let i = 0; i < n; i++) {
        encodeBind(w, "", "s1", formats, encodedParams, noFormats)
        if ((i & (FRAMES_PER_TICK - 1)) === FRAMES_PER_TICK - 1) w.reset()
      }
      return w.length
    }
  },
  {
    name: "pgline beginBind + text written in place",
    run: (n) => {
      const w = new Writer()
      for (let i = 0; i < n; i++) {
        const at = beginBind(w, "", "s1", formats, 5)
        w.i32(4)
        w.i32(42)
        for (let j = 0; j < 3; j++) {
          if (j === 2) w.i32(-1)
          const v = w.beginValue()
          w.utf8(textValues[j]!)
          w.endValue(v)
        }
        endBind(w, at, noFormats)
        if ((i & (FRAMES_PER_TICK - 1)) === FRAMES_PER_TICK - 1) w.reset()
      }
      return w.length
    }
  },
  {
    name: "pgline encodeBind + take() (own buffer per Bind)",
    run: (n) => {
      const w = new Writer()
      let x = 0
      for (let i = 0; i < n; i++) {
        encodeBind(w, "", "s1", formats, encodedParams, noFormats)
        x += w.take().length
      }
      return x
    }
  },
  {
    name: "pg-protocol serialize.bind (strings + a Buffer)",
    vs: "pgline beginBind + text written in place",
    run: (n) => {
      let x = 0
      for (let i = 0; i < n; i++)
        x += serialize.bind({ portal: "", statement: "s1", values: pgValues }).length
      return x
    }
  },
  {
    name: "@effect/sql-pg encodeBind (bytes params)",
    vs: "pgline encodeBind + take() (own buffer per Bind)",
    run: (n) => {
      let x = 0
      for (let i = 0; i < n; i++) {
        const r = effectEncodeBind({ portal: "", statement: "s1", parameters: encodedParams })
        if (r._tag === "Success") x += r.success.length
      }
      return x
    }
  },
  {
    name: "@effect/sql-pg makeBindEncoder (string params)",
    vs: "pgline beginBind + text written in place",
    run: (n) => {
      let x = 0
      for (let i = 0; i < n; i++) {
        const r = effectBindStrings({ portal: "", statement: "s1", parameters: mixedValues })
        if (r._tag === "Success") x += r.success.length
      }
      return x
    }
  }
]

// --- DataRow: 10,000 rows x 8 text columns, delivered in 64 KiB chunks -------------------------------

const ROWS = 10_000
const row = (i: number): Array<Uint8Array | null> => [
  te.encode(String(100000 + i)),
  te.encode(String(9876543210 + i)),
  te.encode(`customer name ${i}`),
  te.encode(`${i}.25`),
  te.encode("2024-05-01 12:34:56.789+00"),
  te.encode(i % 2 === 0 ? "t" : "f"),
  null,
  te.encode("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
]
const rowMessages = Array.from({ length: ROWS }, (_, i): DataRow => {
  const values = row(i)
  const bytes = new Uint8Array(values.reduce((n, v) => n + (v?.length ?? 0), 0))
  const offsets: Array<number> = new Array(8)
  const lengths: Array<number> = new Array(8)
  let at = 0
  values.forEach((v, j) => {
    offsets[j] = at
    lengths[j] = v === null ? -1 : v.length
    if (v !== null) {
      bytes.set(v, at)
      at += v.length
    }
  })
  return { type: "DataRow", bytes, columnCount: 8, offsets, lengths }
})
const stream = Buffer.from(
  encodeBackend(
    {
      type: "RowDescription",
      fields: ["a", "b", "c", "d", "e", "f", "g", "h"].map((name) => ({
        name,
        tableOid: 0,
        columnAttribute: 0,
        typeOid: 25,
        typeSize: -1,
        typeModifier: -1,
        format: 0 as const
      }))
    },
    ...rowMessages,
    { type: "CommandComplete", tag: `SELECT ${ROWS}` },
    { type: "ReadyForQuery", status: "I" }
  )
)
const CHUNK = 64 * 1024
const chunks: Array<Buffer> = []
for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK))
console.log(
  `DataRow stream: ${ROWS} rows x 8 columns, ${(stream.length / 1024).toFixed(0)} KiB in ${chunks.length} chunks`
)

const decoder = new TextDecoder()
const decodeCases: Array<Case> = [
  {
    name: "pgline BackendParser (column offsets, lazy)",
    run: (n) => {
      let rows = 0
      for (let k = 0; k < n; k++) {
        const p = new BackendParser()
        for (const c of chunks) {
          p.push(c)
          for (let m = p.next(); m !== undefined; m = p.next()) {
            if (m instanceof ProtocolError) throw new Error(m.message)
            if (m.type === "DataRow") rows++
          }
        }
      }
      return rows
    }
  },
  {
    name: "pgline BackendParser + columns to strings",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++) {
        const p = new BackendParser()
        for (const c of chunks) {
          p.push(c)
          for (let m = p.next(); m !== undefined; m = p.next()) {
            if (m instanceof ProtocolError) throw new Error(m.message)
            if (m.type !== "DataRow") continue
            const { bytes, offsets, lengths } = m
            const values: Array<string | null> = new Array(m.columnCount)
            for (let i = 0; i < m.columnCount; i++) {
              const len = lengths[i]!
              values[i] = len === -1 ? null : decodeUtf8(bytes, offsets[i]!, offsets[i]! + len)
            }
            x += values.length
          }
        }
      }
      return x
    }
  },
  {
    name: "pg-protocol Parser (columns to strings)",
    vs: "pgline BackendParser + columns to strings",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++) {
        const p = new PgParser()
        for (const c of chunks) {
          p.parse(c, (m: { name: string; fields?: Array<unknown> }) => {
            if (m.name === "dataRow") x += m.fields!.length
          })
        }
      }
      return x
    }
  },
  {
    name: "@effect/sql-pg parser (a view per column)",
    vs: "pgline BackendParser (column offsets, lazy)",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++) {
        const p = makeParser()
        for (const c of chunks) {
          p.pushEach(c, (m) => {
            if (m._tag === "DataRow") x += m.values.length
          })
        }
      }
      return x
    }
  },
  {
    name: "@effect/sql-pg parser (readField to strings)",
    vs: "pgline BackendParser + columns to strings",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++) {
        const p = makeParser<string>({
          readField: (bytes, offset, size) => decoder.decode(bytes.subarray(offset, offset + size))
        })
        for (const c of chunks) {
          p.pushEach(c, (m) => {
            if (m._tag === "DataRow") x += m.values.length
          })
        }
      }
      return x
    }
  }
]

// --- jsonb values: speed and the heap a kept document takes ---------------------------------------

const DOCS = 10_000
/** jsonb's binary result format: a version byte, then the text (jsonb_out's spacing). */
const jsonbColumn = (i: number) => Buffer.from(`\x01{"id": ${i}, "ok": true, "tags": ["a", "b"]}`)
const jsonbValues = Array.from({ length: DOCS }, (_, i) => jsonbColumn(i + 1))
const decodeJsonb = new TypeRegistry().decoderFor(Oid.jsonb, 1)
const jsonCases: Array<Case> = [
  {
    name: "pgline jsonb decoder",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++)
        for (const b of jsonbValues) x += (decodeJsonb(b, 0, b.length) as { id: number }).id > 0 ? 1 : 0
      return x
    }
  },
  {
    name: "Buffer toString + JSON.parse",
    vs: "pgline jsonb decoder",
    run: (n) => {
      let x = 0
      for (let k = 0; k < n; k++)
        for (const b of jsonbValues)
          x += (JSON.parse(b.toString("utf8", 1, b.length)) as { id: number }).id > 0 ? 1 : 0
      return x
    }
  }
]

/** Heap bytes per document while DOCS of them are kept (after full collections before and after). */
const keptBytes = (parse: (b: Buffer) => unknown): number => {
  v8.setFlagsFromString("--expose-gc")
  const gc = vm.runInNewContext("gc") as () => void
  const kept: Array<unknown> = new Array(DOCS).fill(null)
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < DOCS; i++) kept[i] = parse(jsonbValues[i]!)
  gc()
  gc()
  const bytes = (process.memoryUsage().heapUsed - before) / DOCS
  if (!((kept[DOCS - 1] as { id: number }).id > 0)) throw new Error("nothing parsed")
  return bytes
}

console.log(`Node ${process.version}, ${rounds} rounds, best round reported`)
compare("Bind (5 params: int4 binary, int8/text/timestamp text, NULL)", "binds/s", 200_000, bindCases)
compare(`DataRow decode (${ROWS} rows x 8 columns per op)`, "ops/s", 30, decodeCases)
console.log(`\n(one DataRow op = ${ROWS} rows: multiply by ${ROWS} for rows/s)`)
compare(`jsonb column value (${DOCS} documents per op)`, "ops/s", 20, jsonCases)
const jsonKept = [
  ["pgline jsonb decoder", keptBytes((b) => decodeJsonb(b, 0, b.length))],
  ["Buffer toString + JSON.parse", keptBytes((b) => JSON.parse(b.toString("utf8", 1, b.length)))]
] as const
console.log(`\nHeap per kept jsonb document (${DOCS} kept, bytes)`)
for (const [name, bytes] of jsonKept) console.log(`  ${name.padEnd(52)} ${bytes.toFixed(0).padStart(9)}`)
