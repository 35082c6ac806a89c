/**
 * PgBouncer in front of a test server: `PgBouncer.start(server, { poolMode })` runs Debian's
 * pgbouncer (installed with apt-get when missing and we are root) on a free loopback port, in
 * transaction or session mode, and stops it with the scope. Clients connect to `url` exactly as to
 * the server (same user and database; the bouncer trusts loopback clients and logs in to the
 * server with the server's password).
 *
 * It is for tests of what a pooler changes (named prepared statements, session state, LISTEN,
 * cancellation through the pooler), not a production configuration.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Schema, type Scope } from "effect"
import { freePort, type ServerInfo, unprivileged } from "./internal/embedded.ts"

export class PgBouncerError extends Schema.TaggedError<PgBouncerError>()("PgBouncerError", {
  message: Schema.String
}) {}

export interface PgBouncerOptions {
  /** transaction: a server connection per transaction; session: per client connection. */
  readonly poolMode: "transaction" | "session"
  /** Server connections per user and database (default 2, so clients share them). */
  readonly poolSize?: number
}

export interface PgBouncerInfo {
  /** URL of the bouncer: the server's user and database, TLS off between client and bouncer. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly poolMode: "transaction" | "session"
  /** `pgbouncer --version`'s first line. */
  readonly version: string
  /** What the bouncer logged so far. */
  readonly log: () => string
}

const candidates = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]

const findBinary = (): string | undefined => candidates.find((path) => existsSync(path))

/**
 * The pgbouncer binary's path, installed from Debian's packages (apt-get) when missing; fails with
 * PgBouncerError when it is missing and the process is not root. `start` calls it; a test file can
 * run it first where a longer timeout applies (installing takes up to a minute).
 */
export const ensurePgBouncer = (): Effect.Effect<string, PgBouncerError> =>
  Effect.gen(function* () {
    const found = findBinary()
    if (found !== undefined) return found
    if (typeof process.getuid !== "function" || process.getuid() !== 0)
      return yield* new PgBouncerError({
        message: "pgbouncer is not installed and installing it needs root: apt-get install pgbouncer"
      })
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    for (const args of [["update"], ["install", "-y", "--no-install-recommends", "pgbouncer"]]) {
      const result = yield* Effect.sync(() =>
        spawnSync("apt-get", args, { env, encoding: "utf8", timeout: 300_000 })
      )
      if (result.status !== 0)
        return yield* new PgBouncerError({
          message: `apt-get ${args.join(" ")} failed: ${(result.stderr || result.stdout || String(result.error)).slice(-2000)}`
        })
    }
    // The package may start its own service on port 6432; ours listens elsewhere, so leave it be.
    const installed = findBinary()
    if (installed === undefined)
      return yield* new PgBouncerError({
        message: "apt-get installed pgbouncer but its binary is not where expected"
      })
    return installed
  })

const quoteValue = (s: string): string => s.replace(/"/g, '""')

/** Resolves once something accepts connections on host:port, or rejects after `ms`. */
const waitForPort = (host: string, port: number, ms: number, child: ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + ms
    const attempt = () => {
      if (child.exitCode !== null) {
        reject(new Error(`pgbouncer exited with code ${child.exitCode}`))
        return
      }
      const socket = connect({ host, port })
      socket.once("connect", () => {
        socket.destroy()
        resolve()
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline)
          reject(new Error(`pgbouncer did not listen on ${host}:${port} within ${ms} ms`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })

/** Starts PgBouncer in front of `server` for the scope. */
export const startPgBouncer = (
  server: ServerInfo,
  options: PgBouncerOptions
): Effect.Effect<PgBouncerInfo, PgBouncerError, Scope.Scope> =>
  Effect.gen(function* () {
    const binary = yield* ensurePgBouncer()
    const version =
      spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "pgbouncer"
    const port = yield* Effect.promise(() => freePort())
    const dir = mkdtempSync(join(tmpdir(), "pgline-bouncer-"))
    const user = unprivileged()
    const ini = [
      "[databases]",
      `${server.database} = host=${server.host} port=${server.port} dbname=${server.database} user=${server.user} password=${server.password}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      `pool_mode = ${options.poolMode}`,
      `default_pool_size = ${options.poolSize ?? 2}`,
      "max_client_conn = 500",
      "server_tls_sslmode = disable",
      "server_reset_query = DISCARD ALL",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "log_connections = 0",
      "log_disconnections = 0",
      ""
    ].join("\n")
    writeFileSync(join(dir, "pgbouncer.ini"), ini, { mode: 0o600 })
    writeFileSync(join(dir, "users.txt"), `"${quoteValue(server.user)}" ""\n`, { mode: 0o600 })
    if (user !== undefined) {
      for (const file of ["", "pgbouncer.ini", "users.txt"]) chownSync(join(dir, file), user.uid, user.gid)
      chmodSync(dir, 0o700)
    }
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = spawn(binary, [join(dir, "pgbouncer.ini")], {
          stdio: ["ignore", "pipe", "pipe"],
          ...(user !== undefined ? { uid: user.uid, gid: user.gid } : {})
        })
        c.stdout?.on("data", (d: Buffer) => {
          output += d.toString()
        })
        c.stderr?.on("data", (d: Buffer) => {
          output += d.toString()
        })
        c.on("error", (e) => {
          output += `\n${e.message}`
        })
        return c
      }),
      (c) =>
        Effect.promise(
          () =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve()
              c.once("exit", () => resolve())
              c.kill("SIGINT")
              setTimeout(() => c.kill("SIGKILL"), 3_000).unref()
            })
        ).pipe(Effect.andThen(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
    )
    yield* Effect.tryPromise({
      try: () => waitForPort("127.0.0.1", port, 10_000, child),
      catch: (e) => new PgBouncerError({ message: `${String(e)}\n${output}` })
    })
    const url = `postgresql://${encodeURIComponent(server.user)}@127.0.0.1:${port}/${encodeURIComponent(server.database)}?sslmode=disable`
    return {
      url,
      host: "127.0.0.1",
      port,
      poolMode: options.poolMode,
      version,
      log: () => {
        try {
          return output + readFileSync(join(dir, "pgbouncer.log"), "utf8")
        } catch {
          return output
        }
      }
    }
  })

/** PgBouncer for tests: `PgBouncer.start(server, { poolMode })`. */
export const PgBouncer = { start: startPgBouncer, ensureInstalled: ensurePgBouncer }
