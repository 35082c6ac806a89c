/**
 * The client side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) as PostgreSQL
 * speaks it: a small state machine that turns AuthenticationSASL / SASLContinue / SASLFinal
 * payloads into SASLInitialResponse / SASLResponse payloads, and refuses, with an
 * `AuthenticationError`, anything that should stop the exchange before a secret leaves the client.
 *
 * PostgreSQL specifics: the user name in `n=` is always empty (the server uses the startup
 * packet's user), the password goes through SASLprep with the server's fallback
 * (`saslprepPassword`), and the only channel binding type is tls-server-end-point (RFC 5929).
 * Mechanism choice and channel-binding refusals follow libpq: PLUS when TLS is on and
 * channel_binding is not "disable"; a PLUS offer without TLS is refused as suspicious.
 *
 * Not here: sockets, message framing (the codec frames the payloads), require_auth
 * (`requireAuth.ts`), and server-side SCRAM.
 */
import { Result } from "effect"
import { nodeCrypto } from "../builtins.ts"
import { AuthenticationError, authError } from "./AuthenticationError.ts"
import { tlsServerEndPoint } from "./channelBinding.ts"
import { saslprepPassword } from "./saslprep.ts"

export type ChannelBindingMode = "disable" | "prefer" | "require"

export type ScramMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS"

export const SCRAM_SHA_256 = "SCRAM-SHA-256"
export const SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"

/**
 * Upper bound on the server's iteration count. A hostile or misconfigured server can ask for up to
 * 2^31-1 (PostgreSQL's scram_iterations maximum), which would pin a CPU for minutes. PBKDF2-SHA-256
 * runs about 5 M iterations/s on this machine class (1 M took 198 ms), so 10 M is ~2 s; PostgreSQL's
 * default is 4096.
 */
export const DEFAULT_MAX_ITERATIONS = 10_000_000

/** Derived keys, so a pool reconnecting with one password skips PBKDF2 (the expensive part). */
export interface ScramKeys {
  readonly clientKey: Uint8Array
  readonly serverKey: Uint8Array
}

/**
 * A bounded cache of derived keys keyed by (SHA-256 of the prepared password, salt, iterations).
 * The keys are as sensitive as the password: share one cache per configured credential set, never
 * across tenants. Oldest entries are dropped first.
 */
export class ScramKeyCache {
  readonly #entries = new Map<string, ScramKeys>()
  readonly #capacity: number
  constructor(capacity = 16) {
    this.#capacity = capacity
  }
  static key(password: Uint8Array, salt: Uint8Array, iterations: number): string {
    const digest = nodeCrypto().createHash("sha256").update(password).digest("base64")
    return `${iterations}:${Buffer.from(salt).toString("base64")}:${digest}`
  }
  get(key: string): ScramKeys | undefined {
    return this.#entries.get(key)
  }
  set(key: string, keys: ScramKeys): void {
    this.#entries.delete(key)
    this.#entries.set(key, keys)
    while (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!)
  }
}

export interface ScramStartOptions {
  /** The configured password (SASLprep is applied here). */
  readonly password: string
  /** The mechanism names from AuthenticationSASL, in the server's order. */
  readonly mechanisms: ReadonlyArray<string>
  readonly channelBinding: ChannelBindingMode
  /** DER of the server's certificate when the session uses TLS. */
  readonly tlsServerCertificate?: Uint8Array | undefined
  /** Whether the session uses TLS; defaults to whether a certificate was given. */
  readonly tls?: boolean | undefined
  /** Bound on the server's iteration count; default `DEFAULT_MAX_ITERATIONS`. */
  readonly maxIterations?: number | undefined
  readonly keyCache?: ScramKeyCache | undefined
  /**
   * The `n=` user name. PostgreSQL ignores it (the startup packet's user counts) and libpq sends it
   * empty, which is the default; set only to reproduce RFC test vectors.
   */
  readonly user?: string | undefined
  /** Fixed client nonce (printable ASCII without ','), for test vectors only. */
  readonly clientNonce?: string | undefined
}

/** What the client sends first: the SASLInitialResponse's mechanism and data. */
export interface ScramInitialResponse {
  readonly mechanism: ScramMechanism
  readonly data: Uint8Array
}

/** server-first-message's parameters, once validated. */
export interface ScramServerFirst {
  readonly nonce: string
  readonly salt: Uint8Array
  readonly iterations: number
}

type State = "awaitingServerFirst" | "awaitingServerFinal" | "done" | "failed"

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** RFC 5802 `printable`: %x21-2B / %x2D-7E (no ','). */
const printablePattern = /^[\x21-\x2b\x2d-\x7e]+$/
/** `attr-val` of an extension: a letter, '=', then anything up to the next ','. */
const extensionPattern = /^[A-Za-z]=/

