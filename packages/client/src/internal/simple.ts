/**
 * Steps for the simple-query protocol (one Query message, answered up to one ReadyForQuery): a
 * script of several statements, and COPY in either direction. Each step is its own Sync for the
 * engine and receives every message of its answer.
 *
 * The protocol facts they rely on (PostgreSQL's protocol documentation, "Simple Query" and "COPY
 * Operations"): a Query string runs statement after statement, each answered by an optional
 * RowDescription and rows, then CommandComplete (EmptyQueryResponse for an empty string); the
 * first error ends the string (ErrorResponse, then ReadyForQuery); a multi-statement string is
 * one implicit transaction unless it holds its own transaction control. In copy-in mode the
 * client sends CopyData then CopyDone (or CopyFail); a server-side error during copy-in ends the
 * command at once, and CopyData that still arrives afterwards is discarded by the server.
 *
 * Deliberately not here: Effects, back-pressure, routing (internal/streams.ts and PgClient do that).
 */
import {
  type BackendMessage,
  DecodeError,
  type ErrorFields,
  type FieldDescription,
  type TransactionStatus
} from "@pgline/codec"
import type { FieldInfo, QueryResult } from "../QueryResult.ts"
import type { Connection, NamedDrop } from "./Connection.ts"
import { commandOf, rowCountOf, type Step } from "./Engine.ts"
import { diagnoseRow, type RowDecoder } from "./rowDecoder.ts"
import { dropsStatements } from "./sqlText.ts"

/** How a simple-query step ended. */
export interface SimpleEnd {
  /** The transaction status of the ReadyForQuery that ended it (undefined when the connection was lost). */
  readonly status: TransactionStatus | undefined
  /** The first ErrorResponse, if any. */
  readonly error: ErrorFields | undefined
  readonly lost: { readonly message: string; readonly mayHaveRun: boolean } | undefined
}

abstract class SimpleStep implements Step {
  readonly isSync = true
  readonly simple = true
  segmentIndex = 0
  startOffset = 0
  owner: object | undefined = undefined
  protected error: ErrorFields | undefined = undefined
  private ended = false
  protected readonly conn: Connection

  constructor(conn: Connection) {
    this.conn = conn
  }

  protected abstract end(end: SimpleEnd): void
  protected abstract message(m: BackendMessage): void

  onMessage(m: BackendMessage): boolean {
    if (m.type === "ReadyForQuery") {
      this.finishOnce({ status: m.status, error: this.error, lost: undefined })
      return true
    }
    this.message(m)
    return false
  }

  onError(fields: ErrorFields): void {
    this.error ??= fields
    this.failed(fields)
  }

  /** An ErrorResponse arrived (before ReadyForQuery). */
  protected failed(_fields: ErrorFields): void {}

  onAborted(): void {}

  onLost(message: string, mayHaveRun: boolean): void {
    this.finishOnce({ status: undefined, error: this.error, lost: { message, mayHaveRun } })
  }

  private finishOnce(end: SimpleEnd): void {
    if (this.ended) return
    this.ended = true
    this.end(end)
  }

  protected violation(m: BackendMessage): void {
    this.conn.protocolViolation(`unexpected ${m.type} in the answer to a simple query`)
  }
}

/** A column decoding failure inside a script's result. */
export interface ScriptDecodeFailure {
  readonly error: DecodeError
  readonly column: string
  /** The statement (0-based) whose rows held it. */
  readonly index: number
}

/** What a script produced: one result per statement that completed. */
export interface ScriptOutcome extends SimpleEnd {
  readonly results: ReadonlyArray<QueryResult>
  /** 0-based index of the statement that failed (the results before it completed). */
  readonly errorIndex: number
  /** The script held COPY … TO/FROM STDIN/STDOUT, which a script cannot carry (refused; data dropped). */
  readonly copy: boolean
  readonly decodeFailure: ScriptDecodeFailure | undefined
}

/** Answers a script: every statement's rows and completion, until ReadyForQuery. */
export class ScriptStep extends SimpleStep {
  private readonly results: Array<QueryResult> = []
  private rows: Array<Record<string, unknown>> = []
  private fields: ReadonlyArray<FieldDescription> = []
  private fieldInfo: ReadonlyArray<FieldInfo> = []
  private decodeRow: RowDecoder | undefined
  private errorIndex = -1
  private copy = false
  private decodeFailure: ScriptDecodeFailure | undefined
  private readonly done: (outcome: ScriptOutcome) => void
  /**
   * Per statement, the named statements it drops (Connection.scriptDrops), not bindable until its
   * answer: dropped on its DEALLOCATE / DISCARD ALL completion, usable again if it never completes.
   */
  drops: Array<ReadonlyArray<NamedDrop> | undefined> | undefined = undefined

  constructor(conn: Connection, done: (outcome: ScriptOutcome) => void) {
    super(conn)
    this.done = done
  }

  /** Statement `k`'s drops settle (`done`: it dropped them); undefined `k`: every one left, not done. */
  private settleDrops(k: number | undefined, done: boolean): void {
    const drops = this.drops
    if (drops === undefined) return
    for (let i = k ?? 0; i < (k === undefined ? drops.length : k + 1); i++) {
      const d = drops[i]
      if (d === undefined) continue
      drops[i] = undefined
      for (const n of d) this.conn.closedNamed(n.name, n.records, done)
    }
  }

