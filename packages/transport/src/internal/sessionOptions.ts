/**
 * Resolved configuration (PgConfig) → what a session needs: start-up parameters pgline pins
 * (client_encoding UTF8 and an ISO DateStyle, which the text decoders rely on, and
 * standard_conforming_strings on, which its reading of SQL text relies on), the password per
 * host (explicit, else the password file, looked up before connecting), the require_auth policy and
 * the TLS settings.
 */
import { Effect, Redacted } from "effect"
import type { PgConnectOptions } from "../PgConfig.ts"
import { lookupPassword, System } from "../PgConfig.ts"
import type { SessionOptions } from "../Session.ts"
import { PgConfigError } from "./config/error.ts"
import { parseRequireAuth, requireAuthAny } from "./auth/requireAuth.ts"
import { type Endpoint, usesUnixSocket } from "./sockets.ts"

const endpointKey = (e: Endpoint) => `${e.host}\u0000${e.hostaddr ?? ""}\u0000${e.port}`

/**
 * Settings libpq honours that Node gives no way to: refused rather than silently not applied,
 * each only where libpq would apply it.
 * - requirepeer: checking the server process's user needs the socket's peer credentials
 *   (SO_PEERCRED / getpeereid), which Node does not expose; libpq checks it on Unix sockets only.
 * - keepalives_interval, keepalives_count: Node sets only the idle time (setKeepAlive); libpq
 *   applies them to TCP connections with keepalives on.
 * - tcp_user_timeout: Node cannot set TCP_USER_TIMEOUT; 0 (the system default) changes nothing.
 */
/** UTF8 in any spelling the server takes for it (utf-8, Unicode, …). */
const isUtf8 = (value: string): boolean => {
  // The server compares encoding names with every non-alphanumeric character left out.
  const v = value.replace(/[^A-Za-z0-9]/g, "").toUpperCase()
  return v === "UTF8" || v === "UNICODE"
}

/** A boolean setting's value the server reads as true: on, or a prefix of true or yes, or 1. */
const isOn = (value: string): boolean => {
  const v = value.trim().toLowerCase()
  return v === "on" || v === "1" || (v.length > 0 && ("true".startsWith(v) || "yes".startsWith(v)))
}

/** The IntervalStyle values whose text pgline's interval decoder reads. */
export const isReadableIntervalStyle = (style: string): boolean => {
  const s = style.trim().toLowerCase()
  return s === "postgres" || s === "iso_8601"
}

/**
 * Why a session setting the server reports (ParameterStatus) leaves the session unreadable to
 * pgline, or undefined when it does not: client_encoding other than UTF8 (text would be written
 * and read in the wrong encoding: a SET client_encoding = 'LATIN1' stored "é" as "Ã©" while
 * reading it back unchanged), a DateStyle not ISO or an IntervalStyle pgline cannot read (dates
 * and intervals in text results would be misread). client_encoding and DateStyle are pinned at
 * start-up (IntervalStyle is not: PgBouncer refuses it as a start-up parameter); the client closes
 * a connection whose setting is or becomes one of these. extra_float_digits below 1 (the server
 * rounds float4 and float8 in text results, which a statement's first run reads) is never
 * reported: the client refuses statements and serverParams that set it.
 */
export const unreadableSetting = (name: string, value: string): string | undefined => {
  switch (name) {
    case "client_encoding":
      return isUtf8(value) ? undefined : `client_encoding is ${value}: pgline reads and writes UTF-8 only`
    case "DateStyle":
      return value.trim().toUpperCase().startsWith("ISO")
        ? undefined
        : `DateStyle is ${value}: pgline reads dates in the ISO style only`
    case "IntervalStyle":
      return isReadableIntervalStyle(value)
        ? undefined
        : `IntervalStyle is ${value}: pgline reads intervals in the postgres and iso_8601 styles (serverParams: { IntervalStyle: "postgres" } sets it for pgline's sessions)`
    case "standard_conforming_strings":
      return isOn(value)
        ? undefined
        : `standard_conforming_strings is ${value}: pgline reads SQL text (where a statement ends, what it drops or commits) with backslashes as plain characters in '…' strings, as the server does only with it on`
    case "extra_float_digits": {
      // The server takes a fractional value rounded; DEFAULT (1) and anything from 1 up is exact.
      const digits = value.trim().toUpperCase() === "DEFAULT" ? 1 : Math.round(Number(value))
      return digits >= 1
        ? undefined
        : `extra_float_digits is ${value}: below 1 the server rounds the float4 and float8 values it sends as text, as pgline reads a statement's first results`
    }
    default:
      return undefined
  }
}

/**
 * The value the session starts with for `name` as the user asked for it: in serverParams, or else
 * the last one in options as the server's command line takes it (-c name=value, --name=value,
 * dashes for underscores): the server applies them in that order.
 */
const startupSetting = (options: PgConnectOptions, name: string): string | undefined =>
  options.serverParams[name] ??
  [
    ...(options.options ?? "").matchAll(
      new RegExp(`(?:^|\\s)(?:-c\\s*|--)${name.replaceAll("_", "[-_]")}=(\\S*)`, "gi")
    )
  ].at(-1)?.[1]

