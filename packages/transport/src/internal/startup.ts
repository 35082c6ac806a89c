/**
 * One start-up attempt against one endpoint: byte stream (sockets.ts), StartupMessage, the
 * authentication exchange, then ParameterStatus / BackendKeyData / NegotiateProtocolVersion until
 * the first ReadyForQuery. Promise-based and sequential (start-up is not a hot path); the Effect
 * layer above turns outcomes into tagged errors. It does not choose hosts (see Session.ts).
 */
import type { Socket } from "node:net"
import type { TLSSocket } from "node:tls"
import {
  type BackendMessage,
  encodeAuthData,
  encodePassword,
  decodeUtf8,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeStartup,
  type ErrorFields,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  type ProtocolError,
  type TransactionStatus
} from "@pgline/codec"
import type { Result } from "effect"
import type { AuthenticationError } from "./auth/AuthenticationError.ts"
import { cleartextPasswordResponse, md5PasswordResponse } from "./auth/md5.ts"
import {
  type AuthMethod,
  type AuthPolicy,
  type AuthProgress,
  checkAuthRequest,
  initialAuthProgress
} from "./auth/requireAuth.ts"
import { ScramClient } from "./auth/scram.ts"
import {
  ConnectFailure,
  describe,
  type Endpoint,
  notPostgres,
  openSocket,
  requestSsl,
  startTls,
  type TlsOptions,
  usesUnixSocket
} from "./sockets.ts"
import { Wire } from "./Wire.ts"

/** What start-up sends and accepts: user, database, startup parameters, password source, authentication and protocol limits. */
export interface StartupOptions {
  readonly user: string
  readonly database: string
  /** Resolved per endpoint at each attempt (explicit password, else the password file). */
  readonly password: (endpoint: Endpoint) => string | undefined
  /**
   * Why no password was found for the endpoint, when there is a reason to give (a password file
   * skipped for its permissions): said when the server asks for a password.
   */
  readonly passwordMissing?: (endpoint: Endpoint) => string | undefined
  readonly runtimeParameters: Readonly<Record<string, string>>
  readonly tls: TlsOptions
  readonly keepalives: boolean
  readonly keepalivesIdle: number | undefined
  /** Seconds; undefined or 0 waits forever (libpq). */
  readonly connectTimeout: number | undefined
  readonly auth: AuthPolicy
  readonly minProtocol: "3.0" | "3.2"
  readonly maxProtocol: "3.0" | "3.2"
  readonly maxMessageSize: number | undefined
}

/** What a finished start-up knows about the session. */
export interface Started {
  readonly wire: Wire
  readonly endpoint: Endpoint
  readonly parameters: Map<string, string>
  readonly processId: number
  readonly secretKey: Uint8Array
  readonly protocol: "3.0" | "3.2"
  readonly tls: boolean
  readonly transactionStatus: TransactionStatus
  readonly notices: ReadonlyArray<ErrorFields>
  readonly authMethod: AuthMethod
  /**
   * Runs one simple query on the new session and gives its first row's first column as text
   * (null for none): what target_session_attrs asks of a server that did not report its state.
   */
  readonly ask: (query: string) => Promise<string | null>
}

/** The server answered with an ErrorResponse during start-up (e.g. 28P01 invalid_password). */
export class StartupServerError {
  readonly _tag = "StartupServerError" as const
  readonly fields: ErrorFields
  constructor(fields: ErrorFields) {
    this.fields = fields
  }
}

type Attempt = "tls-required" | "tls-optional" | "tls-direct" | "plain"

/** The attempts libpq makes for an sslmode, in order (allow tries plain first, prefer TLS first). */
const attemptsFor = (endpoint: Endpoint, tls: TlsOptions): ReadonlyArray<Attempt> => {
  if (usesUnixSocket(endpoint)) return ["plain"]
  const direct = tls.sslnegotiation === "direct"
  switch (tls.sslmode) {
    case "disable":
      return ["plain"]
    case "allow":
      return ["plain", direct ? "tls-direct" : "tls-required"]
    case "prefer":
      return direct ? ["tls-direct", "plain"] : ["tls-optional", "plain"]
    default:
      return [direct ? "tls-direct" : "tls-required"]
  }
}