const decodeBase64 = (s: string): Uint8Array | undefined =>
  s.length > 0 && base64Pattern.test(s) ? new Uint8Array(Buffer.from(s, "base64")) : undefined

const hmac = (key: Uint8Array, data: Uint8Array | string): Uint8Array =>
  new Uint8Array(nodeCrypto().createHmac("sha256", key).update(data).digest())

const sha256 = (data: Uint8Array): Uint8Array =>
  new Uint8Array(nodeCrypto().createHash("sha256").update(data).digest())

const keysFromSalted = (salted: Uint8Array): ScramKeys => ({
  clientKey: hmac(salted, "Client Key"),
  serverKey: hmac(salted, "Server Key")
})

/** SaltedPassword = Hi(Normalize(password), salt, i) (RFC 5802 section 3), synchronously. */
export const saltedPassword = (password: Uint8Array, salt: Uint8Array, iterations: number): Uint8Array =>
  new Uint8Array(nodeCrypto().pbkdf2Sync(password, salt, iterations, 32, "sha256"))

const saltedPasswordAsync = (
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number
): Promise<Uint8Array> =>
  new Promise((resolve, reject) =>
    nodeCrypto().pbkdf2(password, salt, iterations, 32, "sha256", (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key))
    )
  )

/** Parses `a=v,b=w,...` into ordered pairs; undefined when an item is not `letter=value`. */
const attributes = (message: string): Array<readonly [string, string]> | undefined => {
  const out: Array<readonly [string, string]> = []
  for (const item of message.split(",")) {
    if (!extensionPattern.test(item)) return undefined
    out.push([item[0]!, item.slice(2)])
  }
  return out
}

/**
 * One SCRAM exchange. Create with `ScramClient.start`, send `initialResponse`, feed
 * SASLContinue's data to `continue` (send what it returns as SASLResponse), feed SASLFinal's data to
 * `final`. Any failure moves it to a terminal state; it is single use.
 */
export class ScramClient {
  readonly mechanism: ScramMechanism
  /** SASLInitialResponse payload: `mechanism` is the name, `data` the client-first-message. */
  readonly initialResponse: ScramInitialResponse
  readonly #password: Uint8Array
  readonly #clientNonce: string
  readonly #clientFirstBare: string
  /** base64(gs2-header + channel binding data), the `c=` value. */
  readonly #channelBindingValue: string
  readonly #maxIterations: number
  readonly #keyCache: ScramKeyCache | undefined
  #state: State = "awaitingServerFirst"
  #serverFirst: ScramServerFirst | undefined
  #serverFirstMessage = ""
  #serverSignature: Uint8Array | undefined

