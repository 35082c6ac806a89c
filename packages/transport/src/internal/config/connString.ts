/**
 * Connection-string parsing: libpq's two formats, to a keyword → value map (like PQconninfoParse).
 * It checks syntax and keyword names only; values are validated later, once every source
 * (options, string, service file, environment) has been merged.
 *
 * Functions here throw PgConfigError; the public wrappers turn that into the error channel.
 */
import { configError } from "./error.ts"
import { isKeyword } from "./keywords.ts"

const KEY = "connection string"
const URI_PREFIXES = ["postgresql://", "postgres://"] as const

export const isUri = (s: string): boolean => URI_PREFIXES.some((p) => s.startsWith(p))

/** Parses either format; the result lists keywords in the order they were set (last one wins). */
export const parseConnString = (s: string): Array<[string, string]> =>
  isUri(s) ? parseUri(s) : parseKeywordValue(s)

// --- keyword = value -----------------------------------------------------------------------------

const isSpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

export const parseKeywordValue = (s: string): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  let i = 0
  const n = s.length
  while (i < n) {
    while (i < n && isSpace(s[i]!)) i++
    if (i >= n) break
    const keyStart = i
    while (i < n && !isSpace(s[i]!) && s[i] !== "=") i++
    const key = s.slice(keyStart, i)
    while (i < n && isSpace(s[i]!)) i++
    if (s[i] !== "=") {
      throw configError(KEY, "syntax", `missing "=" after "${key}" in connection info string`)
    }
    i++
    // libpq skips whitespace after "=" too, so `host= port=1` gives host the value "port=1".
    while (i < n && isSpace(s[i]!)) i++
    let value = ""
    if (s[i] === "'") {
      i++
      let closed = false
      while (i < n) {
        const c = s[i]!
        if (c === "\\" && i + 1 < n) {
          value += s[i + 1]
          i += 2
        } else if (c === "'") {
          i++
          closed = true
          break
        } else {
          value += c
          i++
        }
      }
      if (!closed) throw configError(KEY, "syntax", `unterminated quoted string in connection info string`)
    } else {
      while (i < n && !isSpace(s[i]!)) {
        if (s[i] === "\\" && i + 1 < n) {
          value += s[i + 1]
          i += 2
        } else {
          value += s[i]
          i++
        }
      }
    }
    if (!isKeyword(key)) throw configError(key, "unknown-key", `invalid connection option "${key}"`)
    out.push([key, value])
  }
  return out
}

// --- URI ---------------------------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true })
const hex = (c: string): number => {
  const code = c.charCodeAt(0)
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 65 && code <= 70) return code - 55
  if (code >= 97 && code <= 102) return code - 87
  return -1
}

/** Percent-decodes `s` (bytes as UTF-8). `+` stays `+`; `%00` is refused, as libpq does. */
export const percentDecode = (s: string, secret = false): string => {
  const shown = secret ? "***" : s
  if (!s.includes("%")) return s
  const bytes: Array<number> = []
  const enc = new TextEncoder()
  for (let i = 0; i < s.length; ) {
    const c = s[i]!
    if (c === "%") {
      const hi = i + 1 < s.length ? hex(s[i + 1]!) : -1
      const lo = i + 2 < s.length ? hex(s[i + 2]!) : -1
      if (hi < 0 || lo < 0)
        throw configError(
          KEY,
          "syntax",
          `invalid percent-encoded token: "${secret ? "***" : s.slice(i, i + 3)}"`
        )
      const b = hi * 16 + lo
      if (b === 0)
        throw configError(KEY, "syntax", `forbidden value %00 in percent-encoded value: "${shown}"`)
      bytes.push(b)
      i += 3
    } else {
      const cp = s.codePointAt(i)!
      const ch = String.fromCodePoint(cp)
      for (const b of enc.encode(ch)) bytes.push(b)
      i += ch.length
    }
  }
  try {
    return utf8.decode(new Uint8Array(bytes))
  } catch {
    throw configError(KEY, "syntax", `percent-encoded value is not valid UTF-8: "${shown}"`)
  }
}

/**
 * The URI as error messages may show it: the password (after the user name, or a `password=`
 * query parameter) replaced by `***`, so a malformed URI never puts a secret into a log.
 */
export const redactUri = (uri: string): string => {
  const prefix = URI_PREFIXES.find((p) => uri.startsWith(p)) ?? ""
  const rest = uri.slice(prefix.length)
  const end = rest.search(/[/?]/)
  const authority = end >= 0 ? rest.slice(0, end) : rest
  const tail = end >= 0 ? rest.slice(end) : ""
  const at = authority.lastIndexOf("@")
  let shownAuthority = authority
  if (at >= 0) {
    const colon = authority.indexOf(":")
    if (colon >= 0 && colon < at) shownAuthority = `${authority.slice(0, colon + 1)}***${authority.slice(at)}`
  }
  return prefix + shownAuthority + tail.replace(/([?&]password=)[^&]*/gi, "$1***")
}

