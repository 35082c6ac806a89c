/**
 * Merging and validation: explicit options > connection string > service file > environment >
 * built-in defaults (libpq's order), then every value checked and typed.
 *
 * Functions here throw PgConfigError; PgConfig.ts catches at the boundary.
 */
import { isIP } from "node:net"
import { Redacted } from "effect"
import { configError, type PgConfigError } from "./error.ts"
import { type ConnInfo, KEYWORDS, type Setting } from "./keywords.ts"
import { findService } from "./serviceFile.ts"
import type { PgConfigSystem } from "./system.ts"
import type * as T from "../../PgConfig.ts"

export type Env = Readonly<Record<string, string | undefined>>

export interface Sources {
  /** Keyword settings given as explicit options (highest precedence). */
  readonly explicit: ReadonlyArray<readonly [string, string]>
  /** Keyword settings parsed from the connection string. */
  readonly connString: ReadonlyArray<readonly [string, string]>
  /** Extra startup parameters given explicitly. */
  readonly serverParams: Readonly<Record<string, string>> | undefined
  /** PG* variables and HOME. */
  readonly env: Env
}

export const DEFAULT_PORT = 5432
/** Where distributions' servers put their socket, in the order we probe them (see PgConfig.ts). */
export const SOCKET_DIR_CANDIDATES: ReadonlyArray<string> = ["/var/run/postgresql", "/tmp"]
/** System service-file directory when PGSYSCONFDIR is unset: Debian's libpq build uses it. */
export const DEFAULT_SYSCONFDIR = "/etc/postgresql-common"

const fromSource = (entries: ReadonlyArray<readonly [string, string]>, source: string, into: ConnInfo) => {
  for (const [k, v] of entries) into.set(k, { value: v, source })
}

const homeOf = (env: Env, system: PgConfigSystem): string | undefined => {
  const h = env.HOME
  return h !== undefined && h !== "" ? h : system.homeDir()
}

const joinPath = (dir: string, file: string): string => (dir.endsWith("/") ? dir + file : `${dir}/${file}`)

/** Merges every source into one keyword map, libpq's precedence. */
export const merge = (src: Sources, system: PgConfigSystem): ConnInfo => {
  const info: ConnInfo = new Map()
  fromSource(src.connString, "connection string", info)
  fromSource(src.explicit, "option", info)

  // The service file fills what the string and options left unset.
  const service = info.get("service")?.value ?? nonEmpty(src.env.PGSERVICE)
  if (service !== undefined && service !== "") {
    const settings = readService(service, info, src.env, system)
    for (const [k, v] of settings.entries) {
      if (!info.has(k)) info.set(k, { value: v, source: `service "${service}" in ${settings.file}` })
    }
    if (!info.has("service"))
      info.set("service", { value: service, source: "environment variable PGSERVICE" })
  }

  // Then the environment.
  for (const k of KEYWORDS) {
    if (k.envVar === undefined || info.has(k.keyword)) continue
    const v = src.env[k.envVar]
    if (v !== undefined) info.set(k.keyword, { value: v, source: `environment variable ${k.envVar}` })
  }
  return info
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === "" ? undefined : s)

const readService = (
  service: string,
  info: ConnInfo,
  env: Env,
  system: PgConfigSystem
): { entries: Array<[string, string]>; file: string } => {
  const files: Array<string> = []
  const userFile = nonEmpty(info.get("servicefile")?.value) ?? nonEmpty(env.PGSERVICEFILE)
  if (userFile !== undefined) files.push(userFile)
  else {
    const home = homeOf(env, system)
    if (home !== undefined) files.push(joinPath(home, ".pg_service.conf"))
  }
  files.push(joinPath(nonEmpty(env.PGSYSCONFDIR) ?? DEFAULT_SYSCONFDIR, "pg_service.conf"))
  for (const file of files) {
    const text = system.readFile(file)
    if (text === undefined) continue
    const entries = findService(text, service, file)
    if (entries !== undefined) return { entries, file }
  }
  throw configError("service", "service-not-found", `definition of service "${service}" not found`)
}

// --- value checks ------------------------------------------------------------------------------

const describe = (key: string, s: Setting): string => `${key}=${JSON.stringify(s.value)} (from ${s.source})`

const invalid = (key: string, s: Setting, expected: string): PgConfigError =>
  configError(key, "invalid-value", `invalid value for ${describe(key, s)}: expected ${expected}`)

