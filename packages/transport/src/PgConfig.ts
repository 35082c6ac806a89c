/**
 * PgConfig: libpq-compatible connection settings, resolved once into `PgConnectOptions`.
 *
 * What it does
 * - Parses both libpq connection-string formats (`postgres[ql]://…` URIs and `key=value` strings);
 *   unknown keywords are errors, as in libpq.
 * - Merges sources in libpq's order: explicit options > connection string > service file entry
 *   (`service=` or PGSERVICE; PGSERVICEFILE or ~/.pg_service.conf, then
 *   PGSYSCONFDIR/pg_service.conf) > PG* environment variables > built-in defaults.
 * - Validates every value, and every combination libpq refuses, into a typed `PgConfigError`
 *   naming the keyword.
 * - Reads the environment through Effect's `ConfigProvider` (never `process.env` directly) and the
 *   home directory, OS user and files through the `System` reference, so both can be replaced.
 * - `lookupPassword` consults the password file per host at connect time, as libpq does.
 *
 * What it deliberately does not do
 * - Open sockets or files for TLS: certificate paths are passed through untouched. libpq's
 *   implicit ~/.postgresql/root.crt, postgresql.crt and postgresql.key (used when they exist) and
 *   "sslmode=require verifies the chain when a root certificate is present" are the transport's job.
 * - GSSAPI: `gssencmode` is validated but pgline never attempts GSS encryption, so `prefer` behaves
 *   as `disable` and `require` is refused here rather than failing later.
 * - Non-UTF-8 encodings: `client_encoding`/PGCLIENTENCODING accept only UTF8 (any spelling) and
 *   `auto`; pgline always sends client_encoding=UTF8.
 * - DateStyle: pgline decodes ISO dates only, so PGDATESTYLE keeps just its field order
 *   (`ISO, DMY`…) and a non-ISO output style becomes a warning; an explicit non-ISO DateStyle in
 *   `serverParams` is refused.
 * - Replication: `replication` is validated and kept; pgline does not speak the replication
 *   protocol, so what the session does with it is up to the caller.
 *
 * Defaults where libpq relies on compile-time choices
 * - Host: the compiled socket directory is approximated by the first existing directory of
 *   /var/run/postgresql (Debian, Ubuntu, Fedora packages) and /tmp (upstream builds), else the
 *   TCP host "localhost".
 * - System service directory: PGSYSCONFDIR, else /etc/postgresql-common (Debian's libpq).
 * - max_protocol_version defaults to 3.0 as in libpq 18; `latest` means 3.2.
 */
import { Config, ConfigProvider, Context, Effect, Option, Redacted } from "effect"
import { parseConnString } from "./internal/config/connString.ts"
import { configError, PgConfigError, PgConfigErrorReason } from "./internal/config/error.ts"
import { ENV_VARS, isKeyword } from "./internal/config/keywords.ts"
import { findPassword } from "./internal/config/passFile.ts"
import { type Env, resolve, SOCKET_DIR_CANDIDATES, type Sources } from "./internal/config/resolve.ts"
import { nodeSystem, type PgConfigSystem } from "./internal/config/system.ts"

export { PgConfigError, PgConfigErrorReason }
export type { FileInfo, PgConfigSystem } from "./internal/config/system.ts"

// --- resolved options ----------------------------------------------------------------------------

/** libpq's `sslmode`: whether TLS is used and how the server's certificate is checked. */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
/** libpq's `sslnegotiation`: `postgres` asks with SSLRequest first, `direct` starts TLS at once (PostgreSQL 17+). */
export type SslNegotiation = "postgres" | "direct"
/** A TLS protocol version, for `sslMinProtocolVersion` / `sslMaxProtocolVersion`. */
export type TlsVersion = "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3"
/** libpq's `channel_binding` for SCRAM: whether tls-server-end-point binding is used or required. */
export type ChannelBinding = "disable" | "prefer" | "require"
/** libpq's `sslcertmode`: whether a client certificate is sent. */
export type SslCertMode = "disable" | "allow" | "require"
/** libpq's `target_session_attrs`: which of several hosts is acceptable. */
export type TargetSessionAttrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby"
/** libpq's `load_balance_hosts`: try hosts in order, or shuffled. */
export type LoadBalanceHosts = "disable" | "random"
/** A wire-protocol version: 3.0, or 3.2 (PostgreSQL 18). */
export type ProtocolVersion = "3.0" | "3.2"
/** An authentication method named in `require_auth`. */
export type AuthMethod = "password" | "md5" | "gss" | "sspi" | "scram-sha-256" | "none"

