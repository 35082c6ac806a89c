/**
 * Configuration end to end through PgClient.layer / layerConfig against a real server: URLs with
 * percent-encoded passwords, key=value strings, PG* variables through Effect's ConfigProvider, the
 * service file, host lists where the first host refuses, load_balance_hosts=random,
 * target_session_attrs on a primary, connect_timeout against a listener that never answers, Unix
 * sockets, and a port where nothing listens. Needs the embedded server (Unix socket directory).
 */
import { expect, layer } from "@effect/vitest"
import { createServer } from "node:net"
import { PgClient, PgConfig } from "@pgline/client"
import { localServer, PgServer } from "@pgline/testing"
import { ConfigProvider, Effect, Logger } from "effect"
import { rolesOf, sslInUse, tcp, tempFile, withClient } from "./support/integration.ts"

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
const deadPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = createServer()
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        server.close(() => resolve(port))
      })
    })
)

/**
 * A TCP listener that accepts connections and never sends a byte; closed with the scope. It reads
 * (and drops) what arrives, so the client's close is seen.
 */
const silentListener = localServer((socket) => socket.resume())

interface Who {
  readonly user: string
  readonly db: string
  readonly app: string
  readonly ssl: boolean
  readonly addr: string | null
}
const who = (options: Parameters<typeof withClient>[0], env: Record<string, string> = {}) =>
  withClient(
    options,
    (pg) =>
      Effect.map(
        pg.query<Who>(
          `select current_user as user, current_database() as db,
                  current_setting('application_name') as app, s.ssl, host(inet_server_addr()) as addr
             from pg_stat_ssl s where s.pid = pg_backend_pid()`
        ),
        (r) => r.rows[0]!
      ),
    env
  )