/**
 * Start-up messages are small, so a server declaring a long one is refused at its header, before
 * any of its body is buffered (maxMessageSize, a gigabyte by default, is for query results).
 * Authentication requests and NegotiateProtocolVersion stay under 2000 bytes and every other
 * start-up message under 30000, the bounds libpq applies.
 */
const startupLengthLimit = (type: number): number => (type === 0x52 || type === 0x76 ? 2000 : 30000)

/**
 * After AuthenticationOk, libpq's general rule: a notice or an error (a login event trigger's RAISE,
 * of any length) and the other message types that may be long are not limited; others stay under
 * 30000 bytes.
 */
const LONG_TYPES = new Set([0x54, 0x44, 0x64, 0x56, 0x45, 0x4e, 0x41]) // T D d V E N A
const afterAuthentication = (type: number, length: number): string | undefined =>
  !LONG_TYPES.has(type) && length > 30000
    ? `a start-up message of type "${String.fromCharCode(type)}" declares ${length} bytes, over the start-up limit of 30000`
    : undefined

/**
 * Notices kept for the session (the count, and their text in UTF-16 code units): a server sends a
 * few at most (a login event trigger's RAISE NOTICE); one that floods them during start-up must
 * not grow the client's memory without bound. The rest are dropped.
 */
const MAX_STARTUP_NOTICES = 64
const MAX_STARTUP_NOTICE_CHARS = 64 * 1024

const noticeChars = (fields: ErrorFields): number => {
  let n = 0
  for (const value of Object.values(fields)) {
    if (typeof value === "string") n += value.length
    else if (value !== undefined)
      for (const v of Object.values(value as Record<string, string>)) n += v.length
  }
  return n
}

/** Reads messages one at a time during start-up. */
class StartupReader {
  private queue: Array<BackendMessage> = []
  private waiting: ((m: BackendMessage | ConnectFailure) => void) | undefined
  private failure: ConnectFailure | undefined
  private received = 0
  constructor(wire: Wire, endpoint: Endpoint) {
    wire.headerCheck = (type, length) =>
      length > startupLengthLimit(type)
        ? `a start-up message of type "${String.fromCharCode(type)}" declares ${length} bytes, over the start-up limit of ${startupLengthLimit(type)}`
        : undefined
    wire.setHandler(
      (m) => {
        this.received++
        // Past start-up (or refused anyway): later messages in the same chunk get the usual bound.
        if (m.type === "ReadyForQuery") wire.headerCheck = undefined
        else if (m.type === "AuthenticationOk") wire.headerCheck = afterAuthentication
        if (this.waiting) {
          const w = this.waiting
          this.waiting = undefined
          w(m)
        } else this.queue.push(m)
      },
      (closed) => {
        const method = unknownMethod(closed.protocolError)
        this.failure =
          method !== undefined
            ? new ConnectFailure(
                "Authentication",
                `${describe(endpoint)}: the server asks for authentication method ${method}, which pgline does not support`
              )
            : new ConnectFailure(
                closed.kind === "protocol" ? "Protocol" : "Network",
                // Unparseable from the first byte: not a PostgreSQL server at all. An over-long first
                // authentication request, NegotiateProtocolVersion or error is said as such.
                closed.kind === "protocol" &&
                  this.received === 0 &&
                  (closed.protocolError !== undefined || !startsLikePostgres(wire.firstBytes))
                  ? notPostgres(endpoint, wire.firstBytes)
                  : `${describe(endpoint)}: ${closed.message} during start-up`
              )
        if (this.waiting) {
          const w = this.waiting
          this.waiting = undefined
          w(this.failure)
        }
      }
    )
  }
  next(): Promise<BackendMessage> {
    const m = this.queue.shift()
    if (m !== undefined) return Promise.resolve(m)
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiting = (x) => (x instanceof ConnectFailure ? reject(x) : resolve(x))
    })
  }
}

/**
 * The code of an authentication request the parser does not know (a well-formed 'R' message with a
 * code of no method pgline speaks), or undefined for any other protocol error.
 */
