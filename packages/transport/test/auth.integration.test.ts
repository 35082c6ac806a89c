/**
 * The auth modules against a real server (PgServer, TLS on): SCRAM with the server's own SASLprep
 * (the scram role's password is non-ASCII), SCRAM-SHA-256-PLUS bound to the real certificate, MD5,
 * cleartext, and require_auth / channel_binding refusals made before any secret is sent. The wire
 * handling is a minimal start-up written here, driven the way the transport is meant to drive the
 * modules. Needs the server; any supported version.
 */
import { connect, type Socket } from "node:net"
import { connect as tlsConnect } from "node:tls"
import { expect, layer } from "@effect/vitest"
import { Effect, Result } from "effect"
import { PgServer, type ServerInfo } from "../../testing/src/index.ts"
import { cleartextPasswordResponse, md5PasswordResponse } from "../src/internal/auth/md5.ts"
import {
  type AuthProgress,
  checkAuthRequest,
  initialAuthProgress,
  parseRequireAuth
} from "../src/internal/auth/requireAuth.ts"
import { type ChannelBindingMode, ScramClient } from "../src/internal/auth/scram.ts"

const authTypes: Record<number, string> = {
  0: "AuthenticationOk",
  2: "AuthenticationKerberosV5",
  3: "AuthenticationCleartextPassword",
  5: "AuthenticationMD5Password",
  7: "AuthenticationGSS",
  8: "AuthenticationGSSContinue",
  9: "AuthenticationSSPI",
  10: "AuthenticationSASL",
  11: "AuthenticationSASLContinue",
  12: "AuthenticationSASLFinal"
}

/** Reads whole backend messages off a socket. */
const reader = (socket: Socket) => {
  let buffer = Buffer.alloc(0)
  let wake: (() => void) | undefined
  let ended = false
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk])
    wake?.()
  })
  socket.on("close", () => {
    ended = true
    wake?.()
  })
  socket.on("error", () => undefined)
  return async (): Promise<{ type: string; body: Buffer }> => {
    for (;;) {
      if (buffer.length >= 5) {
        const len = buffer.readInt32BE(1)
        if (buffer.length >= len + 1) {
          const msg = { type: String.fromCharCode(buffer[0]!), body: buffer.subarray(5, len + 1) }
          buffer = buffer.subarray(len + 1)
          return msg
        }
      }
      if (ended) throw new Error("connection closed")
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
  }
}

const frame = (type: string, body: Buffer) => {
  const head = Buffer.alloc(5)
  head.write(type, 0, "latin1")
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}
const cstring = (s: string) => Buffer.concat([Buffer.from(s, "utf8"), Buffer.alloc(1)])
const int32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

interface Attempt {
  readonly user: string
  readonly password: string
  readonly tls: boolean
  readonly channelBinding?: ChannelBindingMode
  readonly requireAuth?: string
}

type Outcome =
  | { ok: true; mechanism: string | undefined; channelBound: boolean }
  | { ok: false; reason: string; sent: boolean }
  | { ok: false; serverCode: string }

/** Start-up up to AuthenticationOk, answering with the auth modules. */
const login = async (info: ServerInfo, a: Attempt): Promise<Outcome> => {
  const raw = connect(info.port, info.host)
  await new Promise((resolve, reject) => raw.once("connect", resolve).once("error", reject))
  let socket: Socket = raw
  let certificate: Uint8Array | undefined
  if (a.tls) {
    raw.write(Buffer.concat([int32(8), int32(80877103)]))
    const answer = await new Promise<Buffer>((resolve) => raw.once("data", resolve))
    if (answer.toString("latin1") !== "S") throw new Error("server refused TLS")
    const secure = tlsConnect({ socket: raw, ca: info.ca, checkServerIdentity: () => undefined })
    await new Promise((resolve, reject) => secure.once("secureConnect", resolve).once("error", reject))
    certificate = new Uint8Array(secure.getPeerCertificate().raw)
    socket = secure
  }
  const next = reader(socket)
  const params = Buffer.concat([
    cstring("user"),
    cstring(a.user),
    cstring("database"),
    cstring(info.database),
    Buffer.alloc(1)
  ])
  socket.write(Buffer.concat([int32(params.length + 8), int32(196608), params]))

  const channelBinding = a.channelBinding ?? "prefer"
  const requireAuth = Result.getOrThrow(parseRequireAuth(a.requireAuth ?? ""))
  let progress: AuthProgress = initialAuthProgress
  let scram: ScramClient | undefined
  let sent = false
  const refuse = (reason: string): Outcome => ({ ok: false, reason, sent })
  try {
    for (;;) {
      const msg = await next()
      if (msg.type === "E") {
        const fields = msg.body.toString("utf8").split("\0")
        return { ok: false, serverCode: fields.find((f) => f.startsWith("C"))!.slice(1) }
      }
      if (msg.type !== "R") throw new Error(`unexpected message ${msg.type}`)
      const type = authTypes[msg.body.readInt32BE(0)] ?? `Authentication(${msg.body.readInt32BE(0)})`
      const allowed = checkAuthRequest(type, { requireAuth, channelBinding }, progress)
      if (Result.isFailure(allowed)) return refuse(allowed.failure.reason)
      const data = new Uint8Array(msg.body.subarray(4))
      switch (type) {
        case "AuthenticationOk":
          return { ok: true, mechanism: scram?.mechanism, channelBound: progress.channelBound }
        case "AuthenticationCleartextPassword":
        case "AuthenticationMD5Password": {
          const r =
            type === "AuthenticationMD5Password"
              ? md5PasswordResponse(a.user, a.password, data)
              : cleartextPasswordResponse(a.password)
          if (Result.isFailure(r)) return refuse(r.failure.reason)
          socket.write(frame("p", cstring(r.success)))
          sent = true
          progress = { ...progress, clientFinishedAuth: true }
          break
        }
        case "AuthenticationSASL": {
          const mechanisms = Buffer.from(data)
            .toString("utf8")
            .split("\0")
            .filter((m) => m !== "")
          const started = ScramClient.start({
            password: a.password,
            mechanisms,
            channelBinding,
            tls: a.tls,
            tlsServerCertificate: certificate
          })
          if (Result.isFailure(started)) return refuse(started.failure.reason)
          scram = started.success
          const { mechanism, data: first } = scram.initialResponse
          socket.write(frame("p", Buffer.concat([cstring(mechanism), int32(first.length), first])))
          sent = true
          progress = { ...progress, saslInProgress: true }
          break
        }
        case "AuthenticationSASLContinue": {
          const r = await scram!.continueAsync(data)
          if (Result.isFailure(r)) return refuse(r.failure.reason)
          socket.write(frame("p", Buffer.from(r.success)))
          break
        }
        case "AuthenticationSASLFinal": {
          const r = scram!.final(data)
          if (Result.isFailure(r)) return refuse(r.failure.reason)
          progress = { clientFinishedAuth: true, saslInProgress: false, channelBound: scram!.channelBound }
          break
        }
      }
    }
  } finally {
    socket.destroy()
  }
}

