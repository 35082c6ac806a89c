/**
 * Connection: one session, its protocol engine, its type registry and its prepared-statement
 * cache. It turns a statement into frames (Parse/Describe only the first time a text is seen,
 * then Bind/Execute against the named statement with binary results where the registry can
 * decode them) and into engine steps that decode rows as they arrive.
 *
 * Everything here is synchronous and callback-based; PgClient and Pipeline wrap it in Effects.
 * It never touches sockets directly: frames go to the session's Wire.
 */
import {
  type BackendMessage,
  DecodeError,
  type Decoder,
  type EncodedParameter,
  EncodeError,
  type ErrorFields,
  encodeBind,
  encodeClose,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeParse,
  encodeSync,
  type FieldDescription,
  type FormatCode,
  type TransactionStatus,
  TypeEncodeError,
  type TypeRegistry
} from "@pgline/codec"
import type { Session } from "@pgline/transport"
import type { FieldInfo, QueryResult } from "../QueryResult.ts"
import { type Culprit, commandOf, Engine, rowCountOf, type Step } from "./Engine.ts"

/** A statement text prepared on this connection under `name`. */
interface Prepared {
  readonly name: string
  readonly key: string
  /** From the Describe answered at preparation; undefined until then. */
  fields: ReadonlyArray<FieldDescription> | undefined
  parameterTypes: ReadonlyArray<number> | undefined
  /** Decoders per column for the binary-where-possible result formats used once described. */
  resultFormats: ReadonlyArray<FormatCode> | undefined
  decoders: ReadonlyArray<Decoder> | undefined
  names: ReadonlyArray<string> | undefined
  fieldInfo: ReadonlyArray<FieldInfo> | undefined
}

/** How a statement ended, as seen by the code that queued it. */
export type Outcome =
  | { readonly _tag: "Done"; readonly result: QueryResult }
  | { readonly _tag: "ServerError"; readonly fields: ErrorFields }
  | { readonly _tag: "Aborted"; readonly culprit: Culprit }
  | { readonly _tag: "Lost"; readonly message: string; readonly mayHaveRun: boolean }
  | { readonly _tag: "DecodeFailed"; readonly error: DecodeError; readonly column: string }

/** Refusals detected while encoding, before anything was written. */
export type EncodeFailure =
  | { readonly _tag: "Parameter"; readonly index: number; readonly message: string }
  | { readonly _tag: "Text"; readonly message: string }

export interface ConnectionOptions {
  /** Prepared statements kept per connection (least recently used are closed beyond it). */
  readonly statementCacheSize: number
  readonly onNotice: (fields: ErrorFields) => void
  readonly onNotification: (processId: number, channel: string, payload: string) => void
}

const emptyFields: ReadonlyArray<FieldInfo> = []
const noFormats: ReadonlyArray<FormatCode> = []

class StatementStep implements Step {
  readonly isSync = false
  segmentIndex = 0
  startOffset = 0
  private rows: Array<Record<string, unknown>> = []
  private decoders: ReadonlyArray<Decoder> | undefined
  private names: ReadonlyArray<string> | undefined
  private fieldInfo: ReadonlyArray<FieldInfo> = emptyFields
  private decodeFailure: { error: DecodeError; column: string } | undefined
  private readonly conn: Connection
  private readonly prepared: Prepared | undefined
  private readonly isNew: boolean
  private readonly done: (outcome: Outcome) => void

  /** The result formats this step's Bind asked for ([] = all text). */
  private readonly formats: ReadonlyArray<FormatCode>

  constructor(
    conn: Connection,
    prepared: Prepared | undefined,
    isNew: boolean,
    formats: ReadonlyArray<FormatCode>,
    done: (outcome: Outcome) => void
  ) {
    this.conn = conn
    this.prepared = prepared
    this.isNew = isNew
    this.formats = formats
    this.done = done
  }