/** A parsed `require_auth`: `allowed` is what the server may ask for (`none`: no authentication). */
export interface RequireAuth {
  /** True for the `!method,…` form. */
  readonly negated: boolean
  /** The methods as written, without "!". */
  readonly listed: ReadonlyArray<AuthMethod>
  /** The methods the connection accepts. */
  readonly allowed: ReadonlyArray<AuthMethod>
}

/** One connection target. libpq tries them in order (or shuffled with load_balance_hosts=random). */
export interface PgHost {
  /**
   * Host name, IP address, or a Unix-socket directory (starts with "/"; "@" for Linux's abstract
   * namespace). When only `hostaddr` was given this is the address.
   */
  readonly host: string
  /** Numeric address to connect to instead of resolving `host` (which still serves TLS and pgpass). */
  readonly hostaddr: string | undefined
  readonly port: number
}

/**
 * Connection settings resolved from every source (`PgConfig.make`, `PgConfig.config`): what a
 * session is opened with. Secrets are `Redacted`.
 */
export interface PgConnectOptions {
  readonly hosts: ReadonlyArray<PgHost>
  readonly database: string
  readonly user: string
  /** From the options, connection string, service or PGPASSWORD; the password file is read per host. */
  readonly password: Redacted.Redacted<string> | undefined
  /** The password file to consult (passfile, PGPASSFILE or ~/.pgpass); it may not exist. */
  readonly passfile: string | undefined
  readonly applicationName: string | undefined
  /** Sent as application_name when `applicationName` is unset. */
  readonly fallbackApplicationName: string | undefined
  /** The `options` startup parameter (command-line options for the server, e.g. "-c geqo=off"). */
  readonly options: string | undefined
  /** Extra startup parameters: PGTZ → TimeZone, PGGEQO → geqo, PGDATESTYLE → DateStyle, explicit ones. */
  readonly serverParams: Readonly<Record<string, string>>
  /** Always UTF8: what pgline sends as client_encoding. */
  readonly clientEncoding: "UTF8"
  /** Seconds per host; 0 waits forever; 1 is raised to 2 (libpq's rule). */
  readonly connectTimeout: number
  readonly keepalives: boolean
  /** Seconds; undefined leaves the OS default. */
  readonly keepalivesIdle: number | undefined
  /** Node cannot set it: the session refuses it (PgConfigError "unsupported") on TCP with keepalives on. */
  readonly keepalivesInterval: number | undefined
  /** Node cannot set it: the session refuses it (PgConfigError "unsupported") on TCP with keepalives on. */
  readonly keepalivesCount: number | undefined
  /** Milliseconds (TCP_USER_TIMEOUT); undefined or 0 leaves the OS default. Node cannot set it: the session refuses other values on TCP. */
  readonly tcpUserTimeout: number | undefined
  readonly sslmode: SslMode
  readonly sslnegotiation: SslNegotiation
  /** A file path, or "system" for the platform's trusted roots (forces verify-full). */
  readonly sslrootcert: string | undefined
  readonly sslcert: string | undefined
  readonly sslkey: string | undefined
  readonly sslpassword: Redacted.Redacted<string> | undefined
  readonly sslcrl: string | undefined
  readonly sslcrldir: string | undefined
  readonly sslsni: boolean
  readonly sslcertmode: SslCertMode
  readonly sslkeylogfile: string | undefined
  readonly sslMinProtocolVersion: TlsVersion
  readonly sslMaxProtocolVersion: TlsVersion | undefined
  readonly channelBinding: ChannelBinding
  readonly requireAuth: RequireAuth | undefined
  /** pgline never attempts GSS encryption; kept for fidelity. */
  readonly gssencmode: "disable" | "prefer"
  readonly gssdelegation: boolean
  readonly gsslib: "gssapi" | "sspi" | undefined
  readonly krbsrvname: string | undefined
  /** Expected OS user of the server process for Unix-socket connections; Node cannot check it, so the session refuses it there. */
  readonly requirepeer: string | undefined
  readonly targetSessionAttrs: TargetSessionAttrs
  readonly loadBalanceHosts: LoadBalanceHosts
  readonly minProtocolVersion: ProtocolVersion
  readonly maxProtocolVersion: ProtocolVersion
  readonly service: string | undefined
  /** Validated and kept as written (lower-cased): "database", or a boolean spelling. */
  readonly replication: string | undefined
  /** Settings accepted with a caveat (deprecated keyword, ignored DateStyle part…). Never printed. */
  readonly warnings: ReadonlyArray<string>
}

