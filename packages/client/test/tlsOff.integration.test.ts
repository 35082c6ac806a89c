/**
 * TLS through PgClient.layer against a server with TLS off (`PgServer.layerWith({ tls: false })`):
 * disable, allow and prefer connect in clear; require, verify-ca and verify-full fail with reason
 * "Tls" (with SSLRequest negotiation and with direct TLS); channel_binding=require cannot be met.
 * Needs an embedded server (TLS off); any version, direct TLS 17+.
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { rolesOf, sslInUse, tcp } from "./support/integration.ts"

layer(PgServer.layerWith({ tls: false }), { timeout: 120_000 })("TLS against a server without TLS", (it) => {
  it.effect("disable, allow and prefer connect without TLS", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      expect(info.ca).toBeUndefined()
      for (const sslmode of ["disable", "allow", "prefer"] as const) {
        expect(yield* sslInUse({ ...tcp(info), sslmode })).toBe(false)
      }
    })
  )

  it.effect("require, verify-ca and verify-full fail with reason Tls", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      for (const sslmode of ["require", "verify-ca", "verify-full"] as const) {
        const error = yield* Effect.flip(
          sslInUse({ ...tcp(info), sslmode, sslrootcert: "/nonexistent/ca.pem" })
        )
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
      }
      const viaUrl = yield* Effect.flip(sslInUse(`${info.url}?sslmode=require`))
      expect(viaUrl).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
    })
  )

  it.effect("direct TLS to a server without TLS fails with reason Tls", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const error = yield* Effect.flip(
        sslInUse({ ...tcp(info), sslmode: "require", sslnegotiation: "direct" })
      )
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
    })
  )

  it.effect("channel_binding=require without TLS is refused before the password is sent", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      const error = yield* Effect.flip(sslInUse({ ...tcp(info, roles.scram), channelBinding: "require" }))
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
      // The same role without the requirement logs in (SCRAM without channel binding).
      expect(yield* sslInUse({ ...tcp(info, roles.scram) })).toBe(false)
    })
  )
})