const unsupported = (options: PgConnectOptions): PgConfigError | undefined => {
  const refuse = (key: string, message: string) => new PgConfigError({ key, message, reason: "unsupported" })
  const unix = options.hosts.some(usesUnixSocket)
  const tcp = options.hosts.some((h) => !usesUnixSocket(h))
  if (options.requirepeer !== undefined && options.requirepeer !== "" && unix) {
    return refuse(
      "requirepeer",
      "requirepeer is not supported: Node cannot read a Unix socket's peer credentials to check the server's user"
    )
  }
  if (tcp && options.keepalives) {
    if (options.keepalivesInterval !== undefined) {
      return refuse(
        "keepalives_interval",
        "keepalives_interval is not supported: Node sets only the keepalive idle time (keepalives_idle)"
      )
    }
    if (options.keepalivesCount !== undefined) {
      return refuse(
        "keepalives_count",
        "keepalives_count is not supported: Node sets only the keepalive idle time (keepalives_idle)"
      )
    }
  }
  if (tcp && options.tcpUserTimeout !== undefined && options.tcpUserTimeout !== 0) {
    return refuse("tcp_user_timeout", "tcp_user_timeout is not supported: Node cannot set TCP_USER_TIMEOUT")
  }
  const floatDigits = startupSetting(options, "extra_float_digits")
  if (floatDigits !== undefined && unreadableSetting("extra_float_digits", floatDigits) !== undefined) {
    return refuse(
      "extra_float_digits",
      `extra_float_digits ${floatDigits} is not supported: below 1 the server rounds floats it sends as text`
    )
  }
  // Pinned on at start-up; a start-up parameter would override a command-line one silently.
  const conforming = startupSetting(options, "standard_conforming_strings")
  if (conforming !== undefined && !isOn(conforming)) {
    return refuse(
      "standard_conforming_strings",
      `standard_conforming_strings ${conforming} is not supported: pgline reads SQL text with it on`
    )
  }
  const intervalStyle = options.serverParams["IntervalStyle"]
  if (intervalStyle !== undefined && !isReadableIntervalStyle(intervalStyle)) {
    return refuse(
      "IntervalStyle",
      `IntervalStyle ${intervalStyle} is not supported: pgline reads intervals in the postgres and iso_8601 styles`
    )
  }
  return undefined
}

export const toSessionOptions = (
  options: PgConnectOptions,
  extra: { readonly maxMessageSize?: number | undefined } = {}
): Effect.Effect<SessionOptions, PgConfigError> =>
  Effect.gen(function* () {
    // The password file is read at each connection attempt, as libpq does: a password rotated in
    // it reaches the pool's next connections.
    const system = yield* System
    const hosts = new Map(options.hosts.map((host) => [endpointKey(host), host]))
    const lookup = (endpoint: Endpoint) => {
      const host = hosts.get(endpointKey(endpoint))
      return host === undefined
        ? undefined
        : Effect.runSync(Effect.provideService(lookupPassword(options, host), System, system))
    }
    let requireAuth = requireAuthAny
    if (options.requireAuth !== undefined) {
      const raw = options.requireAuth.listed
        .map((m) => (options.requireAuth!.negated ? `!${m}` : m))
        .join(",")
      const parsed = parseRequireAuth(raw)
      if (parsed._tag === "Failure") {
        return yield* new PgConfigError({
          key: "require_auth",
          message: parsed.failure,
          reason: "invalid-value"
        })
      }
      requireAuth = parsed.success
    }
    const refused = unsupported(options)
    if (refused !== undefined) return yield* refused
    const dateStyle = options.serverParams["DateStyle"]
    const runtimeParameters: Record<string, string> = {
      ...options.serverParams,
      client_encoding: "UTF8",
      // pgline reads SQL text (statement ends, DEALLOCATE, COMMIT) as the server does with it on.
      standard_conforming_strings: "on",
      // The text decoders read ISO dates; PgConfig keeps only a day/month order from the user.
      DateStyle:
        dateStyle === undefined
          ? "ISO"
          : dateStyle.toUpperCase().includes("ISO")
            ? dateStyle
            : `ISO, ${dateStyle}`
    }
    const applicationName = options.applicationName ?? options.fallbackApplicationName
    if (applicationName !== undefined) runtimeParameters["application_name"] = applicationName
    if (options.options !== undefined) runtimeParameters["options"] = options.options
    if (options.replication !== undefined) runtimeParameters["replication"] = options.replication
    const session: SessionOptions = {
      hosts: options.hosts,
      user: options.user,
      database: options.database,
      password: (endpoint) => {
        const found = lookup(endpoint)?.password
        return found === undefined ? undefined : Redacted.value(found)
      },
      passwordMissing: (endpoint) => {
        const warnings = lookup(endpoint)?.warnings ?? []
        return warnings.length === 0 ? undefined : warnings.join("; ")
      },
      runtimeParameters,
      tls: {
        sslmode: options.sslmode,
        sslrootcert: options.sslrootcert,
        sslcert: options.sslcert,
        sslkey: options.sslkey,
        sslpassword: options.sslpassword === undefined ? undefined : Redacted.value(options.sslpassword),
        sslsni: options.sslsni,
        sslnegotiation: options.sslnegotiation,
        sslMinProtocolVersion: options.sslMinProtocolVersion,
        sslMaxProtocolVersion: options.sslMaxProtocolVersion,
        sslcrl: options.sslcrl,
        sslcrldir: options.sslcrldir,
        sslcertmode: options.sslcertmode,
        sslkeylogfile: options.sslkeylogfile
      },
      keepalives: options.keepalives,
      keepalivesIdle: options.keepalivesIdle,
      connectTimeout: options.connectTimeout,
      auth: { requireAuth, channelBinding: options.channelBinding },
      minProtocol: options.minProtocolVersion,
      maxProtocol: options.maxProtocolVersion,
      maxMessageSize: extra.maxMessageSize,
      targetSessionAttrs: options.targetSessionAttrs,
      loadBalanceHosts: options.loadBalanceHosts
    }
    return session
  })
