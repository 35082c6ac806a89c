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
  type DataRow,
  DecodeError,
  type Decoder,
  EncodeError,
  type ErrorFields,
  beginBind,
  ByteWriter,
  endBind,
  encodeClose,
  encodeCopyDone,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeParse,
  encodeQuery,
  encodeSync,
  type FieldDescription,
  type FormatCode,
  Oid,
  PgArray,
  PgRange,
  type TransactionStatus,
  TypeEncodeError,
  type TypeRegistry,
  Writer
} from "@pgline/codec"
import { Session } from "@pgline/transport"
import { Effect } from "effect"
import type { StatementRejected } from "../PgClientError.ts"
import type { FieldInfo, QueryResult } from "../QueryResult.ts"
import { type Culprit, commandOf, Engine, type Move, rowCountOf, type Step } from "./Engine.ts"
import { compileRowDecoder, decodeValues, diagnoseRow, type RowDecoder } from "./rowDecoder.ts"
import {
  droppedStatements,
  dropsStatements,
  endsTransactionBlock,
  firstKeyword,
  highestPlaceholder,
  settingsSet,
  statementsOf
} from "./sqlText.ts"

/** A statement text prepared on this connection under `name`. */
export interface Prepared {
  readonly name: string
  readonly text: string
  /** The highest $n of the text: a statement given more values than that is refused. */
  readonly placeholders: number
  /** Parameter OIDs declared in Parse (inferred from the first call's values). */
  readonly oids: ReadonlyArray<number>
  lastUsed: number
  /** ParseComplete has arrived: the statement exists on the server. */
  confirmed: boolean
  /** Closes of it (close, SQL DEALLOCATE) queued and unanswered: while above 0 it cannot be bound. */
  closing: number
  /**
   * The record its name had when its Parse was queued, until that Parse is answered: the name
   * goes back to it (or to the nearest one before it still on the server) if the Parse fails.
   */
  shadowed: Prepared | undefined
  /** Its Close was answered: the server no longer has it. */
  closed: boolean
  /** The segment (count of Syncs queued before it) whose Parse created it. */
  readonly parseSegment: number
  /** From the Describe answered at preparation; undefined until then. */
  fields: ReadonlyArray<FieldDescription> | undefined
  parameterTypes: ReadonlyArray<number> | undefined
  /**
   * The step that was to describe it failed, was skipped or was lost: no description will come
   * (a Bind held for its parameter types goes out with the inferred ones, to be refused or skipped).
   */
  undescribed: boolean
  /** Decoders per column for the binary-where-possible result formats used once described. */
  resultFormats: ReadonlyArray<FormatCode> | undefined
  decoders: ReadonlyArray<Decoder> | undefined
  names: ReadonlyArray<string> | undefined
  decodeRow: RowDecoder | undefined
  fieldInfo: ReadonlyArray<FieldInfo> | undefined
}

/** How a statement ended, as seen by the code that queued it. */
export type Outcome =
  | { readonly _tag: "Done"; readonly result: QueryResult }
  | {
      readonly _tag: "ServerError"
      readonly fields: ErrorFields
      /**
       * A statement cached by an earlier use that the server refused as out of date (see
       * isStaleStatement) before its BindComplete: nothing of it ran, and preparing it again
       * is the remedy. The same SQLSTATEs raised later (by a function it calls) are not this.
       */
      readonly stale?: true
    }
  | { readonly _tag: "Aborted"; readonly culprit: Culprit }
  | {
      readonly _tag: "Lost"
      readonly message: string
      readonly mayHaveRun: boolean
      /** Set when the connection was closed because the server broke the protocol (the reason). */
      readonly protocol?: string | undefined
    }
  | { readonly _tag: "DecodeFailed"; readonly error: DecodeError; readonly column: string }
  /**
   * Refused by the client after it was queued: a value held until the statement's parameter types
   * were known that its type's codec refuses (see Connection.writeHeldBind). Statements after it
   * were queued already: the server was made to refuse its Bind, so its segment failed there.
   */
  | { readonly _tag: "Refused"; readonly failure: EncodeFailure }

interface PendingInterrupt {
  readonly owner: object
  /** A CancelRequest was sent for it. */
  cancelled: boolean
  /** Its owner's last Sync was answered (or it failed). */
  finished: boolean
  /** The server closed the cancel connection (the signal was sent). */
  cancelDone: boolean
  timer: ReturnType<typeof setTimeout> | undefined
  /** CancelRequests sent so far, and the timer of the next one (see checkInterrupts). */
  cancels: number
  again: ReturnType<typeof setTimeout> | undefined
}

interface LockWaiter {
  readonly exclusive: boolean
  readonly owner: object
  readonly resume: () => void
  readonly idle: () => boolean
  readonly refusal: (() => StatementRejected) | undefined
}

/** How a connection was lost, as a Sync step reports it. */
export interface LostInfo {
  readonly message: string
  readonly mayHaveRun: boolean
  /** Set when the server broke the protocol (the reason). */
  readonly protocol?: string | undefined
}

/** Receives a statement's outcome (a pipeline handle, or the query in flight). */
export interface OutcomeSink {
  settle(outcome: Outcome): void
  /**
   * Set for a row stream, which decodes later: each DataRow as the parser gave it instead of a
   * decoded row in the result (its arrays are valid only during the call; its bytes stay valid).
   */
  readonly rawRow?: (m: DataRow) => void
  /** Set for a row stream: the portal stopped after its row limit (PortalSuspended); more may follow. */
  readonly suspended?: () => void
  /** Rows as arrays of values in column order instead of objects (`queryValues`). */
  readonly arrays?: boolean
  /**
   * `query`'s `prepare` option: false runs the statement on the unnamed statement, parsed for this
   * call only and not cached; otherwise the layer's `prepare` decides.
   */
  readonly prepare?: boolean | undefined
}

/** Refusals detected while encoding, before anything was written. */
export type EncodeFailure =
  | { readonly _tag: "Parameter"; readonly index: number; readonly message: string }
  | {
      readonly _tag: "Text"
      readonly message: string
      readonly reason?: "TransactionControl" | "PrepareFailed" | "CopyInQuery"
    }

export interface ConnectionOptions {
  /** Prepared statements kept per connection (least recently used are closed beyond it). */
  readonly statementCacheSize: number
  /** false: every statement uses the unnamed statement (transaction-mode poolers). */
  readonly prepare: boolean
  readonly onNotice: (fields: ErrorFields) => void
  readonly onNotification: (processId: number, channel: string, payload: string) => void
  /** Milliseconds an interrupted statement may take to stop after its cancel before the connection is closed. */
  readonly cancelGrace: number
  /** The connection closed (socket gone or session ended by the server); called once. */
  readonly onClosed?: () => void
  /** Every row as an array of values in column order instead of an object (ClientSettings.rows). */
  readonly arrays?: boolean
}

const emptyFields: ReadonlyArray<FieldInfo> = []

/**
 * Offsets of frames held behind a Bind (see Connection.holdBind) count from here: above any offset
 * written, so a held step never counts as sent (Engine.fail, mayWriteLater).
 */
const HELD = 2 ** 52

/**
 * A value as it is now, for a Bind encoded later: arrays (JS arrays, PgArray), plain objects,
 * ranges, Dates and byte arrays are copied, deeply; strings, numbers and other class instances
 * (PgInterval, PgTimestamp, a registered codec's own) are kept as they are.
 */
const snapshot = (v: unknown): unknown => {
  copiedBytes += typeof v === "string" ? v.length + 8 : 8
  if (typeof v !== "object" || v === null) return v
  if (Array.isArray(v)) {
    const copy: Array<unknown> & { toJSON?: unknown } = v.map(snapshot)
    if (Object.hasOwn(v, "toJSON")) copy.toJSON = (v as { toJSON?: unknown }).toJSON
    return copy
  }
  if (v instanceof Date) return new Date(v.getTime())
  if (ArrayBuffer.isView(v)) copiedBytes += v.byteLength
  if (Buffer.isBuffer(v)) return Buffer.from(v)
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return (v as unknown as { slice(): unknown }).slice()
  if (v instanceof PgArray) return new PgArray(v.elements.map(snapshot), v.dims, v.lowerBounds)
  if (v instanceof PgRange)
    return new PgRange(snapshot(v.lower), snapshot(v.upper), v.lowerInclusive, v.upperInclusive, v.isEmpty)
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return v
  const copy = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snapshot(x)]))
  const toJSON = Object.getOwnPropertyDescriptor(v, "toJSON")
  if (toJSON !== undefined && !toJSON.enumerable) Object.defineProperty(copy, "toJSON", toJSON)
  return copy
}

/** About the bytes the last snapshot copied (for a held Bind's share of the pending bytes). */
let copiedBytes = 0

/** The parameter formats of a Bind the server refuses whatever its statement (see refuseHeldBind). */
const refusedFormats: ReadonlyArray<FormatCode> = [0, 0]

/** A run of frames written behind a held Bind, at position `at` of the held stream. */
interface HeldBytes {
  readonly bytes: Uint8Array
  readonly at: number
}

/** A statement whose Bind and Execute wait for its parameter types (Connection.holdBind). */
interface HeldBind {
  readonly step: StatementStep
  readonly prepared: Prepared
  /** The segment it was queued in (see writeHeldBind). */
  readonly segment: number
  /**
   * The values as they were when queued: strings and nulls, copies of those whose bytes depend on
   * the parameter's type (encoded once the types are known, for `oids`, their inferred types), and
   * for each other value its bytes encoded then (`encoded`), with its format.
   */
  readonly values: ReadonlyArray<unknown>
  readonly oids: ReadonlyArray<number>
  readonly encoded: ReadonlyArray<Uint8Array | undefined>
  readonly formats: ReadonlyArray<FormatCode>
  readonly maxRows: number
  /** About the bytes its Bind will take (counted in Connection.pendingBytes while held). */
  readonly size: number
  /** Its position in the held stream. */
  at: number
}

