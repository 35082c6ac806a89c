/**
 * Session: an open, authenticated PostgreSQL session over one Wire, as a scoped Effect resource.
 * `Session.open` walks the host list the way libpq does (in order, or shuffled with
 * load_balance_hosts=random), runs start-up on each until one answers and satisfies
 * target_session_attrs, and closes the session (Terminate, then the socket) when the scope ends.
 * It also sends CancelRequest (over TLS when the session uses TLS). It does not run statements:
 * that is the client's engine, which installs its handler on `wire`.
 */
import type { Socket } from "node:net"
import type { TLSSocket } from "node:tls"
import { encodeCancelRequest, type ErrorFields, TERMINATE_FRAME, Writer } from "@pgline/codec"
import { Effect, type Scope } from "effect"
import { PgConnectError } from "./PgClientError.ts"
import { fromErrorFields, type PgServerError } from "./PgServerError.ts"
import {
  ConnectFailure,
  describe,
  type Endpoint,
  openSocket,
  requestSsl,
  startTls
} from "./internal/sockets.ts"
import { type Started, StartupServerError, type StartupOptions, startup } from "./internal/startup.ts"
import type { Wire } from "./internal/Wire.ts"

export type { Endpoint } from "./internal/sockets.ts"
export type { StartupOptions } from "./internal/startup.ts"
export type { Wire } from "./internal/Wire.ts"

/** Which kind of server a session accepts (libpq's `target_session_attrs`). */
export type TargetSessionAttrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby"

/** What `Session.open` needs: start-up options plus the hosts to try and how to choose among them. */
export interface SessionOptions extends StartupOptions {
  readonly hosts: ReadonlyArray<Endpoint>
  readonly targetSessionAttrs: TargetSessionAttrs
  readonly loadBalanceHosts: "disable" | "random"
}

/** An open PostgreSQL session (start-up done): its wire, server parameters, backend key and `cancel()`. */
export interface Session {
  readonly wire: Wire
  readonly endpoint: Endpoint
  /** ParameterStatus values as last reported (server_version, TimeZone, …); kept current by the client. */
  readonly parameters: Map<string, string>
  readonly processId: number
  readonly secretKey: Uint8Array
  readonly protocol: "3.0" | "3.2"
  readonly tls: boolean
  readonly startupNotices: ReadonlyArray<ErrorFields>
  /** Sends a CancelRequest for whatever this session is running; resolves when the request was delivered. */
  readonly cancel: () => Promise<void>
}

const shuffle = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  return out
}

/**
 * A session's state for target_session_attrs: from the ParameterStatus values PostgreSQL 14+
 * reports, or, when one is missing (a pooler or proxy that does not pass it on), asked of the
 * server as libpq asks: `SHOW transaction_read_only` for read-write and read-only,
 * `pg_is_in_recovery()` for primary and standby.
 */
const sessionState = async (
  started: Started,
  attrs: TargetSessionAttrs
): Promise<{ readOnly: boolean; standby: boolean }> => {
  const readOnly = started.parameters.get("default_transaction_read_only")
  const hotStandby = started.parameters.get("in_hot_standby")
  if (attrs === "any" || (readOnly !== undefined && hotStandby !== undefined))
    return { readOnly: readOnly === "on" || hotStandby === "on", standby: hotStandby === "on" }
  if (attrs === "read-write" || attrs === "read-only") {
    const value = await started.ask("SHOW transaction_read_only")
    return { readOnly: value === "on", standby: false }
  }
  const value = await started.ask("SELECT pg_catalog.pg_is_in_recovery()")
  return { readOnly: value === "t", standby: value === "t" }
}

/**
 * `work` on a started session (the target_session_attrs check), bounded as the attempt is: by
 * connect_timeout (libpq counts the check in it) and by the attempt's interruption. Either, or the
 * work's failure, closes the session, which ends the work too.
 */
