/**
 * FakeServer: a scripted PostgreSQL peer for what a real server will not do on demand: malformed
 * or hostile messages, answers out of order, a stall at an exact byte, a server that never answers.
 * It listens on 127.0.0.1, decodes what the client sends with the codec's FrontendParser, records
 * every message, and answers through a script written with the codec's backend encoders.
 *
 * Two ways to script it: a callback that sees each decoded frontend message (`fakeServer`), or an
 * ordered list of steps, each expecting one frontend message and sending what the test says
 * (`scriptedServer`, after the model of pgx's pgmock): any message that is not the one expected is
 * recorded as a mismatch, so a test can assert exactly what the client sent. `acceptStartup`
 * answers the start-up exchange (trust authentication, an idle session) for either.
 *
 * It does not emulate PostgreSQL: it answers only what the script says.
 */
import type { Socket } from "node:net"
import {
  type AuthResponseKind,
  type BackendMessage,
  encodeBackend,
  encodeDataRowValues,
  type FrontendMessage,
  FrontendParser,
  Writer
} from "@pgline/codec"
import { Effect, type Scope } from "effect"
import { localServer } from "./LocalServer.ts"

/** One client connection to a `FakeServer`, as its script sees it: send messages or raw bytes, close. */
export interface FakeConnection {
  /** Sends backend messages, or raw bytes (a DataRow built with `dataRow`, garbage). */
  readonly send: (...messages: ReadonlyArray<BackendMessage | Uint8Array>) => void
  /** Sends raw bytes (the one-byte SSLRequest answer, garbage). */
  readonly sendRaw: (bytes: Uint8Array | string) => void
  /** How the following 'p' messages decode (they depend on the authentication exchange). */
  readonly expectAuthResponse: (kind: AuthResponseKind) => void
  /** Closes the connection from the server's side. */
  readonly close: () => void
  readonly socket: Socket
}

/** Answers one decoded frontend message; no script means the server never says anything. */
export type FakeScript = (message: FrontendMessage, connection: FakeConnection) => void

/** A scripted server listening on a loopback port (`port`), recording what clients send. */
export interface FakeServer {
  readonly port: number
  /** Every message received, over every connection, in order. */
  readonly received: ReadonlyArray<FrontendMessage>
  /** Connections accepted so far. */
  readonly connections: () => number
}

/**
 * Starts a `FakeServer` on a free loopback port for the scope: every decoded frontend message of
 * every connection goes to `script`, which answers through the connection (no script: the server
 * never answers). For tests of what a real server will not do (malformed messages, answers out of
 * order, dropped connections). It does not fail; the scope's end closes it.
 *
 * @example
 * ```ts
 * const server = yield* fakeServer((m, conn) => {
 *   if (acceptStartup(m, conn)) return
 *   if (m.type === "Query") conn.close() // drop the connection under the first query
 * })
 * ```
 */
export const fakeServer = (script?: FakeScript): Effect.Effect<FakeServer, never, Scope.Scope> => {
  const received: Array<FrontendMessage> = []
  return Effect.map(
    localServer((socket) => {
      const parser = new FrontendParser()
      const connection: FakeConnection = {
        send: (...messages) => {
          for (const m of messages) socket.write(m instanceof Uint8Array ? m : encodeBackend(m))
        },
        sendRaw: (bytes) => socket.write(bytes),
        expectAuthResponse: (kind) => parser.expectAuthResponse(kind),
        close: () => socket.end(),
        socket
      }
      socket.on("data", (chunk: Buffer) => {
        parser.push(chunk)
        for (;;) {
          const m = parser.next()
          if (m === undefined || !("type" in m)) return
          received.push(m)
          script?.(m, connection)
        }
      })
    }),
    (server): FakeServer => ({ port: server.port, received, connections: server.accepted })
  )
}

/** What `acceptStartup` sends in answer to a client's start-up. */
export interface StartupOptions {
  /** ParameterStatus values sent at start-up (server_version 18.0 by default). */
  readonly parameters?: Readonly<Record<string, string>>
  readonly processId?: number
}