/**
 * Whether value `i` is typed by its Parse: a string or null (sent as text, whatever the type), or
 * a value whose inferred type the Parse declared (`declared`: the OIDs of the statement's Parse),
 * so the server's type is that one. Otherwise its bytes would be guessed from JavaScript alone:
 * a value whose type JavaScript cannot tell (inferred OID 0: an array of strings or nulls, an
 * empty array, a range with string bounds) goes as an array or range literal where a json or jsonb
 * parameter (or a registered codec) would encode it itself, and any value bound to a statement
 * prepared by name (whose Parse declares no types) goes in its inferred type's binary form.
 */
const typedByParse = (
  values: ReadonlyArray<unknown>,
  oids: ReadonlyArray<number>,
  declared: ReadonlyArray<number>,
  i: number
): boolean => {
  const v = values[i]
  if (v === null || v === undefined || typeof v === "string") return true
  return oids[i] !== Oid.unknown && declared[i] === oids[i]
}

/** Whether some value is not typed by its Parse (see typedByParse). */
const untyped = (
  values: ReadonlyArray<unknown>,
  oids: ReadonlyArray<number>,
  declared: ReadonlyArray<number>
) => {
  for (let i = 0; i < values.length; i++) if (!typedByParse(values, oids, declared, i)) return true
  return false
}
const noFormats: ReadonlyArray<FormatCode> = []

/**
 * The statement the server has under a name whose latest Parse failed: the nearest earlier record
 * whose Parse succeeded, unless a Close of the name was answered since (undefined: none).
 */
const onServer = (shadowed: Prepared | undefined): Prepared | undefined => {
  for (let p = shadowed; p !== undefined && !p.closed; p = p.shadowed) if (p.confirmed) return p
  return undefined
}

/** A name an SQL statement drops, with the records it may stand for (StatementStep.drops). */
export interface NamedDrop {
  readonly name: string
  readonly records: ReadonlyArray<Prepared>
}

/** A statement bound or described by name whose Parse, answered after it was queued, failed. */
const notCreated = (p: Prepared): EncodeFailure => ({
  _tag: "Text",
  reason: "PrepareFailed",
  message: `the statement prepared under ${JSON.stringify(p.name)} was not created (its Parse failed or was skipped): nothing ran under that name`
})

export class StatementStep implements Step {
  readonly isSync = false
  segmentIndex = 0
  startOffset = 0
  owner: object | undefined = undefined
  /** Allocated on the first row: most pipelined statements (writes) return none. */
  private rows: Array<Record<string, unknown>> | undefined = undefined
  private decoders: ReadonlyArray<Decoder> | undefined
  private names: ReadonlyArray<string> | undefined
  private decodeRow: RowDecoder | undefined
  private fieldInfo: ReadonlyArray<FieldInfo> = emptyFields
  private decodeFailure: { error: DecodeError; column: string } | undefined
  private readonly conn: Connection
  private readonly prepared: Prepared | undefined
  private readonly isNew: boolean
  private readonly sink: OutcomeSink

  /** The result formats this step's Bind asked for ([] = all text). */
  readonly formats: ReadonlyArray<FormatCode>

  /** The server answered with COPY data (a COPY … TO STDOUT not seen in the text). */
  private copiedOut = false
  /** Set when a held Bind's value was refused (the server refuses the Bind sent instead). */
  refused: EncodeFailure | undefined = undefined

  /**
   * Named statements this statement drops (an SQL DEALLOCATE or DISCARD ALL): each name with the
   * records it may stand for, not bindable while it runs (see Connection.droppedBy).
   */
  drops: ReadonlyArray<NamedDrop> | undefined = undefined

  get refusedAs(): string | undefined {
    const refused = this.refused
    return refused === undefined
      ? undefined
      : refused._tag === "Parameter"
        ? "ParameterError"
        : "StatementRejected"
  }

  constructor(
    conn: Connection,
    prepared: Prepared | undefined,
    isNew: boolean,
    formats: ReadonlyArray<FormatCode>,
    sink: OutcomeSink
  ) {
    this.conn = conn
    this.prepared = prepared
    this.isNew = isNew
    this.formats = formats
    this.sink = sink
    this.stage = isNew ? 0 : 3
  }