// --- input ------------------------------------------------------------------------------------------

type Opt<A> = A | undefined

/** Explicit settings; each beats the same setting from a connection string, service or environment. */
export interface PgConfigOptions {
  /** A connection string, URI or keyword/value (`connectionString` is an alias). */
  readonly url?: Opt<string>
  readonly connectionString?: Opt<string>
  /** Targets as objects; an alternative to the parallel host/hostaddr/port lists. */
  readonly hosts?: Opt<
    ReadonlyArray<{
      readonly host?: Opt<string>
      readonly hostaddr?: Opt<string>
      readonly port?: Opt<number | string>
    }>
  >
  readonly host?: Opt<string | ReadonlyArray<string>>
  readonly hostaddr?: Opt<string | ReadonlyArray<string>>
  readonly port?: Opt<number | string | ReadonlyArray<number | string>>
  readonly database?: Opt<string>
  readonly user?: Opt<string>
  readonly password?: Opt<string | Redacted.Redacted<string>>
  readonly passfile?: Opt<string>
  readonly applicationName?: Opt<string>
  readonly fallbackApplicationName?: Opt<string>
  readonly options?: Opt<string>
  readonly serverParams?: Opt<Readonly<Record<string, string>>>
  readonly clientEncoding?: Opt<string>
  readonly connectTimeout?: Opt<number>
  readonly keepalives?: Opt<boolean>
  readonly keepalivesIdle?: Opt<number>
  readonly keepalivesInterval?: Opt<number>
  readonly keepalivesCount?: Opt<number>
  readonly tcpUserTimeout?: Opt<number>
  readonly sslmode?: Opt<SslMode>
  readonly sslnegotiation?: Opt<SslNegotiation>
  readonly sslrootcert?: Opt<string>
  readonly sslcert?: Opt<string>
  readonly sslkey?: Opt<string>
  readonly sslpassword?: Opt<string | Redacted.Redacted<string>>
  readonly sslcrl?: Opt<string>
  readonly sslcrldir?: Opt<string>
  readonly sslsni?: Opt<boolean>
  readonly sslcertmode?: Opt<SslCertMode>
  readonly sslkeylogfile?: Opt<string>
  readonly sslMinProtocolVersion?: Opt<TlsVersion>
  readonly sslMaxProtocolVersion?: Opt<TlsVersion>
  readonly channelBinding?: Opt<ChannelBinding>
  /** "scram-sha-256,none", "!password,!md5", or the list. */
  readonly requireAuth?: Opt<string | ReadonlyArray<string>>
  readonly gssencmode?: Opt<"disable" | "prefer" | "require">
  readonly gssdelegation?: Opt<boolean>
  readonly gsslib?: Opt<"gssapi" | "sspi">
  readonly krbsrvname?: Opt<string>
  readonly requirepeer?: Opt<string>
  readonly targetSessionAttrs?: Opt<TargetSessionAttrs>
  readonly loadBalanceHosts?: Opt<LoadBalanceHosts>
  readonly minProtocolVersion?: Opt<ProtocolVersion | "latest">
  readonly maxProtocolVersion?: Opt<ProtocolVersion | "latest">
  readonly service?: Opt<string>
  readonly servicefile?: Opt<string>
  readonly replication?: Opt<string | boolean>
  /** Raw libpq keywords (`{ sslmode: "require" }`), below the named options above. */
  readonly keywords?: Opt<Readonly<Record<string, string>>>
}