  /**
   * Decoders for a statement prepared by an earlier step: that step's Describe has been answered
   * by the time this step's rows arrive (the server answers in order).
   */
  private adopt(): void {
    const p = this.prepared
    if (p === undefined || p.fields === undefined) return
    if (this.formats === p.resultFormats && p.decoders !== undefined) {
      this.decoders = p.decoders
      this.names = p.names
      this.fieldInfo = p.fieldInfo ?? emptyFields
      return
    }
    const registry = this.conn.registry
    const formats = p.fields.map((_, i) =>
      this.formats.length === 1 ? this.formats[0]! : (this.formats[i] ?? 0)
    )
    this.decoders = p.fields.map((f, i) => registry.decoderFor(f.typeOid, formats[i]!))
    this.names = p.fields.map((f) => f.name)
    this.fieldInfo = fieldInfos(p.fields, formats)
  }

  private describe(fields: ReadonlyArray<FieldDescription>): void {
    // A fresh statement's first Bind asked for text results (types unknown at that point).
    const formats: Array<FormatCode> = fields.map(() => 0)
    const decoders = fields.map((f) => this.conn.registry.decoderFor(f.typeOid, 0))
    this.decoders = decoders
    this.names = fields.map((f) => f.name)
    this.fieldInfo = fieldInfos(fields, formats)
    const p = this.prepared
    if (p !== undefined) {
      p.fields = fields
      const binary: Array<FormatCode> = fields.map((f) =>
        this.conn.registry.supportsBinary(f.typeOid) ? 1 : 0
      )
      p.resultFormats = binary
      p.decoders = fields.map((f, i) => this.conn.registry.decoderFor(f.typeOid, binary[i]!))
      p.names = this.names
      p.fieldInfo = fieldInfos(fields, binary)
    }
  }

  readonly onMessage = (m: BackendMessage): boolean => {
    switch (m.type) {
      case "DataRow": {
        if (this.decodeFailure !== undefined) return false
        if (this.decoders === undefined) this.adopt()
        const decoders = this.decoders
        const names = this.names
        if (decoders === undefined || names === undefined) return false
        const row: Record<string, unknown> = {}
        const { bytes, offsets, lengths } = m
        const n = m.columnCount
        let i = 0
        try {
          for (; i < n; i++) {
            const len = lengths[i]!
            const start = offsets[i]!
            row[names[i]!] = len < 0 ? null : decoders[i]!(bytes, start, start + len)
          }
        } catch (error) {
          this.decodeFailure = {
            error: error instanceof DecodeError ? error : new DecodeError(0, String(error)),
            column: names[i] ?? String(i)
          }
          return false
        }
        this.rows.push(row)
        return false
      }
      case "ParseComplete":
      case "BindComplete":
        return false
      case "ParameterDescription":
        if (this.prepared !== undefined) this.prepared.parameterTypes = m.parameterTypes
        return false
      case "RowDescription":
        if (this.isNew || this.decoders === undefined) this.describe(m.fields)
        return false
      case "NoData":
        if (this.prepared !== undefined && this.isNew) {
          this.prepared.fields = []
          this.prepared.resultFormats = []
          this.prepared.decoders = []
          this.prepared.names = []
          this.prepared.fieldInfo = emptyFields
        }
        this.decoders = []
        this.names = []
        return false
      case "CommandComplete":
        this.finish(m.tag)
        return true
      case "EmptyQueryResponse":
        this.finish("")
        return true
      case "PortalSuspended":
        this.finish("SELECT")
        return true
      case "CopyInResponse":
        // query() does not stream COPY data: fail the COPY so the server ends it with an error.
        this.conn.failCopyIn()
        return false
      case "CopyOutResponse":
      case "CopyData":
      case "CopyDone":
        return false
      default:
        return false
    }
  }

  private finish(tag: string): void {
    if (this.decoders === undefined) this.adopt()
    if (this.decodeFailure !== undefined) {
      this.done({ _tag: "DecodeFailed", error: this.decodeFailure.error, column: this.decodeFailure.column })
      return
    }
    const command = commandOf(tag)
    const rowCount = command === "SELECT" && tag === "SELECT" ? this.rows.length : rowCountOf(tag)
    this.done({
      _tag: "Done",
      result: { rows: this.rows, command, rowCount, fields: this.fieldInfo, tag }
    })
  }