  /** The statement ended: the names it was to drop are dropped (`done`) or usable again. */
  private dropped(done: boolean): void {
    const drops = this.drops
    if (drops === undefined) return
    this.drops = undefined
    for (const d of drops) this.conn.closedNamed(d.name, d.records, done)
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
      this.decodeRow = p.decodeRow
      this.fieldInfo = p.fieldInfo ?? emptyFields
      return
    }
    const registry = this.conn.registry
    const formats = p.fields.map((_, i) =>
      this.formats.length === 1 ? this.formats[0]! : (this.formats[i] ?? 0)
    )
    this.decoders = p.fields.map((f, i) => registry.rawDecoderFor(f.typeOid, formats[i]!))
    this.names = p.fields.map((f) => f.name)
    this.decodeRow = this.conn.rowDecoder(this.names, this.decoders)
    this.fieldInfo = fieldInfos(p.fields, formats)
  }

  private describe(fields: ReadonlyArray<FieldDescription>): void {
    // A fresh statement's first Bind asked for text results (types unknown at that point).
    const formats: Array<FormatCode> = fields.map(() => 0)
    const decoders = fields.map((f) => this.conn.registry.rawDecoderFor(f.typeOid, 0))
    this.decoders = decoders
    this.names = fields.map((f) => f.name)
    this.decodeRow = this.conn.rowDecoder(this.names, decoders)
    this.fieldInfo = fieldInfos(fields, formats)
    const p = this.prepared
    if (p !== undefined) {
      p.fields = fields
      const binary: Array<FormatCode> = fields.map((f) => this.conn.registry.resultFormat(f.typeOid))
      p.resultFormats = binary
      p.decoders = fields.map((f, i) => this.conn.registry.rawDecoderFor(f.typeOid, binary[i]!))
      p.names = this.names
      p.decodeRow = this.conn.rowDecoder(this.names, p.decoders)
      p.fieldInfo = fieldInfos(fields, binary)
    }
  }

  /**
   * Where the step is in its answer, which the protocol fixes: for a statement prepared here
   * ParseComplete (0), ParameterDescription (1), RowDescription or NoData (2), then for every
   * statement BindComplete (3), then rows and one completion (4). Anything out of that order is a
   * server breaking the protocol (or answers shifted by one): the connection is closed with a
   * ProtocolFailure rather than a result attributed to the wrong statement.
   */
  private stage: number

  /**
   * A Parse + Describe or a Describe of a named statement (pg.prepare, describe): complete once the
   * description (ParameterDescription, then RowDescription or NoData) is in; no Bind follows.
   */
  private describeOnly = false

  /** Makes this step read a statement's description only; `fresh`: a Parse precedes the Describe. */
  describing(fresh: boolean): this {
    this.describeOnly = true
    this.stage = fresh ? 0 : 1
    return this
  }

  /** Makes this step read a portal's description (RowDescription or NoData; no parameters). */
  describingPortal(): this {
    this.describeOnly = true
    this.stage = 2
    return this
  }

  /** The description read by a describe-only step, settled as a result without rows. */
  private described(): true {
    const p = this.prepared
    this.sink.settle({
      _tag: "Done",
      result: { rows: [], command: "", rowCount: 0, fields: p?.fieldInfo ?? this.fieldInfo, tag: "" }
    })
    return true
  }

  /**
   * How this step's rows decode (for a stream that decodes them later): the row decoder, and per
   * column its name, type and format (to say which column failed). Undefined before the
   * statement's description is known.
   */
  rowDecoding(): { readonly decodeRow: RowDecoder; readonly fields: ReadonlyArray<FieldInfo> } | undefined {
    if (this.decodeRow === undefined) this.adopt()
    return this.decodeRow === undefined ? undefined : { decodeRow: this.decodeRow, fields: this.fieldInfo }
  }

  /**
   * The step reading the next rows of the same portal (a row stream's next Execute): it decodes
   * with this step's decoders and expects rows straight away.
   */
  continuation(sink: OutcomeSink): StatementStep {
    if (this.decodeRow === undefined) this.adopt()
    const next = new StatementStep(this.conn, this.prepared, false, this.formats, sink)
    next.stage = 4
    next.decoders = this.decoders
    next.names = this.names
    next.decodeRow = this.decodeRow
    next.fieldInfo = this.fieldInfo
    return next
  }

  onMessage(m: BackendMessage): boolean {
    switch (m.type) {
      case "DataRow": {
        if (this.stage !== 4) return this.violation(m.type)
        if (this.decodeFailure !== undefined) return false
        if (this.decodeRow === undefined) this.adopt()
        const decodeRow = this.decodeRow
        if (decodeRow === undefined || m.columnCount !== (this.decoders?.length ?? 0)) {
          return this.violation(
            `DataRow with ${m.columnCount} columns for a result of ${this.decoders?.length ?? 0}`
          )
        }
        const raw = this.sink.rawRow
        if (raw !== undefined) {
          raw(m)
          return false
        }
        let row: Record<string, unknown>
        try {
          row =
            this.sink.arrays === true
              ? (decodeValues(this.decoders!, m.bytes, m.offsets, m.lengths) as unknown as Record<
                  string,
                  unknown
                >)
              : decodeRow(m.bytes, m.offsets, m.lengths)
        } catch {
          this.decodeFailure = this.diagnose(m)
          return false
        }
        if (this.rows === undefined) this.rows = [row]
        else this.rows.push(row)
        return false
      }
      case "ParseComplete":
        if (!this.isNew || this.stage !== 0) return this.violation(m.type)
        this.stage = 1
        if (this.prepared !== undefined) this.prepared.confirmed = true
        return false
      case "ParameterDescription":
        if (this.stage !== 1) return this.violation(m.type)
        this.stage = 2
        if (this.prepared !== undefined) {
          this.prepared.parameterTypes = m.parameterTypes
          this.conn.resumeHeld()
        }
        return false
      case "RowDescription":
        if (this.stage !== 2) return this.violation(m.type)
        this.stage = 3
        this.describe(m.fields)
        return this.describeOnly ? this.described() : false
      case "NoData":
        if (this.stage !== 2) return this.violation(m.type)
        this.stage = 3
        if (this.prepared !== undefined) {
          this.prepared.fields = []
          this.prepared.resultFormats = []
          this.prepared.decoders = []
          this.prepared.names = []
          this.prepared.decodeRow = undefined
          this.prepared.fieldInfo = emptyFields
        }
        this.decoders = []
        this.names = []
        return this.describeOnly ? this.described() : false
      case "BindComplete":
        if (this.stage !== 3) return this.violation(m.type)
        this.stage = 4
        return false
      case "CommandComplete":
        if (this.stage !== 4) return this.violation(m.type)
        if (this.drops !== undefined) this.dropped(dropsStatements(m.tag))
        this.finish(m.tag)
        return true
      case "EmptyQueryResponse":
        if (this.stage !== 4) return this.violation(m.type)
        this.finish("")
        return true
      case "PortalSuspended":
        if (this.stage !== 4) return this.violation(m.type)
        if (this.sink.suspended !== undefined && this.decodeFailure === undefined) this.sink.suspended()
        else this.finish("SELECT")
        return true
      case "CopyInResponse":
        if (this.stage !== 4) return this.violation(m.type)
        // query() does not stream COPY data: fail the COPY so the server ends it with an error. The
        // server ignores a Sync that came during copy-in, so one follows, unless none was sent
        // after this statement (a row stream's portal goes with a Flush; its Sync comes later).
        this.conn.failCopyIn(this.sink.suspended === undefined)
        return false
      case "CopyOutResponse":
        if (this.stage !== 4) return this.violation(m.type)
        // A COPY … TO STDOUT the text checks did not see: its data is dropped, so it is no success.
        this.copiedOut = true
        return false
      case "CopyData":
      case "CopyDone":
        if (this.stage !== 4) return this.violation(m.type)
        return false
      default:
        return this.violation(m.type)
    }
  }

  /** The server broke the protocol's grammar for this statement: close the connection. */
  private violation(what: string): boolean {
    this.conn.protocolViolation(
      what.includes(" ") ? what : `unexpected ${what} for a statement at step ${this.stage} of its answer`
    )
    return false
  }

  /** Which column failed and why: re-decodes the row with the checked decoders (error path only). */
  private diagnose(m: DataRow): { error: DecodeError; column: string } {
    return (
      diagnoseRow(this.conn.registry, this.fieldInfo, m.bytes, m.offsets, m.lengths) ?? {
        error: new DecodeError(0, "a row decoder failed"),
        column: ""
      }
    )
  }

  private finish(tag: string): void {
    if (this.refused !== undefined) {
      this.sink.settle({ _tag: "Refused", failure: this.refused })
      return
    }
    if (this.copiedOut) {
      this.sink.settle({
        _tag: "Refused",
        failure: {
          _tag: "Text",
          reason: "CopyInQuery",
          message: `a statement run for its result cannot carry COPY's data (${tag}: the rows sent were dropped): use pg.copyTo`
        }
      })
      return
    }
    if (this.decodeRow === undefined) this.adopt()
    if (this.decodeFailure !== undefined) {
      this.sink.settle({
        _tag: "DecodeFailed",
        error: this.decodeFailure.error,
        column: this.decodeFailure.column
      })
      return
    }
    const command = commandOf(tag)
    const rows = this.rows ?? []
    const rowCount = command === "SELECT" && tag === "SELECT" ? rows.length : rowCountOf(tag)
    this.sink.settle({
      _tag: "Done",
      result: { rows, command, rowCount, fields: this.fieldInfo, tag }
    })
  }

  onError(fields: ErrorFields): void {
    // A failed Parse leaves no statement behind: forget it so the next use prepares again. One
    // parsed but not yet described is closed on the server and forgotten. A statement refused at
    // Bind when cached (stale after DDL or DEALLOCATE, or an operator no longer fitting a column's
    // new type) is closed and forgotten too, so the next use prepares it afresh. A statement that
    // failed only while it ran (a unique violation) stays cached: it is still good.
    const stale = isStaleStatement(fields)
    this.dropped(false)
    const p = this.prepared
    if (p !== undefined) {
      if (this.describeOnly || (this.isNew && this.stage === 0)) {
        if (this.isNew) this.conn.forget(p)
      } else if (this.isNew ? this.stage < 3 : this.stage === 3) this.conn.discard(p)
    }
    this.undescribed()
    if (this.refused !== undefined) {
      this.sink.settle({ _tag: "Refused", failure: this.refused })
      return
    }
    this.sink.settle(
      stale && !this.isNew && this.stage === 3 && !this.describeOnly
        ? { _tag: "ServerError", fields, stale: true }
        : { _tag: "ServerError", fields }
    )
  }

  onAborted(culprit: Culprit): void {
    if (this.isNew && this.prepared !== undefined) this.conn.forget(this.prepared)
    this.dropped(false)
    this.undescribed()
    this.sink.settle({ _tag: "Aborted", culprit })
  }

  onLost(message: string, mayHaveRun: boolean): void {
    this.dropped(false)
    this.undescribed()
    this.sink.settle({ _tag: "Lost", message, mayHaveRun, protocol: this.conn.protocolFailureReason })
  }

  /** A step that was to describe its statement ended before the description: Binds held for it go on. */
  private undescribed(): void {
    const p = this.prepared
    if (p === undefined || this.stage >= 2 || !(this.isNew || this.describeOnly)) return
    p.undescribed = true
    this.conn.resumeHeld()
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
  owner: object | undefined = undefined
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

/**
 * Consumes CloseComplete for a statement evicted or discarded from the cache. A Close that an
 * earlier error in its segment made the server skip is sent again with the next statement.
 */
class CloseStep implements Step {
  readonly isSync = false
  readonly internal = true
  segmentIndex = 0
  startOffset = 0
  owner: object | undefined = undefined
  readonly conn: Connection
  readonly name: string
  constructor(conn: Connection, name: string) {
    this.conn = conn
    this.name = name
  }
  readonly onMessage = (m: BackendMessage): boolean => {
    if (m.type === "CloseComplete") return true
    this.conn.protocolViolation(`unexpected ${m.type} where CloseComplete was due`)
    return false
  }
  readonly onError = (): void => {}
  readonly onAborted = (): void => this.conn.closeLater(this.name)
  readonly onLost = (): void => {}
}

/** Close of a statement the user named: settles with an empty result on CloseComplete. */
class CloseNamedStep implements Step {
  readonly isSync = false
  segmentIndex = 0
  startOffset = 0
  owner: object | undefined = undefined
  private readonly conn: Connection
  private readonly sink: OutcomeSink
  private readonly name: string
  /** The records the name may stand for on the server when the Close runs (see queueCloseNamed). */
  private readonly records: ReadonlyArray<Prepared>
  constructor(conn: Connection, sink: OutcomeSink, name: string, records: ReadonlyArray<Prepared>) {
    this.conn = conn
    this.sink = sink
    this.name = name
    this.records = records
  }
  private ended(closed: boolean): void {
    if (this.records.length > 0) this.conn.closedNamed(this.name, this.records, closed)
  }
  readonly onMessage = (m: BackendMessage): boolean => {
    if (m.type === "CloseComplete") {
      this.ended(true)
      this.sink.settle({
        _tag: "Done",
        result: { rows: [], command: "", rowCount: 0, fields: emptyFields, tag: "" }
      })
      return true
    }
    this.conn.protocolViolation(`unexpected ${m.type} where CloseComplete was due`)
    return false
  }
  readonly onError = (fields: ErrorFields): void => {
    this.ended(false)
    this.sink.settle({ _tag: "ServerError", fields })
  }
  readonly onAborted = (culprit: Culprit): void => {
    this.ended(false)
    this.sink.settle({ _tag: "Aborted", culprit })
  }
  readonly onLost = (message: string, mayHaveRun: boolean): void =>
    this.sink.settle({ _tag: "Lost", message, mayHaveRun })
}

export class Connection {
  readonly session: Session.Session
  readonly engine: Engine
  readonly registry: TypeRegistry
  readonly parameters: Map<string, string>
  /** Prepared statements by text; variants differ in their parameter OIDs. */
  private readonly cache = new Map<string, Array<Prepared>>()
  private cached = 0
  private clock = 0
  /** Syncs queued so far: the current segment's number. */
  private segments = 0
  /** The pipeline holding the connection, if any; other statements wait for it (see `acquire`). */
  private exclusiveOwner: object | undefined = undefined
  private exclusiveIdle: () => boolean = () => false
  /**
   * What the holder's own fiber gets for a statement sent to the connection while it is held and
   * busy (it would wait on itself); undefined: the pipeline's refusal (PipelineOpen).
   */
  exclusiveRefusal: (() => StatementRejected) | undefined = undefined
  private readonly lockWaiters: Array<LockWaiter> = []
  private nextName = 0
  private readonly scratchOids: Array<number> = []
  private readonly scratchFormats: Array<FormatCode> = []
  /** Where each parameter's bytes start in scratchBytes (a string's or NULL's: none, start = end). */
  private readonly scratchStarts: Array<number> = []
  /** The encoded non-string parameters of the statement being queued, one after the other. */
  private readonly scratchBytes = new ByteWriter(256)
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
        // A server reports a dozen or two; thousands of distinct names would only grow memory.
        if (this.parameters.size >= MAX_PARAMETER_NAMES && !this.parameters.has(name)) {
          this.protocolViolation(`more than ${MAX_PARAMETER_NAMES} distinct ParameterStatus names`)
          return
        }
        this.parameters.set(name, value)
        const unreadable = unreadableBy(registry, name, value)
        if (unreadable !== undefined) this.unreadable(unreadable)
      },
      onDesync: (m) => this.protocolViolation(`unexpected ${m.type} with no statement waiting for it`)
    })
    session.wire.setHandler(this.engine.onMessage, (closed) => {
      this.closedMessage = closed.message
      if (closed.kind === "protocol") this.protocolFailureReason ??= closed.protocolError?.reason ?? "Grammar"
      this.engine.fail(closed.message, session.wire.bytesWritten)
      this.resumeHeld()
      options.onClosed?.()
    })
  }

  /**
   * Set when the connection was closed because the server broke the protocol: the parser's
   * reason (MessageTooLarge, InvalidLength, …) or "Grammar" for messages out of order.
   */
  protocolFailureReason: string | undefined = undefined

  /**
   * The step of the last statement queued with a row limit (a row stream continues its portal from
   * it); the stream takes it at once (`takePortalStep`), so no result is kept alive here.
   */
  private portalStep: StatementStep | undefined = undefined

  takePortalStep(): StatementStep | undefined {
    const step = this.portalStep
    this.portalStep = undefined
    return step
  }

  /**
   * Runs a clean-up statement's effect (ROLLBACK, ROLLBACK TO) within `cancelGrace`: a clean-up
   * runs where nothing can interrupt it, so a stalled server must not hold it for good. Past the
   * bound the connection is closed, which settles the statement (ConnectionLost).
   */
  bounded<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.acquireUseRelease(
      Effect.sync(() =>
        this.closeAfterGrace(
          `a clean-up statement did not finish within ${this.options.cancelGrace} ms; the connection was closed`
        )
      ),
      () => effect,
      (timer) => Effect.sync(() => clearTimeout(timer))
    )
  }

  /**
   * Closes the connection `cancelGrace` from now unless the returned timer is cleared first (never
   * when cancelGrace is Infinity).
   */
  private closeAfterGrace(message: string): ReturnType<typeof setTimeout> | undefined {
    if (!Number.isFinite(this.options.cancelGrace)) return undefined
    return setTimeout(() => {
      if (!this.isClosed) this.session.wire.close({ kind: "local", message })
    }, this.options.cancelGrace)
  }

  /** The server broke the protocol: nothing it says can be trusted, so the connection is closed. */
  /**
   * A SET made the session unreadable (client_encoding, DateStyle, IntervalStyle): closed at once,
   * before anything is read or written in the new setting; what was pending fails with
   * ProtocolFailure "UnsupportedSetting".
   */
  private unreadable(message: string): void {
    this.protocolFailureReason = "UnsupportedSetting"
    this.session.wire.close({ kind: "protocol", message: `the connection was closed: ${message}` })
  }

  protocolViolation(message: string): void {
    this.session.wire.close({ kind: "protocol", message: `the server broke the protocol: ${message}` })
  }

  /** The socket closed, or the server ended the session (a FATAL error; the close follows). */
  get isClosed(): boolean {
    return this.session.wire.isClosed || this.engine.isLost
  }

  /**
   * Waits for the connection: `exclusive` (a pipeline) holds it until `release`; a plain
   * statement only waits while a pipeline holds it, so statements of concurrent fibers still
   * pipeline implicitly. `resume` runs once access is granted (at once when free): returns a
   * cancel function for a waiter that is interrupted, or undefined when granted immediately.
   */
  acquire(
    exclusive: boolean,
    owner: object,
    resume: () => void,
    idle: () => boolean = () => false,
    refusal?: () => StatementRejected
  ): (() => void) | undefined {
    if (exclusive ? this.tryHold(owner, idle, refusal) : this.mayRunNow()) {
      resume()
      return undefined
    }
    const waiter: LockWaiter = { exclusive, owner, resume, idle, refusal }
    this.lockWaiters.push(waiter)
    return () => {
      const i = this.lockWaiters.indexOf(waiter)
      if (i >= 0) this.lockWaiters.splice(i, 1)
    }
  }

  /** Nobody waits for the lock, no cancel is pending, and nothing holds it or a foreign step may run. */
  private mayRunNow(): boolean {
    return (
      this.lockWaiters.length === 0 &&
      !this.fenced &&
      (this.exclusiveOwner === undefined || this.foreignMayRun())
    )
  }

  /** Holds the connection for `owner` when that needs no wait: true if it now holds it. */
  tryHold(owner: object, idle: () => boolean = () => false, refusal?: () => StatementRejected): boolean {
    if (this.lockWaiters.length > 0 || this.fenced || this.exclusiveOwner !== undefined) return false
    this.exclusiveOwner = owner
    this.exclusiveIdle = idle
    this.exclusiveRefusal = refusal
    return true
  }

  /**
   * Whether a statement of another fiber may run while a pipeline holds the connection: only
   * between its segments and outside a transaction block, where it cannot land inside one.
   */
  private foreignMayRun(): boolean {
    return this.exclusiveIdle() && this.engine.pending === 0 && this.engine.transactionStatus === "I"
  }

  /** The holding pipeline became idle: statements of other fibers waiting for it may run now. */
  pulse(): void {
    while (
      !this.fenced &&
      this.lockWaiters.length > 0 &&
      !this.lockWaiters[0]!.exclusive &&
      this.foreignMayRun()
    ) {
      this.lockWaiters.shift()!.resume()
    }
  }

  /**
   * Set while a CancelRequest may still land: nothing new is written until the cancelled
   * statement's Sync is answered and the server has closed the cancel connection (so the signal
   * was sent while the backend had nothing else to run, and a late one is discarded, not taken by
   * the next statement).
   */
  private fenced = false

  private unfence(): void {
    this.fenced = false
    if (this.exclusiveOwner === undefined) this.grantFree()
    else this.pulse()
  }

  private readonly interrupts: Array<PendingInterrupt> = []

  /**
   * Stops what `owner` runs, in bounded time: a CancelRequest goes out only while `owner`'s steps
   * are both the head of the queue (the server runs its statement) and its tail (nothing of anyone
   * else is queued behind, which a late cancel could hit). Before that it waits; when others are
   * queued behind it, it lets the statement finish rather than risk cancelling theirs. After
   * `cancelGrace` ms without the owner being done, the connection is closed: everything in flight
   * on it fails with ConnectionLost (mayHaveRun as sent). Call `done` on the handle once the
   * owner's last Sync is answered (or it failed).
   */
  interrupt(owner: object): { readonly done: () => void } {
    const pending: PendingInterrupt = {
      owner,
      cancelled: false,
      finished: false,
      cancelDone: false,
      timer: undefined,
      cancels: 0,
      again: undefined
    }
    pending.timer = this.closeAfterGrace(
      `an interrupted statement did not stop within ${this.options.cancelGrace} ms of its cancel; the connection was closed`
    )
    this.interrupts.push(pending)
    this.engine.onAdvance = this.checkInterrupts
    this.checkInterrupts()
    return {
      done: () => {
        pending.finished = true
        clearTimeout(pending.timer)
        clearTimeout(pending.again)
        this.settleInterrupt(pending)
      }
    }
  }

  private readonly checkInterrupts = (): void => {
    if (this.isClosed) return
    const head = this.engine.headOwner
    if (head === undefined) return
    for (const pending of this.interrupts) {
      if (pending.cancelled || pending.finished || pending.owner !== head) continue
      if (this.engine.tailOwner !== head) continue
      pending.cancelled = true
      pending.cancels++
      this.fenced = true
      const wire = this.session.wire
      const sentAt = performance.now()
      void this.session.cancel().then(() => {
        pending.cancelDone = true
        this.settleInterrupt(pending)
        // A server that got the cancel before it read the statement ignores it (it cancels only a
        // running one), and the statement runs on. Asked again only after a quiet spell: nothing
        // at all came from the server for twice the cancel's own round trip (at least 250 ms;
        // an answer on its way means a statement stopped, and the wait starts over), then twice
        // that, …, and under the same conditions (the owner's steps the whole queue).
        if (pending.finished || this.isClosed) return
        const delay = Math.max(250, 2 * (performance.now() - sentAt)) * 2 ** Math.min(pending.cancels - 1, 5)
        let read = wire.bytesRead
        const quiet = () => {
          if (pending.finished || this.isClosed) return
          if (wire.bytesRead !== read) {
            read = wire.bytesRead
            pending.again = setTimeout(quiet, delay)
            return
          }
          pending.cancelled = false
          pending.cancelDone = false
          this.checkInterrupts()
        }
        pending.again = setTimeout(quiet, delay)
      })
    }
  }

  /** Forgets an interrupt once its owner is done and its cancel (if any) delivered; lifts the fence. */
  private settleInterrupt(pending: PendingInterrupt): void {
    if (!pending.finished || (pending.cancelled && !pending.cancelDone)) return
    const i = this.interrupts.indexOf(pending)
    if (i >= 0) this.interrupts.splice(i, 1)
    if (this.interrupts.length === 0) this.engine.onAdvance = undefined
    if (this.fenced && !this.interrupts.some((p) => p.cancelled)) this.unfence()
  }

  /** Whether `owner` holds the connection exclusively. */
  holds(owner: object): boolean {
    return this.exclusiveOwner === owner
  }

  get exclusiveHolder(): object | undefined {
    return this.exclusiveOwner
  }

  /**
   * Fibers that act for the holder: a COPY's source runs in a fiber of its own (raced against the
   * server's end of the COPY), and what it runs on the held connection must be refused as the
   * holder's own would be, not wait for the holder (which waits for it).
   */
  private readonly deputies = new Set<object>()

  /** Whether `fiber` holds the connection, itself or as a deputy of the holder. */
  isHolder(fiber: object): boolean {
    return (
      this.exclusiveOwner !== undefined &&
      (this.exclusiveOwner === fiber || (this.deputies.size > 0 && this.deputies.has(fiber)))
    )
  }

  /** `effect` run by a fiber acting for the holder while it runs (see `deputies`). */
  asDeputy<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiber((fiber) => {
      this.deputies.add(fiber)
      return Effect.ensuring(
        effect,
        Effect.sync(() => this.deputies.delete(fiber))
      )
    })
  }

  /** Whether the holding pipeline has nothing in flight (no open segment, no unanswered Sync). */
  get holderIdle(): boolean {
    return this.exclusiveIdle()
  }

  release(owner: object): void {
    if (this.exclusiveOwner !== owner) return
    this.exclusiveOwner = undefined
    this.grantFree()
  }

  /** Grants waiters in arrival order while nothing holds the connection; a pipeline among them takes it. */
  private grantFree(): void {
    while (!this.fenced && this.lockWaiters.length > 0 && this.exclusiveOwner === undefined) {
      const next = this.lockWaiters.shift()!
      if (next.exclusive) {
        this.exclusiveOwner = next.owner
        this.exclusiveIdle = next.idle
        this.exclusiveRefusal = next.refusal
      }
      next.resume()
    }
  }

  get closeMessage(): string {
    return this.closedMessage ?? "the connection is closed"
  }

  get transactionStatus(): TransactionStatus {
    return this.engine.transactionStatus
  }

  /**
   * Transaction blocks whose body runs on this connection (withTransaction, a pipeline
   * transaction): while above 0, a statement that would end the block (COMMIT, ROLLBACK, …) is
   * refused before it is sent, whichever path it takes. The driver ends its blocks after
   * lowering this.
   */
  blocks = 0

  /** Drops a statement from the cache; false when it was not there. */
  forget(prepared: Prepared): boolean {
    const variants = this.cache.get(prepared.text)
    if (variants === undefined) return false
    const i = variants.indexOf(prepared)
    if (i < 0) return false
    variants.splice(i, 1)
    this.cached--
    if (variants.length === 0) this.cache.delete(prepared.text)
    return true
  }

  /** Drops a cached statement and closes it on the server with the next statement sent. */
  discard(prepared: Prepared): void {
    if (this.forget(prepared)) this.closeLater(prepared.name)
  }

  /**
   * Names of statements prepared on the server that the cache no longer holds (discarded, or an
   * eviction's Close skipped by an error): each is closed after the next statement queued, so a
   * long-lived connection does not keep them (server memory) until it ends.
   */
  private unclosed: Array<string> = []

  closeLater(name: string): void {
    if (name !== "" && !this.isClosed) this.unclosed.push(name)
  }

  private closeUnclosed(owner: object | undefined): void {
    const names = this.unclosed
    this.unclosed = []
    for (const name of names) this.queueClose(name, owner)
  }

  private queueClose(name: string, owner: object | undefined): void {
    encodeClose(this.out, "S", name)
    const close = new CloseStep(this, name)
    close.owner = owner
    this.engine.enqueue(close)
  }

  /**
   * Whether a text is prepared under a name and cached. Not with `prepare: false` or a cache size
   * of 0, nor for FETCH or EXECUTE: the same text returns other columns when the cursor or the
   * SQL-level prepared statement it names is declared again, so its description must be fresh
   * each time.
   */
  private keepsPrepared(text: string, prepare: boolean): boolean {
    if (!prepare || this.options.statementCacheSize === 0) return false
    const keyword = firstKeyword(text)
    return keyword !== "FETCH" && keyword !== "EXECUTE"
  }

  /** Drops a text's cached statements after "cached plan must not change result type". */
  forgetText(text: string): void {
    const variants = this.cache.get(text)
    if (variants === undefined) return
    this.cached -= variants.length
    this.cache.delete(text)
    for (const p of variants) this.closeLater(p.name)
  }

  /**
   * Ends a COPY FROM STDIN that nobody feeds. `extended`: it came from an extended-protocol
   * statement, whose Sync the server ignored (it arrived during copy-in): the server then discards
   * everything until the next one, so without this Sync it would wait for good.
   */
  failCopyIn(extended: boolean, message = "COPY FROM STDIN needs its data: use pg.copyFrom"): void {
    const w = this.session.wire.writer
    const at = w.beginMessage(0x66) // 'f' CopyFail
    w.cstring(message.replaceAll("\u0000", ""))
    w.endMessage(at)
    if (extended) encodeSync(w)
    this.session.wire.schedule()
  }

  /**
   * One CopyData message with `chunk` (bytes, or a string sent as UTF-8). Small chunks are
   * coalesced in the writer; from RAW_COPY_DATA bytes on, the chunk goes to the socket as it is,
   * behind a 5-byte header (no copy into the writer and out again).
   */
  writeCopyData(chunk: Uint8Array | string): void {
    const wire = this.session.wire
    if (chunk.length >= RAW_COPY_DATA) {
      const body = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
      const header = new Uint8Array(5)
      header[0] = 0x64 // 'd' CopyData
      new DataView(header.buffer).setInt32(1, body.length + 4)
      wire.writeRaw(header, body)
      return
    }
    const w = wire.writer
    const at = w.beginMessage(0x64)
    if (typeof chunk === "string") w.utf8(chunk)
    else w.bytes(chunk)
    w.endMessage(at)
    wire.schedule()
  }

  /** CopyDone: the data of a COPY FROM STDIN is complete. */
  writeCopyDone(): void {
    encodeCopyDone(this.session.wire.writer)
    this.session.wire.schedule()
  }

  /**
   * Sends a simple-query message (a script, or a COPY) answered by `step`, which is its own Sync:
   * the server runs every statement of the text and ends with one ReadyForQuery.
   */
  queueQuery(
    text: string,
    step: Step & {
      startOffset: number
      owner?: object | undefined
      drops?: Array<ReadonlyArray<NamedDrop> | undefined> | undefined
    }
  ): EncodeFailure | undefined {
    if (text.includes("\u0000"))
      return { _tag: "Text", message: "a statement text cannot contain a NUL character" }
    if (!text.isWellFormed()) return loneSurrogateInText
    if (this.blocks > 0 && statementsOf(text).some(endsTransactionBlock)) return blockEnd
    const refused = refusedSetting(this.registry, text)
    if (refused !== undefined) return refused
    const w = this.out
    step.startOffset = this.offsetOf(w.length)
    this.segments++
    encodeQuery(w, text)
    // A script: what it drops of the named statements is not bindable until its answers. Marked
    // before the step is enqueued, which ends it at once on a lost connection (releasing them).
    if ("drops" in step) step.drops = this.scriptDrops(text)
    this.engine.enqueue(step)
    this.scheduleOut()
    return undefined
  }

  /**
   * Asks for the next `maxRows` rows of the portal `previous` read from (a row stream), with a
   * Flush so the server sends them without a Sync. Returns the step that reads them.
   */
  queueExecute(previous: StatementStep, sink: OutcomeSink, maxRows: number, owner: object): StatementStep {
    const step = previous.continuation(sink)
    const w = this.out
    step.startOffset = this.offsetOf(w.length)
    step.owner = owner
    encodeExecute(w, "", maxRows)
    encodeFlush(w)
    this.engine.enqueue(step)
    this.scheduleOut()
    return step
  }

  /**
   * Writes one statement's frames and enqueues its step. Returns an EncodeFailure without writing
   * anything when a parameter or the text cannot be encoded.
   *
   * Hot path (every pipelined statement): the cache is keyed by the text (whose hash V8 keeps on
   * the string) with the parameter OIDs compared element-wise, string parameters are written
   * straight into the Bind frame, and nothing is allocated per parameter but the scratch arrays.
   */
  queueStatement(
    text: string,
    values: ReadonlyArray<unknown>,
    sink: OutcomeSink,
    owner?: object,
    maxRows = 0,
    named?: Prepared
  ): EncodeFailure | undefined {
    const registry = this.registry
    const n = values.length
    if (n > MAX_PARAMETERS) return tooManyParameters(n)
    if (this.blocks > 0 && endsTransactionBlock(named?.text ?? text)) return blockEnd
    const oids = this.scratchOids
    // Setting an array's length calls into V8's runtime even when it stays the same, until V8 has
    // optimised this method (~3k instructions a statement for these three before): only on change.
    if (oids.length !== n) oids.length = n
    let at = 0
    try {
      for (; at < n; at++) {
        const refused = refuseValue(values[at], at)
        if (refused !== undefined) return refused
        oids[at] = registry.inferOid(values[at])
      }
    } catch (error) {
      return { _tag: "Parameter", index: at, message: messageOf(error) }
    }
    // A statement the user prepared under a name is bound by that name (its text is not parsed
    // again); one run with `prepare: false` neither uses nor fills the cache.
    const prepare = this.options.prepare && sink.prepare !== false
    let prepared = named ?? (prepare ? this.lookup(text, oids) : undefined)
    const isNew = prepared === undefined
    const placeholders = prepared?.placeholders ?? highestPlaceholder(text)
    if (n > placeholders) return extraParameters(n, placeholders)
    if (isNew && !text.isWellFormed()) return loneSurrogateInText
    if (isNew) {
      const refused = refusedSetting(this.registry, text)
      if (refused !== undefined) return refused
    }
    const known = prepared?.parameterTypes
    // The unnamed statement for texts whose description can change between uses (FETCH, EXECUTE)
    // and for every text with `prepare: false`: parsed and described each time.
    const keeps = prepared === undefined && this.keepsPrepared(text, prepare)
    // A value whose bytes depend on the parameter's type, which its Parse does not fix (an array
    // of strings or an empty one: an array literal for an array type, JSON for json; any value
    // bound by name before the statement's description) waits for the description, so every run
    // reads it alike. Those bound by name are encoded only then.
    const declared = prepared === undefined ? oids : prepared.oids
    // Bound by name in a later segment than its statement's unanswered Parse: the Bind would run
    // whatever the server has under the name should that Parse fail, so it waits for the answer.
    const hold =
      (named !== undefined &&
        !named.confirmed &&
        !named.undescribed &&
        named.parseSegment !== this.segments) ||
      (known === undefined &&
        (prepared === undefined ? keeps : !prepared.undescribed) &&
        untyped(values, oids, declared))
    const encoded = this.encodeValues(values, oids, known, hold ? declared : undefined)
    if (encoded !== undefined) return encoded
    // What a held Bind keeps of the values, taken now (before anything is written: a value that
    // cannot be copied is refused here, nothing sent).
    let kept: Omit<HeldBind, "step" | "prepared" | "segment"> | undefined
    if (hold) {
      const copied = this.heldBindOf(values, oids, declared, maxRows)
      if ("_tag" in copied) return copied
      kept = copied
    }
    // Closes go ahead of the statement's frames, so its failure cannot make the server skip them.
    const evicting = keeps && this.cached >= this.options.statementCacheSize
    const closing = evicting || this.unclosed.length > 0
    if (this.unclosed.length > 0) this.closeUnclosed(owner)
    if (evicting) this.evict(owner)
    const w = this.out
    const mark = w.length
    const startOffset = this.offsetOf(mark)
    let resultFormats: ReadonlyArray<FormatCode> = noFormats
    let name: string
    try {
      if (prepared === undefined) {
        name = keeps ? `pgline_${this.nextName}` : ""
        encodeParse(w, name, text, oids)
        encodeDescribe(w, "S", name)
      } else {
        name = prepared.name
        resultFormats = prepared.resultFormats ?? noFormats
      }
      if (!hold) this.encodeBind(w, name, n, resultFormats, maxRows, values)
    } catch (error) {
      // Undo the partial frames: nothing of this statement may reach the server. Closes written
      // before it get their answers with a Flush (no Sync may follow them).
      w.pos = mark
      if (closing) this.queueFlush()
      return { _tag: "Text", message: messageOf(error) }
    }
    if (prepared === undefined) {
      if (name !== "") this.nextName++
      prepared = this.freshPrepared(name, text, placeholders, oids.slice())
      if (name !== "") this.remember(prepared)
    }
    prepared.lastUsed = ++this.clock
    const step = new StatementStep(this, prepared, isNew, resultFormats, sink)
    if (this.named.size > 0) step.drops = this.droppedBy(prepared.text)
    step.startOffset = startOffset
    step.owner = owner
    if (maxRows > 0) this.portalStep = step
    this.engine.enqueue(step)
    if (kept !== undefined) {
      const bind: HeldBind = { ...kept, step, prepared, segment: this.segments }
      this.holdBind(bind)
      // Nothing of it runs before its Bind, which waits in the held stream.
      step.startOffset = HELD + bind.at
      return undefined
    }
    // While other connections wait for answers, or the server still answers this one, the write
    // waits for the end of the event loop's turn, with whatever else is queued here by then.
    if (this.held === undefined) {
      const wire = this.session.wire
      wire.schedule(this.engine.mayWriteLater(wire.bytesWritten))
    }
    return undefined
  }

  /**
   * Encodes the non-string values into the scratch buffer, one after the other (their formats
   * must be in Bind before any value): no allocation per value. For `known` parameter types, or
   * the inferred `oids` where unknown (see encodeAs). `held`: the OIDs the statement's Parse
   * declares, when its Bind will be held (values of other types are left for its release);
   * `released`: a held Bind being released (values encoded when it was queued are taken as they are).
   */
  private encodeValues(
    values: ReadonlyArray<unknown>,
    oids: ReadonlyArray<number>,
    known: ReadonlyArray<number> | undefined,
    held?: ReadonlyArray<number>,
    released?: HeldBind
  ): EncodeFailure | undefined {
    const registry = this.registry
    const n = values.length
    const formats = this.scratchFormats
    const starts = this.scratchStarts
    const scratch = this.scratchBytes
    if (formats.length !== n) formats.length = n
    if (starts.length !== n + 1) starts.length = n + 1
    scratch.reset()
    let binary = 0
    for (let i = 0; i < n; i++) {
      const v = values[i]
      starts[i] = scratch.length
      if (typeof v === "string" || v === null || v === undefined) {
        formats[i] = 0
        continue
      }
      // A held value of a type its Parse does not declare is encoded once the type is known.
      if (held !== undefined && oids[i] !== Oid.unknown && held[i] !== oids[i]) {
        formats[i] = 0
        continue
      }
      const pre = released?.encoded[i]
      if (pre !== undefined) {
        scratch.raw(pre)
        formats[i] = released!.formats[i]!
        binary += formats[i]!
        continue
      }
      try {
        const format = registry.encodeParameterInto(v, encodeAs(registry, oids[i]!, known?.[i]), scratch)
        formats[i] = format
        binary += format
      } catch (error) {
        if (known === undefined || oids[i] !== Oid.unknown)
          return { _tag: "Parameter", index: i, message: messageOf(error) }
        // A value whose type JavaScript cannot tell that the parameter's codec refuses (an array
        // where an enum's codec wants a label) goes as on a first run that could not wait for the
        // statement's description: as text, which the server reads or refuses alike on every run.
        scratch.length = starts[i]!
        try {
          formats[i] = registry.encodeParameterInto(v, Oid.unknown, scratch)
        } catch (second) {
          return { _tag: "Parameter", index: i, message: messageOf(second) }
        }
      }
    }
    starts[n] = scratch.length
    this.scratchBinary = binary
    return undefined
  }

  /** Whether the last encodeValues had a binary value (else the format list is empty: all text). */
  private scratchBinary = 0

  /** Bind (from the values encodeValues left in the scratch buffer, strings read from `values`) and Execute. */
  private encodeBind(
    w: Writer,
    name: string,
    n: number,
    resultFormats: ReadonlyArray<FormatCode>,
    maxRows: number,
    values: ReadonlyArray<unknown>
  ): void {
    const starts = this.scratchStarts
    // All-text parameters compress to an empty format list (the protocol's default).
    const bind = beginBind(w, "", name, this.scratchBinary === 0 ? noFormats : this.scratchFormats, n)
    const encoded = this.scratchBytes.bytes
    for (let i = 0; i < n; i++) {
      const v = values[i]
      if (typeof v === "string") {
        const value = w.beginValue()
        w.utf8(v)
        w.endValue(value)
      } else if (v === null || v === undefined) w.i32(-1)
      else {
        const start = starts[i]!
        const end = starts[i + 1]!
        w.i32(end - start)
        w.bytesFrom(encoded, start, end)
      }
    }
    endBind(w, bind, resultFormats)
    encodeExecute(w, "", maxRows)
  }

  // --- Binds held for their parameter types -----------------------------------------------------

  /**
   * Frames written behind a held Bind, in order: byte runs and the held Binds between them (see
   * holdBind). Undefined while nothing is held: frames go to the wire's writer.
   */
  private held: Array<HeldBytes | HeldBind> | undefined = undefined
  /** Where frames go while something is held (cut into `held` at each held Bind). */
  private readonly holdWriter = new Writer(1024)
  /** Bytes of the held stream before holdWriter's (positions in it, for the steps' offsets). */
  private heldBase = 0
  /** Bytes in `held`'s runs (not yet moved to the wire). */
  private heldBytes = 0
  /** Who waits for held frames to move (see whenBelow). */
  private heldWaiters: Array<() => void> = []

  /** Frames written and not yet on the socket: the wire's, and those held behind a Bind. */
  get pendingBytes(): number {
    const wire = this.session.wire.pendingBytes
    return this.held === undefined ? wire : wire + this.heldBytes + this.holdWriter.length
  }

  /**
   * Calls `resume` once pendingBytes is below `threshold`, or the connection closed (a pipeline's
   * back-pressure). While frames are held it waits for them to move first.
   */
  whenBelow(threshold: number, resume: () => void): void {
    if (this.held === undefined || this.isClosed) this.session.wire.whenBelow(threshold, resume)
    else this.heldWaiters.push(() => this.whenBelow(threshold, resume))
  }

  /** The writer frames are encoded into: the wire's, or the held stream's behind a held Bind. */
  private get out(): Writer {
    return this.held === undefined ? this.session.wire.writer : this.holdWriter
  }

  /** The stream offset of position `mark` of `out` (HELD + a position in the held stream when held). */
  private offsetOf(mark: number): number {
    return this.held === undefined ? this.session.wire.bytesWritten + mark : HELD + this.heldBase + mark
  }

  /** Schedules the wire's write, unless what was written is held. */
  private scheduleOut(later = false): void {
    if (this.held === undefined) this.session.wire.schedule(later)
  }

  /**
   * Holds `bind`'s statement's Bind and Execute, and every frame written after them, until the
   * statement's parameter types are known (its ParameterDescription, asked for by its own Describe
   * or an earlier one's, which a Flush makes the server send without a Sync): the same values then
   * encode alike on every run of the statement. Costs the first run one round trip.
   */
  private holdBind(bind: HeldBind): void {
    if (this.isClosed) return
    this.heldBytes += bind.size
    if (this.held === undefined) {
      const wire = this.session.wire
      encodeFlush(wire.writer)
      wire.schedule()
      this.held = [bind]
      this.heldBase = 0
    } else {
      this.cutHeld()
      bind.at = this.heldBase
      this.held.push(bind)
    }
    // Its step may have ended as it was queued (skipped in a segment that failed already): no
    // description will come for it.
    if (bind.prepared.undescribed) this.resumeHeld()
  }

  /** Moves what holdWriter has into the held stream as one run of bytes. */
  private cutHeld(): void {
    const w = this.holdWriter
    if (w.length === 0) return
    const bytes = w.subarray().slice()
    w.reset()
    this.held!.push({ bytes, at: this.heldBase })
    this.heldBase += bytes.length
    this.heldBytes += bytes.length
  }

  /**
   * A statement's description arrived (or will not): writes what was held up to the next Bind
   * whose parameter types are still unknown, each held Bind encoded for its statement's types.
   */
  resumeHeld(): void {
    const held = this.held
    if (held === undefined) return
    if (this.isClosed) {
      this.held = undefined
      this.heldBytes = 0
      this.holdWriter.reset()
      this.wakeHeldWaiters()
      return
    }
    this.cutHeld()
    const wire = this.session.wire
    const w = wire.writer
    // Where each run of bytes moves to, for the offsets of the steps whose frames it holds.
    const moves: Array<Move> = []
    let i = 0
    for (; i < held.length; i++) {
      const piece = held[i]!
      if ("bytes" in piece) {
        const at = HELD + piece.at
        moves.push({ from: at, to: at + piece.bytes.length, delta: wire.bytesWritten + w.length - at })
        w.bytes(piece.bytes)
        this.heldBytes -= piece.bytes.length
        continue
      }
      const p = piece.prepared
      if (p.parameterTypes === undefined && !p.undescribed) break
      if (piece.step.startOffset >= HELD) piece.step.startOffset = wire.bytesWritten + w.length
      this.writeHeldBind(w, piece, p)
      this.heldBytes -= piece.size
    }
    if (moves.length > 0) this.engine.rebase((held[0] as HeldBind).step, moves)
    if (i === held.length) {
      this.held = undefined
      this.heldBase = 0
      this.heldBytes = 0
    } else {
      this.held = held.slice(i)
      encodeFlush(w)
    }
    wire.schedule()
    this.wakeHeldWaiters()
  }

  private wakeHeldWaiters(): void {
    if (this.heldWaiters.length === 0) return
    const waiters = this.heldWaiters
    this.heldWaiters = []
    for (const resume of waiters) resume()
  }

  /**
   * What a held Bind keeps of `values` (encoded by encodeValues just before, into the scratch
   * buffer): a caller may change or reuse its arrays once the statement is queued.
   */
  private heldBindOf(
    values: ReadonlyArray<unknown>,
    oids: ReadonlyArray<number>,
    declared: ReadonlyArray<number>,
    maxRows: number
  ): Omit<HeldBind, "step" | "prepared" | "segment"> | EncodeFailure {
    const n = values.length
    const kept: Array<unknown> = new Array(n)
    const encoded: Array<Uint8Array | undefined> = new Array(n)
    const formats: Array<FormatCode> = new Array(n)
    const starts = this.scratchStarts
    const bytes = this.scratchBytes.bytes
    let size = 32 + 4 * n + this.scratchBytes.length
    for (let i = 0; i < n; i++) {
      const v = values[i]
      formats[i] = this.scratchFormats[i]!
      if (typeof v === "string") {
        kept[i] = v
        size += v.length
      } else if (v === null || v === undefined) kept[i] = null
      else if (!typedByParse(values, oids, declared, i)) {
        copiedBytes = 0
        try {
          kept[i] = snapshot(v)
        } catch (error) {
          return { _tag: "Parameter", index: i, message: `the value cannot be copied: ${messageOf(error)}` }
        }
        size += copiedBytes
      } else {
        kept[i] = v
        encoded[i] = bytes.slice(starts[i]!, starts[i + 1]!)
      }
    }
    return { values: kept, oids: oids.slice(), encoded, formats, maxRows, size, at: 0 }
  }

  /**
   * A held Bind and Execute, its held values encoded for the statement's parameter types (the
   * inferred ones if it was not described: the server then skips or refuses it), the others as
   * they were encoded when queued, as encodeValues encodes any statement's. A value it refuses, or
   * a Bind too large to write, is refused (refuseHeldBind).
   */
  private writeHeldBind(w: Writer, bind: HeldBind, p: Prepared): void {
    // Bound by name in a later segment than its statement's Parse, which failed or was skipped:
    // whatever the server has under the name is not it. (In the Parse's own segment the server
    // skips the Bind, written below with the inferred types.)
    if (!p.confirmed && bind.segment !== p.parseSegment) {
      this.refuseHeldBind(w, bind, p, notCreated(p))
      return
    }
    const failure = this.encodeValues(bind.values, bind.oids, p.parameterTypes, undefined, bind)
    if (failure !== undefined) {
      this.refuseHeldBind(w, bind, p, failure)
      return
    }
    const mark = w.length
    try {
      this.encodeBind(w, p.name, bind.values.length, bind.step.formats, bind.maxRows, bind.values)
    } catch (error) {
      w.pos = mark
      this.refuseHeldBind(w, bind, p, { _tag: "Text", message: messageOf(error) })
    }
  }

  /**
   * A held value its type refuses: the step fails with `failure`. Statements after it are queued
   * already, so the server is made to refuse its Bind (two parameter formats for no parameters,
   * which no statement takes) and skips the rest of the segment, as after a failed statement.
   */
  private refuseHeldBind(w: Writer, bind: HeldBind, p: Prepared, failure: EncodeFailure): void {
    bind.step.refused = failure
    const at = beginBind(w, "", p.name, refusedFormats, 0)
    endBind(w, at, noFormats)
    encodeExecute(w, "", bind.maxRows)
  }

  /**
   * Whether `queueStatement` would refuse this statement, found without writing anything: the
   * parameters are inferred and encoded once, the text checked for what the protocol cannot carry.
   * A batch that must go out whole or not at all (one segment of `all`) checks every statement
   * first, because frames already written cannot be taken back once a later one fails.
   */
  validate(text: string, values: ReadonlyArray<unknown>): EncodeFailure | undefined {
    if (text.includes("\u0000"))
      return { _tag: "Text", message: "a statement text cannot contain a NUL character" }
    if (!text.isWellFormed()) return loneSurrogateInText
    if (values.length > MAX_PARAMETERS) return tooManyParameters(values.length)
    if (this.blocks > 0 && endsTransactionBlock(text)) return blockEnd
    const registry = this.registry
    const oids: Array<number> = []
    for (let i = 0; i < values.length; i++) {
      const refused = refuseValue(values[i], i)
      if (refused !== undefined) return refused
      try {
        oids.push(registry.inferOid(values[i]))
      } catch (error) {
        return { _tag: "Parameter", index: i, message: messageOf(error) }
      }
    }
    const cached = this.lookup(text, oids)
    if (cached === undefined) {
      const refused = refusedSetting(this.registry, text)
      if (refused !== undefined) return refused
    }
    const placeholders = cached?.placeholders ?? highestPlaceholder(text)
    if (values.length > placeholders) return extraParameters(values.length, placeholders)
    const known = cached?.parameterTypes
    const failure = this.encodeValues(values, oids, known)
    // A value queueStatement may hold is copied when queued: one that cannot be is refused here.
    const copied =
      failure === undefined && known === undefined
        ? this.heldBindOf(values, oids, cached?.oids ?? oids, 0)
        : undefined
    this.scratchBytes.reset()
    return failure ?? (copied !== undefined && "_tag" in copied ? copied : undefined)
  }

  /**
   * A cached statement for this text and these parameter types. One whose Parse is still
   * unanswered is only reused within the same segment: if that Parse fails (or is skipped after
   * an earlier error), the server forgets the name, and a Bind to it in a later segment would fail
   * with 26000. Across a Sync the text is prepared again under a new name instead.
   */
  private lookup(text: string, oids: ReadonlyArray<number>): Prepared | undefined {
    const variants = this.cache.get(text)
    if (variants === undefined) return undefined
    const n = oids.length
    outer: for (let v = 0; v < variants.length; v++) {
      const p = variants[v]!
      const o = p.oids
      if (o.length !== n) continue
      for (let i = 0; i < n; i++) if (o[i] !== oids[i]) continue outer
      if (!p.confirmed && p.parseSegment !== this.segments) continue
      return p
    }
    return undefined
  }

  private remember(prepared: Prepared): void {
    const variants = this.cache.get(prepared.text)
    if (variants === undefined) this.cache.set(prepared.text, [prepared])
    else variants.push(prepared)
    this.cached++
  }

  /** Closes the least recently used statement (a scan: eviction is rare next to use). */
  private evict(owner: object | undefined): void {
    let oldest: Prepared | undefined
    for (const variants of this.cache.values()) {
      for (const p of variants) if (oldest === undefined || p.lastUsed < oldest.lastUsed) oldest = p
    }
    if (oldest === undefined) return
    this.forget(oldest)
    this.queueClose(oldest.name, owner)
  }

  /** How rows of this connection's results are built: objects (compiled per shape) or arrays. */
  rowDecoder(names: ReadonlyArray<string>, decoders: ReadonlyArray<Decoder>): RowDecoder {
    if (this.options.arrays !== true) return compileRowDecoder(names, decoders)
    return ((bytes: Uint8Array, offsets: ArrayLike<number>, lengths: ArrayLike<number>) =>
      decodeValues(decoders, bytes, offsets, lengths)) as unknown as RowDecoder
  }

  /** Statements prepared under a name the user chose (pg.prepare): kept until closed, never evicted. */
  private readonly named = new Map<string, Prepared>()

  /** The names of the statements prepared here by `queueParse` and not closed. */
  namedStatements(): ReadonlyArray<string> {
    return [...this.named.keys()]
  }

  /**
   * The statement prepared here under `name` by `queueParse`, if it exists (as far as we know) and
   * no Close of it is queued.
   */
  namedStatement(name: string): Prepared | undefined {
    const prepared = this.named.get(name)
    return prepared === undefined || prepared.closing > 0 ? undefined : prepared
  }

  /** The record of a statement about to be parsed under `name`; nothing is known of it yet. */
  private freshPrepared(
    name: string,
    text: string,
    placeholders: number,
    oids: ReadonlyArray<number>
  ): Prepared {
    return {
      name,
      text,
      placeholders,
      oids,
      fields: undefined,
      parameterTypes: undefined,
      resultFormats: undefined,
      decoders: undefined,
      names: undefined,
      decodeRow: undefined,
      fieldInfo: undefined,
      lastUsed: ++this.clock,
      confirmed: false,
      closing: 0,
      shadowed: undefined,
      closed: false,
      undescribed: false,
      parseSegment: this.segments
    }
  }

  /** Writes frames with `encode` and enqueues `step`, which answers them. */
  private writeStep(
    step: Step & { startOffset: number; owner?: object | undefined },
    owner: object | undefined,
    encode: (w: Writer) => void
  ): void {
    const w = this.out
    step.startOffset = this.offsetOf(w.length)
    step.owner = owner
    encode(w)
    this.engine.enqueue(step)
    this.scheduleOut()
  }

  /**
   * Parse under `name` and Describe it (pg.prepare). The step settles with the result fields, and
   * the statement's parameter types are on the returned record once it has. A name already in use
   * is the server's to refuse (42P05): the statement known under it stays.
   */
  queueParse(
    name: string,
    text: string,
    sink: OutcomeSink,
    owner?: object
  ): { readonly failure: EncodeFailure } | { readonly prepared: Prepared } {
    if (text.includes("\u0000"))
      return { failure: { _tag: "Text", message: "a statement text cannot contain a NUL character" } }
    if (!text.isWellFormed()) return { failure: loneSurrogateInText }
    const refused = refusedSetting(this.registry, text)
    if (refused !== undefined) return { failure: refused }
    // The name is the new statement's at once: what is bound by name after it in its segment runs
    // only if its Parse succeeds (the server skips the rest of a segment after a failure), and a
    // Bind by name in a later segment waits for the Parse's answer (queueStatement). A name taken
    // on the server makes the Parse fail (42P05); the name then goes back to the statement it had,
    // unless that one was closed or never created.
    const prepared = this.freshPrepared(name, text, highestPlaceholder(text), [])
    prepared.shadowed = this.named.get(name)
    this.named.set(name, prepared)
    const step = new StatementStep(this, prepared, true, noFormats, {
      settle: (o) => {
        // Created: what it shadowed matters no more. Not created: it links straight to what the
        // name falls back to (records queued after it, while it was pending, link to it), so the
        // links never outgrow the Parses in flight.
        if (o._tag === "Done") prepared.shadowed = undefined
        else {
          const fallback = onServer(prepared.shadowed)
          prepared.shadowed = fallback
          if (this.named.get(name) === prepared) {
            if (fallback !== undefined) this.named.set(name, fallback)
            else this.named.delete(name)
          }
        }
        sink.settle(o)
      }
    }).describing(true)
    this.writeStep(step, owner, (w) => {
      encodeParse(w, name, text, [])
      encodeDescribe(w, "S", name)
    })
    return { prepared }
  }

  /**
   * Describe of a statement prepared under a name: its parameter types and result fields afresh.
   * One whose Parse, before an earlier Sync, is unanswered is described whatever its Parse's
   * outcome (the Describe is in another segment): if that Parse failed, the description is of
   * whatever the server has under the name, so the step fails instead.
   */
  queueDescribeNamed(prepared: Prepared, sink: OutcomeSink, owner?: object): void {
    const pending = !prepared.confirmed && prepared.parseSegment !== this.segments
    const settled: OutcomeSink = pending
      ? {
          settle: (o) =>
            sink.settle(
              o._tag === "Done" && !prepared.confirmed
                ? { _tag: "Refused", failure: notCreated(prepared) }
                : o
            )
        }
      : sink
    const step = new StatementStep(this, prepared, false, noFormats, settled).describing(false)
    this.writeStep(step, owner, (w) => encodeDescribe(w, "S", prepared.name))
  }

  /** Describe of a portal (a cursor the session declared): the step settles with its result fields. */
  queueDescribePortal(name: string, sink: OutcomeSink, owner?: object): EncodeFailure | undefined {
    if (name.includes("\u0000") || !name.isWellFormed())
      return { _tag: "Text", message: "the portal name cannot be sent" }
    const step = new StatementStep(this, undefined, false, noFormats, sink).describingPortal()
    this.writeStep(step, owner, (w) => encodeDescribe(w, "P", name))
    return undefined
  }

  /**
   * Close of a statement prepared under a name. It cannot be bound from now on; the name is free
   * once the server has closed it. A Close the server skips (after an error earlier in its
   * segment) leaves the statement as it was, usable, and closed when a lease ends.
   */
  queueCloseNamed(name: string, sink: OutcomeSink, owner?: object): void {
    const records = this.markClosing(name)
    this.writeStep(new CloseNamedStep(this, sink, name, records), owner, (w) => encodeClose(w, "S", name))
  }

  /**
   * Marks what `name` may stand for when a Close of it (or an SQL DEALLOCATE) runs as not bindable
   * until closedNamed: the latest record, or, should its Parse still fail, those it falls back to.
   */
  private markClosing(name: string): Array<Prepared> {
    const records: Array<Prepared> = []
    for (let p = this.named.get(name); p !== undefined && !p.closed; p = p.shadowed) {
      p.closing++
      records.push(p)
    }
    return records
  }

  /**
   * The named statements an SQL statement drops (DEALLOCATE [PREPARE] name or ALL, DISCARD ALL),
   * each name with the records it may stand for, which are not bindable from now on (as after
   * queueCloseNamed): a Bind by name queued before the statement's answer would otherwise reach
   * whatever the server has then (an SQL PREPARE of the name) and read it with the old description.
   */
  private droppedBy(text: string): ReadonlyArray<NamedDrop> | undefined {
    const dropped = droppedStatements(text)
    if (dropped === undefined) return undefined
    const drops: Array<NamedDrop> = []
    for (const name of dropped === "all" ? [...this.named.keys()] : [dropped.name]) {
      const records = this.markClosing(name)
      if (records.length > 0) drops.push({ name, records })
    }
    return drops.length === 0 ? undefined : drops
  }

  /**
   * For a script (simple-query protocol) just queued: per statement of `text`, what it drops of the
   * named statements (see droppedBy), marked as not bindable until ScriptStep reads its answer.
   */
  private scriptDrops(text: string): Array<ReadonlyArray<NamedDrop> | undefined> | undefined {
    if (this.named.size === 0) return undefined
    let drops: Array<ReadonlyArray<NamedDrop> | undefined> | undefined
    const statements = statementsOf(text)
    for (let k = 0; k < statements.length; k++) {
      const d = this.droppedBy(statements[k]!)
      if (d === undefined) continue
      drops ??= []
      drops[k] = d
    }
    return drops
  }

  /** A Close of a named statement was answered (closed) or skipped or refused (not closed). */
  closedNamed(name: string, records: ReadonlyArray<Prepared>, closed: boolean): void {
    for (const p of records) {
      p.closing--
      if (closed) p.closed = true
    }
    const current = this.named.get(name)
    if (closed && current !== undefined && records.includes(current)) this.named.delete(name)
  }

  queueSync(
    done: (
      status: TransactionStatus | undefined,
      error: ErrorFields | undefined,
      lost: LostInfo | undefined
    ) => void,
    owner?: object
  ): void {
    const step = new SyncStep((status, error, lost) =>
      done(status, error, lost === undefined ? undefined : { ...lost, protocol: this.protocolFailureReason })
    )
    step.owner = owner
    const w = this.out
    step.startOffset = this.offsetOf(w.length)
    this.segments++
    encodeSync(w)
    this.engine.enqueue(step)
    if (this.held === undefined) {
      const wire = this.session.wire
      wire.schedule(this.engine.mayWriteLater(wire.bytesWritten))
    }
  }

  queueFlush(): void {
    encodeFlush(this.out)
    this.scheduleOut()
  }
}

