/**
 * Resolved configuration (PgConfig) → what a session needs: start-up parameters pgline pins
 * (client_encoding UTF8 and an ISO DateStyle, which the text decoders rely on), the password per
 * host (explicit, else the password file, looked up before connecting), the require_auth policy and
 * the TLS settings.
 */
import { Effect, Redacted } from "effect"
import type { PgConnectOptions } from "../PgConfig.ts"
import { lookupPassword } from "../PgConfig.ts"
import type { SessionOptions } from "../Session.ts"
import { PgConfigError } from "./config/error.ts"
import { parseRequireAuth, requireAuthAny } from "./auth/requireAuth.ts"
import type { Endpoint } from "./sockets.ts"

const endpointKey = (e: Endpoint) => `${e.host}\u0000${e.hostaddr ?? ""}\u0000${e.port}`

export const toSessionOptions = (
  options: PgConnectOptions,
  extra: { readonly maxMessageSize?: number | undefined } = {}
): Effect.Effect<SessionOptions, PgConfigError> =>
  Effect.gen(function* () {
    const passwords = new Map<string, string | undefined>()
    for (const host of options.hosts) {
      const found = yield* lookupPassword(options, host)
      passwords.set(
        endpointKey(host),
        found.password === undefined ? undefined : Redacted.value(found.password)
      )
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
    const dateStyle = options.serverParams["DateStyle"]
    const runtimeParameters: Record<string, string> = {
      ...options.serverParams,
      client_encoding: "UTF8",
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
      password: (endpoint) => passwords.get(endpointKey(endpoint)),
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
        sslMaxProtocolVersion: options.sslMaxProtocolVersion
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
