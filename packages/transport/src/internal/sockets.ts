/**
 * Opening the byte stream of a session: TCP or Unix socket with connect_timeout and keepalives,
 * then TLS the way libpq's sslmode asks (SSLRequest negotiation, or direct TLS with ALPN
 * "postgresql" for sslnegotiation=direct). Plain promises and node sockets; the session wraps the
 * result. Every listener added while connecting is removed before the socket is handed on.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from "node:fs"
import { connect as netConnect, type Socket } from "node:net"
import { homedir } from "node:os"
import { join } from "node:path"
import type { checkServerIdentity, TLSSocket } from "node:tls"
import { SSL_REQUEST_FRAME } from "@pgline/codec"
import type { ConnectFailureReason } from "../PgClientError.ts"
import { nodeTls } from "./builtins.ts"

export class ConnectFailure {
  readonly _tag = "ConnectFailure" as const
  readonly reason: ConnectFailureReason
  readonly message: string
  /** The host this failure is about (set by the session for single-host failures). */
  readonly endpoint: Endpoint | undefined
  /** Every host tried, in order, with why it failed (set by the session). */
  readonly attempts: ReadonlyArray<string> | undefined
  constructor(
    reason: ConnectFailureReason,
    message: string,
    context: { readonly endpoint?: Endpoint; readonly attempts?: ReadonlyArray<string> } = {}
  ) {
    this.reason = reason
    this.message = message
    this.endpoint = context.endpoint
    this.attempts = context.attempts
  }
}

/** What an interrupted connection attempt fails with (the caller is gone; nobody reads it). */
export const interrupted = (endpoint: Endpoint): ConnectFailure =>
  new ConnectFailure("Network", `${describe(endpoint)}: connection attempt interrupted`)

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"

export interface TlsOptions {
  readonly sslmode: SslMode
  readonly sslrootcert: string | undefined
  readonly sslcert: string | undefined
  readonly sslkey: string | undefined
  readonly sslpassword: string | undefined
  readonly sslsni: boolean
  readonly sslnegotiation: "postgres" | "direct"
  readonly sslMinProtocolVersion: string | undefined
  readonly sslMaxProtocolVersion: string | undefined
  /** Certificate revocation lists (PEM): a file, and a directory whose files are all read. */
  readonly sslcrl: string | undefined
  readonly sslcrldir: string | undefined
  /** disable: never send a client certificate; require: the server must ask for one (start-up checks). */
  readonly sslcertmode: "disable" | "allow" | "require"
  /** Where the session's TLS secrets are appended (NSS key log format), for tools such as Wireshark. */
  readonly sslkeylogfile?: string | undefined
}

/** One host to connect to: a TCP host (or numeric address) and port, or a Unix-socket directory. */
export interface Endpoint {
  /** Host name, IP address, or a Unix-socket directory (starts with "/" or "@"). */
  readonly host: string
  readonly hostaddr: string | undefined
  readonly port: number
}

export const isUnixSocket = (host: string): boolean => host.startsWith("/") || host.startsWith("@")

/**
 * Whether the connection goes over a Unix socket: the host is a socket directory and no hostaddr
 * is set. With hostaddr libpq connects over TCP to that address whatever the host is (the host
 * then only names the server for TLS and the password file), and sslmode applies.
 */
export const usesUnixSocket = (endpoint: Endpoint): boolean =>
  endpoint.hostaddr === undefined && isUnixSocket(endpoint.host)

const errnoReason = (error: NodeJS.ErrnoException): ConnectFailureReason => {
  switch (error.code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return "Dns"
    case "ECONNREFUSED":
    case "ENOENT":
      return "Refused"
    case "ETIMEDOUT":
      return "Timeout"
    default:
      return "Network"
  }
}