/** A connection string, or explicit options (optionally with a `url`). */
export type PgConfigInput = string | PgConfigOptions

const NAMED: ReadonlyArray<readonly [keyof PgConfigOptions, string]> = [
  ["database", "dbname"],
  ["user", "user"],
  ["password", "password"],
  ["passfile", "passfile"],
  ["applicationName", "application_name"],
  ["fallbackApplicationName", "fallback_application_name"],
  ["options", "options"],
  ["clientEncoding", "client_encoding"],
  ["connectTimeout", "connect_timeout"],
  ["keepalives", "keepalives"],
  ["keepalivesIdle", "keepalives_idle"],
  ["keepalivesInterval", "keepalives_interval"],
  ["keepalivesCount", "keepalives_count"],
  ["tcpUserTimeout", "tcp_user_timeout"],
  ["sslmode", "sslmode"],
  ["sslnegotiation", "sslnegotiation"],
  ["sslrootcert", "sslrootcert"],
  ["sslcert", "sslcert"],
  ["sslkey", "sslkey"],
  ["sslpassword", "sslpassword"],
  ["sslcrl", "sslcrl"],
  ["sslcrldir", "sslcrldir"],
  ["sslsni", "sslsni"],
  ["sslcertmode", "sslcertmode"],
  ["sslkeylogfile", "sslkeylogfile"],
  ["sslMinProtocolVersion", "ssl_min_protocol_version"],
  ["sslMaxProtocolVersion", "ssl_max_protocol_version"],
  ["channelBinding", "channel_binding"],
  ["requireAuth", "require_auth"],
  ["gssencmode", "gssencmode"],
  ["gssdelegation", "gssdelegation"],
  ["gsslib", "gsslib"],
  ["krbsrvname", "krbsrvname"],
  ["requirepeer", "requirepeer"],
  ["targetSessionAttrs", "target_session_attrs"],
  ["loadBalanceHosts", "load_balance_hosts"],
  ["minProtocolVersion", "min_protocol_version"],
  ["maxProtocolVersion", "max_protocol_version"],
  ["service", "service"],
  ["servicefile", "servicefile"],
  ["replication", "replication"]
]

const BOOL_01 = new Set(["keepalives", "sslsni", "gssdelegation"])

const stringify = (keyword: string, value: unknown): string => {
  if (Redacted.isRedacted(value)) return Redacted.value(value as Redacted.Redacted<string>)
  if (typeof value === "string") return value
  if (typeof value === "boolean") {
    if (keyword === "replication") return value ? "true" : "false"
    if (BOOL_01.has(keyword)) return value ? "1" : "0"
  }
  if (typeof value === "number" && Number.isInteger(value)) return String(value)
  if (Array.isArray(value) && keyword === "require_auth") return value.join(",")
  throw configError(keyword, "invalid-value", `invalid value for option ${keyword}: ${String(value)}`)
}

const listOf = (keyword: string, v: unknown): string =>
  Array.isArray(v) ? v.map((x) => stringify(keyword, x)).join(",") : stringify(keyword, v)