  readonly onError = (fields: ErrorFields): void => {
    // A failed Parse leaves no statement behind: forget it so the next use prepares again.
    if (this.isNew && this.prepared !== undefined) this.conn.forget(this.prepared)
    this.done({ _tag: "ServerError", fields })
  }

  readonly onAborted = (culprit: Culprit): void => {
    if (this.isNew && this.prepared !== undefined) this.conn.forget(this.prepared)
    this.done({ _tag: "Aborted", culprit })
  }

  readonly onLost = (message: string, mayHaveRun: boolean): void => {
    this.done({ _tag: "Lost", message, mayHaveRun })
  }
}

const fieldInfos = (
  fields: ReadonlyArray<FieldDescription>,
  formats: ReadonlyArray<FormatCode>
): Array<FieldInfo> =>
  fields.map((f, i) => ({
    name: f.name,
    tableOid: f.tableOid,
    columnAttr: f.columnAttribute,
    typeOid: f.typeOid,
    typeSize: f.typeSize,
    typeModifier: f.typeModifier,
    format: formats[i] ?? 0
  }))

/** Completes on ReadyForQuery; reports the error raised at Sync itself, if any. */
export class SyncStep implements Step {
  readonly isSync = true
  segmentIndex = 0
  startOffset = 0
  private error: ErrorFields | undefined
  private readonly done: (
    status: TransactionStatus | undefined,
    error: ErrorFields | undefined,
    lost: { message: string; mayHaveRun: boolean } | undefined
  ) => void
  constructor(
    done: (
      status: TransactionStatus | undefined,
      error: ErrorFields | undefined,
      lost: { message: string; mayHaveRun: boolean } | undefined
    ) => void
  ) {
    this.done = done
  }
  readonly onMessage = (m: BackendMessage): boolean => {
    if (m.type === "ReadyForQuery") this.done(m.status, this.error, undefined)
    return true
  }
  readonly onError = (fields: ErrorFields): void => {
    this.error = fields
  }
  readonly onAborted = (): void => {}
  readonly onLost = (message: string, mayHaveRun: boolean): void => {
    this.done(undefined, this.error, { message, mayHaveRun })
  }
}

/** Consumes CloseComplete for an evicted statement. */
class CloseStep implements Step {
  readonly isSync = false
  segmentIndex = 0
  startOffset = 0
  readonly onMessage = (m: BackendMessage): boolean => m.type === "CloseComplete"
  readonly onError = (): void => {}
  readonly onAborted = (): void => {}
  readonly onLost = (): void => {}
}

export class Connection {
  readonly session: Session.Session
  readonly engine: Engine
  readonly registry: TypeRegistry
  readonly parameters: Map<string, string>
  private readonly cache = new Map<string, Prepared>()
  private nextName = 0
  private readonly options: ConnectionOptions
  private closedMessage: string | undefined

  constructor(session: Session.Session, registry: TypeRegistry, options: ConnectionOptions) {
    this.session = session
    this.registry = registry
    this.options = options
    this.parameters = session.parameters
    this.engine = new Engine({
      onNotice: options.onNotice,
      onNotification: options.onNotification,
      onParameterStatus: (name, value) => {
        this.parameters.set(name, value)
      },
      onDesync: (m) => {
        this.session.wire.close({
          kind: "protocol",
          message: `unexpected ${m.type} with no statement waiting for it`
        })
      }
    })
    session.wire.setHandler(this.engine.onMessage, (closed) => {
      this.closedMessage = closed.message
      this.engine.fail(closed.message, session.wire.bytesWritten)
    })
  }

  get isClosed(): boolean {
    return this.session.wire.isClosed
  }

  get closeMessage(): string {
    return this.closedMessage ?? "the connection is closed"
  }

  get transactionStatus(): TransactionStatus {
    return this.engine.transactionStatus
  }

  forget(prepared: Prepared): void {
    if (this.cache.get(prepared.key) === prepared) this.cache.delete(prepared.key)
  }

  /** Drops a cached statement after "cached plan must not change result type". */
  forgetText(text: string): void {
    for (const [key, p] of this.cache) if (key.startsWith(`${text}\u0000`)) this.cache.delete(p.key)
  }