/**
 * Errors that say a cached prepared statement is out of date, raised before it executed: its
 * result type changed (0A000 "cached plan must not change result type"), its parameter types no
 * longer fit after DDL (42804), or the server no longer has it (26000, e.g. after DEALLOCATE ALL or
 * DISCARD ALL). Preparing the text again is the remedy.
 */
export const isStaleStatement = (fields: ErrorFields): boolean =>
  (fields.code === "0A000" && fields.message.startsWith("cached plan must not change result type")) ||
  fields.code === "42804" ||
  fields.code === "26000"

/** CopyData chunks from this size on are written to the socket without passing through the writer. */
const RAW_COPY_DATA = 8 * 1024

/** Distinct ParameterStatus names a connection keeps (PostgreSQL 18 reports 17). */
const MAX_PARAMETER_NAMES = 256

/** Bind carries the parameter count in 16 bits. */
const MAX_PARAMETERS = 65535

const tooManyParameters = (n: number): EncodeFailure => ({
  _tag: "Parameter",
  index: MAX_PARAMETERS,
  message: `${n} parameters: the protocol carries at most ${MAX_PARAMETERS} per statement`
})

const extraParameters = (n: number, placeholders: number): EncodeFailure => ({
  _tag: "Parameter",
  index: placeholders,
  message:
    placeholders === 0
      ? `${n} parameter value(s) given to a statement without placeholders`
      : `${n} parameter values given to a statement whose highest placeholder is $${placeholders}`
})