const INT = /^\s*[+-]?\d+\s*$/

const intOf = (
  info: ConnInfo,
  key: string,
  opts: { min?: number; max?: number } = {}
): number | undefined => {
  const s = info.get(key)
  if (s === undefined || s.value === "") return undefined
  if (!INT.test(s.value)) throw invalid(key, s, "an integer")
  const n = Number.parseInt(s.value.trim(), 10)
  if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw invalid(key, s, `an integer between ${opts.min ?? "-∞"} and ${opts.max ?? "∞"}`)
  }
  return n
}

const enumOf = <const L extends string>(
  info: ConnInfo,
  key: string,
  allowed: ReadonlyArray<L>,
  opts: { caseInsensitive?: boolean } = {}
): L | undefined => {
  const s = info.get(key)
  if (s === undefined || s.value === "") return undefined
  const v = opts.caseInsensitive ? s.value.toLowerCase() : s.value
  const hit = allowed.find((a) => (opts.caseInsensitive ? a.toLowerCase() : a) === v)
  if (hit === undefined) throw invalid(key, s, allowed.map((a) => `"${a}"`).join(", "))
  return hit
}

const bool01 = (info: ConnInfo, key: string, dflt: boolean): boolean => {
  const v = enumOf(info, key, ["0", "1"])
  return v === undefined ? dflt : v === "1"
}

const str = (info: ConnInfo, key: string): string | undefined => nonEmpty(info.get(key)?.value)

const splitList = (s: string | undefined): Array<string> => (s === undefined || s === "" ? [] : s.split(","))

// --- require_auth ---------------------------------------------------------------------------------

export const AUTH_METHODS: ReadonlyArray<T.AuthMethod> = [
  "password",
  "md5",
  "gss",
  "sspi",
  "scram-sha-256",
  "none"
]

const parseRequireAuth = (s: Setting): T.RequireAuth => {
  const listed: Array<T.AuthMethod> = []
  let negated: boolean | undefined
  for (const raw of s.value.split(",")) {
    const item = raw.trim()
    const neg = item.startsWith("!")
    const name = neg ? item.slice(1) : item
    if (negated !== undefined && negated !== neg) {
      throw configError(
        "require_auth",
        "conflict",
        `${describe("require_auth", s)} mixes negated ("!${name}") and plain methods; use one form`
      )
    }
    negated = neg
    const method = AUTH_METHODS.find((m) => m === name)
    if (method === undefined) {
      throw invalid(
        "require_auth",
        s,
        `a comma-separated list of ${AUTH_METHODS.join(", ")} (each optionally "!"-prefixed)`
      )
    }
    if (listed.includes(method)) {
      throw configError(
        "require_auth",
        "invalid-value",
        `${describe("require_auth", s)} lists "${name}" more than once`
      )
    }
    listed.push(method)
  }
  const allowed = negated ? AUTH_METHODS.filter((m) => !listed.includes(m)) : listed
  if (allowed.length === 0) {
    throw configError(
      "require_auth",
      "invalid-value",
      `${describe("require_auth", s)} allows no method at all`
    )
  }
  return { negated: negated ?? false, listed, allowed }
}

// --- startup parameters from the environment ------------------------------------------------------

const DATESTYLE_OUTPUT = ["iso", "sql", "postgres", "german"]
const DATESTYLE_ORDER: Readonly<Record<string, string>> = {
  dmy: "DMY",
  euro: "DMY",
  european: "DMY",
  mdy: "MDY",
  us: "MDY",
  noneuro: "MDY",
  noneuropean: "MDY",
  ymd: "YMD"
}

/** PGDATESTYLE keeps its field order (it affects how ambiguous input dates are read); output is ISO. */
const dateStyleFromEnv = (value: string, warnings: Array<string>): string => {
  let order: string | undefined
  let output: string | undefined
  for (const tok of value.split(/[\s,]+/)) {
    if (tok === "") continue
    const t = tok.toLowerCase()
    if (DATESTYLE_OUTPUT.includes(t)) output = t
    else if (DATESTYLE_ORDER[t] !== undefined) order = DATESTYLE_ORDER[t]
    else {
      throw configError(
        "PGDATESTYLE",
        "invalid-value",
        `invalid PGDATESTYLE ${JSON.stringify(value)}: unknown "${tok}"`
      )
    }
  }
  if (output !== undefined && output !== "iso") {
    warnings.push(
      `PGDATESTYLE=${JSON.stringify(value)}: output style "${output}" ignored, pgline decodes ISO dates only`
    )
  }
  return order === undefined ? "ISO" : `ISO, ${order}`
}