/** Opens TCP or a Unix socket; `deadline` is absolute (ms since epoch) or undefined for none. */
export const openSocket = (
  endpoint: Endpoint,
  options: {
    keepalives: boolean
    keepalivesIdle: number | undefined
    deadline: number | undefined
    /** Aborting destroys the socket and rejects: without it an interrupted connect to a silent host hung. */
    signal?: AbortSignal | undefined
  }
): Promise<Socket> =>
  new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(interrupted(endpoint))
      return
    }
    const socket = usesUnixSocket(endpoint)
      ? netConnect({ path: join(endpoint.host.replace(/^@/, "\0"), `.s.PGSQL.${endpoint.port}`) })
      : netConnect({ host: endpoint.hostaddr ?? endpoint.host, port: endpoint.port })
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      if (timer) clearTimeout(timer)
      socket.off("connect", onConnect)
      socket.off("error", onError)
      options.signal?.removeEventListener("abort", onAbort)
    }
    const onAbort = () => {
      done()
      socket.destroy()
      reject(interrupted(endpoint))
    }
    const onConnect = () => {
      done()
      socket.setNoDelay(true)
      if (options.keepalives && !usesUnixSocket(endpoint)) {
        socket.setKeepAlive(true, (options.keepalivesIdle ?? 0) * 1000)
      }
      resolve(socket)
    }
    const onError = (error: NodeJS.ErrnoException) => {
      done()
      socket.destroy()
      reject(new ConnectFailure(errnoReason(error), `${describe(endpoint)}: ${error.message}`))
    }
    socket.once("connect", onConnect)
    socket.once("error", onError)
    options.signal?.addEventListener("abort", onAbort, { once: true })
    if (options.deadline !== undefined) {
      timer = setTimeout(
        () => {
          done()
          socket.destroy()
          reject(new ConnectFailure("Timeout", `${describe(endpoint)}: connect_timeout expired`))
        },
        Math.max(0, options.deadline - Date.now())
      )
    }
  })

export const describe = (endpoint: Endpoint): string =>
  usesUnixSocket(endpoint)
    ? `socket ${join(endpoint.host, `.s.PGSQL.${endpoint.port}`)}`
    : `${endpoint.host}${endpoint.hostaddr ? ` (${endpoint.hostaddr})` : ""}:${endpoint.port}`

/**
 * A certificate or key setting is a file path (libpq) or, as a pgline extension, the PEM text
 * itself (recognised by its "-----BEGIN" header), so secrets held in memory need no temp file.
 */
/** The TLS SNI name: the host name when sslsni is on (never an IP address or a socket directory). */
export const sniServerName = (endpoint: Endpoint, sslsni: boolean): string | undefined =>
  sslsni && !isUnixSocket(endpoint.host) && !/^[\d.]+$|:/.test(endpoint.host) ? endpoint.host : undefined

const readIfExists = (path: string | undefined): string | undefined =>
  path === undefined
    ? undefined
    : path.trimStart().startsWith("-----BEGIN")
      ? path
      : existsSync(path)
        ? readFileSync(path, "utf8")
        : undefined

const defaultPath = (file: string): string => join(homedir(), ".postgresql", file)

const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g

/** Every PEM CRL in a text, one string each: Node reads only the first CRL of each string given. */
const crlBlocks = (text: string): Array<string> => text.match(CRL_BLOCK) ?? []

/**
 * The revocation lists the chain is checked against: sslcrl (a file, or PEM text), the PEM files
 * of sslcrldir (libpq wants OpenSSL's hashed names there; any file holding a CRL is read here),
 * else ~/.postgresql/root.crl when it exists. Named but missing, unreadable or holding no CRL is
 * an error rather than a check silently not made. Node then checks every certificate of the
 * chain, as libpq does.
 */
const revocationLists = (tls: TlsOptions): Array<string> => {
  const out: Array<string> = []
  if (tls.sslcrl !== undefined) {
    const text = readIfExists(tls.sslcrl)
    const blocks = text === undefined ? [] : crlBlocks(text)
    if (blocks.length === 0) {
      throw new ConnectFailure(
        "Tls",
        text === undefined
          ? `certificate revocation list ${tls.sslcrl} does not exist`
          : `sslcrl holds no PEM certificate revocation list`
      )
    }
    out.push(...blocks)
  }
  if (tls.sslcrldir !== undefined) {
    let names: Array<string>
    try {
      names = readdirSync(tls.sslcrldir)
    } catch (error) {
      throw new ConnectFailure(
        "Tls",
        `certificate revocation list directory ${tls.sslcrldir}: ${(error as Error).message}`
      )
    }
    let found = 0
    for (const name of names.sort()) {
      const path = join(tls.sslcrldir, name)
      try {
        if (!statSync(path, { throwIfNoEntry: false })?.isFile()) continue
        const blocks = crlBlocks(readFileSync(path, "utf8"))
        found += blocks.length
        out.push(...blocks)
      } catch (error) {
        throw new ConnectFailure("Tls", `certificate revocation list ${path}: ${(error as Error).message}`)
      }
    }
    // Revocation checking was asked for: with no list to check against, the chain cannot be
    // verified (libpq fails the same way), rather than connecting unchecked.
    if (found === 0)
      throw new ConnectFailure(
        "Tls",
        `certificate verify failed: no PEM certificate revocation list in sslcrldir ${tls.sslcrldir}`
      )
  }
  if (tls.sslcrl === undefined && tls.sslcrldir === undefined) {
    const text = readIfExists(defaultPath("root.crl"))
    if (text !== undefined) out.push(...crlBlocks(text))
  }
  return out
}