const explicitKeywords = (o: PgConfigOptions): Array<readonly [string, string]> => {
  const out: Array<readonly [string, string]> = []
  if (o.keywords !== undefined) {
    for (const [k, v] of Object.entries(o.keywords)) {
      if (!isKeyword(k)) throw configError(k, "unknown-key", `invalid connection option "${k}"`)
      out.push([k, v])
    }
  }
  if (o.hosts !== undefined) {
    if (o.host !== undefined || o.hostaddr !== undefined || o.port !== undefined) {
      throw configError("hosts", "conflict", "give either hosts or host/hostaddr/port, not both")
    }
    out.push(["host", o.hosts.map((h) => h.host ?? "").join(",")])
    if (o.hosts.some((h) => h.hostaddr !== undefined)) {
      out.push(["hostaddr", o.hosts.map((h) => h.hostaddr ?? "").join(",")])
    }
    if (o.hosts.some((h) => h.port !== undefined)) {
      out.push([
        "port",
        o.hosts.map((h) => (h.port === undefined ? "" : stringify("port", h.port))).join(",")
      ])
    }
  }
  if (o.host !== undefined) out.push(["host", listOf("host", o.host)])
  if (o.hostaddr !== undefined) out.push(["hostaddr", listOf("hostaddr", o.hostaddr)])
  if (o.port !== undefined) out.push(["port", listOf("port", o.port)])
  for (const [name, keyword] of NAMED) {
    const v = o[name]
    if (v !== undefined) out.push([keyword, stringify(keyword, v)])
  }
  return out
}

const sourcesOf = (input: PgConfigInput | undefined, env: Env, url?: string): Sources => {
  if (typeof input === "string") {
    return { explicit: [], connString: parseConnString(input), serverParams: undefined, env }
  }
  const o = input ?? {}
  if (o.url !== undefined && o.connectionString !== undefined) {
    throw configError("url", "conflict", "give either url or connectionString, not both")
  }
  const s = o.url ?? o.connectionString ?? url
  return {
    explicit: explicitKeywords(o),
    connString: s === undefined ? [] : parseConnString(s),
    serverParams: o.serverParams,
    env
  }
}

/** Runs code that throws PgConfigError, moving that error to the error channel. */
const attempt = <A>(f: () => A): Effect.Effect<A, PgConfigError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (e) {
      if (e instanceof PgConfigError) return Effect.fail(e)
      throw e
    }
  })

// --- system ------------------------------------------------------------------------------------------

/** Home directory, OS user and file access; replace it (Effect.provideService) for hermetic tests. */
export const System: Context.Reference<PgConfigSystem> = Context.Reference<PgConfigSystem>(
  "@pgline/transport/PgConfig/System",
  { defaultValue: () => nodeSystem }
)

// --- environment -----------------------------------------------------------------------------------

const optionalStrings = (names: ReadonlyArray<string>): Config.Config<Env> =>
  Config.all(Object.fromEntries(names.map((n) => [n, Config.option(Config.String(n))]))).pipe(
    Config.map((r): Env => {
      const env: Record<string, string | undefined> = {}
      for (const [k, v] of Object.entries(r)) env[k] = Option.getOrUndefined(v)
      return env
    })
  )

/** PG* variables (optionally under a prefix) plus HOME (never prefixed: it is the OS's). */
const envConfig = (prefix: string | undefined): Config.Config<Env> => {
  const pg =
    prefix === undefined ? optionalStrings(ENV_VARS) : Config.nested(optionalStrings(ENV_VARS), prefix)
  return Config.all({ pg, home: optionalStrings(["HOME"]) }).pipe(
    Config.map(({ pg, home }) => ({ ...pg, ...home }))
  )
}

const readEnv = (): Effect.Effect<Env, PgConfigError> =>
  Effect.mapError(envConfig(undefined), (e) =>
    configError("environment", "environment", `could not read the environment: ${e.message}`)
  )

// --- public API ----------------------------------------------------------------------------------

/**
 * Parses a connection string (URI or keyword/value) into libpq keywords → values, like
 * PQconninfoParse: syntax and keyword names are checked, values are not (see `make`).
 */
export const parseConnectionString = (
  s: string
): Effect.Effect<Readonly<Record<string, string>>, PgConfigError> =>
  attempt(() => Object.fromEntries(parseConnString(s)))

/**
 * Resolves settings into `PgConnectOptions`: explicit options > connection string > service file >
 * environment (read through the current ConfigProvider) > defaults.
 */