/** A key=value value in single quotes, with ' and \ escaped. */
const quoted = (s: string) => `'${s.replace(/[\\']/g, "\\$&")}'`

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("configuration end to end", (it) => {
  it.effect("a URL with a percent-encoded non-ASCII password", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const { scram } = rolesOf(info)
      const url = `postgresql://${scram.user}:${encodeURIComponent(scram.password)}@${info.host}:${info.port}/${info.database}?sslmode=disable&application_name=from-url`
      expect(yield* who(url)).toMatchObject({
        user: scram.user,
        db: info.database,
        app: "from-url",
        ssl: false
      })
      // Explicit options beat the URL's.
      expect(yield* who({ url, applicationName: "explicit", sslmode: "require" })).toMatchObject({
        app: "explicit",
        ssl: true
      })
    })
  )

  it.effect("a key=value connection string with a quoted password", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const { cleartext } = rolesOf(info)
      const conninfo = `host=${info.host} port=${info.port} dbname=${info.database} user=${cleartext.user} password=${quoted(cleartext.password)} sslmode=require application_name='key value'`
      expect(yield* who(conninfo)).toMatchObject({ user: cleartext.user, app: "key value", ssl: true })
    })
  )

  it.effect("PG* environment variables, read through the ConfigProvider", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const { md5 } = rolesOf(info)
      const env = {
        PGHOST: info.host,
        PGPORT: String(info.port),
        PGDATABASE: info.database,
        PGUSER: md5.user,
        PGPASSWORD: md5.password,
        PGSSLMODE: "disable",
        PGAPPNAME: "from-env"
      }
      expect(yield* who({}, env)).toMatchObject({ user: md5.user, app: "from-env", ssl: false })
      // The connection string beats the environment.
      expect(yield* who(`sslmode=require application_name=cs`, env)).toMatchObject({ app: "cs", ssl: true })
    })
  )

  it.effect("layerConfig reads DATABASE_URL and prefixed variables", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const { cleartext } = rolesOf(info)
      const run = (config: ReturnType<typeof PgConfig.config>, env: Record<string, string>) =>
        Effect.gen(function* () {
          const pg = yield* PgClient
          return (yield* pg.query<{ user: string }>("select current_user as user")).rows[0]!.user
        }).pipe(
          Effect.provide(PgClient.layerConfig(config)),
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
        )
      expect(yield* run(PgConfig.config(), { DATABASE_URL: info.url })).toBe(info.user)
      expect(
        yield* run(PgConfig.config("APP"), {
          APP_PGHOST: info.host,
          APP_PGPORT: String(info.port),
          APP_PGUSER: cleartext.user,
          APP_PGPASSWORD: cleartext.password,
          APP_PGDATABASE: info.database
        })
      ).toBe(cleartext.user)
    })
  )

  it.effect("a service file, named by option and by PGSERVICE/PGSERVICEFILE", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const info = yield* PgServer
        const { md5 } = rolesOf(info)
        const file = yield* tempFile(
          "pg_service.conf",
          [
            "# services for the test",
            "[other]",
            "host=nowhere.invalid",
            "[pgline]",
            `host=${info.host}`,
            `port=${info.port}`,
            `dbname=${info.database}`,
            `user=${md5.user}`,
            `password=${md5.password}`,
            "application_name=from-service",
            ""
          ].join("\n"),
          0o644
        )
        expect(yield* who({ service: "pgline", servicefile: file })).toMatchObject({
          user: md5.user,
          app: "from-service"
        })
        expect(yield* who({}, { PGSERVICE: "pgline", PGSERVICEFILE: file })).toMatchObject({ user: md5.user })
        expect(yield* who(`service=pgline application_name=override`, { PGSERVICEFILE: file })).toMatchObject(
          {
            app: "override"
          }
        )
        const missing = yield* Effect.flip(who({ service: "absent", servicefile: file }))
        expect(missing._tag).toBe("PgConfigError")
      })
    )
  )

  it.effect("a setting accepted with a caveat (a deprecated keyword) is logged as a warning", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const logged: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logged.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      const url = `postgresql://${info.user}@${info.host}:${info.port}/${info.database}?requiressl=0`
      expect(
        yield* withClient(url, (pg) => Effect.succeed(pg.processId > 0)).pipe(
          Effect.provide(Logger.layer([capture]))
        )
      ).toBe(true)
      expect(logged.filter((m) => m.includes("requiressl is deprecated"))).toHaveLength(1)
    })
  )

  it.effect("a host list whose first host refuses connects to the second", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const dead = yield* deadPort
      expect(
        yield* who({ ...tcp(info), host: [info.host, info.host], port: [dead, info.port] })
      ).toMatchObject({
        user: info.user
      })
      const url = `postgres://${info.user}:${encodeURIComponent(info.password)}@${info.host}:${dead},${info.host}:${info.port}/${info.database}`
      expect(yield* who(url)).toMatchObject({ user: info.user })
      // A missing Unix socket first, then TCP.
      expect(
        yield* who({ ...tcp(info), host: [`${info.socketDir!}-missing`, info.host], port: info.port })
      ).toMatchObject({ user: info.user })
    })
  )

  it.effect("every host down: reason Refused, each attempt named", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const a = yield* deadPort
      const b = yield* deadPort
      const error = yield* Effect.flip(who({ ...tcp(info), host: [info.host, info.host], port: [a, b] }))
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Refused" })
      expect(error.message).toContain(String(a))
      expect(error.message).toContain(String(b))
    })
  )

  it.effect("load_balance_hosts=random still connects (one host down, any order)", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const dead = yield* deadPort
      for (let i = 0; i < 6; i++) {
        expect(
          yield* who({
            ...tcp(info),
            host: [info.host, info.host],
            port: [dead, info.port],
            loadBalanceHosts: "random"
          })
        ).toMatchObject({ user: info.user })
      }
    })
  )

  it.effect("target_session_attrs on a primary: read-write/primary/any/prefer-standby connect", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      for (const targetSessionAttrs of ["any", "read-write", "primary", "prefer-standby"] as const) {
        expect(yield* who({ ...tcp(info), targetSessionAttrs })).toMatchObject({ user: info.user })
      }
      expect(yield* who(`${info.url}?target_session_attrs=read-write`)).toMatchObject({ user: info.user })
    })
  )

  it.effect("target_session_attrs read-only/standby fail on a primary with reason TargetSessionAttrs", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      for (const targetSessionAttrs of ["read-only", "standby"] as const) {
        const error = yield* Effect.flip(who({ ...tcp(info), targetSessionAttrs }))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
        const two = yield* Effect.flip(
          who({ ...tcp(info), host: [info.host, info.host], targetSessionAttrs })
        )
        expect(two).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
      }
    })
  )

  it.effect("target_session_attrs follows default_transaction_read_only", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const readOnly = { ...tcp(info), options: "-c default_transaction_read_only=on" }
      expect(yield* who({ ...readOnly, targetSessionAttrs: "read-only" })).toMatchObject({ user: info.user })
      // Read-only, yet a primary.
      expect(yield* who({ ...readOnly, targetSessionAttrs: "primary" })).toMatchObject({ user: info.user })
      const error = yield* Effect.flip(who({ ...readOnly, targetSessionAttrs: "read-write" }))
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
    })
  )

  it.effect("connect_timeout against a listener that never answers fails with reason Timeout", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const silent = yield* silentListener
        const attempt = (sslmode: "prefer" | "disable") =>
          Effect.gen(function* () {
            const started = Date.now()
            const error = yield* Effect.flip(
              who({
                host: "127.0.0.1",
                port: silent.port,
                user: "u",
                database: "d",
                sslmode,
                connectTimeout: 2
              })
            )
            return { error, elapsed: Date.now() - started }
          })
        // SSLRequest unanswered (prefer) and StartupMessage unanswered (disable), concurrently.
        const results = yield* Effect.all([attempt("prefer"), attempt("disable")], { concurrency: 2 })
        for (const { error, elapsed } of results) {
          expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Timeout" })
          // Liveness bounds: the timeout was honoured, and it ended the attempt.
          expect(elapsed).toBeGreaterThanOrEqual(1_900)
          expect(elapsed).toBeLessThan(10_000)
        }
      })
    )
  )

  it.effect("Effect.timeout on a connect to a silent host interrupts it and closes the socket", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const silent = yield* silentListener
        // No connect_timeout: only the interruption can end this attempt.
        const error = yield* Effect.flip(
          who({ host: "127.0.0.1", port: silent.port, user: "u", database: "d" }).pipe(
            Effect.timeout("300 millis")
          )
        )
        expect(error._tag).toBe("TimeoutError")
        for (let i = 0; i < 500 && silent.open() > 0; i++) yield* Effect.sleep("10 millis")
        expect(silent.open()).toBe(0)
      })
    )
  )

  it.effect("Unix socket connections via host=<socket directory>", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const socketDir = info.socketDir!
      const viaSocket = { host: socketDir, port: info.port, user: info.user, database: info.database }
      // sslmode=require is ignored on a Unix socket, as in libpq.
      for (const sslmode of ["prefer", "require"] as const) {
        expect(yield* who({ ...viaSocket, sslmode })).toMatchObject({
          user: info.user,
          ssl: false,
          addr: null
        })
      }
      const url = `postgresql://${info.user}@/${info.database}?host=${encodeURIComponent(socketDir)}&port=${info.port}`
      expect(yield* who(url)).toMatchObject({ addr: null })
      expect(
        yield* who(`host=${socketDir} port=${info.port} user=${info.user} dbname=${info.database}`)
      ).toMatchObject({
        addr: null
      })
      expect(yield* sslInUse({}, { PGHOST: socketDir, PGPORT: String(info.port), PGUSER: info.user })).toBe(
        false
      )
    })
  )

  it.effect("a port where nothing listens fails with reason Refused", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const dead = yield* deadPort
      const error = yield* Effect.flip(who({ ...tcp(info), port: dead }))
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Refused" })
      const socket = yield* Effect.flip(who({ host: "/nonexistent-pgline-dir", port: 5432, user: "u" }))
      expect(socket).toMatchObject({ _tag: "PgConnectError", reason: "Refused" })
    })
  )
})
