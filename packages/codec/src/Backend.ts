/**
 * Backend: encoders for every message a server sends, so tests and fake servers can script exact
 * byte streams (including ones a real server never produces, by editing the bytes afterwards).
 *
 * Not a hot path for the driver: clarity over speed, one generic `encodeBackendInto` switch. It
 * encodes what it is given without checking semantics (e.g. a RowDescription/DataRow mismatch).
 */
import {
  type BackendMessage,
  type DataRow,
  ERROR_FIELD_CODES,
  type ErrorFields,
  type FormatCode
} from "./Protocol.ts"
import { Writer } from "./Writer.ts"

const code = (c: string): number => c.charCodeAt(0)

/** Known ErrorFields keys -> wire code, in the order PostgreSQL itself sends them. */
const FIELD_ORDER: ReadonlyArray<readonly [string, keyof ErrorFields]> = Object.entries(
  ERROR_FIELD_CODES
).map(([c, key]) => [c, key] as const)

const writeFields = (w: Writer, fields: ErrorFields): void => {
  for (const [c, key] of FIELD_ORDER) {
    // `severity` is V; S (localized) is only written when given, so decode(encode(x)) equals x.
    const value = fields[key]
    if (typeof value !== "string") continue
    w.u8(code(c))
    w.cstring(value)
  }
  if (fields.unknown !== undefined) {
    for (const c in fields.unknown) {
      w.u8(code(c))
      w.cstring(fields.unknown[c]!)
    }
  }
  w.u8(0)
}

const writeFormats = (w: Writer, format: FormatCode, columnFormats: ReadonlyArray<FormatCode>): void => {
  w.u8(format)
  w.i16(columnFormats.length)
  for (const f of columnFormats) w.i16(f)
}

const auth = (w: Writer, kind: number, data?: Uint8Array): void => {
  const at = w.beginMessage(code("R"))
  w.i32(kind)
  if (data !== undefined) w.bytes(data)
  w.endMessage(at)
}

const empty = (w: Writer, type: string): void => {
  const at = w.beginMessage(code(type))
  w.endMessage(at)
}

/**
 * Write a DataRow from plain values (null = SQL NULL). Exposed because fake servers mostly build
 * rows this way; `encodeBackendInto` with a parsed DataRow re-emits its columns in place.
 */
export const encodeDataRowValues = (w: Writer, values: ReadonlyArray<Uint8Array | null>): void => {
  const at = w.beginMessage(code("D"))
  w.i16(values.length)
  for (const v of values) {
    if (v === null) w.i32(-1)
    else {
      w.i32(v.length)
      w.bytes(v)
    }
  }
  w.endMessage(at)
}

const dataRow = (w: Writer, row: DataRow): void => {
  const at = w.beginMessage(code("D"))
  w.i16(row.columnCount)
  for (let i = 0; i < row.columnCount; i++) {
    const len = row.lengths[i]!
    w.i32(len)
    if (len >= 0) w.bytes(row.bytes.subarray(row.offsets[i]!, row.offsets[i]! + len))
  }
  w.endMessage(at)
}

