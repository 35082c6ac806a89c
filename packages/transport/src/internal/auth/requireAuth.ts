/**
 * require_auth and channel_binding=require, decided per authentication request before anything
 * secret is sent (libpq's semantics, PostgreSQL 16+):
 *   - `require_auth` is a comma-separated list of methods (password, md5, gss, sspi,
 *     scram-sha-256, oauth, none) that the server may use, or a list of negated methods (!md5, ...)
 *     that it may not; the two forms cannot be mixed and no method may repeat.
 *   - Unless "none" is allowed, AuthenticationOk is refused until the client has finished an
 *     exchange (sent its password, or verified the server's SCRAM signature): a server cannot skip
 *     authentication to get around the list.
 *   - channel_binding=require refuses every request but SASL, and refuses AuthenticationOk unless
 *     the SCRAM-SHA-256-PLUS exchange completed and verified.
 * Beyond libpq: AuthenticationOk in the middle of a SCRAM exchange (before SASLFinal verified) is
 * always refused, since it would let a server that does not know the password in without proving
 * it; PostgreSQL never does that.
 *
 * Not here: the exchanges themselves (`scram.ts`, `md5.ts`) and where the setting comes from.
 */
import { Result } from "effect"
import { type AuthenticationError, authError } from "./AuthenticationError.ts"
import type { ChannelBindingMode } from "./scram.ts"

export type AuthMethod = "password" | "md5" | "gss" | "sspi" | "scram-sha-256" | "oauth" | "none"

const methods: ReadonlyArray<AuthMethod> = [
  "password",
  "md5",
  "gss",
  "sspi",
  "scram-sha-256",
  "oauth",
  "none"
]

/** A parsed require_auth value. */
export interface RequireAuth {
  /** The setting as given, for messages. */
  readonly raw: string
  /** Methods the server may ask for ("none" is tracked by `authRequired`). */
  readonly allowed: ReadonlySet<Exclude<AuthMethod, "none">>
  /** False when the server may let the client in without any authentication request. */
  readonly authRequired: boolean
}

/** No restriction (require_auth unset or empty). */
export const requireAuthAny: RequireAuth = {
  raw: "",
  allowed: new Set(["password", "md5", "gss", "sspi", "scram-sha-256", "oauth"]),
  authRequired: false
}

/** Parses a require_auth value; the error is a message for a configuration error. */
export const parseRequireAuth = (raw: string): Result.Result<RequireAuth, string> => {
  if (raw === "") return Result.succeed(requireAuthAny)
  const parts = raw.split(",")
  const negated = parts[0]!.startsWith("!")
  const allowed = new Set<Exclude<AuthMethod, "none">>(negated ? requireAuthAny.allowed : [])
  let authRequired = !negated
  const seen = new Set<string>()
  for (const part of parts) {
    const isNegated = part.startsWith("!")
    const name = isNegated ? part.slice(1) : part
    if (isNegated !== negated) {
      return Result.fail(
        isNegated
          ? `negative require_auth method "${name}" cannot be mixed with non-negative methods`
          : `require_auth method "${name}" cannot be mixed with negative methods`
      )
    }
    if (!(methods as ReadonlyArray<string>).includes(name)) {
      return Result.fail(`invalid require_auth value: "${name}"`)
    }
    if (seen.has(name)) return Result.fail(`require_auth method "${name}" is specified more than once`)
    seen.add(name)
    const method = name as AuthMethod
    if (method === "none") authRequired = negated
    else if (negated) allowed.delete(method)
    else allowed.add(method)
  }
  return Result.succeed({ raw, allowed, authRequired })
}

/**
 * The authentication request types, spelled like the codec's backend message `type`s; anything
 * else (SCM credentials, crypt, an unknown code) is passed as its own string and refused.
 */
export type AuthRequestType =
  | "AuthenticationOk"
  | "AuthenticationKerberosV5"
  | "AuthenticationCleartextPassword"
  | "AuthenticationMD5Password"
  | "AuthenticationGSS"
  | "AuthenticationGSSContinue"
  | "AuthenticationSSPI"
  | "AuthenticationSASL"
  | "AuthenticationSASLContinue"
  | "AuthenticationSASLFinal"
  | (string & {})