const checked = <A>(
  started: Started,
  work: Promise<A>,
  connectTimeout: number | undefined,
  signal: AbortSignal
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      if (timer !== undefined) clearTimeout(timer)
      signal.removeEventListener("abort", interrupted)
    }
    const fail = (error: unknown) => {
      done()
      started.wire.close({ kind: "local", message: "target_session_attrs check ended" })
      reject(error)
    }
    const interrupted = () =>
      fail(new ConnectFailure("Network", `${describe(started.endpoint)}: connection attempt interrupted`))
    if (signal.aborted) return interrupted()
    signal.addEventListener("abort", interrupted, { once: true })
    if (connectTimeout !== undefined && connectTimeout > 0 && connectTimeout * 1000 <= 2 ** 31 - 1)
      timer = setTimeout(
        () => fail(new ConnectFailure("Timeout", `${describe(started.endpoint)}: connect_timeout expired`)),
        Math.max(2, connectTimeout) * 1000
      )
    work.then((value) => {
      done()
      resolve(value)
    }, fail)
  })

const matches = (attrs: TargetSessionAttrs, state: { readOnly: boolean; standby: boolean }): boolean => {
  switch (attrs) {
    case "any":
      return true
    case "read-write":
      return !state.readOnly
    case "read-only":
      return state.readOnly
    case "primary":
      return !state.standby
    case "standby":
    case "prefer-standby":
      return state.standby
  }
}

/**
 * How long a CancelRequest connection waits for the server to close it (the server closes it
 * once it has read the request; one that never does must not keep the socket forever).
 */
const CANCEL_CLOSE_WAIT_MS = 5_000

/**
 * The whole cancel (connect, SSLRequest, TLS handshake, write, the wait for the close) ends by
 * this deadline, the socket destroyed: connect_timeout when set (libpq's cancel connections use
 * it too), else 10 s. A cancel that never settled kept the client's connection fenced for good.
 */
const cancelBudgetMs = (connectTimeout: number | undefined): number =>
  connectTimeout === undefined || connectTimeout <= 0
    ? 10_000
    : Math.min(Math.max(2, connectTimeout) * 1000, 2 ** 31 - 1)

const cancelOver = (started: Started, options: StartupOptions): Promise<void> =>
  new Promise((resolve) => {
    const w = new Writer(64)
    encodeCancelRequest(w, started.processId, started.secretKey)
    const frame = w.take()
    const endpoint = started.endpoint
    const deadline = Date.now() + cancelBudgetMs(options.connectTimeout)
    // Aborting stops a connect in progress; afterwards `stream` (the socket, then the TLS socket
    // over it as soon as the handshake starts) is what to destroy.
    const abort = new AbortController()
    let stream: { destroy: () => void } | undefined
    let settled = false
    let closeWait: ReturnType<typeof setTimeout> | undefined
    let overall: ReturnType<typeof setTimeout> | undefined
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(overall)
      if (closeWait !== undefined) clearTimeout(closeWait)
      abort.abort()
      stream?.destroy()
      resolve()
    }
    overall = setTimeout(finish, deadline - Date.now())
    openSocket(endpoint, { keepalives: false, keepalivesIdle: undefined, deadline, signal: abort.signal })
      .then(async (socket) => {
        stream = socket
        if (settled) {
          socket.destroy()
          return
        }
        let s: Socket | TLSSocket = socket
        if (started.tls) {
          // The cancel connection uses TLS when the session does, with the session's settings
          // (certificate checks included), so the key never travels in clear.
          if ((await requestSsl(socket, endpoint, deadline)) === "S") {
            s = await startTls(socket, endpoint, options.tls, false, deadline, (tls) => {
              stream = tls
            })
          }
        }
        if (settled) return
        stream = s
        s.on("error", () => {})
        // The server closes the connection once it has read the request; wait for that, bounded.
        s.once("close", finish)
        closeWait = setTimeout(finish, CANCEL_CLOSE_WAIT_MS)
        // Written without half-closing: a pooler in between (PgBouncer 1.18) that sees our end of
        // the stream before it has forwarded the request drops the client and later crashes on it.
        s.write(frame)
      })
      .catch(finish)
  })

const toError = (error: unknown): PgConnectError | PgServerError => {
  if (error instanceof StartupServerError) return fromErrorFields(error.fields)
  if (error instanceof ConnectFailure)
    return new PgConnectError({
      reason: error.reason,
      message: error.message,
      ...(error.endpoint !== undefined ? { host: error.endpoint.host, port: error.endpoint.port } : {}),
      ...(error.attempts !== undefined ? { attempts: error.attempts } : {})
    })
  return new PgConnectError({
    reason: "Network",
    message: error instanceof Error ? error.message : String(error)
  })
}

