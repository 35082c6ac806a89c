/**
 * The least PostgreSQL client the testing package needs to drive a server it started: one TCP
 * connection, trust authentication only (the embedded superuser), simple Query messages, rows as
 * text. Built on the codec's encoders and BackendParser, so @pgline/testing does not depend on the
 * transport or the client (whose tests depend on it). Not a driver: no TLS, no passwords, no
 * extended protocol, one statement at a time.
 */
import { connect, type Socket } from "node:net"
import {
  BackendParser,
  type ErrorFields,
  encodeQuery,
  encodeStartup,
  encodeTerminate,
  PROTOCOL_3_0,
  ProtocolError,
  Writer
} from "@pgline/codec"

/** A statement failed, the server refused the connection, or the connection broke. */
export class SimpleQueryError extends Error {
  override readonly name = "SimpleQueryError"
  /** The server's error fields when the server sent an ErrorResponse. */
  readonly fields: ErrorFields | undefined
  constructor(message: string, fields?: ErrorFields) {
    super(message)
    this.fields = fields
  }
}

export interface SimpleConnection {
  /** Runs one statement; resolves with its rows as text (null for SQL NULL), rejects on an error. */
  readonly query: (sql: string) => Promise<ReadonlyArray<ReadonlyArray<string | null>>>
  /** Terminate, then close the socket. */
  readonly close: () => void
}

const text = new TextDecoder()

interface Pending {
  readonly resolve: (rows: ReadonlyArray<ReadonlyArray<string | null>>) => void
  readonly reject: (error: Error) => void
  rows: Array<Array<string | null>>
  error: ErrorFields | undefined
}

/** Connects to 127.0.0.1:`port` as `user` (trust) and waits for the first ReadyForQuery. */
export const simpleConnect = (options: {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
}): Promise<SimpleConnection> =>
  new Promise((resolveConnect, rejectConnect) => {
    const socket: Socket = connect({ host: options.host, port: options.port })
    const parser = new BackendParser()
    const writer = new Writer(256)
    const where = `${options.host}:${options.port}`
    let connected = false
    let broken: Error | undefined
    // The start-up exchange is the first pending "statement"; its rows are ignored.
    const queue: Array<Pending> = []
    const fail = (error: Error) => {
      broken ??= error
      if (!connected) rejectConnect(error)
      for (const p of queue.splice(0)) p.reject(error)
      socket.destroy()
    }
    const connection: SimpleConnection = {
      query: (sql) =>
        new Promise((resolve, reject) => {
          if (broken !== undefined) return reject(broken)
          queue.push({ resolve, reject, rows: [], error: undefined })
          encodeQuery(writer, sql)
          socket.write(writer.take())
        }),
      close: () => {
        if (broken === undefined && !socket.destroyed) {
          encodeTerminate(writer)
          socket.end(writer.take())
        }
        broken ??= new SimpleQueryError(`${where}: connection closed`)
      }
    }
    queue.push({
      resolve: () => {
        connected = true
        resolveConnect(connection)
      },
      reject: rejectConnect,
      rows: [],
      error: undefined
    })
    socket.on("connect", () => {
      encodeStartup(writer, PROTOCOL_3_0, { user: options.user, database: options.database })
      socket.write(writer.take())
    })
    socket.on("error", (error) => fail(new SimpleQueryError(`${where}: ${error.message}`)))
    socket.on("close", () => fail(new SimpleQueryError(`${where}: connection closed by the server`)))
    socket.on("data", (chunk: Buffer) => {
      parser.push(chunk)
      for (;;) {
        const m = parser.next()
        if (m === undefined) return
        if (m instanceof ProtocolError) return fail(new SimpleQueryError(`${where}: ${m.message}`))
        const current = queue[0]
        switch (m.type) {
          case "DataRow": {
            const row: Array<string | null> = []
            for (let i = 0; i < m.columnCount; i++) {
              const len = m.lengths[i]!
              const at = m.offsets[i]!
              row.push(len < 0 ? null : text.decode(m.bytes.subarray(at, at + len)))
            }
            current?.rows.push(row)
            break
          }
          case "ErrorResponse":
            // Before ReadyForQuery of the start-up, an error ends the connection.
            if (!connected) {
              return fail(new SimpleQueryError(`${where}: ${m.fields.message}`, m.fields))
            }
            if (current !== undefined) current.error = m.fields
            break
          case "ReadyForQuery": {
            const done = queue.shift()
            if (done === undefined) break
            if (done.error !== undefined) {
              done.reject(new SimpleQueryError(`${done.error.code}: ${done.error.message}`, done.error))
            } else done.resolve(done.rows)
            break
          }
          case "AuthenticationOk":
          case "ParameterStatus":
          case "BackendKeyData":
          case "RowDescription":
          case "CommandComplete":
          case "EmptyQueryResponse":
          case "NoticeResponse":
          case "NotificationResponse":
            break
          default:
            return fail(
              new SimpleQueryError(`${where}: unexpected ${m.type} (only trust and simple queries)`)
            )
        }
      }
    })
  })