  protected message(m: BackendMessage): void {
    switch (m.type) {
      case "RowDescription": {
        const registry = this.conn.registry
        this.fields = m.fields
        const decoders = m.fields.map((f) => registry.rawDecoderFor(f.typeOid, f.format))
        this.decodeRow = this.conn.rowDecoder(
          m.fields.map((f) => f.name),
          decoders
        )
        this.fieldInfo = m.fields.map((f) => ({
          name: f.name,
          tableOid: f.tableOid,
          columnAttr: f.columnAttribute,
          typeOid: f.typeOid,
          typeSize: f.typeSize,
          typeModifier: f.typeModifier,
          format: f.format
        }))
        this.rows = []
        return
      }
      case "DataRow": {
        const decodeRow = this.decodeRow
        if (decodeRow === undefined || m.columnCount !== this.fields.length) {
          this.conn.protocolViolation(
            `DataRow with ${m.columnCount} columns for a script result of ${this.fields.length}`
          )
          return
        }
        if (this.decodeFailure !== undefined) return
        try {
          this.rows.push(decodeRow(m.bytes, m.offsets, m.lengths))
        } catch (error) {
          const found = diagnoseRow(this.conn.registry, this.fieldInfo, m.bytes, m.offsets, m.lengths)
          this.decodeFailure = {
            error: found?.error ?? new DecodeError(0, String(error)),
            column: found?.column ?? "",
            index: this.results.length
          }
        }
        return
      }
      case "CommandComplete": {
        // The statement that completed is the script's next one (each completes in turn).
        this.settleDrops(this.results.length, dropsStatements(m.tag))
        const command = commandOf(m.tag)
        const rows = this.rows
        this.results.push({
          rows,
          command,
          rowCount: command === "SELECT" && m.tag === "SELECT" ? rows.length : rowCountOf(m.tag),
          fields: this.fieldInfo,
          tag: m.tag
        })
        this.rows = []
        this.fields = []
        this.fieldInfo = []
        this.decodeRow = undefined
        return
      }
      case "EmptyQueryResponse":
        return
      case "CopyInResponse":
        // The script cannot feed it: fail the COPY (the server then reports an error and stops).
        this.copy = true
        this.conn.failCopyIn(false, "COPY FROM STDIN cannot run in a script: use pg.copyFrom")
        return
      case "CopyOutResponse":
        this.copy = true
        return
      case "CopyData":
      case "CopyDone":
        if (!this.copy) this.violation(m)
        return
      default:
        this.violation(m)
    }
  }

  protected override failed(): void {
    if (this.errorIndex < 0) this.errorIndex = this.results.length
  }

  protected end(end: SimpleEnd): void {
    // Statements that never completed (after an error, or the connection lost) dropped nothing.
    this.settleDrops(undefined, false)
    this.done({
      ...end,
      results: this.results,
      errorIndex: this.errorIndex,
      copy: this.copy,
      decodeFailure: this.decodeFailure
    })
  }
}

/** What a COPY's answer tells the code that feeds or drains it. */
export interface CopyEvents {
  /** Copy mode began (CopyInResponse or CopyOutResponse); `binary` when the overall format is binary. */
  readonly started: (binary: boolean) => void
  /** CopyData from the server (COPY TO STDOUT); a view that stays valid. */
  readonly data: (bytes: Uint8Array) => void
  /** The server reported an error (before ReadyForQuery): a COPY FROM feeder should stop sending. */
  readonly failed: (fields: ErrorFields) => void
  /** The command ended (ReadyForQuery or a lost connection): `tag` is its CommandComplete tag. */
  readonly ended: (end: SimpleEnd & { readonly tag: string | undefined; readonly wrongKind: boolean }) => void
}

/**
 * Answers one COPY statement sent as a simple query. A text that turns out not to be the expected
 * COPY (rows of a SELECT, or copy in the other direction) is reported as `wrongKind`: its rows are
 * dropped and a copy-in it started is failed.
 */
export class CopyStep extends SimpleStep {
  private readonly direction: "in" | "out"
  private readonly events: CopyEvents
  private tag: string | undefined = undefined
  private wrongKind = false
  private copying = false

  constructor(conn: Connection, direction: "in" | "out", events: CopyEvents) {
    super(conn)
    this.direction = direction
    this.events = events
  }

  protected message(m: BackendMessage): void {
    switch (m.type) {
      case "CopyInResponse":
      case "CopyOutResponse": {
        const direction = m.type === "CopyInResponse" ? "in" : "out"
        if (direction !== this.direction || this.copying || this.tag !== undefined) {
          this.wrongKind = true
          if (direction === "in")
            this.conn.failCopyIn(false, "COPY FROM STDIN reached pg.copyTo: use pg.copyFrom")
          return
        }
        this.copying = true
        this.events.started(m.format === 1)
        return
      }
      case "CopyData":
        if (this.direction === "out" && this.copying) this.events.data(m.data)
        else if (!this.wrongKind) this.violation(m)
        return
      case "CopyDone":
        return
      case "CommandComplete":
        if (!this.copying) this.wrongKind = true
        this.tag ??= m.tag
        return
      case "RowDescription":
      case "DataRow":
      case "EmptyQueryResponse":
        this.wrongKind = true
        return
      default:
        this.violation(m)
    }
  }

  protected override failed(fields: ErrorFields): void {
    this.events.failed(fields)
  }

  protected end(end: SimpleEnd): void {
    this.events.ended({ ...end, tag: this.tag, wrongKind: this.wrongKind })
  }
}