/**
 * Node TLS options for a libpq sslmode:
 * - require: encrypt; but when a root certificate file exists, libpq verifies the chain (verify-ca).
 * - verify-ca: chain must verify against sslrootcert; host name not checked.
 * - verify-full: chain and host name (SAN / CN) checked.
 * - sslrootcert=system: the platform's trusted roots (Node's bundled list) and verify-full.
 */
const tlsSettings = (endpoint: Endpoint, tls: TlsOptions, alpn: boolean) => {
  const rootPath = tls.sslrootcert ?? defaultPath("root.crt")
  const system = tls.sslrootcert === "system"
  const ca = system ? [...nodeTls().rootCertificates] : readIfExists(rootPath)
  let verifyChain = tls.sslmode === "verify-ca" || tls.sslmode === "verify-full" || system
  if (tls.sslmode === "require" && ca !== undefined) verifyChain = true
  if (verifyChain && ca === undefined) {
    throw new ConnectFailure(
      "Tls",
      `sslmode=${tls.sslmode} needs a root certificate: ${rootPath} does not exist (set sslrootcert)`
    )
  }
  const verifyHost = tls.sslmode === "verify-full" || system
  // As libpq: revocation lists go with a root certificate file, not with the system's roots.
  const crl = verifyChain && !system ? revocationLists(tls) : []
  const certPath = tls.sslcert ?? defaultPath("postgresql.crt")
  const keyPath = tls.sslkey ?? defaultPath("postgresql.key")
  // sslcertmode=disable: no client certificate, even when one is configured or in ~/.postgresql.
  const sendCert = tls.sslcertmode !== "disable"
  const cert = sendCert ? readIfExists(certPath) : undefined
  const key = cert !== undefined ? readIfExists(keyPath) : undefined
  if (sendCert && tls.sslcert !== undefined && cert === undefined) {
    throw new ConnectFailure("Tls", `client certificate ${certPath} does not exist`)
  }
  if (cert !== undefined && key === undefined) {
    throw new ConnectFailure("Tls", `client certificate given but its key ${keyPath} does not exist`)
  }
  const servername = sniServerName(endpoint, tls.sslsni)
  const versions = (v: string | undefined) =>
    v === undefined ? undefined : (v.replace("TLSv1.", "TLSv1.") as "TLSv1.2" | "TLSv1.3")
  const minVersion = versions(tls.sslMinProtocolVersion ?? "TLSv1.2")
  const maxVersion = versions(tls.sslMaxProtocolVersion)
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(crl.length > 0 ? { crl } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(tls.sslpassword !== undefined ? { passphrase: tls.sslpassword } : {}),
    ...(servername !== undefined ? { servername } : {}),
    ...(minVersion !== undefined ? { minVersion } : {}),
    ...(maxVersion !== undefined ? { maxVersion } : {}),
    ...(alpn ? { ALPNProtocols: ["postgresql"] } : {}),
    rejectUnauthorized: verifyChain,
    checkServerIdentity: (hostname: string, peer: Parameters<typeof checkServerIdentity>[1]) =>
      verifyHost ? nodeTls().checkServerIdentity(hostname === "" ? endpoint.host : hostname, peer) : undefined
  }
}