  failCopyIn(): void {
    const w = this.session.wire.writer
    const at = w.beginMessage(0x66) // 'f' CopyFail
    w.cstring("COPY FROM STDIN is not supported by query(); use the COPY API")
    w.endMessage(at)
    this.session.wire.schedule()
  }

  /**
   * Writes one statement's frames and enqueues its step. Returns an EncodeFailure without writing
   * anything when a parameter or the text cannot be encoded.
   */
  queueStatement(
    text: string,
    values: ReadonlyArray<unknown>,
    done: (outcome: Outcome) => void
  ): EncodeFailure | undefined {
    const registry = this.registry
    const n = values.length
    // Parameter types decide which prepared statement serves this call.
    const inferred: Array<number> = new Array(n)
    let key = text
    key += "\u0000"
    let at = 0
    try {
      for (; at < n; at++) {
        inferred[at] = registry.inferOid(values[at])
        key += at === 0 ? String(inferred[at]) : `,${inferred[at]}`
      }
    } catch (error) {
      return { _tag: "Parameter", index: at, message: messageOf(error) }
    }
    let prepared = this.cache.get(key)
    const isNew = prepared === undefined
    const encoded: Array<EncodedParameter> = new Array(n)
    for (let i = 0; i < n; i++) {
      try {
        encoded[i] = registry.encodeParameter(values[i], prepared?.parameterTypes?.[i] ?? inferred[i])
      } catch (error) {
        return { _tag: "Parameter", index: i, message: messageOf(error) }
      }
    }
    const wire = this.session.wire
    const w = wire.writer
    const mark = w.length
    let resultFormats: ReadonlyArray<FormatCode> = noFormats
    const startOffset = wire.bytesWritten + mark
    try {
      if (prepared === undefined) {
        prepared = {
          name: `pgline_${this.nextName++}`,
          key,
          fields: undefined,
          parameterTypes: undefined,
          resultFormats: undefined,
          decoders: undefined,
          names: undefined,
          fieldInfo: undefined
        }
        encodeParse(w, prepared.name, text, inferred)
        encodeDescribe(w, "S", prepared.name)
      } else {
        // Refresh recency for the LRU bound.
        this.cache.delete(key)
      }
      const formats: Array<FormatCode> = new Array(n)
      const params: Array<Uint8Array | null> = new Array(n)
      for (let i = 0; i < n; i++) {
        formats[i] = encoded[i]!.format
        params[i] = encoded[i]!.bytes
      }
      resultFormats = isNew ? noFormats : (prepared.resultFormats ?? noFormats)
      encodeBind(w, "", prepared.name, formats, params, resultFormats)
      encodeExecute(w, "", 0)
    } catch (error) {
      // Undo the partial frames: nothing of this statement may reach the server.
      w.pos = mark
      if (isNew) this.nextName--
      return { _tag: "Text", message: messageOf(error) }
    }
    this.cache.set(key, prepared)
    const step = new StatementStep(this, prepared, isNew, resultFormats, done)
    step.startOffset = startOffset
    this.engine.enqueue(step)
    this.evict()
    wire.schedule()
    return undefined
  }

  private evict(): void {
    while (this.cache.size > this.options.statementCacheSize) {
      const oldest = this.cache.values().next().value as Prepared
      this.cache.delete(oldest.key)
      encodeClose(this.session.wire.writer, "S", oldest.name)
      this.engine.enqueue(new CloseStep())
    }
  }

  queueSync(
    done: (
      status: TransactionStatus | undefined,
      error: ErrorFields | undefined,
      lost: { message: string; mayHaveRun: boolean } | undefined
    ) => void
  ): void {
    const wire = this.session.wire
    const step = new SyncStep(done)
    step.startOffset = wire.bytesWritten + wire.writer.length
    encodeSync(wire.writer)
    this.engine.enqueue(step)
    wire.schedule()
  }

  queueFlush(): void {
    encodeFlush(this.session.wire.writer)
    this.session.wire.schedule()
  }
}

const messageOf = (error: unknown): string =>
  error instanceof TypeEncodeError || error instanceof EncodeError || error instanceof Error
    ? error.message
    : String(error)