layer(PgServer.layer, { timeout: 120_000 })("authentication against a real server", (it) => {
  const run = (a: (info: ServerInfo) => Attempt) =>
    Effect.gen(function* () {
      const info = yield* PgServer
      return yield* Effect.promise(() => login(info, a(info)))
    })

  it.effect("SCRAM without TLS: SASLprep matches the server's for a non-ASCII password", () =>
    Effect.gen(function* () {
      const out = yield* run((i) => ({ ...i.roles!.scram, tls: false }))
      expect(out).toEqual({ ok: true, mechanism: "SCRAM-SHA-256", channelBound: false })
    })
  )

  it.effect("SCRAM-SHA-256-PLUS over TLS binds to the server certificate", () =>
    Effect.gen(function* () {
      expect(yield* run((i) => ({ ...i.roles!.scram, tls: true }))).toEqual({
        ok: true,
        mechanism: "SCRAM-SHA-256-PLUS",
        channelBound: true
      })
      expect(yield* run((i) => ({ ...i.roles!.scram, tls: true, channelBinding: "require" }))).toMatchObject({
        ok: true,
        channelBound: true
      })
    })
  )

  it.effect("channel_binding=disable over TLS uses SCRAM-SHA-256 with 'n'", () =>
    Effect.gen(function* () {
      expect(yield* run((i) => ({ ...i.roles!.scram, tls: true, channelBinding: "disable" }))).toEqual({
        ok: true,
        mechanism: "SCRAM-SHA-256",
        channelBound: false
      })
    })
  )

  it.effect("a wrong SCRAM password is refused by the server (28P01)", () =>
    Effect.gen(function* () {
      expect(yield* run((i) => ({ user: i.roles!.scram.user, password: "wrong", tls: true }))).toEqual({
        ok: false,
        serverCode: "28P01"
      })
    })
  )

  it.effect("MD5 and cleartext roles", () =>
    Effect.gen(function* () {
      expect(yield* run((i) => ({ ...i.roles!.md5, tls: false }))).toMatchObject({ ok: true })
      expect(yield* run((i) => ({ ...i.roles!.cleartext, tls: true }))).toMatchObject({ ok: true })
      expect(yield* run((i) => ({ user: i.roles!.md5.user, password: "wrong", tls: false }))).toEqual({
        ok: false,
        serverCode: "28P01"
      })
    })
  )

  it.effect("refusals happen before any secret is sent", () =>
    Effect.gen(function* () {
      const refused = (reason: string) => ({ ok: false, reason, sent: false })
      expect(yield* run((i) => ({ ...i.roles!.md5, tls: false, requireAuth: "scram-sha-256" }))).toEqual(
        refused("MethodNotAllowed")
      )
      expect(yield* run((i) => ({ ...i.roles!.cleartext, tls: true, requireAuth: "!password" }))).toEqual(
        refused("MethodNotAllowed")
      )
      expect(yield* run((i) => ({ ...i.roles!.trust, tls: false, requireAuth: "scram-sha-256" }))).toEqual(
        refused("MethodNotAllowed")
      )
      expect(yield* run((i) => ({ ...i.roles!.scram, tls: false, channelBinding: "require" }))).toEqual(
        refused("ChannelBindingRequired")
      )
      expect(yield* run((i) => ({ ...i.roles!.md5, tls: true, channelBinding: "require" }))).toEqual(
        refused("ChannelBindingRequired")
      )
      expect(yield* run((i) => ({ ...i.roles!.trust, tls: true, channelBinding: "require" }))).toEqual(
        refused("ChannelBindingRequired")
      )
    })
  )
})