/**
 * Answers the start-up exchange: SSLRequest with "N", the StartupMessage with AuthenticationOk,
 * ParameterStatus, BackendKeyData and ReadyForQuery (idle). True when `m` was part of it.
 */
export const acceptStartup = (
  m: FrontendMessage,
  conn: FakeConnection,
  options: StartupOptions = {}
): boolean => {
  if (m.type === "SSLRequest" || m.type === "GSSENCRequest") {
    conn.sendRaw("N")
    return true
  }
  if (m.type !== "StartupMessage") return false
  const parameters = options.parameters ?? { server_version: "18.0" }
  conn.send(
    { type: "AuthenticationOk" },
    ...Object.entries(parameters).map(
      ([name, value]): BackendMessage => ({ type: "ParameterStatus", name, value })
    ),
    { type: "BackendKeyData", processId: options.processId ?? 4242, secretKey: new Uint8Array([1, 2, 3, 4]) },
    { type: "ReadyForQuery", status: "I" }
  )
  return true
}

/** A RowDescription field for a column of `typeOid` (int4 by default), in text format. */
export const column = (name: string, typeOid = 23) => ({
  name,
  tableOid: 0,
  columnAttribute: 0,
  typeOid,
  typeSize: typeOid === 23 ? 4 : -1,
  typeModifier: -1,
  format: 0 as const
})

/** The steps of one statement sent with the extended protocol (Parse, Describe, Bind, Execute). */
export const statementSteps = (): ReadonlyArray<ScriptStep> =>
  (["Parse", "Describe", "Bind", "Execute"] as const).map((type) => ({ expect: type }))

/** A DataRow's bytes from text values (null = SQL NULL), to `send` as is. */
export const dataRow = (...values: ReadonlyArray<string | Uint8Array | null>): Uint8Array => {
  const w = new Writer(64)
  encodeDataRowValues(
    w,
    values.map((v) => (v === null ? null : typeof v === "string" ? new TextEncoder().encode(v) : v))
  )
  return w.take()
}

/** One step of a scripted exchange: the frontend message expected next, and what to answer. */
export interface ScriptStep {
  /** The message type expected, or a test of the whole message. */
  readonly expect: FrontendMessage["type"] | ((m: FrontendMessage) => boolean)
  /** Sent once the expected message arrived. */
  readonly send?: ReadonlyArray<BackendMessage | Uint8Array>
  /** Close the connection after sending. */
  readonly close?: boolean
}

/** A `FakeServer` running a list of expected messages and answers (see `scriptedServer`). */
export interface ScriptedServer extends FakeServer {
  /** Messages that arrived when another was expected (or after the script ended), with why. */
  readonly mismatches: ReadonlyArray<string>
  /** Steps not reached yet. */
  readonly remaining: () => number
}

/**
 * A server that accepts start-up, then expects exactly the frontend messages of `steps`, in
 * order, answering each as the step says. Anything else is recorded in `mismatches`.
 */
export const scriptedServer = (
  steps: ReadonlyArray<ScriptStep>,
  options: StartupOptions = {}
): Effect.Effect<ScriptedServer, never, Scope.Scope> => {
  const mismatches: Array<string> = []
  let next = 0
  return Effect.map(
    fakeServer((m, conn) => {
      if (acceptStartup(m, conn, options)) return
      const step = steps[next]
      if (step === undefined) {
        mismatches.push(`unexpected ${m.type} after the script ended`)
        return
      }
      const ok = typeof step.expect === "string" ? m.type === step.expect : step.expect(m)
      if (!ok) {
        mismatches.push(
          `step ${next}: expected ${typeof step.expect === "string" ? step.expect : "a message the step accepts"}, got ${m.type}`
        )
        return
      }
      next++
      if (step.send !== undefined) conn.send(...step.send)
      if (step.close === true) conn.close()
    }),
    (server): ScriptedServer => ({ ...server, mismatches, remaining: () => steps.length - next })
  )
}
