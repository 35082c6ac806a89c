/**
 * Frontend: encoders for every message a client sends (protocol 3.0 / 3.2).
 *
 * Each `encodeX(w, ...)` appends one frame to a caller-owned `Writer` with positional arguments, so
 * the hot path (Parse / Bind / Describe / Execute / Sync, repeated for every pipelined statement)
 * allocates nothing: no message object, no closure, no intermediate array. `encodeFrontend(msg)`
 * is the convenient (allocating) form for tests and rare messages. Frames that never vary are
 * encoded once as module constants.
 *
 * Does not decide formats, OIDs or parameter encodings (the type codecs do), nor does it validate
 * semantic rules (e.g. that a Bind's format count matches its statement); it only refuses what the
 * wire cannot carry (see EncodeError).
 */
import {
  CANCEL_REQUEST_CODE,
  type FormatCode,
  type FrontendMessage,
  GSSENC_REQUEST_CODE,
  SSL_REQUEST_CODE,
  type Target
} from "./Protocol.ts"
import { EncodeError, Writer } from "./Writer.ts"

// --- fixed frames (encoded once; treat as read-only) -----------------------------------------------

const frame5 = (type: string): Uint8Array => Uint8Array.of(type.charCodeAt(0), 0, 0, 0, 4)
const frame8 = (code: number): Uint8Array =>
  Uint8Array.of(0, 0, 0, 8, code >>> 24, (code >>> 16) & 0xff, (code >>> 8) & 0xff, code & 0xff)

/** The Sync frame, encoded once (do not modify the array). */
export const SYNC_FRAME: Uint8Array = frame5("S")
/** The Flush frame, encoded once (do not modify the array). */
export const FLUSH_FRAME: Uint8Array = frame5("H")
/** The Terminate frame, encoded once (do not modify the array). */
export const TERMINATE_FRAME: Uint8Array = frame5("X")
/** The CopyDone frame, encoded once (do not modify the array). */
export const COPY_DONE_FRAME: Uint8Array = frame5("c")
/** The SSLRequest packet, encoded once (do not modify the array). */
export const SSL_REQUEST_FRAME: Uint8Array = frame8(SSL_REQUEST_CODE)
/** The GSSENCRequest packet, encoded once (do not modify the array). */
export const GSSENC_REQUEST_FRAME: Uint8Array = frame8(GSSENC_REQUEST_CODE)

const P = 0x50 // 'P' Parse
const B = 0x42 // 'B' Bind
const D = 0x44 // 'D' Describe
const E = 0x45 // 'E' Execute
const C = 0x43 // 'C' Close
const Q = 0x51 // 'Q' Query
const d = 0x64 // 'd' CopyData
const f = 0x66 // 'f' CopyFail
const F = 0x46 // 'F' FunctionCall
const p = 0x70 // 'p' password / SASL / GSS responses

const MAX_COUNT = 0xffff

const checkCount = (n: number, what: string): void => {
  if (n > MAX_COUNT) throw new EncodeError("TooManyValues", `${n} ${what} exceed the protocol limit of 65535`)
}

/** Append a 5-byte fixed frame without a native call (cheaper than set() at this size). */
const fixed5 = (w: Writer, type: number): void => {
  w.ensure(5)
  const b = w.buf
  const at = w.pos
  b[at] = type
  b[at + 1] = 0
  b[at + 2] = 0
  b[at + 3] = 0
  b[at + 4] = 4
  w.pos = at + 5
}

const formats = (w: Writer, fmts: ReadonlyArray<number>): void => {
  const n = fmts.length
  checkCount(n, "format codes")
  w.ensure(2 + 2 * n)
  w.i16(n)
  for (let i = 0; i < n; i++) w.i16(fmts[i]!)
}

// --- the extended-protocol hot path ----------------------------------------------------------------