  private constructor(
    mechanism: ScramMechanism,
    gs2Header: string,
    cbData: Uint8Array | undefined,
    password: Uint8Array,
    user: string,
    nonce: string,
    maxIterations: number,
    keyCache: ScramKeyCache | undefined
  ) {
    this.mechanism = mechanism
    this.#password = password
    this.#clientNonce = nonce
    this.#clientFirstBare = `n=${user},r=${nonce}`
    const header = encoder.encode(gs2Header)
    const cbInput = cbData === undefined ? header : Buffer.concat([header, cbData])
    this.#channelBindingValue = Buffer.from(cbInput).toString("base64")
    this.#maxIterations = maxIterations
    this.#keyCache = keyCache
    this.initialResponse = { mechanism, data: encoder.encode(gs2Header + this.#clientFirstBare) }
  }

  /**
   * Chooses the mechanism and builds client-first-message, or refuses before anything is sent
   * (the checks and their order follow libpq's SASL start-up).
   */
  static start(options: ScramStartOptions): Result.Result<ScramClient, AuthenticationError> {
    const tls = options.tls ?? options.tlsServerCertificate !== undefined
    const cb = options.channelBinding
    if (cb === "require" && !tls) {
      return Result.fail(
        authError("ChannelBindingRequired", "channel binding required, but TLS is not in use")
      )
    }
    let offersPlus = false
    let offersPlain = false
    for (const name of options.mechanisms) {
      if (name === SCRAM_SHA_256_PLUS) {
        // Stripped TLS (a proxy in the middle?): the server would refuse an unbound exchange anyway.
        if (!tls) {
          return Result.fail(
            authError(
              "UnexpectedChannelBinding",
              "server offered SCRAM-SHA-256-PLUS authentication over a connection without TLS"
            )
          )
        }
        offersPlus = true
      } else if (name === SCRAM_SHA_256) offersPlain = true
    }

    let mechanism: ScramMechanism | undefined
    let gs2Header = "n,,"
    let cbData: Uint8Array | undefined
    if (offersPlus && cb !== "disable") {
      const bound =
        options.tlsServerCertificate === undefined
          ? { ok: false as const, message: "the server certificate is not available" }
          : tlsServerEndPoint(options.tlsServerCertificate)
      if (bound.ok) {
        mechanism = SCRAM_SHA_256_PLUS
        gs2Header = "p=tls-server-end-point,,"
        cbData = bound.data
      } else if (cb === "require") {
        return Result.fail(
          authError("ChannelBindingRequired", `channel binding required, but ${bound.message}`)
        )
      } else if (offersPlain) {
        // We cannot bind, so we say so with "n": "y" would tell the server we believe it cannot
        // bind, which it (rightly) treats as a downgrade attack since it offered PLUS.
        mechanism = SCRAM_SHA_256
      }
    } else if (offersPlain) {
      mechanism = SCRAM_SHA_256
      // "y": we could bind but the server did not offer it; lets the server detect a downgrade.
      if (tls && cb !== "disable") gs2Header = "y,,"
    }
    if (mechanism === undefined) {
      return Result.fail(
        authError(
          "UnsupportedMechanism",
          `none of the server's SASL authentication mechanisms are supported (offered: ${options.mechanisms.join(", ") || "none"})`
        )
      )
    }
    if (cb === "require" && mechanism !== SCRAM_SHA_256_PLUS) {
      return Result.fail(
        authError(
          "ChannelBindingRequired",
          "channel binding is required, but server did not offer an authentication method that supports channel binding"
        )
      )
    }
    if (options.password.length === 0) {
      return Result.fail(
        authError("NoPassword", "the server requested SCRAM authentication and no password was supplied")
      )
    }
    const nonce = options.clientNonce ?? nodeCrypto().randomBytes(24).toString("base64")
    if (!printablePattern.test(nonce)) {
      return Result.fail(
        authError("MalformedServerMessage", "the client nonce must be printable ASCII without ','")
      )
    }
    return Result.succeed(
      new ScramClient(
        mechanism,
        gs2Header,
        cbData,
        encoder.encode(saslprepPassword(options.password)),
        // saslname (RFC 5802 section 5.1): ',' and '=' escaped as =2C and =3D.
        (options.user ?? "").replaceAll("=", "=3D").replaceAll(",", "=2C"),
        nonce,
        options.maxIterations ?? DEFAULT_MAX_ITERATIONS,
        options.keyCache
      )
    )
  }

  /** True once a -PLUS exchange has been verified (what channel_binding=require checks at AuthenticationOk). */
  get channelBound(): boolean {
    return this.#state === "done" && this.mechanism === SCRAM_SHA_256_PLUS
  }

  /** True once the server's signature has been verified. */
  get done(): boolean {
    return this.#state === "done"
  }

  #fail(error: AuthenticationError): Result.Result<never, AuthenticationError> {
    this.#state = "failed"
    return Result.fail(error)
  }

  /** Parses and validates server-first-message (SASLContinue's data) without the expensive step. */
  receiveServerFirst(data: Uint8Array): Result.Result<ScramServerFirst, AuthenticationError> {
    if (this.#state !== "awaitingServerFirst") {
      return this.#fail(authError("UnexpectedMessage", "unexpected AuthenticationSASLContinue"))
    }
    const malformed = (what: string) =>
      this.#fail(authError("MalformedServerMessage", `malformed SCRAM server-first-message: ${what}`))
    let text: string
    try {
      text = decoder.decode(data)
    } catch {
      return malformed("not valid UTF-8")
    }
    const attrs = attributes(text)
    if (attrs === undefined) return malformed("not a list of attribute=value")
    if (attrs[0]?.[0] === "m") return malformed("unsupported mandatory extension (m=)")
    if (attrs.length < 3 || attrs[0]![0] !== "r" || attrs[1]![0] !== "s" || attrs[2]![0] !== "i") {
      return malformed("expected r=, s=, i=")
    }
    const nonce = attrs[0]![1]
    if (!printablePattern.test(nonce)) return malformed("invalid nonce")
    // The server appends its own part; a server that merely echoes ours adds no freshness.
    if (nonce.length <= this.#clientNonce.length || !nonce.startsWith(this.#clientNonce)) {
      return this.#fail(
        authError("ServerNonceMismatch", "the server's nonce does not extend the client nonce")
      )
    }
    const salt = decodeBase64(attrs[1]![1])
    if (salt === undefined) return malformed("invalid salt")
    const iterationText = attrs[2]![1]
    if (!/^[1-9][0-9]{0,9}$/.test(iterationText)) return malformed("invalid iteration count")
    const iterations = Number(iterationText)
    if (iterations > this.#maxIterations) {
      return this.#fail(
        authError(
          "UnsafeIterationCount",
          `the server asked for ${iterations} SCRAM iterations, above the limit of ${this.#maxIterations}`
        )
      )
    }
    // Anything after i= is an optional extension (RFC 5802 section 7); PostgreSQL sends none.
    this.#serverFirst = { nonce, salt, iterations }
    this.#serverFirstMessage = text
    this.#state = "awaitingServerFinal"
    return Result.succeed(this.#serverFirst)
  }

