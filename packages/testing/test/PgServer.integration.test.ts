/**
 * PgServer against the embedded server (the default on machines without Docker): it starts, a
 * real client (node-postgres, until pgline's own client lands) connects over TCP and the Unix
 * socket, TLS verifies against the generated CA, every role accepts its secret and refuses a wrong
 * one, and closing the scope leaves no process, port or directory behind.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { connect } from "node:net"
import { dirname } from "node:path"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import pg from "pg"
import { PgServer, type ServerInfo } from "../src/index.ts"

const connectWith = (config: pg.ClientConfig) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client(config)
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

/** Connects, runs one query, and returns either its first row or the error the server sent. */
const attempt = (config: pg.ClientConfig) =>
  Effect.promise(
    async (): Promise<{ ok: true; row: Record<string, unknown> } | { ok: false; code: string }> => {
      const client = new pg.Client(config)
      try {
        await client.connect()
        const result = await client.query(
          "select current_user as user, ssl from pg_stat_ssl where pid = pg_backend_pid()"
        )
        return { ok: true, row: result.rows[0] as Record<string, unknown> }
      } catch (error) {
        return { ok: false, code: String((error as { code?: unknown }).code ?? (error as Error).message) }
      } finally {
        await client.end().catch(() => undefined)
      }
    }
  )

const tcp = (info: ServerInfo) => ({ host: info.host, port: info.port, database: info.database })

layer(PgServer.layer, { timeout: 60_000 })("PgServer (default layer)", (it) => {
  it.effect("starts a server a real client can query", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      expect(info.port).toBeGreaterThan(0)
      const client = yield* connectWith({ connectionString: info.url })
      const result = yield* Effect.promise(() =>
        client.query("select current_setting('server_version_num')::int as v")
      )
      expect(Math.floor(Number(result.rows[0].v) / 10000)).toBe(info.version ?? 18)
    })
  )

  it.effect("accepts connections over the Unix socket", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      expect(info.socketDir).toBeDefined()
      const client = yield* connectWith({
        host: info.socketDir!,
        port: info.port,
        user: info.user,
        database: info.database
      })
      const result = yield* Effect.promise(() => client.query("select inet_server_addr() as addr"))
      // A Unix-socket session has no server address.
      expect(result.rows[0].addr).toBeNull()
    })
  )

  it.effect("serves TLS that verifies against the generated CA (verify-full on localhost)", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      expect(info.ca).toContain("BEGIN CERTIFICATE")
      const ok = yield* attempt({
        ...tcp(info),
        host: "localhost",
        user: info.user,
        password: info.password,
        ssl: { ca: info.ca!, rejectUnauthorized: true, servername: "localhost" }
      })
      expect(ok).toMatchObject({ ok: true, row: { ssl: true } })
    })
  )

  it.effect("fails TLS verification against a CA that did not sign the server certificate", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      // The client certificate is not a CA: trusting it alone cannot verify the server.
      const bad = yield* attempt({
        ...tcp(info),
        user: info.user,
        ssl: { ca: info.clientCert!, rejectUnauthorized: true, servername: "localhost" }
      })
      expect(bad.ok).toBe(false)
    })
  )

  it.effect("trust role connects without a password", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const result = yield* attempt({ ...tcp(info), user: info.roles!.trust.user })
      expect(result).toMatchObject({ ok: true, row: { user: info.roles!.trust.user } })
    })
  )

  for (const method of ["md5", "scram", "cleartext"] as const) {
    it.effect(`${method} role accepts its password and refuses a wrong one with 28P01`, () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const role = info.roles![method]
        const right = yield* attempt({ ...tcp(info), user: role.user, password: role.password })
        expect(right).toMatchObject({ ok: true, row: { user: role.user } })
        const wrong = yield* attempt({ ...tcp(info), user: role.user, password: `${role.password}x` })
        expect(wrong).toEqual({ ok: false, code: "28P01" })
      })
    )
  }

  it.effect("scram role's stored secret is SCRAM and md5 role's is MD5", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const client = yield* connectWith({ connectionString: info.url })
      const result = yield* Effect.promise(() =>
        client.query(
          "select rolname, left(rolpassword, 14) as p from pg_authid where rolname = any($1) order by rolname",
          [[info.roles!.md5.user, info.roles!.scram.user]]
        )
      )
      expect(
        result.rows.map((r) => [r.rolname, String(r.p).startsWith("md5") ? "md5" : String(r.p).slice(0, 13)])
      ).toEqual([
        [info.roles!.md5.user, "md5"],
        [info.roles!.scram.user, "SCRAM-SHA-256"]
      ])
    })
  )

  it.effect("cert role authenticates with the client certificate and is refused without it", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const role = info.roles!.cert
      const ssl = { ca: info.ca!, rejectUnauthorized: true, servername: "localhost" }
      const withCert = yield* attempt({
        ...tcp(info),
        host: "localhost",
        user: role.user,
        ssl: { ...ssl, cert: info.clientCert!, key: info.clientKey! }
      })
      expect(withCert).toMatchObject({ ok: true, row: { user: role.user, ssl: true } })
      const withoutCert = yield* attempt({ ...tcp(info), host: "localhost", user: role.user, ssl })
      expect(withoutCert).toEqual({ ok: false, code: "28000" })
      const plain = yield* attempt({ ...tcp(info), user: role.user })
      expect(plain).toEqual({ ok: false, code: "28000" })
    })
  )
})

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** PIDs of processes whose command line mentions `needle` (Linux /proc). */
const processesMentioning = (needle: string): Array<number> =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(needle)
      } catch {
        return false
      }
    })
    .map(Number)

describe("PgServer lifecycle", () => {
  it.effect("closing the scope stops the server and removes its directory, port and processes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(PgServer.layer, scope)
      const info = Context.get(context, PgServer)
      const root = dirname(info.socketDir!)
      expect(existsSync(root)).toBe(true)
      expect(yield* Effect.promise(() => portOpen(info.port))).toBe(true)
      expect(processesMentioning(root).length).toBeGreaterThan(0)
      yield* Scope.close(scope, Exit.void)
      expect(existsSync(root)).toBe(false)
      expect(yield* Effect.promise(() => portOpen(info.port))).toBe(false)
      expect(processesMentioning(root)).toEqual([])
    })
  )

  for (const version of [14, 16] as const) {
    it.effect(`starts PostgreSQL ${version} when asked`, () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const client = yield* connectWith({ connectionString: info.url })
        const result = yield* Effect.promise(() =>
          client.query("select current_setting('server_version_num')::int as v")
        )
        expect(Math.floor(Number(result.rows[0].v) / 10000)).toBe(version)
      }).pipe(Effect.scoped, Effect.provide(PgServer.layerWith({ version })))
    )
  }

  it.effect("starts without TLS when asked, and then refuses TLS", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      expect(info.ca).toBeUndefined()
      const result = yield* attempt({ ...tcp(info), user: info.user, ssl: { rejectUnauthorized: false } })
      expect(result.ok).toBe(false)
      const plain = yield* attempt({ ...tcp(info), user: info.user })
      expect(plain).toMatchObject({ ok: true, row: { ssl: false } })
    }).pipe(Effect.scoped, Effect.provide(PgServer.layerWith({ tls: false })))
  )
})