export const make: (input?: PgConfigInput) => Effect.Effect<PgConnectOptions, PgConfigError> = Effect.fn(
  "PgConfig.make"
)(function* (input?: PgConfigInput) {
  const env = yield* readEnv()
  const system = yield* System
  return yield* attempt(() => resolve(sourcesOf(input, env), system))
})

/**
 * A `Config` reading libpq's environment variables, for `PgClient.layerConfig`. With a prefix the
 * variables are looked up under it (`config("ANALYTICS")` reads ANALYTICS_PGHOST… through
 * ConfigProvider's nesting) and ANALYTICS_URL, if set, is a connection string; without one,
 * DATABASE_URL plays that part. The connection string beats the PG* variables, as in libpq.
 * Secrets come back as `Redacted`. A `PgConfigError` surfaces as a ConfigError whose SourceError
 * carries it as `cause`.
 */
export const config = (prefix?: string): Config.Config<PgConnectOptions> => {
  const urlKey =
    prefix === undefined ? Config.String("DATABASE_URL") : Config.nested(Config.String("URL"), prefix)
  return Config.all({ env: envConfig(prefix), url: Config.option(urlKey) }).pipe(
    Config.mapEffect(({ env, url }) =>
      Effect.flatMap(System, (system) =>
        attempt(() => resolve(sourcesOf(undefined, env, Option.getOrUndefined(url)), system))
      ).pipe(
        Effect.mapError(
          (e) =>
            new Config.ConfigError(
              new ConfigProvider.SourceError({ message: `${e.key}: ${e.message}`, cause: e })
            )
        )
      )
    )
  )
}

/** The outcome of a password lookup. */
export interface PgPasswordLookup {
  readonly password: Redacted.Redacted<string> | undefined
  /** Where the password came from: the resolved options, the password file, or nowhere. */
  readonly source: "options" | "passfile" | "none"
  /** Why the password file was skipped, if it was (for the caller to log; never printed here). */
  readonly warnings: ReadonlyArray<string>
}

const redactedNonEmpty = (r: Redacted.Redacted<string> | undefined): boolean =>
  r !== undefined && Redacted.value(r) !== ""

/**
 * The password to use for one host: the configured one if any, else the first matching line of the
 * password file (libpq consults it per host, at connect time). A Unix-socket connection to the
 * default socket directory, or one with no host at all, matches password-file lines for
 * "localhost". A file readable or writable by group or others is ignored with a warning.
 */
export const lookupPassword = (
  options: PgConnectOptions,
  host: PgHost | string,
  port?: number
): Effect.Effect<PgPasswordLookup> =>
  Effect.map(System, (system): PgPasswordLookup => {
    if (redactedNonEmpty(options.password))
      return { password: options.password, source: "options", warnings: [] }
    const none = (warnings: ReadonlyArray<string> = []): PgPasswordLookup => ({
      password: undefined,
      source: "none",
      warnings
    })
    const file = options.passfile
    if (file === undefined) return none()
    const st = system.stat(file)
    if (st === undefined) return none()
    if (!st.isFile) return none([`password file "${file}" is not a regular file; ignored`])
    if (system.checkPermissions && (st.mode & 0o077) !== 0) {
      return none([
        `password file "${file}" is accessible by group or others (mode 0${(st.mode & 0o777).toString(8)}); ` +
          "ignored: restrict it to its owner (chmod 0600)"
      ])
    }
    const text = system.readFile(file)
    if (text === undefined) return none()
    let name = typeof host === "string" ? host : host.host !== "" ? host.host : (host.hostaddr ?? "")
    if (name === "" || SOCKET_DIR_CANDIDATES.includes(name)) name = "localhost"
    const p = port ?? (typeof host === "string" ? undefined : host.port) ?? 5432
    const physicalReplication =
      options.replication !== undefined && ["true", "on", "yes", "1"].includes(options.replication)
    const database = physicalReplication ? "replication" : options.database
    const found = findPassword(text, name, String(p), database, options.user)
    return found === undefined ? none() : { password: Redacted.make(found), source: "passfile", warnings: [] }
  })