  /** The derived keys for the received salt and iteration count, from the cache when present. */
  #cacheKey(): string | undefined {
    const first = this.#serverFirst!
    return this.#keyCache === undefined
      ? undefined
      : ScramKeyCache.key(this.#password, first.salt, first.iterations)
  }

  /** client-final-message from the derived keys; records the expected server signature. */
  #clientFinal(keys: ScramKeys): Uint8Array {
    const first = this.#serverFirst!
    const withoutProof = `c=${this.#channelBindingValue},r=${first.nonce}`
    const authMessage = `${this.#clientFirstBare},${this.#serverFirstMessage},${withoutProof}`
    const storedKey = sha256(keys.clientKey)
    const clientSignature = hmac(storedKey, authMessage)
    const proof = new Uint8Array(32)
    for (let i = 0; i < 32; i++) proof[i] = keys.clientKey[i]! ^ clientSignature[i]!
    this.#serverSignature = hmac(keys.serverKey, authMessage)
    return encoder.encode(`${withoutProof},p=${Buffer.from(proof).toString("base64")}`)
  }

  /**
   * SASLContinue's data in, SASLResponse's data (client-final-message) out. Runs PBKDF2
   * synchronously (4096 iterations, PostgreSQL's default, take about 1 ms); use `continueAsync`
   * to keep a high iteration count off the event loop.
   */
  continue(serverFirst: Uint8Array): Result.Result<Uint8Array, AuthenticationError> {
    const parsed = this.receiveServerFirst(serverFirst)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    const cacheKey = this.#cacheKey()
    let keys = cacheKey === undefined ? undefined : this.#keyCache!.get(cacheKey)
    if (keys === undefined) {
      keys = keysFromSalted(saltedPassword(this.#password, parsed.success.salt, parsed.success.iterations))
      if (cacheKey !== undefined) this.#keyCache!.set(cacheKey, keys)
    }
    return Result.succeed(this.#clientFinal(keys))
  }

  /** `continue` with PBKDF2 on libuv's thread pool. */
  async continueAsync(serverFirst: Uint8Array): Promise<Result.Result<Uint8Array, AuthenticationError>> {
    const parsed = this.receiveServerFirst(serverFirst)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    const cacheKey = this.#cacheKey()
    let keys = cacheKey === undefined ? undefined : this.#keyCache!.get(cacheKey)
    if (keys === undefined) {
      keys = keysFromSalted(
        await saltedPasswordAsync(this.#password, parsed.success.salt, parsed.success.iterations)
      )
      if (cacheKey !== undefined) this.#keyCache!.set(cacheKey, keys)
    }
    return Result.succeed(this.#clientFinal(keys))
  }

  /** SASLFinal's data (server-final-message): verifies the server's signature in constant time. */
  final(serverFinal: Uint8Array): Result.Result<void, AuthenticationError> {
    if (this.#state !== "awaitingServerFinal" || this.#serverSignature === undefined) {
      return this.#fail(authError("UnexpectedMessage", "unexpected AuthenticationSASLFinal"))
    }
    let text: string
    try {
      text = decoder.decode(serverFinal)
    } catch {
      return this.#fail(
        authError("MalformedServerMessage", "malformed SCRAM server-final-message: not valid UTF-8")
      )
    }
    if (text.startsWith("e=")) {
      const value = text.slice(2).split(",")[0]!
      return this.#fail(authError("ServerError", `error received from server in SCRAM exchange: ${value}`))
    }
    const attrs = attributes(text)
    if (attrs === undefined || attrs[0]![0] !== "v") {
      return this.#fail(
        authError("MalformedServerMessage", "malformed SCRAM server-final-message: expected v=")
      )
    }
    const signature = decodeBase64(attrs[0]![1])
    if (signature === undefined || signature.length !== 32) {
      return this.#fail(
        authError("MalformedServerMessage", "malformed SCRAM server-final-message: invalid server signature")
      )
    }
    if (!nodeCrypto().timingSafeEqual(signature, this.#serverSignature)) {
      return this.#fail(authError("InvalidServerSignature", "incorrect server signature"))
    }
    this.#state = "done"
    return Result.succeed(undefined)
  }
}

export { AuthenticationError }
