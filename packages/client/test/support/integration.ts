/**
 * Shared helpers of the client's integration tests: connect a PgClient layer for the length of one
 * effect, with a hermetic environment (an explicit ConfigProvider, so the machine's PG* variables
 * never leak in), and read back what the server says about the session.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgClient, type PgClientApi, type PgClientOptions } from "@pgline/client"
import type { ServerInfo } from "@pgline/testing"
import { ConfigProvider, Effect, type Scope } from "effect"

/**
 * Runs `f` with a one-connection client (`max: 1` unless `options` says otherwise) connected by
 * `options`, and that connection's backend pid; the connection closes when `f` ends.
 */
export const withClient = <A, E, R = never>(
  options: PgClientOptions,
  f: (pg: PgClientApi & { readonly processId: number }) => Effect.Effect<A, E, R>,
  env: Readonly<Record<string, string>> = {}
) =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const { rows } = yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")
    return yield* f(Object.assign(pg, { processId: rows[0]!.pid }))
  }).pipe(
    Effect.provide(PgClient.layer(typeof options === "string" ? options : { max: 1, ...options })),
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
  )

/** Connects, asks the server whether the session is encrypted, disconnects. */
export const sslInUse = (options: PgClientOptions, env: Readonly<Record<string, string>> = {}) =>
  withClient(
    options,
    (pg) =>
      Effect.map(
        pg.query<{ ssl: boolean }>("select ssl from pg_stat_ssl where pid = pg_backend_pid()"),
        (r) => r.rows[0]!.ssl
      ),
    env
  )

/** Explicit settings for a role of the server over TCP (no TLS preference set). */
export const tcp = (
  info: ServerInfo,
  role: { readonly user: string; readonly password: string } = info
): { host: string; port: number; database: string; user: string; password: string } => ({
  host: info.host,
  port: info.port,
  database: info.database,
  user: role.user,
  password: role.password
})

export const rolesOf = (info: ServerInfo) => {
  if (info.roles === undefined) throw new Error("these tests need a server with the pgline roles")
  return info.roles
}

/** A temporary directory removed with the scope. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "pgline-client-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Writes a file into a fresh temporary directory (removed with the scope) and returns its path. */
export const tempFile = (name: string, content: string, mode = 0o600) =>
  Effect.map(tempDir, (dir) => {
    const path = join(dir, name)
    writeFileSync(path, content, { mode })
    return path
  })