const RESERVED_PARAMS: Readonly<Record<string, string>> = {
  user: "user",
  database: "database",
  options: "options",
  replication: "replication",
  application_name: "applicationName",
  client_encoding: "clientEncoding"
}

const checkServerParams = (params: Readonly<Record<string, string>>): void => {
  for (const [name, value] of Object.entries(params)) {
    const key = `serverParams.${name}`
    if (name === "" || name.includes("\0") || value.includes("\0")) {
      throw configError(
        key,
        "invalid-value",
        `startup parameter names and values must be non-empty and free of NUL`
      )
    }
    const lower = name.toLowerCase()
    const dedicated = RESERVED_PARAMS[lower]
    if (dedicated !== undefined) {
      throw configError(
        key,
        "conflict",
        `startup parameter "${name}" is set through the "${dedicated}" option`
      )
    }
    if (lower.startsWith("_pq_.")) {
      throw configError(key, "unsupported", `protocol options ("${name}") are negotiated by pgline itself`)
    }
    if (lower === "datestyle" && !/^\s*iso\b/i.test(value)) {
      throw configError(
        key,
        "unsupported",
        `DateStyle must keep the ISO output style (pgline decodes ISO dates only)`
      )
    }
  }
}

// --- resolve ---------------------------------------------------------------------------------------

const isDir = (system: PgConfigSystem, path: string): boolean => {
  const st = system.stat(path)
  return st !== undefined && !st.isFile
}

/** libpq's compiled-in socket directory, approximated: the first candidate that exists. */
export const defaultHost = (system: PgConfigSystem): string =>
  SOCKET_DIR_CANDIDATES.find((d) => isDir(system, d)) ?? "localhost"

const resolveHosts = (info: ConnInfo, system: PgConfigSystem): Array<T.PgHost> => {
  const hostS = info.get("host")
  const addrS = info.get("hostaddr")
  const portS = info.get("port")
  const hosts = splitList(hostS?.value)
  const addrs = splitList(addrS?.value)
  let count = Math.max(hosts.length, 1)
  if (addrs.length > 0) {
    if (hosts.length > 0 && hosts.length !== addrs.length) {
      throw configError(
        "hostaddr",
        "conflict",
        `could not match ${hosts.length} host names to ${addrs.length} hostaddr values`
      )
    }
    count = addrs.length
  }
  const ports = splitList(portS?.value)
  if (ports.length > 1 && ports.length !== count) {
    throw configError("port", "conflict", `could not match ${ports.length} port numbers to ${count} hosts`)
  }
  const fallback = hosts.some((h) => h.trim() === "") || hosts.length === 0 ? defaultHost(system) : ""
  const out: Array<T.PgHost> = []
  for (let i = 0; i < count; i++) {
    const addr = (addrs[i] ?? "").trim()
    if (addr !== "" && isIP(addr) === 0) {
      throw configError(
        "hostaddr",
        "invalid-value",
        `invalid value for ${describe("hostaddr", addrS!)}: "${addr}" is not a numeric IP address`
      )
    }
    const name = (hosts[i] ?? "").trim()
    const host = name !== "" ? name : addr !== "" ? addr : fallback
    const portText = (ports.length === 1 ? ports[0]! : (ports[i] ?? "")).trim()
    let port = DEFAULT_PORT
    if (portText !== "") {
      if (!/^\d+$/.test(portText)) throw invalid("port", portS!, "a port number (1-65535)")
      port = Number.parseInt(portText, 10)
      if (port < 1 || port > 65535) throw invalid("port", portS!, "a port number (1-65535)")
    }
    out.push({ host, hostaddr: addr === "" ? undefined : addr, port })
  }
  return out
}

const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const
const TLS_VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const
const PROTOCOLS = ["3.0", "3.2", "latest"] as const

