/**
 * Authentication through PgClient.layer against a real server (one role per method): trust,
 * cleartext, md5, SCRAM-SHA-256 with a password that needs SASLprep, SCRAM-SHA-256-PLUS with
 * channel_binding=require over TLS; require_auth and channel_binding refusals; wrong passwords and
 * unknown users as typed server errors in the layer's error channel; passwords from a pgpass file
 * (used at 0600, ignored at 0644). That refusals happen before any secret leaves the client is
 * checked against a scripted fake server, which records what it receives. Needs the server.
 */
import { writeFileSync } from "node:fs"
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { fakeServer } from "@pgline/testing"
import { rolesOf, sslInUse, tcp, tempFile, withClient } from "./support/integration.ts"

const whoami = (options: Parameters<typeof withClient>[0]) =>
  withClient(options, (pg) =>
    Effect.map(pg.query<{ user: string }>("select current_user as user"), (r) => r.rows[0]!.user)
  )

layer(PgServer.layer, { timeout: 120_000 })("authentication through PgClient.layer", (it) => {
  it.effect("trust, cleartext, md5 and SCRAM roles log in, with and without TLS", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      for (const role of [roles.trust, roles.cleartext, roles.md5, roles.scram]) {
        for (const sslmode of ["disable", "require"] as const) {
          expect(yield* whoami({ ...tcp(info, role), sslmode })).toBe(role.user)
        }
      }
    })
  )

  it.effect("SCRAM's non-ASCII password goes through SASLprep (NBSP maps to a space)", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      expect(roles.scram.password).toMatch(/[^\x20-\x7e]/)
      expect(yield* whoami({ ...tcp(info, roles.scram), sslmode: "disable" })).toBe(roles.scram.user)
      // SASLprep maps U+00A0 to U+0020: the same password with a plain space is the same password.
      const mapped = roles.scram.password.replace("\u00a0", " ")
      expect(
        yield* whoami({ ...tcp(info, { user: roles.scram.user, password: mapped }), sslmode: "disable" })
      ).toBe(roles.scram.user)
    })
  )

  it.effect("SCRAM-SHA-256-PLUS: channel_binding=require connects over TLS", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      for (const sslmode of ["require", "verify-full"] as const) {
        expect(
          yield* sslInUse({
            ...tcp(info, roles.scram),
            sslmode,
            sslrootcert: info.ca!,
            channelBinding: "require"
          })
        ).toBe(true)
      }
      const direct = sslInUse({
        ...tcp(info, roles.scram),
        sslmode: "require",
        sslnegotiation: "direct",
        channelBinding: "require"
      })
      // Direct TLS exists from PostgreSQL 17; older servers hang up, which fails typed.
      if ((info.version ?? 18) >= 17) expect(yield* direct).toBe(true)
      else expect(yield* Effect.flip(direct)).toMatchObject({ _tag: "PgConnectError", reason: "Tls" })
    })
  )

  it.effect("channel_binding=require fails without TLS, and for methods that cannot bind", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      const noTls = yield* Effect.flip(
        whoami({ ...tcp(info, roles.scram), sslmode: "disable", channelBinding: "require" })
      )
      expect(noTls).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
      for (const role of [roles.md5, roles.cleartext, roles.trust]) {
        const error = yield* Effect.flip(
          whoami({ ...tcp(info, role), sslmode: "require", channelBinding: "require" })
        )
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
      }
    })
  )

  it.effect("require_auth: allowed methods connect, others fail with reason Authentication", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      const refused = (options: Parameters<typeof whoami>[0]) =>
        Effect.map(Effect.flip(whoami(options)), (e) => {
          expect(e).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
          return e
        })
      yield* refused({ ...tcp(info, roles.md5), requireAuth: "scram-sha-256" })
      yield* refused({ ...tcp(info, roles.cleartext), requireAuth: "!password" })
      yield* refused({ ...tcp(info, roles.trust), requireAuth: "md5" })
      yield* refused({ ...tcp(info, roles.scram), requireAuth: "none" })
      expect(yield* whoami({ ...tcp(info, roles.md5), requireAuth: "md5" })).toBe(roles.md5.user)
      expect(yield* whoami({ ...tcp(info, roles.scram), requireAuth: "scram-sha-256" })).toBe(
        roles.scram.user
      )
      expect(yield* whoami({ ...tcp(info, roles.cleartext), requireAuth: "!md5,!scram-sha-256" })).toBe(
        roles.cleartext.user
      )
      expect(yield* whoami({ ...tcp(info, roles.trust), requireAuth: "none" })).toBe(roles.trust.user)
      expect(
        yield* whoami(
          `${info.url.replace(/\/\/[^@]*@/, `//${roles.md5.user}:${encodeURIComponent(roles.md5.password)}@`)}?require_auth=md5,scram-sha-256`
        )
      ).toBe(roles.md5.user)
    })
  )

  it.effect("a wrong password is InvalidPassword (28P01) in the layer's error channel", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      for (const role of [roles.md5, roles.scram, roles.cleartext]) {
        const caught = yield* whoami({
          ...tcp(info, { user: role.user, password: "not-the-password" })
        }).pipe(Effect.catchTag("InvalidPassword", (e) => Effect.succeed(`caught ${e.code}: ${e.message}`)))
        expect(caught).toBe(`caught 28P01: password authentication failed for user "${role.user}"`)
      }
    })
  )

  it.effect("an unknown user is the server's typed error", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      // pg_hba lets unknown roles in by trust, so the server says the role does not exist (28000);
      // with password auth in front it would say 28P01 instead.
      const error = yield* Effect.flip(whoami({ ...tcp(info), user: "pgline_nobody", password: "x" }))
      expect(["InvalidAuthorizationSpecification", "InvalidPassword"]).toContain(error._tag)
      expect(error).toMatchObject({ code: "28000", severity: "FATAL" })
      expect(error.message).toContain("pgline_nobody")
    })
  )

  it.effect("a missing password is refused by the client with reason Authentication", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const roles = rolesOf(info)
      const error = yield* Effect.flip(
        whoami({ ...tcp(info, roles.md5), password: undefined, passfile: "/nonexistent/pgpass" })
      )
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
    })
  )

  it.effect("the password file: used at mode 0600, ignored at 0644", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const roles = rolesOf(info)
        const lines = [
          "# host:port:database:user:password",
          `otherhost:*:*:*:wrong`,
          `${info.host}:${info.port}:${info.database}:${roles.md5.user}:${roles.md5.password.replace(/[:\\]/g, "\\$&")}`,
          `*:*:*:${roles.scram.user}:${roles.scram.password.replace(/[:\\]/g, "\\$&")}`,
          ""
        ].join("\n")
        const privateFile = yield* tempFile("pgpass", lines, 0o600)
        const noPassword = (role: { user: string }) => ({
          ...tcp(info),
          user: role.user,
          password: undefined
        })
        expect(yield* whoami({ ...noPassword(roles.md5), passfile: privateFile })).toBe(roles.md5.user)
        expect(yield* whoami({ ...noPassword(roles.scram), passfile: privateFile })).toBe(roles.scram.user)
        // PGPASSFILE from the environment (read through the ConfigProvider).
        expect(
          yield* withClient(noPassword(roles.md5), (pg) => Effect.succeed(pg.processId > 0), {
            PGPASSFILE: privateFile
          })
        ).toBe(true)
        const publicFile = yield* tempFile("pgpass", lines, 0o644)
        const error = yield* Effect.flip(whoami({ ...noPassword(roles.md5), passfile: publicFile }))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
        // The error says why the file gave no password (libpq warns the same way).
        expect(error.message).toContain("the server asks for a password and none was supplied")
        expect(error.message).toContain("accessible by group or others (mode 0644)")
      })
    )
  )

  it.effect(
    "the password file is read at each connection attempt: a rotated password reaches new connections",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const info = yield* PgServer
          const scram = rolesOf(info).scram
          // ALTER ROLE takes no parameters: the server quotes the password itself.
          const setPassword = (password: string) =>
            withClient(tcp(info), (pg) =>
              Effect.flatMap(
                pg.query<{ sql: string }>(
                  "select format('alter role %I password %L', $1::text, $2::text) as sql",
                  [scram.user, password]
                ),
                (r) => pg.query(r.rows[0]!.sql)
              )
            )
          const line = (password: string) => `*:*:*:${scram.user}:${password.replace(/[:\\]/g, "\\$&")}\n`
          const file = yield* tempFile("pgpass", line(scram.password), 0o600)
          yield* Effect.addFinalizer(() => Effect.orDie(setPassword(scram.password)))
          const seen = yield* withClient(
            { ...tcp(info, scram), password: undefined, passfile: file, max: 1 },
            (pg) =>
              Effect.gen(function* () {
                const first = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")
                // A secrets agent rotates the password: the server's and the file's change together,
                // then the connection is lost (here: terminated) and the pool opens a new one.
                yield* setPassword("rotated-pass")
                writeFileSync(file, line("rotated-pass"), { mode: 0o600 })
                yield* withClient(tcp(info), (other) =>
                  other.query("select pg_terminate_backend($1)", [first.rows[0]!.pid])
                )
                yield* Effect.exit(pg.query("select 1"))
                const again = yield* pg.query<{ u: string; pid: number }>(
                  "select current_user as u, pg_backend_pid() as pid"
                )
                expect(again.rows[0]!.pid).not.toBe(first.rows[0]!.pid)
                return again.rows[0]!.u
              })
          )
          expect(seen).toBe(scram.user)
        })
      )
  )

  it.effect("refusals happen before any secret is sent (scripted server)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const cases = [
          {
            ask: { type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] },
            settings: { channelBinding: "require" }
          },
          {
            ask: { type: "AuthenticationMD5Password", salt: new Uint8Array([1, 2, 3, 4]) },
            settings: { requireAuth: "scram-sha-256" }
          },
          { ask: { type: "AuthenticationCleartextPassword" }, settings: { requireAuth: "!password" } },
          { ask: { type: "AuthenticationCleartextPassword" }, settings: { channelBinding: "require" } }
        ] as const
        for (const c of cases) {
          const fake = yield* fakeServer((m, conn) => {
            if (m.type === "SSLRequest") conn.sendRaw("N")
            if (m.type === "StartupMessage") conn.send(c.ask)
          })
          const error = yield* Effect.flip(
            whoami({
              host: "127.0.0.1",
              port: fake.port,
              user: "u",
              password: "secret",
              database: "d",
              ...c.settings
            })
          )
          expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Authentication" })
          const types = fake.received.map((m) => m.type)
          expect(types).toContain("StartupMessage")
          expect(types.filter((t) => t === "PasswordMessage" || t === "SASLInitialResponse")).toEqual([])
        }
      })
    )
  )
})