/** Append any backend message. */
export const encodeBackendInto = (w: Writer, msg: BackendMessage): void => {
  switch (msg.type) {
    case "AuthenticationOk":
      auth(w, 0)
      return
    case "AuthenticationKerberosV5":
      auth(w, 2)
      return
    case "AuthenticationCleartextPassword":
      auth(w, 3)
      return
    case "AuthenticationMD5Password":
      auth(w, 5, msg.salt)
      return
    case "AuthenticationGSS":
      auth(w, 7)
      return
    case "AuthenticationGSSContinue":
      auth(w, 8, msg.data)
      return
    case "AuthenticationSSPI":
      auth(w, 9)
      return
    case "AuthenticationSASL": {
      const at = w.beginMessage(code("R"))
      w.i32(10)
      for (const m of msg.mechanisms) w.cstring(m)
      w.u8(0)
      w.endMessage(at)
      return
    }
    case "AuthenticationSASLContinue":
      auth(w, 11, msg.data)
      return
    case "AuthenticationSASLFinal":
      auth(w, 12, msg.data)
      return
    case "BackendKeyData": {
      const at = w.beginMessage(code("K"))
      w.i32(msg.processId)
      w.bytes(msg.secretKey)
      w.endMessage(at)
      return
    }
    case "BindComplete":
      empty(w, "2")
      return
    case "CloseComplete":
      empty(w, "3")
      return
    case "CommandComplete": {
      const at = w.beginMessage(code("C"))
      w.cstring(msg.tag)
      w.endMessage(at)
      return
    }
    case "CopyData": {
      const at = w.beginMessage(code("d"))
      w.bytes(msg.data)
      w.endMessage(at)
      return
    }
    case "CopyDone":
      empty(w, "c")
      return
    case "CopyInResponse":
    case "CopyOutResponse":
    case "CopyBothResponse": {
      const t = msg.type === "CopyInResponse" ? "G" : msg.type === "CopyOutResponse" ? "H" : "W"
      const at = w.beginMessage(code(t))
      writeFormats(w, msg.format, msg.columnFormats)
      w.endMessage(at)
      return
    }
    case "DataRow":
      dataRow(w, msg)
      return
    case "EmptyQueryResponse":
      empty(w, "I")
      return
    case "ErrorResponse":
    case "NoticeResponse": {
      const at = w.beginMessage(code(msg.type === "ErrorResponse" ? "E" : "N"))
      writeFields(w, msg.fields)
      w.endMessage(at)
      return
    }
    case "FunctionCallResponse": {
      const at = w.beginMessage(code("V"))
      if (msg.result === null) w.i32(-1)
      else {
        w.i32(msg.result.length)
        w.bytes(msg.result)
      }
      w.endMessage(at)
      return
    }
    case "NegotiateProtocolVersion": {
      const at = w.beginMessage(code("v"))
      w.i32(msg.newestProtocolVersion)
      w.i32(msg.unrecognizedOptions.length)
      for (const o of msg.unrecognizedOptions) w.cstring(o)
      w.endMessage(at)
      return
    }
    case "NoData":
      empty(w, "n")
      return
    case "NotificationResponse": {
      const at = w.beginMessage(code("A"))
      w.i32(msg.processId)
      w.cstring(msg.channel)
      w.cstring(msg.payload)
      w.endMessage(at)
      return
    }
    case "ParameterDescription": {
      const at = w.beginMessage(code("t"))
      w.i16(msg.parameterTypes.length)
      for (const oid of msg.parameterTypes) w.i32(oid)
      w.endMessage(at)
      return
    }
    case "ParameterStatus": {
      const at = w.beginMessage(code("S"))
      w.cstring(msg.name)
      w.cstring(msg.value)
      w.endMessage(at)
      return
    }
    case "ParseComplete":
      empty(w, "1")
      return
    case "PortalSuspended":
      empty(w, "s")
      return
    case "ReadyForQuery": {
      const at = w.beginMessage(code("Z"))
      w.u8(code(msg.status))
      w.endMessage(at)
      return
    }
    case "RowDescription": {
      const at = w.beginMessage(code("T"))
      w.i16(msg.fields.length)
      for (const f of msg.fields) {
        w.cstring(f.name)
        w.i32(f.tableOid)
        w.i16(f.columnAttribute)
        w.i32(f.typeOid)
        w.i16(f.typeSize)
        w.i32(f.typeModifier)
        w.i16(f.format)
      }
      w.endMessage(at)
      return
    }
  }
}

/** Encode one or more backend messages into a fresh Uint8Array. */
export const encodeBackend = (...msgs: ReadonlyArray<BackendMessage>): Uint8Array => {
  // One module-level Writer: encoding is synchronous, so sharing it is safe, and its take() slab
  // amortises allocations. Reset first in case a previous call threw mid-frame (EncodeError).
  let w = sharedBackend
  w.reset()
  for (const m of msgs) encodeBackendInto(w, m)
  const out = w.take()
  // Do not pin a huge buffer after encoding one huge message.
  if (w.buf.length > 1024 * 1024) w = sharedBackend = new Writer(1024)
  return out
}

let sharedBackend = new Writer(1024)