const unknownMethod = (error: ProtocolError | undefined): string | undefined =>
  error?.messageType === "R" && error.reason === "InvalidValue"
    ? /^unknown authentication code (-?\d+)$/.exec(error.message)?.[1]
    : undefined

/** Started.ask: the query's first value as text, up to its ReadyForQuery; an error throws it. */
const ask = async (
  wire: Wire,
  reader: StartupReader,
  endpoint: Endpoint,
  query: string
): Promise<string | null> => {
  encodeQuery(wire.writer, query)
  wire.flush()
  let value: string | null | undefined
  let failed: ErrorFields | undefined
  for (;;) {
    const m = await reader.next()
    switch (m.type) {
      case "DataRow":
        if (value === undefined && m.columnCount > 0)
          value = m.lengths[0]! < 0 ? null : decodeUtf8(m.bytes, m.offsets[0]!, m.offsets[0]! + m.lengths[0]!)
        break
      case "ErrorResponse":
        failed = m.fields
        break
      case "ReadyForQuery":
        if (failed !== undefined) throw new StartupServerError(failed)
        return value ?? null
      case "RowDescription":
      case "CommandComplete":
      case "NoticeResponse":
      case "ParameterStatus":
      case "EmptyQueryResponse":
        break
      default:
        throw new ConnectFailure("Protocol", `${describe(endpoint)}: unexpected ${m.type} answering ${query}`)
    }
  }
}

/** 'R', 'E' or 'v': the first bytes a PostgreSQL server answers a StartupMessage with. */
const startsLikePostgres = (bytes: Uint8Array): boolean =>
  bytes[0] === 0x52 || bytes[0] === 0x45 || bytes[0] === 0x76

/**
 * connect_timeout's deadline, none for 0 or less, and none beyond what a timer can wait (~24.8
 * days: Node fires a longer timer at once).
 */
const deadlineOf = (seconds: number | undefined): number | undefined =>
  seconds === undefined || seconds <= 0 || seconds * 1000 > 2 ** 31 - 1
    ? undefined
    : Date.now() + Math.max(2, seconds) * 1000

/**
 * Server errors no other transport can avoid: a wrong password, a database that does not exist, no
 * CONNECT privilege (pgx stops falling back on them too). pg_hba's refusal (28000) is not one: its
 * host and hostssl lines may differ, which is what allow and prefer are for.
 */
const FINAL_CODES: ReadonlySet<string> = new Set(["28P01", "3D000", "42501"])

/**
 * Connects to one endpoint, trying the sslmode's attempts in order. Resolves with the session or
 * rejects with a ConnectFailure / StartupServerError: the last attempt's, except that pg_hba's
 * refusal of the last transport yields to an earlier attempt's other server error (a server that
 * only accepts TLS refuses the plain retry, which says nothing of why the TLS attempt failed).
 */
export const startup = async (
  endpoint: Endpoint,
  options: StartupOptions,
  signal?: AbortSignal
): Promise<Started> => {
  const attempts = attemptsFor(endpoint, options.tls)
  let last: unknown
  let serverError: StartupServerError | undefined
  let connectFailure: ConnectFailure | undefined
  for (let i = 0; i < attempts.length; i++) {
    const attempt = attempts[i]!
    try {
      return await startupOnce(endpoint, options, attempt, signal)
    } catch (error) {
      last = error
      if (error instanceof StartupServerError && error.fields.code !== "28000") serverError ??= error
      if (error instanceof ConnectFailure) connectFailure ??= error
      if (signal?.aborted) break
      // allow/prefer fall back only on failures that another transport could avoid: not on a
      // server error the other transport gets as well, not on a peer that does not speak the
      // protocol (libpq: "received invalid response to SSL negotiation").
      if (i === attempts.length - 1) break
      if (error instanceof StartupServerError && FINAL_CODES.has(error.fields.code)) break
      if (
        error instanceof ConnectFailure &&
        (error.reason === "Timeout" ||
          error.reason === "Dns" ||
          error.reason === "Refused" ||
          error.reason === "Protocol")
      )
        break
    }
  }
  if (last instanceof StartupServerError && last.fields.code === "28000") {
    if (serverError !== undefined) throw serverError
    // The attempt before failed without the server's word (a TLS handshake): say both, as libpq does.
    if (connectFailure !== undefined)
      throw new StartupServerError({
        ...last.fields,
        message: `${last.fields.message} (the attempt before it failed: ${connectFailure.message.trim()})`
      })
  }
  throw last
}