/** Parse: `name` "" is the unnamed statement; `parameterTypes` OIDs (0 = let the server infer). */
export const encodeParse = (
  w: Writer,
  name: string,
  query: string,
  parameterTypes: ReadonlyArray<number>
): void => {
  const at = w.beginMessage(P)
  w.cstring(name)
  w.cstring(query)
  const n = parameterTypes.length
  checkCount(n, "parameter types")
  w.ensure(2 + 4 * n)
  w.i16(n)
  for (let i = 0; i < n; i++) w.i32(parameterTypes[i]!)
  w.endMessage(at)
}

/**
 * Bind with already-encoded parameters (null = SQL NULL). `parameterFormats` / `resultFormats`
 * follow the protocol's compression: [] all text, [f] all f, or one per value.
 */
export const encodeBind = (
  w: Writer,
  portal: string,
  statement: string,
  parameterFormats: ReadonlyArray<FormatCode>,
  parameters: ReadonlyArray<Uint8Array | null>,
  resultFormats: ReadonlyArray<FormatCode>
): void => {
  const nf = parameterFormats.length
  const np = parameters.length
  const nr = resultFormats.length
  checkCount(nf, "parameter formats")
  checkCount(np, "parameters")
  checkCount(nr, "result formats")
  const at = w.beginMessage(B)
  w.cstring(portal)
  w.cstring(statement)
  // Size the rest exactly and reserve it once, then write with local cursor and buffer: one
  // bounds check per Bind instead of one per field (measured ~1.3x faster for 5 parameters).
  let size = 6 + 2 * nf + 2 * nr + 4 * np
  for (let i = 0; i < np; i++) {
    const v = parameters[i]
    if (v != null) size += v.length
  }
  w.ensure(size)
  const b = w.buf
  let p = w.pos
  b[p++] = nf >>> 8
  b[p++] = nf
  for (let i = 0; i < nf; i++) {
    const f = parameterFormats[i]!
    b[p++] = f >>> 8
    b[p++] = f
  }
  b[p++] = np >>> 8
  b[p++] = np
  for (let i = 0; i < np; i++) {
    const v = parameters[i]
    if (v == null) {
      b[p] = b[p + 1] = b[p + 2] = b[p + 3] = 0xff
      p += 4
      continue
    }
    const n = v.length
    b[p] = n >>> 24
    b[p + 1] = n >>> 16
    b[p + 2] = n >>> 8
    b[p + 3] = n
    p += 4
    if (n < 16) for (let k = 0; k < n; k++) b[p++] = v[k]!
    else {
      b.set(v, p)
      p += n
    }
  }
  b[p++] = nr >>> 8
  b[p++] = nr
  for (let i = 0; i < nr; i++) {
    const f = resultFormats[i]!
    b[p++] = f >>> 8
    b[p++] = f
  }
  w.pos = p
  w.endMessage(at)
}

/**
 * Streaming Bind, for codecs that write values straight into the Writer (no Uint8Array per value):
 *
 *   const at = beginBind(w, "", "s1", [1], 2)
 *   let v = w.beginValue(); w.i32(42); w.endValue(v)   // one value
 *   w.i32(-1)                                         // a NULL
 *   endBind(w, at, [1])
 *
 * Exactly `parameterCount` values must be written between the two calls.
 */
export const beginBind = (
  w: Writer,
  portal: string,
  statement: string,
  parameterFormats: ReadonlyArray<FormatCode>,
  parameterCount: number
): number => {
  const at = w.beginMessage(B)
  w.cstring(portal)
  w.cstring(statement)
  formats(w, parameterFormats)
  checkCount(parameterCount, "parameters")
  w.i16(parameterCount)
  return at
}

/** Finishes a Bind begun with `beginBind`: writes the result format codes and the frame length. Throws `EncodeError` for more than 65,535 format codes. */
export const endBind = (w: Writer, at: number, resultFormats: ReadonlyArray<FormatCode>): void => {
  formats(w, resultFormats)
  w.endMessage(at)
}

