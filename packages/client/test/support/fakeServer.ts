/**
 * A scripted fake PostgreSQL server for what a real one will not do on demand (never answer, ask
 * for a password without TLS, stall after the SSLRequest). It listens on 127.0.0.1, decodes what
 * the client sends with the codec's FrontendParser, records every message, and answers through a
 * script built from the codec's backend encoders. Closed (with every accepted socket) with the scope.
 */
import type { Socket } from "node:net"
import {
  type AuthResponseKind,
  type BackendMessage,
  encodeBackend,
  type FrontendMessage,
  FrontendParser
} from "@pgline/codec"
import { localServer } from "@pgline/testing"
import { Effect, type Scope } from "effect"

export interface FakeConnection {
  /** Sends backend messages. */
  readonly send: (...messages: ReadonlyArray<BackendMessage>) => void
  /** Sends raw bytes (the one-byte SSLRequest answer, garbage). */
  readonly sendRaw: (bytes: Uint8Array | string) => void
  /** How the following 'p' messages decode (they depend on the authentication exchange). */
  readonly expectAuthResponse: (kind: AuthResponseKind) => void
  readonly socket: Socket
}

/** Answers one decoded frontend message; `undefined` script means the server never says anything. */
export type FakeScript = (message: FrontendMessage, connection: FakeConnection) => void

export interface FakeServer {
  readonly port: number
  /** Every message received, over every connection, in order. */
  readonly received: ReadonlyArray<FrontendMessage>
  /** Connections accepted so far. */
  readonly connections: () => number
}

export const fakeServer = (script?: FakeScript): Effect.Effect<FakeServer, never, Scope.Scope> => {
  const received: Array<FrontendMessage> = []
  return Effect.map(
    localServer((socket) => {
      const parser = new FrontendParser()
      const connection: FakeConnection = {
        send: (...messages) => socket.write(encodeBackend(...messages)),
        sendRaw: (bytes) => socket.write(bytes),
        expectAuthResponse: (kind) => parser.expectAuthResponse(kind),
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