const startupOnce = async (
  endpoint: Endpoint,
  options: StartupOptions,
  attempt: Attempt,
  signal: AbortSignal | undefined
): Promise<Started> => {
  const deadline = deadlineOf(options.connectTimeout)
  const raw: Socket = await openSocket(endpoint, {
    keepalives: options.keepalives,
    keepalivesIdle: options.keepalivesIdle,
    deadline,
    signal
  })
  // Interruption (the caller's fiber was interrupted) tears the attempt down wherever it waits:
  // the SSLRequest answer, the TLS handshake and start-up all fail once the socket closes.
  // Without it, interrupting a connect to a silent server without connect_timeout hung forever
  // (Effect.tryPromise waits for the promise) and left the socket open.
  let wire: Wire | undefined
  const onAbort = () => {
    if (wire !== undefined) wire.close({ kind: "local", message: "connection attempt interrupted" })
    else raw.destroy()
  }
  signal?.addEventListener("abort", onAbort, { once: true })
  // The abort may have come while openSocket's promise was resolving.
  if (signal?.aborted) onAbort()
  try {
    return await startupOn(raw, endpoint, options, attempt, deadline, (w) => {
      wire = w
      if (signal?.aborted) onAbort()
    })
  } finally {
    signal?.removeEventListener("abort", onAbort)
  }
}

/** SSL negotiation and start-up over a connected socket; `onWire` learns the wire once it exists. */
const startupOn = async (
  raw: Socket,
  endpoint: Endpoint,
  options: StartupOptions,
  attempt: Attempt,
  deadline: number | undefined,
  onWire: (wire: Wire) => void
): Promise<Started> => {
  let socket: Socket | TLSSocket = raw
  let tls = false
  try {
    if (attempt === "tls-direct") {
      socket = await startTls(raw, endpoint, options.tls, true, deadline)
      tls = true
    } else if (attempt === "tls-required" || attempt === "tls-optional") {
      const answer = await requestSsl(raw, endpoint, deadline)
      if (answer === "S") {
        socket = await startTls(raw, endpoint, options.tls, false, deadline)
        tls = true
      } else if (attempt === "tls-required") {
        raw.destroy()
        throw new ConnectFailure(
          "Tls",
          `${describe(endpoint)}: server does not support TLS, but sslmode=${options.tls.sslmode} requires it`
        )
      }
    }
  } catch (error) {
    raw.destroy()
    throw error
  }

  const wire = new Wire(socket, options.maxMessageSize)
  const reader = new StartupReader(wire, endpoint)
  onWire(wire)
  let timer: ReturnType<typeof setTimeout> | undefined
  // A flag, not a clock comparison: timers may fire a millisecond before Date.now() reaches the deadline.
  let timedOut = false
  if (deadline !== undefined) {
    timer = setTimeout(
      () => {
        timedOut = true
        wire.close({ kind: "local", message: "connect_timeout expired" })
      },
      Math.max(0, deadline - Date.now())
    )
  }
  try {
    return await converse(wire, reader, endpoint, options, tls)
  } catch (error) {
    wire.close({ kind: "local", message: "start-up failed" })
    if (error instanceof ConnectFailure && (timedOut || (deadline !== undefined && Date.now() >= deadline))) {
      throw new ConnectFailure("Timeout", `${describe(endpoint)}: connect_timeout expired during start-up`)
    }
    throw error
  } finally {
    if (timer) clearTimeout(timer)
  }
}