/** Describe a statement ("S") or portal ("P"). */
export const encodeDescribe = (w: Writer, target: Target, name: string): void => {
  const at = w.beginMessage(D)
  w.u8(target === "S" ? 0x53 : 0x50)
  w.cstring(name)
  w.endMessage(at)
}

/** Execute a portal; maxRows 0 = all rows. */
export const encodeExecute = (w: Writer, portal: string, maxRows: number): void => {
  const at = w.beginMessage(E)
  w.cstring(portal)
  w.i32(maxRows)
  w.endMessage(at)
}

/** Appends a Sync: ends an extended-protocol sequence; the server answers ReadyForQuery. */
export const encodeSync = (w: Writer): void => fixed5(w, 0x53)
/** Appends a Flush: the server sends what it has produced so far without ending the sequence. */
export const encodeFlush = (w: Writer): void => fixed5(w, 0x48)
/** Appends a Terminate: the session ends. */
export const encodeTerminate = (w: Writer): void => fixed5(w, 0x58)
/** Appends a CopyDone: the end of COPY FROM STDIN data. */
export const encodeCopyDone = (w: Writer): void => fixed5(w, 0x63)

/** Appends a Close of a prepared statement ("S") or portal ("P"). Throws `EncodeError` for a name holding NUL. */
export const encodeClose = (w: Writer, target: Target, name: string): void => {
  const at = w.beginMessage(C)
  w.u8(target === "S" ? 0x53 : 0x50)
  w.cstring(name)
  w.endMessage(at)
}

// --- simple query, COPY, function call -------------------------------------------------------------

/**
 * Appends a simple-protocol Query. Throws `EncodeError` for a text holding NUL.
 *
 * @example
 * ```ts
 * const w = new Writer()
 * encodeQuery(w, "select 1")
 * socket.write(w.take())
 * ```
 */
export const encodeQuery = (w: Writer, query: string): void => {
  const at = w.beginMessage(Q)
  w.cstring(query)
  w.endMessage(at)
}

/** Appends a CopyData frame carrying `data`. */
export const encodeCopyData = (w: Writer, data: Uint8Array): void => {
  const at = w.beginMessage(d)
  w.bytes(data)
  w.endMessage(at)
}

/** Appends a CopyFail: aborts COPY FROM STDIN with `message`. Throws `EncodeError` for a message holding NUL. */
export const encodeCopyFail = (w: Writer, message: string): void => {
  const at = w.beginMessage(f)
  w.cstring(message)
  w.endMessage(at)
}

/** Appends a FunctionCall (the legacy fast-path interface). Throws `EncodeError` for more than 65,535 arguments. */
export const encodeFunctionCall = (
  w: Writer,
  functionOid: number,
  argumentFormats: ReadonlyArray<FormatCode>,
  args: ReadonlyArray<Uint8Array | null>,
  resultFormat: FormatCode
): void => {
  const at = w.beginMessage(F)
  w.i32(functionOid)
  formats(w, argumentFormats)
  const n = args.length
  checkCount(n, "arguments")
  w.i16(n)
  for (let i = 0; i < n; i++) {
    const v = args[i]
    if (v === null || v === undefined) w.i32(-1)
    else {
      w.i32(v.length)
      w.bytes(v)
    }
  }
  w.i16(resultFormat)
  w.endMessage(at)
}

// --- startup and authentication ----------------------------------------------------------------------

/** StartupMessage: untyped; parameters are name/value pairs (user is required by the server). */
export const encodeStartup = (
  w: Writer,
  protocolVersion: number,
  parameters: Readonly<Record<string, string>>
): void => {
  const at = w.beginMessage(-1)
  w.i32(protocolVersion)
  for (const key in parameters) {
    const value = parameters[key]
    if (value === undefined) continue
    w.cstring(key)
    w.cstring(value)
  }
  w.u8(0)
  w.endMessage(at)
}

