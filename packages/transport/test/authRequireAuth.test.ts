/**
 * require_auth parsing and the per-request decision, with channel_binding=require, as a table
 * (cases after libpq's own authentication tests). Hermetic.
 */
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import {
  type AuthProgress,
  type AuthRequestType,
  checkAuthRequest,
  initialAuthProgress,
  parseRequireAuth,
  type RequireAuth
} from "../src/internal/auth/requireAuth.ts"
import type { ChannelBindingMode } from "../src/internal/auth/scram.ts"

const parse = (s: string): RequireAuth => Result.getOrThrow(parseRequireAuth(s))
const parseError = (s: string): string => {
  const r = parseRequireAuth(s)
  if (Result.isSuccess(r)) throw new Error(`expected ${s} to be refused`)
  return r.failure
}

describe("parseRequireAuth", () => {
  it("empty means no restriction", () => {
    const r = parse("")
    expect(r.authRequired).toBe(false)
    expect([...r.allowed].sort()).toEqual(["gss", "md5", "oauth", "password", "scram-sha-256", "sspi"])
  })
  it("a positive list allows only its methods and requires authentication", () => {
    const r = parse("md5,scram-sha-256")
    expect([...r.allowed].sort()).toEqual(["md5", "scram-sha-256"])
    expect(r.authRequired).toBe(true)
  })
  it("'none' in a positive list allows no authentication", () => {
    expect(parse("none").authRequired).toBe(false)
    expect(parse("none").allowed.size).toBe(0)
    expect(parse("password,none").authRequired).toBe(false)
  })
  it("a negative list allows everything else; '!none' requires authentication", () => {
    const r = parse("!password,!md5")
    expect([...r.allowed].sort()).toEqual(["gss", "oauth", "scram-sha-256", "sspi"])
    expect(r.authRequired).toBe(false)
    expect(parse("!none").authRequired).toBe(true)
  })
  it("refuses mixing, duplicates and unknown names", () => {
    expect(parseError("md5,!password")).toContain("cannot be mixed with non-negative")
    expect(parseError("!md5,password")).toContain("cannot be mixed with negative")
    expect(parseError("md5,md5")).toContain("more than once")
    expect(parseError("!none,!none")).toContain("more than once")
    expect(parseError("kerberos")).toContain("invalid require_auth value")
    expect(parseError("md5,")).toContain("invalid require_auth value")
    expect(parseError("SCRAM-SHA-256")).toContain("invalid require_auth value")
  })
})

const finished: AuthProgress = { clientFinishedAuth: true, saslInProgress: false, channelBound: false }
const bound: AuthProgress = { clientFinishedAuth: true, saslInProgress: false, channelBound: true }
const midSasl: AuthProgress = { clientFinishedAuth: false, saslInProgress: true, channelBound: false }

const decide = (
  requireAuth: string,
  type: AuthRequestType,
  progress: AuthProgress = initialAuthProgress,
  channelBinding: ChannelBindingMode = "prefer"
): string => {
  const r = checkAuthRequest(type, { requireAuth: parse(requireAuth), channelBinding }, progress)
  return Result.isSuccess(r) ? "allow" : r.failure.reason
}