/** Upgrades a connected socket to TLS (after 'S', or directly for sslnegotiation=direct). */
export const startTls = (
  socket: Socket,
  endpoint: Endpoint,
  tls: TlsOptions,
  direct: boolean,
  deadline: number | undefined,
  /** Learns the TLS socket as soon as it exists, so that a caller can destroy it mid-handshake. */
  onSocket?: (secure: TLSSocket) => void
): Promise<TLSSocket> =>
  new Promise((resolve, reject) => {
    let settings: ReturnType<typeof tlsSettings>
    try {
      settings = tlsSettings(endpoint, tls, direct)
    } catch (error) {
      socket.destroy()
      reject(error)
      return
    }
    // sslkeylogfile: opened before the handshake, so a path that cannot be written fails the
    // connection with its reason instead of logging nothing.
    let keylog: number | undefined
    if (tls.sslkeylogfile !== undefined && tls.sslkeylogfile !== "") {
      try {
        keylog = openSync(tls.sslkeylogfile, "a", 0o600)
      } catch (error) {
        socket.destroy()
        reject(
          new ConnectFailure(
            "Tls",
            `could not open SSL key logging file "${tls.sslkeylogfile}": ${(error as Error).message}`
          )
        )
        return
      }
    }
    const secure = nodeTls().connect({ socket, ...settings, host: endpoint.host })
    if (keylog !== undefined) {
      const fd = keylog
      secure.on("keylog", (line: Buffer) => {
        // A failed write (a full disk) loses a debugging aid, not the connection.
        try {
          writeSync(fd, line)
        } catch {}
      })
      secure.once("close", () => closeSync(fd))
    }
    onSocket?.(secure)
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      if (timer) clearTimeout(timer)
      secure.off("secureConnect", onSecure)
      secure.off("error", onError)
      secure.off("close", onClose)
    }
    const onSecure = () => {
      done()
      if (direct && secure.alpnProtocol !== "postgresql") {
        secure.destroy()
        reject(new ConnectFailure("Tls", `${describe(endpoint)}: server did not accept ALPN "postgresql"`))
        return
      }
      resolve(secure)
    }
    const onError = (error: Error) => {
      done()
      secure.destroy()
      // A server before PostgreSQL 17 reads a direct ClientHello as a bad startup packet and hangs up.
      const hint =
        direct && /disconnected|ECONNRESET|socket hang up/.test(error.message)
          ? " (sslnegotiation=direct needs PostgreSQL 17 or later; older servers close the connection)"
          : ""
      reject(new ConnectFailure("Tls", `${describe(endpoint)}: TLS failed: ${error.message}${hint}`))
    }
    // A socket destroyed mid-handshake (interruption) emits only "close": without this the
    // handshake promise never settled.
    const onClose = () => {
      done()
      reject(new ConnectFailure("Tls", `${describe(endpoint)}: closed during the TLS handshake`))
    }
    secure.once("secureConnect", onSecure)
    secure.once("error", onError)
    secure.once("close", onClose)
    if (deadline !== undefined) {
      timer = setTimeout(
        () => {
          done()
          secure.destroy()
          reject(new ConnectFailure("Timeout", `${describe(endpoint)}: connect_timeout expired during TLS`))
        },
        Math.max(0, deadline - Date.now())
      )
    }
  })

/**
 * Sends SSLRequest and reads the one-byte answer: "S" (go ahead with TLS) or "N" (no TLS here).
 * Anything after that byte arriving before the handshake would be unencrypted bytes injected
 * ahead of TLS (CVE-2021-23222): refused.
 */
export const requestSsl = (
  socket: Socket,
  endpoint: Endpoint,
  deadline: number | undefined
): Promise<"S" | "N"> =>
  new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      if (timer) clearTimeout(timer)
      socket.off("data", onData)
      socket.off("error", onError)
      socket.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      done()
      socket.pause()
      const answer = String.fromCharCode(chunk[0]!)
      if (answer !== "S" && answer !== "N" && answer !== "E") {
        socket.destroy()
        reject(new ConnectFailure("Protocol", notPostgres(endpoint, chunk)))
      } else if (chunk.length > 1) {
        socket.destroy()
        reject(
          new ConnectFailure(
            "Protocol",
            `${describe(endpoint)}: unencrypted bytes after the SSLRequest answer`
          )
        )
      } else if (answer === "S" || answer === "N") resolve(answer)
      else {
        socket.destroy()
        reject(
          new ConnectFailure("Protocol", `${describe(endpoint)}: server rejected SSLRequest with an error`)
        )
      }
    }
    const onError = (error: Error) => {
      done()
      reject(new ConnectFailure("Network", `${describe(endpoint)}: ${error.message}`))
    }
    const onClose = () => {
      done()
      reject(new ConnectFailure("Network", `${describe(endpoint)}: closed during SSLRequest`))
    }
    socket.on("data", onData)
    socket.once("error", onError)
    socket.once("close", onClose)
    if (deadline !== undefined) {
      timer = setTimeout(
        () => {
          done()
          socket.destroy()
          reject(new ConnectFailure("Timeout", `${describe(endpoint)}: connect_timeout expired`))
        },
        Math.max(0, deadline - Date.now())
      )
    }
    socket.write(SSL_REQUEST_FRAME)
  })

/**
 * The message for a peer whose first bytes are not a PostgreSQL answer (an HTTP server, an SSH
 * daemon, …): says so, with the bytes it sent (printable ASCII as is, the rest escaped).
 */
export const notPostgres = (endpoint: Endpoint, bytes: Uint8Array): string => {
  let shown = ""
  for (const b of bytes.subarray(0, 32)) {
    shown +=
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\x${b.toString(16).padStart(2, "0")}`
  }
  return `${describe(endpoint)}: the peer does not speak the PostgreSQL protocol (it sent "${shown}${bytes.length > 32 ? "…" : ""}")`
}