/** CancelRequest, sent on a fresh connection; `secretKey` exactly as BackendKeyData gave it. */
export const encodeCancelRequest = (w: Writer, processId: number, secretKey: Uint8Array): void => {
  const at = w.beginMessage(-1)
  w.i32(CANCEL_REQUEST_CODE)
  w.i32(processId)
  w.bytes(secretKey)
  w.endMessage(at)
}

/** Appends a PasswordMessage (clear text or an already MD5-hashed password). Throws `EncodeError` for a password holding NUL. */
export const encodePassword = (w: Writer, password: string): void => {
  const at = w.beginMessage(p)
  w.cstring(password)
  w.endMessage(at)
}

/** SASLInitialResponse; `data` null is sent as length -1 (no initial response). */
export const encodeSASLInitialResponse = (w: Writer, mechanism: string, data: Uint8Array | null): void => {
  const at = w.beginMessage(p)
  w.cstring(mechanism)
  if (data === null) w.i32(-1)
  else {
    w.i32(data.length)
    w.bytes(data)
  }
  w.endMessage(at)
}

/** SASLResponse and GSSResponse share this layout: the 'p' type and raw bytes. */
export const encodeAuthData = (w: Writer, data: Uint8Array): void => {
  const at = w.beginMessage(p)
  w.bytes(data)
  w.endMessage(at)
}

// --- generic ---------------------------------------------------------------------------------------

/** Append any frontend message (a switch over `type`; prefer the positional encoders when hot). */
export const encodeFrontendInto = (w: Writer, msg: FrontendMessage): void => {
  switch (msg.type) {
    case "StartupMessage":
      encodeStartup(w, msg.protocolVersion, msg.parameters)
      return
    case "SSLRequest":
      w.bytes(SSL_REQUEST_FRAME)
      return
    case "GSSENCRequest":
      w.bytes(GSSENC_REQUEST_FRAME)
      return
    case "CancelRequest":
      encodeCancelRequest(w, msg.processId, msg.secretKey)
      return
    case "PasswordMessage":
      encodePassword(w, msg.password)
      return
    case "SASLInitialResponse":
      encodeSASLInitialResponse(w, msg.mechanism, msg.data)
      return
    case "SASLResponse":
    case "GSSResponse":
      encodeAuthData(w, msg.data)
      return
    case "Parse":
      encodeParse(w, msg.name, msg.query, msg.parameterTypes)
      return
    case "Bind":
      encodeBind(w, msg.portal, msg.statement, msg.parameterFormats, msg.parameters, msg.resultFormats)
      return
    case "Describe":
      encodeDescribe(w, msg.target, msg.name)
      return
    case "Execute":
      encodeExecute(w, msg.portal, msg.maxRows)
      return
    case "Close":
      encodeClose(w, msg.target, msg.name)
      return
    case "Sync":
      encodeSync(w)
      return
    case "Flush":
      encodeFlush(w)
      return
    case "Query":
      encodeQuery(w, msg.query)
      return
    case "Terminate":
      encodeTerminate(w)
      return
    case "CopyData":
      encodeCopyData(w, msg.data)
      return
    case "CopyDone":
      encodeCopyDone(w)
      return
    case "CopyFail":
      encodeCopyFail(w, msg.message)
      return
    case "FunctionCall":
      encodeFunctionCall(w, msg.functionOid, msg.argumentFormats, msg.arguments, msg.resultFormat)
      return
  }
}

/** Encode one or more frontend messages into a fresh Uint8Array. */
export const encodeFrontend = (...msgs: ReadonlyArray<FrontendMessage>): Uint8Array => {
  // One module-level Writer: encoding is synchronous, so sharing it is safe, and its take() slab
  // amortises allocations. Reset first in case a previous call threw mid-frame (EncodeError).
  let w = sharedFrontend
  w.reset()
  for (const m of msgs) encodeFrontendInto(w, m)
  const out = w.take()
  // Do not pin a huge buffer after encoding one huge message.
  if (w.buf.length > 1024 * 1024) w = sharedFrontend = new Writer(1024)
  return out
}

let sharedFrontend = new Writer(1024)