/** Where the client's side of the exchange stands when a request arrives. */
export interface AuthProgress {
  /** A password/MD5 response was sent, or a SCRAM exchange verified the server's signature. */
  readonly clientFinishedAuth: boolean
  /** A SCRAM exchange started (SASLInitialResponse sent) and has not verified yet. */
  readonly saslInProgress: boolean
  /** The verified SCRAM exchange used channel binding (ScramClient.channelBound). */
  readonly channelBound: boolean
}

export const initialAuthProgress: AuthProgress = {
  clientFinishedAuth: false,
  saslInProgress: false,
  channelBound: false
}

export interface AuthPolicy {
  readonly requireAuth: RequireAuth
  readonly channelBinding: ChannelBindingMode
}

/** Which require_auth methods a request belongs to. */
const methodsOf = (type: AuthRequestType): ReadonlyArray<Exclude<AuthMethod, "none">> => {
  switch (type) {
    case "AuthenticationCleartextPassword":
      return ["password"]
    case "AuthenticationMD5Password":
      return ["md5"]
    case "AuthenticationGSS":
      return ["gss"]
    // Both GSSAPI and SSPI continue with GSSContinue.
    case "AuthenticationGSSContinue":
      return ["gss", "sspi"]
    case "AuthenticationSSPI":
      return ["sspi"]
    case "AuthenticationSASL":
    case "AuthenticationSASLContinue":
    case "AuthenticationSASLFinal":
      return ["scram-sha-256"]
    default:
      return []
  }
}

const describe = (type: AuthRequestType): string => {
  switch (type) {
    case "AuthenticationOk":
      return "server did not complete authentication"
    case "AuthenticationCleartextPassword":
      return "server requested a cleartext password"
    case "AuthenticationMD5Password":
      return "server requested a hashed password"
    case "AuthenticationGSS":
    case "AuthenticationGSSContinue":
      return "server requested GSSAPI authentication"
    case "AuthenticationSSPI":
      return "server requested SSPI authentication"
    case "AuthenticationSASL":
    case "AuthenticationSASLContinue":
    case "AuthenticationSASLFinal":
      return "server requested SCRAM-SHA-256 authentication"
    default:
      return `server requested an unsupported authentication method (${type})`
  }
}

/**
 * May the client go on with this request? Call it for every authentication message, before
 * answering it. On success the transport answers (password, MD5, SCRAM step) or, for
 * AuthenticationOk, proceeds to the rest of start-up.
 */
export const checkAuthRequest = (
  type: AuthRequestType,
  policy: AuthPolicy,
  progress: AuthProgress
): Result.Result<void, AuthenticationError> => {
  const { requireAuth } = policy
  if (requireAuth.raw !== "") {
    const allowed =
      type === "AuthenticationOk"
        ? !requireAuth.authRequired || progress.clientFinishedAuth
        : methodsOf(type).some((m) => requireAuth.allowed.has(m))
    if (!allowed) {
      return Result.fail(
        authError(
          "MethodNotAllowed",
          `authentication method requirement "${requireAuth.raw}" failed: ${describe(type)}`
        )
      )
    }
  }
  if (policy.channelBinding === "require") {
    if (type === "AuthenticationOk") {
      if (!progress.channelBound) {
        return Result.fail(
          authError(
            "ChannelBindingRequired",
            "channel binding required, but server authenticated client without channel binding"
          )
        )
      }
    } else if (
      type !== "AuthenticationSASL" &&
      type !== "AuthenticationSASLContinue" &&
      type !== "AuthenticationSASLFinal"
    ) {
      return Result.fail(
        authError(
          "ChannelBindingRequired",
          "channel binding required but not supported by server's authentication request"
        )
      )
    }
  }
  switch (type) {
    case "AuthenticationOk":
      return progress.saslInProgress
        ? Result.fail(
            authError(
              "UnexpectedMessage",
              "server sent AuthenticationOk before completing the SCRAM exchange"
            )
          )
        : Result.succeed(undefined)
    case "AuthenticationCleartextPassword":
    case "AuthenticationMD5Password":
    case "AuthenticationSASLContinue":
    case "AuthenticationSASLFinal":
      return Result.succeed(undefined)
    case "AuthenticationSASL":
      return progress.saslInProgress || progress.clientFinishedAuth
        ? Result.fail(authError("UnexpectedMessage", "duplicate SASL authentication request"))
        : Result.succeed(undefined)
    default:
      return Result.fail(
        authError("UnsupportedMethod", describe(type).replace("server requested", "unsupported:"))
      )
  }
}