const loneSurrogateInText: EncodeFailure = {
  _tag: "Text",
  message: "the statement text holds a lone UTF-16 surrogate, which UTF-8 cannot carry"
}

/**
 * Values refused before encoding: `undefined` (a missing value, not NULL: pass null for NULL) and
 * strings with a lone UTF-16 surrogate (UTF-8 cannot carry one; it would be stored as U+FFFD).
 */
/**
 * The type a parameter is encoded for: the statement's (`known`, once described or declared), or
 * the value's inferred one. A value whose type JavaScript cannot tell (inferred OID 0: an array of
 * strings, an empty one, a range with string bounds) goes as text for the server to read when the
 * statement's type is an array or range type (as on its first run, so the server's reading, in
 * the session's time zone and input syntax, holds on every run, as for a string); json, jsonb,
 * scalars and registered codecs encode it themselves.
 */
const encodeAs = (registry: TypeRegistry, inferred: number, known: number | undefined): number =>
  known === undefined || (inferred === Oid.unknown && registry.sendsUntypedAsText(known)) ? inferred : known

/**
 * Why a session setting leaves results unreadable to `registry`, if it does (see
 * Session.unreadableSetting): DateStyle and IntervalStyle do not matter to a registry that keeps
 * results as the server's text, client_encoding and standard_conforming_strings always do.
 */