const closeSession = (session: Session): void => {
  if (!session.wire.isClosed) {
    session.wire.flush()
    session.wire.socket.end(TERMINATE_FRAME)
    session.wire.close({ kind: "local", message: "session closed" })
  }
}

/**
 * Opens a session; closing the scope sends Terminate and closes the socket.
 *
 * The connect itself is interruptible (Effect.timeout on a layer build, a fiber interrupted while
 * connecting): acquireRelease runs its acquire uninterruptibly, so an interrupted connect to a
 * silent host without connect_timeout used to hang forever. The session is handed to the scope in
 * an uninterruptible step; until then an abort closes it, so no interleaving leaks a connection.
 */
export const open = (
  options: SessionOptions
): Effect.Effect<Session, PgConnectError | PgServerError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      restore(
        Effect.tryPromise({
          try: async (signal) => {
            const session = await openSession(options, signal)
            const onAbort = () => closeSession(session)
            if (signal.aborted) {
              onAbort()
              throw new ConnectFailure("Network", "connection attempt interrupted")
            }
            signal.addEventListener("abort", onAbort, { once: true })
            return { session, detach: () => signal.removeEventListener("abort", onAbort) }
          },
          catch: toError
        })
      ),
      ({ session, detach }) => {
        detach()
        return Effect.as(
          Effect.addFinalizer(() => Effect.sync(() => closeSession(session))),
          session
        )
      }
    )
  )

const openSession = async (options: SessionOptions, signal: AbortSignal): Promise<Session> => {
  if (options.hosts.length === 0) throw new ConnectFailure("Network", "no host to connect to")
  const hosts = options.loadBalanceHosts === "random" ? shuffle(options.hosts) : options.hosts
  const failures: Array<string> = []
  let lastError: unknown
  const wanted = options.targetSessionAttrs
  // prefer-standby: first pass wants a standby, second pass takes anything.
  const passes: ReadonlyArray<TargetSessionAttrs> =
    wanted === "prefer-standby" ? ["standby", "any"] : [wanted]
  for (const attrs of passes) {
    for (const endpoint of hosts) {
      if (signal.aborted) throw new ConnectFailure("Network", "connection attempt interrupted")
      try {
        const started = await startup(endpoint, options, signal)
        if (signal.aborted) {
          started.wire.close({ kind: "local", message: "interrupted" })
          throw new ConnectFailure("Network", "connection attempt interrupted")
        }
        const state = await checked(started, sessionState(started, attrs), options.connectTimeout, signal)
        if (!matches(attrs, state)) {
          started.wire.close({ kind: "local", message: "target_session_attrs mismatch" })
          failures.push(`${describe(endpoint)}: session is not ${attrs}`)
          lastError = new ConnectFailure(
            "TargetSessionAttrs",
            `${describe(endpoint)}: session is not ${attrs}`
          )
          continue
        }
        return {
          wire: started.wire,
          endpoint,
          parameters: started.parameters,
          processId: started.processId,
          secretKey: started.secretKey,
          protocol: started.protocol,
          tls: started.tls,
          startupNotices: started.notices,
          cancel: () => cancelOver(started, options)
        }
      } catch (error) {
        lastError = error
        failures.push(
          error instanceof ConnectFailure
            ? error.message
            : `${describe(endpoint)}: ${String((error as { fields?: ErrorFields }).fields?.message ?? error)}`
        )
      }
    }
  }
  if (signal.aborted) throw new ConnectFailure("Network", "connection attempt interrupted")
  // PgConnectError documents host/port and `attempts` (every host tried, with why); they were
  // never filled in, so a caller could not tell which host of a list failed how.
  if (options.hosts.length > 1 && lastError instanceof ConnectFailure) {
    const reason = failures.every((f) => f.includes("session is not"))
      ? "TargetSessionAttrs"
      : lastError.reason
    throw new ConnectFailure(reason, `could not connect to any host:\n  ${failures.join("\n  ")}`, {
      attempts: failures
    })
  }
  if (lastError instanceof ConnectFailure && options.hosts.length === 1) {
    throw new ConnectFailure(lastError.reason, lastError.message, {
      endpoint: options.hosts[0]!,
      attempts: failures
    })
  }
  throw lastError
}

export { toSessionOptions, unreadableSetting } from "./internal/sessionOptions.ts"