const converse = async (
  wire: Wire,
  reader: StartupReader,
  endpoint: Endpoint,
  options: StartupOptions,
  tls: boolean
): Promise<Started> => {
  const protocol = options.maxProtocol === "3.2" ? PROTOCOL_3_2 : PROTOCOL_3_0
  encodeStartup(wire.writer, protocol, {
    user: options.user,
    database: options.database,
    ...options.runtimeParameters
  })
  wire.flush()

  const parameters = new Map<string, string>()
  const notices: Array<ErrorFields> = []
  let noticeCharsKept = 0
  let processId = 0
  let secretKey: Uint8Array = new Uint8Array(0)
  let negotiated: "3.0" | "3.2" = options.maxProtocol
  let authMethod: AuthMethod = "none"
  let progress: AuthProgress = initialAuthProgress
  let scram: ScramClient | undefined
  const tlsCertificate = (): Uint8Array | undefined => {
    const s = wire.socket as TLSSocket
    if (!tls || typeof s.getPeerCertificate !== "function") return undefined
    const cert = s.getPeerCertificate()
    return cert?.raw ? new Uint8Array(cert.raw) : undefined
  }
  const refuse = (message: string) =>
    new ConnectFailure("Authentication", `${describe(endpoint)}: ${message}`)
  const password = (): string => {
    const p = options.password(endpoint)
    if (p === undefined) {
      const why = options.passwordMissing?.(endpoint)
      throw refuse(
        `the server asks for a password and none was supplied${why === undefined ? "" : ` (${why})`}`
      )
    }
    return p
  }
  const check = (type: string) => {
    const verdict = checkAuthRequest(type, options.auth, progress)
    if (verdict._tag === "Failure") throw refuse(verdict.failure.message)
  }
  const unwrap = <A>(r: Result.Result<A, AuthenticationError>): A => {
    if (r._tag === "Failure") throw refuse(r.failure.message)
    return r.success
  }

  const protocolFailure = (message: string) =>
    new ConnectFailure("Protocol", `${describe(endpoint)}: ${message}`)
  // sslcertmode=require: the server must have asked for a client certificate (and got one) by the
  // time it lets the client in. Node reports no CertificateRequest as such, but the client side of
  // OpenSSL computes the shared signature algorithms only from one, so they tell.
  const checkCertMode = () => {
    if (options.tls.sslcertmode !== "require") return
    const s = wire.socket as TLSSocket
    const requested = tls && typeof s.getSharedSigalgs === "function" && s.getSharedSigalgs().length > 0
    if (!requested) throw refuse("server did not request an SSL certificate")
    const own = s.getCertificate()
    if (own === null || Object.keys(own).length === 0)
      throw refuse("server accepted connection without a valid SSL certificate")
  }

  // The order libpq holds the server to: NegotiateProtocolVersion (first, if at all), the
  // authentication exchange up to AuthenticationOk, then ParameterStatus and BackendKeyData up to
  // ReadyForQuery; errors and notices anywhere. require_auth and channel_binding are checked on
  // the Authentication* messages, so a server that skipped AuthenticationOk (or left a SCRAM
  // exchange unfinished) and went on to ReadyForQuery would otherwise get around them.
  let authenticated = false
  let received = 0
  for (;;) {
    const m = await reader.next()
    received++
    if (m.type.startsWith("Authentication")) {
      if (authenticated) throw protocolFailure(`unexpected ${m.type} after AuthenticationOk`)
    } else if (
      !authenticated &&
      m.type !== "ErrorResponse" &&
      m.type !== "NoticeResponse" &&
      m.type !== "NegotiateProtocolVersion"
    ) {
      throw protocolFailure(`expected an authentication request from the server, but received ${m.type}`)
    }
    switch (m.type) {
      case "AuthenticationOk":
        check(m.type)
        checkCertMode()
        authenticated = true
        break
      case "AuthenticationCleartextPassword":
        check(m.type)
        authMethod = "password"
        encodePassword(wire.writer, unwrap(cleartextPasswordResponse(password())))
        wire.flush()
        progress = { ...progress, clientFinishedAuth: true }
        break
      case "AuthenticationMD5Password":
        check(m.type)
        authMethod = "md5"
        encodePassword(wire.writer, unwrap(md5PasswordResponse(options.user, password(), m.salt)))
        wire.flush()
        progress = { ...progress, clientFinishedAuth: true }
        break
      case "AuthenticationSASL": {
        check(m.type)
        authMethod = "scram-sha-256"
        const cert = tlsCertificate()
        scram = unwrap(
          ScramClient.start({
            password: password(),
            mechanisms: m.mechanisms,
            channelBinding: options.auth.channelBinding,
            tls,
            tlsServerCertificate: cert
          })
        )
        encodeSASLInitialResponse(wire.writer, scram.initialResponse.mechanism, scram.initialResponse.data)
        wire.flush()
        progress = { ...progress, saslInProgress: true }
        break
      }
      case "AuthenticationSASLContinue": {
        check(m.type)
        if (scram === undefined) throw refuse("SASLContinue without SASL")
        // PBKDF2 runs off the event loop (4096 iterations by default, more if the server asks).
        encodeAuthData(wire.writer, unwrap(await scram.continueAsync(m.data)))
        wire.flush()
        break
      }
      case "AuthenticationSASLFinal": {
        check(m.type)
        if (scram === undefined) throw refuse("SASLFinal without SASL")
        unwrap(scram.final(m.data))
        progress = { clientFinishedAuth: true, saslInProgress: false, channelBound: scram.channelBound }
        break
      }
      case "AuthenticationKerberosV5":
      case "AuthenticationGSS":
      case "AuthenticationGSSContinue":
      case "AuthenticationSSPI":
        check(m.type)
        throw refuse(
          `the server asks for ${m.type.replace("Authentication", "")} authentication, which pgline does not support`
        )
      case "NegotiateProtocolVersion": {
        // Only as the server's answer to the StartupMessage, before anything else.
        if (received !== 1) throw protocolFailure("NegotiateProtocolVersion after other messages")
        const major = m.newestProtocolVersion >>> 16
        const minor = m.newestProtocolVersion & 0xffff
        const requested = protocol & 0xffff
        // It names what the server can do instead of what was asked: never more than that.
        if (major !== 3 || minor > requested) {
          throw protocolFailure(
            `NegotiateProtocolVersion offers protocol ${major}.${minor}, but 3.${requested} was requested`
          )
        }
        // pgline sends no protocol options of its own; only "_pq_." ones a caller put in the
        // start-up parameters may come back as unrecognized.
        const unrequested = m.unrecognizedOptions.find(
          (o) => !(o.startsWith("_pq_.") && Object.hasOwn(options.runtimeParameters, o))
        )
        if (unrequested !== undefined) {
          throw protocolFailure(
            `NegotiateProtocolVersion names a protocol option that was not requested ("${unrequested}")`
          )
        }
        if (minor === requested && m.unrecognizedOptions.length === 0) {
          throw protocolFailure("NegotiateProtocolVersion asks for no change")
        }
        negotiated = minor >= 2 ? "3.2" : "3.0"
        if (options.minProtocol === "3.2" && negotiated === "3.0") {
          throw new ConnectFailure(
            "ProtocolVersion",
            `${describe(endpoint)}: server supports protocol 3.${minor} only, min_protocol_version is 3.2`
          )
        }
        break
      }
      case "BackendKeyData":
        processId = m.processId
        secretKey = m.secretKey
        break
      case "ParameterStatus":
        if (parameters.size >= 256 && !parameters.has(m.name))
          throw new ConnectFailure(
            "Protocol",
            `${describe(endpoint)}: more than 256 distinct ParameterStatus names`
          )
        parameters.set(m.name, m.value)
        break
      case "NoticeResponse": {
        const chars = noticeChars(m.fields)
        if (notices.length < MAX_STARTUP_NOTICES && noticeCharsKept + chars <= MAX_STARTUP_NOTICE_CHARS) {
          notices.push(m.fields)
          noticeCharsKept += chars
        }
        break
      }
      case "ErrorResponse":
        throw new StartupServerError(m.fields)
      case "ReadyForQuery":
        return {
          wire,
          endpoint,
          parameters,
          processId,
          secretKey,
          protocol: negotiated,
          tls,
          transactionStatus: m.status,
          notices,
          authMethod,
          ask: (query) => ask(wire, reader, endpoint, query)
        }
      default:
        throw new ConnectFailure("Protocol", `${describe(endpoint)}: unexpected ${m.type} during start-up`)
    }
  }
}