export const unreadableBy = (registry: TypeRegistry, name: string, value: string): string | undefined =>
  registry.resultsAsText && name !== "client_encoding" && name !== "standard_conforming_strings"
    ? undefined
    : Session.unreadableSetting(name, value)

/**
 * A statement setting client_encoding to anything but UTF-8, standard_conforming_strings off (the
 * texts queued after it would be read here as the server no longer reads them), or
 * extra_float_digits below 1 where the registry reads binary results, refused before it is sent:
 * the statements that follow it in
 * the same round trip would run with it before the server reports the change (closing the
 * connection then is too late for them), a SET LOCAL is never reported, and extra_float_digits
 * never is.
 */
const refusedSetting = (registry: TypeRegistry, text: string): EncodeFailure | undefined => {
  for (const [name, value] of settingsSet(text)) {
    if (value.toUpperCase() === "DEFAULT") continue
    const why = unreadableBy(registry, name, value)
    if (why !== undefined) return { _tag: "Text", message: `refused (nothing was sent): ${why}` }
  }
  return undefined
}

/** A statement that would end the transaction block it runs in (see Connection.blocks). */
const blockEnd: EncodeFailure = {
  _tag: "Text",
  reason: "TransactionControl",
  message:
    "COMMIT, ROLLBACK, END, ABORT and PREPARE TRANSACTION inside withTransaction or a pipeline transaction would end its block and run what follows outside it: return from the block to commit, fail it to roll back (a nested withTransaction, or SAVEPOINT and ROLLBACK TO, undo part of it)"
}

const refuseValue = (v: unknown, index: number): EncodeFailure | undefined => {
  if (v === undefined)
    return { _tag: "Parameter", index, message: "undefined is not a parameter value: pass null for SQL NULL" }
  if (typeof v === "string" && !v.isWellFormed())
    return {
      _tag: "Parameter",
      index,
      message: "the string holds a lone UTF-16 surrogate, which UTF-8 cannot carry"
    }
  return undefined
}

const messageOf = (error: unknown): string =>
  error instanceof TypeEncodeError || error instanceof EncodeError || error instanceof Error
    ? error.message
    : String(error)