describe("checkAuthRequest: require_auth", () => {
  const table: ReadonlyArray<[string, AuthRequestType, AuthProgress, string]> = [
    // No restriction.
    ["", "AuthenticationOk", initialAuthProgress, "allow"],
    ["", "AuthenticationCleartextPassword", initialAuthProgress, "allow"],
    ["", "AuthenticationMD5Password", initialAuthProgress, "allow"],
    ["", "AuthenticationSASL", initialAuthProgress, "allow"],
    // Positive lists.
    ["password", "AuthenticationCleartextPassword", initialAuthProgress, "allow"],
    ["password", "AuthenticationMD5Password", initialAuthProgress, "MethodNotAllowed"],
    ["password", "AuthenticationSASL", initialAuthProgress, "MethodNotAllowed"],
    ["password", "AuthenticationOk", initialAuthProgress, "MethodNotAllowed"], // trust: did not complete
    ["password", "AuthenticationOk", finished, "allow"],
    ["md5", "AuthenticationMD5Password", initialAuthProgress, "allow"],
    ["md5", "AuthenticationCleartextPassword", initialAuthProgress, "MethodNotAllowed"],
    ["scram-sha-256", "AuthenticationSASL", initialAuthProgress, "allow"],
    ["scram-sha-256", "AuthenticationSASLContinue", midSasl, "allow"],
    ["scram-sha-256", "AuthenticationSASLFinal", midSasl, "allow"],
    ["scram-sha-256", "AuthenticationMD5Password", initialAuthProgress, "MethodNotAllowed"],
    ["scram-sha-256", "AuthenticationOk", initialAuthProgress, "MethodNotAllowed"],
    ["scram-sha-256", "AuthenticationOk", finished, "allow"],
    ["scram-sha-256,none", "AuthenticationOk", initialAuthProgress, "allow"],
    ["none", "AuthenticationOk", initialAuthProgress, "allow"],
    ["none", "AuthenticationCleartextPassword", initialAuthProgress, "MethodNotAllowed"],
    ["none", "AuthenticationSASL", initialAuthProgress, "MethodNotAllowed"],
    ["gss", "AuthenticationGSS", initialAuthProgress, "UnsupportedMethod"], // allowed, but not implemented
    ["gss", "AuthenticationSSPI", initialAuthProgress, "MethodNotAllowed"],
    ["sspi", "AuthenticationGSSContinue", initialAuthProgress, "UnsupportedMethod"],
    ["password", "AuthenticationKerberosV5", initialAuthProgress, "MethodNotAllowed"],
    // Negative lists.
    ["!password", "AuthenticationCleartextPassword", initialAuthProgress, "MethodNotAllowed"],
    ["!password", "AuthenticationMD5Password", initialAuthProgress, "allow"],
    ["!password", "AuthenticationOk", initialAuthProgress, "allow"],
    ["!password,!md5,!scram-sha-256", "AuthenticationSASL", initialAuthProgress, "MethodNotAllowed"],
    ["!scram-sha-256", "AuthenticationSASL", initialAuthProgress, "MethodNotAllowed"],
    ["!none", "AuthenticationOk", initialAuthProgress, "MethodNotAllowed"],
    ["!none", "AuthenticationOk", finished, "allow"],
    ["!none", "AuthenticationMD5Password", initialAuthProgress, "allow"],
    // Unsupported whatever the setting.
    ["", "AuthenticationKerberosV5", initialAuthProgress, "UnsupportedMethod"],
    ["", "AuthenticationGSS", initialAuthProgress, "UnsupportedMethod"],
    ["", "AuthenticationSSPI", initialAuthProgress, "UnsupportedMethod"],
    ["", "AuthenticationSCMCredential", initialAuthProgress, "UnsupportedMethod"],
    // Ordering: OK in the middle of SCRAM, a second SASL request.
    ["", "AuthenticationOk", midSasl, "UnexpectedMessage"],
    ["scram-sha-256,none", "AuthenticationOk", midSasl, "UnexpectedMessage"],
    ["", "AuthenticationSASL", midSasl, "UnexpectedMessage"],
    ["", "AuthenticationSASL", finished, "UnexpectedMessage"]
  ]
  for (const [requireAuth, type, progress, expected] of table) {
    const state =
      progress === initialAuthProgress ? "start" : progress === finished ? "finished" : "mid-SCRAM"
    it(`require_auth=${JSON.stringify(requireAuth)}, ${type} (${state}) → ${expected}`, () => {
      expect(decide(requireAuth, type, progress)).toBe(expected)
    })
  }

  it("names the setting and the method in the message, like libpq", () => {
    const r = checkAuthRequest(
      "AuthenticationMD5Password",
      { requireAuth: parse("scram-sha-256"), channelBinding: "prefer" },
      initialAuthProgress
    )
    expect(Result.isFailure(r) && r.failure.message).toBe(
      'authentication method requirement "scram-sha-256" failed: server requested a hashed password'
    )
  })
})

describe("checkAuthRequest: channel_binding=require", () => {
  const table: ReadonlyArray<[AuthRequestType, AuthProgress, string]> = [
    ["AuthenticationSASL", initialAuthProgress, "allow"],
    ["AuthenticationSASLContinue", midSasl, "allow"],
    ["AuthenticationSASLFinal", midSasl, "allow"],
    ["AuthenticationOk", bound, "allow"],
    ["AuthenticationOk", finished, "ChannelBindingRequired"], // SCRAM without -PLUS
    ["AuthenticationOk", initialAuthProgress, "ChannelBindingRequired"], // trust
    ["AuthenticationCleartextPassword", initialAuthProgress, "ChannelBindingRequired"],
    ["AuthenticationMD5Password", initialAuthProgress, "ChannelBindingRequired"],
    ["AuthenticationGSS", initialAuthProgress, "ChannelBindingRequired"]
  ]
  for (const [type, progress, expected] of table) {
    it(`${type} → ${expected}`, () => expect(decide("", type, progress, "require")).toBe(expected))
  }
  it("require_auth is checked first", () => {
    expect(decide("md5", "AuthenticationCleartextPassword", initialAuthProgress, "require")).toBe(
      "MethodNotAllowed"
    )
  })
})