/** A query parameter as error messages may show it (a password's value hidden). */
const shownParam = (param: string): string => (/^password(=|$)/i.test(param) ? "password=***" : param)

export const parseUri = (rawUri: string): Array<[string, string]> => {
  const uri = redactUri(rawUri)
  const prefix = URI_PREFIXES.find((p) => rawUri.startsWith(p))!
  const out: Array<[string, string]> = []
  let rest = rawUri.slice(prefix.length)

  const q = rest.indexOf("?")
  const query = q >= 0 ? rest.slice(q + 1) : undefined
  if (q >= 0) rest = rest.slice(0, q)

  const slash = rest.indexOf("/")
  const authority = slash >= 0 ? rest.slice(0, slash) : rest
  const path = slash >= 0 ? rest.slice(slash + 1) : undefined

  // userinfo: split at the last "@" of the authority. libpq splits at the first one, which turns an
  // unencoded "@" in a password into a bogus host name; a host can never contain "@", so the last
  // one is the only reading that can succeed.
  const at = authority.lastIndexOf("@")
  const hostspec = at >= 0 ? authority.slice(at + 1) : authority
  if (at >= 0) {
    const userinfo = authority.slice(0, at)
    const colon = userinfo.indexOf(":")
    const user = percentDecode(colon >= 0 ? userinfo.slice(0, colon) : userinfo)
    if (user !== "") out.push(["user", user])
    if (colon >= 0) out.push(["password", percentDecode(userinfo.slice(colon + 1), true)])
  }

  if (hostspec !== "") {
    const hosts: Array<string> = []
    const ports: Array<string> = []
    let anyPort = false
    for (const entry of splitHostList(hostspec, uri)) {
      hosts.push(entry.host)
      ports.push(entry.port)
      if (entry.port !== "") anyPort = true
    }
    if (hosts.some((h) => h !== "")) out.push(["host", hosts.join(",")])
    if (anyPort) out.push(["port", ports.join(",")])
  }

  if (path !== undefined && path !== "") out.push(["dbname", percentDecode(path)])

  if (query !== undefined) {
    for (const param of query.split("&")) {
      if (param === "") continue
      const eq = param.indexOf("=")
      if (eq < 0) {
        throw configError(
          KEY,
          "syntax",
          `missing key/value separator "=" in URI query parameter: "${shownParam(param)}"`
        )
      }
      if (param.indexOf("=", eq + 1) >= 0) {
        throw configError(
          KEY,
          "syntax",
          `extra key/value separator "=" in URI query parameter: "${shownParam(param)}"`
        )
      }
      const key = percentDecode(param.slice(0, eq))
      const value = percentDecode(param.slice(eq + 1), key === "password")
      if (key === "ssl" && value === "true") {
        // JDBC compatibility, as documented for libpq.
        out.push(["sslmode", "require"])
        continue
      }
      if (!isKeyword(key)) throw configError(key, "unknown-key", `invalid URI query parameter: "${key}"`)
      out.push([key, value])
    }
  }
  return out
}

interface HostEntry {
  readonly host: string
  readonly port: string
}

const IPV6_CHARS = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.~-]+)?$/

/** Splits `host1:p1,[::1]:p2,%2Ftmp` into decoded hosts and ports. */
const splitHostList = (hostspec: string, uri: string): Array<HostEntry> => {
  const out: Array<HostEntry> = []
  let i = 0
  const n = hostspec.length
  for (;;) {
    let host: string
    if (hostspec[i] === "[") {
      const close = hostspec.indexOf("]", i + 1)
      if (close < 0) {
        throw configError(
          KEY,
          "syntax",
          `end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"`
        )
      }
      host = percentDecode(hostspec.slice(i + 1, close))
      if (host === "") throw configError(KEY, "syntax", `IPv6 host address may not be empty in URI: "${uri}"`)
      // Stricter than libpq (which defers to the resolver): brackets hold an IPv6 literal only.
      if (!IPV6_CHARS.test(host) || !host.includes(":")) {
        throw configError("host", "invalid-value", `invalid IPv6 address "${host}" in URI: "${uri}"`)
      }
      i = close + 1
      if (i < n && hostspec[i] !== ":" && hostspec[i] !== ",") {
        throw configError(
          KEY,
          "syntax",
          `unexpected character "${hostspec[i]}" at position ${i} in URI (expected ":", "," or "/"): "${uri}"`
        )
      }
    } else {
      let j = i
      while (j < n && hostspec[j] !== ":" && hostspec[j] !== ",") j++
      host = percentDecode(hostspec.slice(i, j))
      if (host.includes("@") && !host.startsWith("@")) {
        throw configError("host", "invalid-value", `invalid host name "${host}" in URI: "${uri}"`)
      }
      i = j
    }
    let port = ""
    if (hostspec[i] === ":") {
      let j = i + 1
      while (j < n && hostspec[j] !== ",") j++
      port = percentDecode(hostspec.slice(i + 1, j))
      i = j
    }
    out.push({ host, port })
    if (i >= n) break
    i++ // skip ","
  }
  return out
}
