/**
 * Session.open against the test server (any of PostgreSQL 14 to 18): protocol 3.2 by
 * max_protocol_version (a 32-byte cancel key) from 18, 3.0 negotiated down before; 3.0 by default
 * (4 bytes), what the session reports (TLS, endpoint, parameters, backend pid), and CancelRequest
 * over TCP, TLS (SSLRequest, and direct from 17) and a Unix socket, with either key length.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgServer } from "../../testing/src/index.ts"
import { openSession, query, simpleQuery, untilActive } from "./support/session.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })(
  "Session against the test server",
  (it) => {
    it.effect("max_protocol_version=3.2 negotiates 3.2 with a 32-byte cancel key", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const major = info.version ?? 18
          const session = yield* openSession(`${info.url}?max_protocol_version=3.2`)
          const pid = yield* query(session, "select pg_backend_pid()")
          expect(pid.rows).toEqual([[String(session.processId)]])
          const latest = openSession(`${info.url}?max_protocol_version=latest&min_protocol_version=3.2`)
          if (major >= 18) {
            expect(session.protocol).toBe("3.2")
            expect(session.secretKey.length).toBe(32)
            expect((yield* latest).protocol).toBe("3.2")
          } else {
            // The server answers NegotiateProtocolVersion: 3.0, and the session goes on with it.
            expect(session.protocol).toBe("3.0")
            expect(session.secretKey.length).toBe(4)
            const refused = yield* Effect.flip(latest)
            expect(refused).toMatchObject({ _tag: "PgConnectError", reason: "ProtocolVersion" })
            expect(refused.message).toContain("min_protocol_version is 3.2")
          }
        })
      )
    )

    it.effect("the default is protocol 3.0 with a 4-byte key", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const session = yield* openSession(info.url)
          expect(session.protocol).toBe("3.0")
          expect(session.secretKey.length).toBe(4)
        })
      )
    )

    it.effect("what a session reports: TLS, endpoint, ParameterStatus values", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const plain = yield* openSession(`${info.url}?sslmode=disable`)
          expect(plain.tls).toBe(false)
          expect(plain.endpoint).toMatchObject({ host: info.host, port: info.port })
          expect(plain.parameters.get("server_version")).toMatch(new RegExp(`^${info.version ?? 18}\\.`))
          expect(plain.parameters.get("client_encoding")).toBe("UTF8")
          expect(plain.parameters.get("DateStyle")).toMatch(/^ISO/)
          const secure = yield* openSession(`${info.url}?sslmode=require`)
          expect(secure.tls).toBe(true)
          const ssl = yield* query(secure, "select ssl from pg_stat_ssl where pid = pg_backend_pid()")
          expect(ssl.rows).toEqual([["t"]])
        })
      )
    )

    it.effect("hostaddr with a socket-directory host: TCP to hostaddr, TLS as sslmode says", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          expect(info.socketDir).toBeDefined()
          const host = encodeURIComponent(info.socketDir!)
          const base = `postgresql://${info.user}:${encodeURIComponent(info.password)}@/${info.database}?host=${host}&hostaddr=127.0.0.1&port=${info.port}`
          const where =
            "select host(inet_server_addr()), (select ssl from pg_stat_ssl where pid = pg_backend_pid())"
          const secure = yield* openSession(`${base}&sslmode=require`)
          expect(secure.tls).toBe(true)
          expect((yield* query(secure, where)).rows).toEqual([["127.0.0.1", "t"]])
          const plain = yield* openSession(`${base}&sslmode=disable`)
          expect(plain.tls).toBe(false)
          expect((yield* query(plain, where)).rows).toEqual([["127.0.0.1", "f"]])
          // Without hostaddr the same host is the Unix socket.
          const unix = yield* openSession(
            `postgresql://${info.user}@/${info.database}?host=${host}&port=${info.port}&sslmode=prefer`
          )
          expect(unix.tls).toBe(false)
          expect((yield* query(unix, where)).rows).toEqual([[null, "f"]])
        })
      )
    )

    it.effect("sslkeylogfile: the session's TLS secrets are appended in NSS key log format", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const dir = mkdtempSync(join(tmpdir(), "pgline-keylog-"))
          const file = join(dir, "keys.log")
          const session = yield* openSession({ url: info.url, sslmode: "require", sslkeylogfile: file })
          expect((yield* query(session, "select 1")).rows).toEqual([["1"]])
          const lines = readFileSync(file, "utf8").trim().split("\n")
          expect(lines.length).toBeGreaterThan(0)
          for (const line of lines) expect(line).toMatch(/^[A-Z_0-9]+ [0-9a-f]+ [0-9a-f]+$/)
          // A path that cannot be opened fails the connection, saying so.
          const refused = yield* Effect.flip(
            openSession({ url: info.url, sslmode: "require", sslkeylogfile: dir })
          )
          expect(refused).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
          expect(refused.message).toContain("could not open SSL key logging file")
          rmSync(dir, { recursive: true, force: true })
        })
      )
    )

    it.effect("sslcertmode: disable sends no client certificate; require needs one asked for and sent", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const certUser = info.roles!.cert.user
          const tls = {
            sslmode: "verify-full",
            sslrootcert: info.ca!,
            sslcert: info.clientCert!,
            sslkey: info.clientKey!
          } as const
          // The server asks for a certificate (ssl_ca_file is set): it gets one and logs the cert role in.
          const sent = yield* openSession({
            url: `${info.url}`,
            user: certUser,
            password: "",
            ...tls,
            sslcertmode: "require"
          })
          expect((yield* query(sent, "select current_user")).rows).toEqual([[certUser]])
          // disable: the certificate stays home, and pg_hba's "cert" refuses the role.
          const withheld = yield* Effect.flip(
            openSession({ url: `${info.url}`, user: certUser, password: "", ...tls, sslcertmode: "disable" })
          )
          expect(withheld._tag).toBe("InvalidAuthorizationSpecification")
          // require without a certificate to send: refused even though the server lets the user in.
          const unsent = yield* Effect.flip(
            openSession({
              url: `${info.url}`,
              sslmode: "verify-full",
              sslrootcert: info.ca!,
              sslcertmode: "require"
            })
          )
          expect(unsent).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
          expect(unsent.message).toContain("without a valid SSL certificate")
          const control = yield* openSession({
            url: `${info.url}`,
            sslmode: "verify-full",
            sslrootcert: info.ca!
          })
          expect(control.tls).toBe(true)
        })
      )
    )

    it.effect(
      "CancelRequest stops a running statement: TCP, TLS, direct TLS, Unix socket; 3.0 and 3.2 keys",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const info = yield* PgServer
            const direct = `${info.url}?sslmode=require&sslnegotiation=direct&max_protocol_version=3.2`
            const urls = [
              `${info.url}?sslmode=disable`,
              `${info.url}?sslmode=require`,
              `${info.url}?sslmode=require&max_protocol_version=3.2`,
              `postgresql://${info.user}@/${info.database}?host=${encodeURIComponent(info.socketDir!)}&port=${info.port}&max_protocol_version=3.2`
            ]
            if ((info.version ?? 18) >= 17) urls.push(direct)
            else {
              const refused = yield* Effect.flip(openSession(direct))
              expect(refused).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
              expect(refused.message).toContain("PostgreSQL 17")
            }
            for (const url of urls) {
              const session = yield* openSession(url)
              const running = simpleQuery(session, "select pg_sleep(30)")
              // Cancel only once the statement runs: a cancel that arrives first is a no-op.
              const observer = yield* openSession(info.url)
              yield* untilActive(observer, session.processId)
              yield* Effect.promise(() => session.cancel())
              const result = yield* Effect.promise(() => running).pipe(Effect.timeout("10 seconds"))
              expect(result.error).toMatchObject({ code: "57014" })
              // The session is usable afterwards.
              expect((yield* query(session, "select 1")).rows).toEqual([["1"]])
            }
          })
        )
    )
  }
)