export const resolve = (src: Sources, system: PgConfigSystem): T.PgConnectOptions => {
  const info = merge(src, system)
  for (const [key, s] of info) {
    // Startup-packet strings are NUL-terminated: a NUL would let a value smuggle in parameters.
    if (s.value.includes("\0")) {
      throw configError(
        key,
        "invalid-value",
        `invalid value for ${key} (from ${s.source}): contains a NUL character`
      )
    }
  }
  const warnings: Array<string> = []
  const env = src.env

  const hosts = resolveHosts(info, system)

  const user = str(info, "user") ?? system.userName()
  if (user === undefined) {
    throw configError(
      "user",
      "invalid-value",
      "no user name given and the OS user name could not be determined"
    )
  }
  const database = str(info, "dbname") ?? user

  const passwordS = info.get("password")
  const password =
    passwordS !== undefined && passwordS.value !== "" ? Redacted.make(passwordS.value) : undefined
  let passfile = str(info, "passfile")
  if (passfile === undefined) {
    const home = homeOf(env, system)
    if (home !== undefined) passfile = joinPath(home, ".pgpass")
  }

  const timeout = intOf(info, "connect_timeout") ?? 0
  // libpq: zero or negative waits forever; 1 second is raised to 2 (too short to be meaningful).
  const connectTimeout = timeout <= 0 ? 0 : timeout === 1 ? 2 : timeout

  const keepalivesN = intOf(info, "keepalives")
  const keepalives = keepalivesN === undefined ? true : keepalivesN !== 0

  // sslmode: explicit > requiressl (deprecated) > sslrootcert=system implies verify-full > prefer.
  let sslmode = enumOf(info, "sslmode", SSL_MODES)
  const sslmodeSet = sslmode !== undefined
  const requiressl = enumOf(info, "requiressl", ["0", "1"])
  if (sslmode === undefined && requiressl !== undefined) {
    sslmode = requiressl === "1" ? "require" : "prefer"
    warnings.push(`requiressl is deprecated; use sslmode=${sslmode}`)
  }
  const sslrootcert = str(info, "sslrootcert")
  if (sslrootcert === "system") {
    if (sslmode === undefined) sslmode = "verify-full"
    else if (sslmode !== "verify-full") {
      throw configError(
        "sslmode",
        "conflict",
        `sslmode "${sslmode}" is too weak for sslrootcert=system (any system-trusted certificate would pass); use "verify-full"`
      )
    }
  }
  sslmode ??= "prefer"

  const sslnegotiation = enumOf(info, "sslnegotiation", ["postgres", "direct"]) ?? "postgres"
  if (sslnegotiation === "direct" && (sslmode === "disable" || sslmode === "allow" || sslmode === "prefer")) {
    throw configError(
      "sslnegotiation",
      "conflict",
      `sslnegotiation=direct needs sslmode "require", "verify-ca" or "verify-full" (sslmode is "${sslmode}"${sslmodeSet ? "" : " by default"})`
    )
  }

  const sslMin =
    enumOf(info, "ssl_min_protocol_version", TLS_VERSIONS, { caseInsensitive: true }) ?? "TLSv1.2"
  const sslMax = enumOf(info, "ssl_max_protocol_version", TLS_VERSIONS, { caseInsensitive: true })
  if (sslMax !== undefined && TLS_VERSIONS.indexOf(sslMin) > TLS_VERSIONS.indexOf(sslMax)) {
    throw configError(
      "ssl_min_protocol_version",
      "conflict",
      `invalid SSL protocol version range: minimum ${sslMin} is above maximum ${sslMax}`
    )
  }

  const proto = (v: (typeof PROTOCOLS)[number] | undefined, dflt: T.ProtocolVersion): T.ProtocolVersion =>
    v === undefined ? dflt : v === "latest" ? "3.2" : v
  const minProtocolVersion = proto(enumOf(info, "min_protocol_version", PROTOCOLS), "3.0")
  const maxProtocolVersion = proto(enumOf(info, "max_protocol_version", PROTOCOLS), "3.0")
  if (minProtocolVersion > maxProtocolVersion) {
    throw configError(
      "min_protocol_version",
      "conflict",
      `min_protocol_version ${minProtocolVersion} is greater than max_protocol_version ${maxProtocolVersion}`
    )
  }

  const gss = enumOf(info, "gssencmode", ["disable", "prefer", "require"])
  if (gss === "require") {
    throw configError(
      "gssencmode",
      "unsupported",
      `gssencmode=require (from ${info.get("gssencmode")!.source}): pgline does not implement GSSAPI encryption`
    )
  }
  const gssencmode: "disable" | "prefer" = gss ?? "prefer"

  const encS = info.get("client_encoding")
  if (encS !== undefined && encS.value !== "") {
    const norm = encS.value.toLowerCase().replace(/[-_]/g, "")
    if (norm !== "utf8" && norm !== "unicode" && norm !== "auto") {
      throw configError(
        "client_encoding",
        "unsupported",
        `${describe("client_encoding", encS)}: pgline always speaks UTF8 (accepted: "UTF8", "auto")`
      )
    }
  }

  const replS = info.get("replication")
  let replication: string | undefined
  if (replS !== undefined && replS.value !== "") {
    const v = replS.value.toLowerCase()
    if (!["database", "true", "false", "on", "off", "yes", "no", "1", "0"].includes(v)) {
      throw invalid("replication", replS, `"database" or a boolean (true/false, on/off, yes/no, 1/0)`)
    }
    replication = v
  }

  const requireAuthS = info.get("require_auth")
  const requireAuth =
    requireAuthS !== undefined && requireAuthS.value !== "" ? parseRequireAuth(requireAuthS) : undefined

  bool01(info, "sslcompression", false)
  const gssdelegation = bool01(info, "gssdelegation", false)
  const gsslib = enumOf(info, "gsslib", ["gssapi", "sspi"])

  // Startup parameters: environment (PGTZ, PGGEQO, PGDATESTYLE) under explicit serverParams.
  const serverParams: Record<string, string> = {}
  const tz = nonEmpty(env.PGTZ)
  if (tz !== undefined) serverParams.TimeZone = tz
  const geqo = nonEmpty(env.PGGEQO)
  if (geqo !== undefined) serverParams.geqo = geqo
  const ds = nonEmpty(env.PGDATESTYLE)
  if (ds !== undefined) serverParams.DateStyle = dateStyleFromEnv(ds, warnings)
  if (src.serverParams !== undefined) {
    checkServerParams(src.serverParams)
    for (const [k, v] of Object.entries(src.serverParams)) {
      // One spelling per parameter: an explicit "timezone" replaces PGTZ's "TimeZone".
      for (const existing of Object.keys(serverParams)) {
        if (existing.toLowerCase() === k.toLowerCase()) delete serverParams[existing]
      }
      serverParams[k] = v
    }
  }

  const sslpasswordS = info.get("sslpassword")

  return {
    hosts,
    database,
    user,
    password,
    passfile,
    applicationName: str(info, "application_name"),
    fallbackApplicationName: str(info, "fallback_application_name"),
    options: str(info, "options"),
    serverParams,
    clientEncoding: "UTF8",
    connectTimeout,
    keepalives,
    keepalivesIdle: intOf(info, "keepalives_idle", { min: 0 }),
    keepalivesInterval: intOf(info, "keepalives_interval", { min: 0 }),
    keepalivesCount: intOf(info, "keepalives_count", { min: 0 }),
    tcpUserTimeout: intOf(info, "tcp_user_timeout", { min: 0 }),
    sslmode,
    sslnegotiation,
    sslrootcert,
    sslcert: str(info, "sslcert"),
    sslkey: str(info, "sslkey"),
    sslpassword:
      sslpasswordS !== undefined && sslpasswordS.value !== "" ? Redacted.make(sslpasswordS.value) : undefined,
    sslcrl: str(info, "sslcrl"),
    sslcrldir: str(info, "sslcrldir"),
    sslsni: bool01(info, "sslsni", true),
    sslcertmode: enumOf(info, "sslcertmode", ["disable", "allow", "require"]) ?? "allow",
    sslkeylogfile: str(info, "sslkeylogfile"),
    sslMinProtocolVersion: sslMin,
    sslMaxProtocolVersion: sslMax,
    channelBinding: enumOf(info, "channel_binding", ["disable", "prefer", "require"]) ?? "prefer",
    requireAuth,
    gssencmode,
    gssdelegation,
    gsslib,
    krbsrvname: str(info, "krbsrvname"),
    requirepeer: str(info, "requirepeer"),
    targetSessionAttrs:
      enumOf(info, "target_session_attrs", [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby"
      ]) ?? "any",
    loadBalanceHosts: enumOf(info, "load_balance_hosts", ["disable", "random"]) ?? "disable",
    minProtocolVersion,
    maxProtocolVersion,
    service: str(info, "service"),
    replication,
    warnings
  }
}
