/**
 * TLS through PgClient.layer against a server with TLS on (the embedded default, PostgreSQL 17+
 * for direct TLS): what every sslmode does, certificate verification (chain, host name, wrong CA,
 * sslrootcert=system), sslrootcert as a file and as inline PEM, client certificates for the `cert`
 * role, and sslnegotiation=direct with ALPN. Whether a session is encrypted is asked of the server
 * (pg_stat_ssl), not of the client. Needs the server; direct TLS needs version 17 or later.
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { generateCertificates } from "../../testing/src/internal/certificates.ts"
import { rolesOf, sslInUse, tcp, tempFile, withClient } from "./support/integration.ts"

const connectError = (options: Parameters<typeof sslInUse>[0]) => Effect.flip(sslInUse(options))

layer(PgServer.layer, { timeout: 120_000 })("TLS against a server with TLS", (it) => {
  it.effect("each sslmode: disable and allow stay plain, the others encrypt", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const ca = info.ca!
      expect(yield* sslInUse({ ...tcp(info), sslmode: "disable" })).toBe(false)
      // allow tries plain first and the server's pg_hba accepts it.
      expect(yield* sslInUse({ ...tcp(info), sslmode: "allow" })).toBe(false)
      expect(yield* sslInUse({ ...tcp(info), sslmode: "prefer" })).toBe(true)
      expect(yield* sslInUse({ ...tcp(info) })).toBe(true) // prefer is the default
      expect(yield* sslInUse({ ...tcp(info), sslmode: "require" })).toBe(true)
      expect(yield* sslInUse({ ...tcp(info), sslmode: "verify-ca", sslrootcert: ca })).toBe(true)
      expect(yield* sslInUse({ ...tcp(info), sslmode: "verify-full", sslrootcert: ca })).toBe(true)
    })
  )

  it.effect("verify-ca and verify-full without a root certificate fail with reason Tls", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const missing = "/nonexistent/pgline/root.crt"
      for (const sslmode of ["verify-ca", "verify-full"] as const) {
        const error = yield* connectError({ ...tcp(info), sslmode, sslrootcert: missing })
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
      }
    })
  )

  it.effect("verify-full checks the host name: localhost and 127.0.0.1 are in the certificate", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const ca = info.ca!
      expect(
        yield* sslInUse({ ...tcp(info), host: "localhost", sslmode: "verify-full", sslrootcert: ca })
      ).toBe(true)
      expect(
        yield* sslInUse({ ...tcp(info), host: "127.0.0.1", sslmode: "verify-full", sslrootcert: ca })
      ).toBe(true)
      // A name the certificate does not carry, reached through hostaddr: verify-ca does not look at
      // names, verify-full refuses.
      const elsewhere = { ...tcp(info), host: "db.pgline.invalid", hostaddr: "127.0.0.1", sslrootcert: ca }
      expect(yield* sslInUse({ ...elsewhere, sslmode: "verify-ca" })).toBe(true)
      const error = yield* connectError({ ...elsewhere, sslmode: "verify-full" })
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
      expect(error.message).toMatch(/db\.pgline\.invalid/)
    })
  )

  it.effect(
    "a CA that did not sign the server certificate is refused (verify-ca, verify-full, require)",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const other = yield* Effect.promise(() => generateCertificates("someone"))
        for (const sslmode of ["verify-ca", "verify-full"] as const) {
          const error = yield* connectError({ ...tcp(info), sslmode, sslrootcert: other.ca })
          expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
        }
        // libpq: with a root certificate given, require verifies the chain as verify-ca does.
        const error = yield* connectError({ ...tcp(info), sslmode: "require", sslrootcert: other.ca })
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
      })
  )

  it.effect("sslrootcert=system trusts only the platform roots: the self-signed CA fails verification", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const error = yield* connectError({ ...tcp(info), sslmode: "verify-full", sslrootcert: "system" })
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
    })
  )

  it.effect("sslrootcert as a file path (URL and options) and as inline PEM", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const path = yield* tempFile("root.crt", info.ca!, 0o644)
        expect(yield* sslInUse({ ...tcp(info), sslmode: "verify-full", sslrootcert: path })).toBe(true)
        const url = `${info.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(path)}`
        expect(yield* sslInUse(url)).toBe(true)
        expect(yield* sslInUse({ ...tcp(info), sslmode: "verify-ca", sslrootcert: info.ca! })).toBe(true)
      })
    )
  )

  it.effect("client certificate: the cert role logs in with sslcert/sslkey (files or PEM)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const roles = rolesOf(info)
        const certFile = yield* tempFile("client.crt", info.clientCert!)
        const keyFile = yield* tempFile("client.key", info.clientKey!)
        const whoami = (options: Parameters<typeof withClient>[0]) =>
          withClient(options, (pg) =>
            Effect.map(
              pg.query<{ user: string; ssl: boolean }>(
                "select current_user as user, ssl from pg_stat_ssl where pid = pg_backend_pid()"
              ),
              (r) => r.rows[0]
            )
          )
        const base = { ...tcp(info, { user: roles.cert.user, password: "" }), sslrootcert: info.ca! }
        expect(
          yield* whoami({ ...base, sslmode: "verify-full", sslcert: certFile, sslkey: keyFile })
        ).toEqual({ user: roles.cert.user, ssl: true })
        expect(
          yield* whoami({ ...base, sslmode: "require", sslcert: info.clientCert!, sslkey: info.clientKey! })
        ).toEqual({ user: roles.cert.user, ssl: true })
        // allow tries plain first; pg_hba rejects the role without TLS, so the TLS attempt follows.
        expect(yield* whoami({ ...base, sslmode: "allow", sslcert: certFile, sslkey: keyFile })).toEqual({
          user: roles.cert.user,
          ssl: true
        })
        // Without a certificate the server refuses the role (pg_hba "cert"): a typed server error.
        const refused = yield* Effect.flip(whoami({ ...base, sslmode: "require" }))
        expect(refused._tag).toBe("InvalidAuthorizationSpecification")
      })
    )
  )

  it.effect(
    "sslnegotiation=direct: TLS from the first byte with ALPN postgresql (17+; before, a typed failure)",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        if ((info.version ?? 18) < 17) {
          const refused = yield* Effect.flip(
            sslInUse({ ...tcp(info), sslmode: "require", sslnegotiation: "direct" })
          )
          expect(refused).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
          expect(refused.message).toContain("PostgreSQL 17")
          return
        }
        expect(yield* sslInUse({ ...tcp(info), sslmode: "require", sslnegotiation: "direct" })).toBe(true)
        expect(
          yield* sslInUse({
            ...tcp(info),
            host: "localhost",
            sslmode: "verify-full",
            sslrootcert: info.ca!,
            sslnegotiation: "direct"
          })
        ).toBe(true)
        expect(yield* sslInUse(`${info.url}?sslmode=require&sslnegotiation=direct`)).toBe(true)
      })
  )

  it.effect("sslnegotiation=direct with a weaker sslmode is refused by configuration", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      for (const sslmode of ["prefer", "allow", "disable"] as const) {
        const error = yield* connectError({ ...tcp(info), sslmode, sslnegotiation: "direct" })
        expect(error).toMatchObject({ _tag: "PgConfigError" })
        expect(error.message).toMatch(/sslnegotiation/)
      }
    })
  )
})
