/**
 * PgClient: the public service. A Layer opens one session (closed with the scope) and offers
 * `query`, the `sql` template and, through Pipeline.ts, pipelines. Statements from concurrent
 * fibers share the connection: each is written with its own Sync the moment it is called, so they
 * are pipelined implicitly and their errors stay isolated.
 *
 * Interrupting a running statement sends a CancelRequest and waits until the server has answered
 * the statement's Sync, so the connection is usable again afterwards. It does not pool (see
 * PgPool when it exists) and does not retry statements that may have run.
 */
import { type ErrorFields, TypeRegistry } from "@pgline/codec"
import { PgConfig, type PgConnectError, type PgServerError, Session } from "@pgline/transport"
import { type Config, Context, Effect, Layer, type Scope } from "effect"
import { type Connection, Connection as ConnectionImpl, type Outcome } from "./internal/Connection.ts"
import { encodeFailure, lost, outcomeToExit } from "./internal/outcome.ts"
import { type PgClientError, StatementRejected } from "./PgClientError.ts"
import * as Pipeline from "./Pipeline.ts"
import type { QueryResult } from "./QueryResult.ts"
import type { PipelineAborted } from "./PgClientError.ts"
import { makeSqlTag, type SqlTag, type Statement } from "./Statement.ts"

export interface PgClientApi {
  /** Runs one statement with bound parameters ($1…$n) and returns its decoded rows. */
  readonly query: <Row = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<QueryResult<Row>, PgServerError | PgClientError>
  /** The tagged template: values are bound, never interpolated. */
  readonly sql: SqlTag
  /** The current value of a server parameter reported by ParameterStatus (server_version, TimeZone, …). */
  readonly parameter: (name: string) => string | undefined
  /** Every ParameterStatus value as last reported. */
  readonly parameters: ReadonlyMap<string, string>
  /** The backend's process id (pg_backend_pid()). */
  readonly processId: number
  /** The connection's type registry (register enum and extension codecs here). */
  readonly types: TypeRegistry
  /** Opens a pipeline; the scope's end syncs and drains it (see Pipeline.ts). */
  readonly pipeline: Effect.Effect<Pipeline.Pipeline, PgClientError, Scope.Scope>
  /** The same with options (e.g. the unsent-bytes window). */
  readonly pipelineWith: (
    options: Pipeline.PipelineOptions
  ) => Effect.Effect<Pipeline.Pipeline, PgClientError, Scope.Scope>
  /** Runs a struct or tuple of statements in one round trip; results come back in the same shape. */
  readonly all: <const T extends Record<string, Statement<any>> | ReadonlyArray<Statement<any>>>(
    statements: T
  ) => Effect.Effect<Pipeline.Results<T>, PgServerError | PipelineAborted | PgClientError>
  /**
   * BEGIN, what `body` queues on the pipeline, COMMIT, in one round trip. Fails with the first
   * error (after a ROLLBACK that leaves the connection idle).
   */
  readonly pipelineTransaction: <A, E, R>(
    body: (pipeline: Pipeline.Pipeline) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R>
  /** Internal: the connection, for Pipeline. */
  readonly connection: Connection
}

/** Everything `PgClient.layer` accepts: libpq settings (a URL/conninfo string or explicit keys) plus client settings. */
export type PgClientOptions = (PgConfig.PgConfigOptions & ClientSettings) | string

export type PgClientLayerError = PgConnectError | PgServerError | PgConfig.PgConfigError

export class PgClient extends Context.Service<PgClient, PgClientApi>()("@pgline/client/PgClient") {
  /**
   * One connection, opened when the layer is built and closed with its scope. `options` is a
   * connection string (postgres:// URL or key=value) or libpq settings by name; PG* environment
   * variables, the service file and the password file fill in what is missing, as in libpq.
   */
  static layer(options: PgClientOptions = {}): Layer.Layer<PgClient, PgClientLayerError> {
    const settings: ClientSettings = typeof options === "string" ? {} : options
    return Layer.effect(
      PgClient,
      Effect.flatMap(PgConfig.make(options), (resolved) => connect(resolved, settings))
    )
  }

  /** The same from Effect Config, e.g. `PgConfig.config("APP")` (APP_URL, APP_PGHOST, …). */
  static layerConfig(
    config: Config.Config<PgConfig.PgConnectOptions>,
    settings: ClientSettings = {}
  ): Layer.Layer<PgClient, PgClientLayerError | Config.ConfigError> {
    return Layer.effect(
      PgClient,
      Effect.flatMap(config, (resolved) => connect(resolved, settings))
    )
  }
}

const connect = (
  resolved: PgConfig.PgConnectOptions,
  settings: ClientSettings
): Effect.Effect<PgClientApi, PgClientLayerError, Scope.Scope> =>
  Effect.flatMap(Session.toSessionOptions(resolved), (options) => openClient(options, settings))

/** Opens a session and builds the client over it, logging notices through the caller's context. */
const openClient = (
  options: Session.SessionOptions,
  settings: ClientSettings
): Effect.Effect<PgClientApi, PgConnectError | PgServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const session = yield* Session.open(options)
    return makeClient(session, settings, yield* Effect.context<never>())
  })

export interface ClientSettings {
  readonly statementCacheSize?: number
  /** Receives every NoticeResponse; by default notices go to Effect's logger at their severity. */
  readonly onNotice?: (notice: ErrorFields) => void
  readonly types?: TypeRegistry
}

const isStalePlan = (outcome: Outcome | undefined): boolean =>
  outcome?._tag === "ServerError" &&
  outcome.fields.code === "0A000" &&
  outcome.fields.message.startsWith("cached plan must not change result type")

/**
 * One statement with its own Sync. On interruption: CancelRequest, then wait for the Sync's
 * ReadyForQuery (the connection stays usable).
 */
const runStatement = (
  conn: Connection,
  text: string,
  values: ReadonlyArray<unknown>,
  retried = false
): Effect.Effect<QueryResult<any>, PgServerError | PgClientError> =>
  Effect.withFiber((fiber) =>
    Effect.callback<QueryResult<any>, PgServerError | PgClientError>((resume) => {
      const own = conn.exclusiveHolder === fiber
      if (own && !conn.holderIdle) {
        // It would split the open segment, and waiting for our own pipeline would never end.
        resume(
          Effect.fail(
            new StatementRejected({
              reason: "PipelineOpen",
              message:
                "this fiber's pipeline has statements in flight on the connection: run the statement in the pipeline, or after its sync"
            })
          )
        )
        return
      }
      let started = false
      let finished = false
      let onFinished: (() => void) | undefined
      const start = () => {
        started = true
        if (conn.isClosed) {
          finished = true
          resume(Effect.fail(lost(conn.closeMessage, false)))
          return
        }
        let outcome: Outcome | undefined
        const failure = conn.queueStatement(text, values, {
          settle: (o) => {
            outcome = o
          }
        })
        if (failure !== undefined) {
          finished = true
          resume(Effect.fail(encodeFailure(failure)))
          return
        }
        const wasIdle = conn.transactionStatus === "I"
        conn.queueSync((_status, syncError, lostInfo) => {
          finished = true
          onFinished?.()
          // The server re-plans a cached statement whose result type changed only on a fresh
          // prepare; safe to redo outside a transaction block, where nothing else was affected.
          if (!retried && wasIdle && isStalePlan(outcome)) {
            conn.forgetText(text)
            resume(runStatement(conn, text, values, true))
            return
          }
          // A lone statement is never skipped (it is the whole segment), so Aborted cannot occur.
          resume(
            outcomeToExit(outcome, syncError, lostInfo) as Effect.Effect<
              QueryResult<any>,
              PgServerError | PgClientError
            >
          )
        })
      }
      // Waits only while another fiber's pipeline holds the connection; the owner of an idle
      // pipeline may run statements between its segments.
      let cancelWait: (() => void) | undefined
      if (own) start()
      else cancelWait = conn.acquire(false, fiber, start)
      return Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            if (!started) {
              cancelWait?.()
              return resolve()
            }
            if (finished) return resolve()
            onFinished = resolve
            void conn.session.cancel()
          })
      )
    })
  )

/**
 * The default notice handler: logs through the Effect logger of the context the layer was built
 * in (so a user's Logger and annotations apply), at the notice's severity.
 */
const noticeLogger =
  (context: Context.Context<never>) =>
  (notice: ErrorFields): void => {
    const text = `${notice.severity}: ${notice.message}${notice.detail ? ` (${notice.detail})` : ""}`
    const log =
      notice.severity === "WARNING"
        ? Effect.logWarning(text)
        : notice.severity === "DEBUG"
          ? Effect.logDebug(text)
          : Effect.logInfo(text)
    Effect.runForkWith(context)(log.pipe(Effect.annotateLogs({ sqlstate: notice.code })))
  }

/** Builds the client over an open session. */
export const makeClient = (
  session: Session.Session,
  settings: ClientSettings = {},
  context: Context.Context<never> = Context.empty()
): PgClientApi => {
  const logNotice = noticeLogger(context)
  const registry = settings.types ?? new TypeRegistry()
  const conn = new ConnectionImpl(session, registry, {
    statementCacheSize: settings.statementCacheSize ?? 256,
    onNotice: settings.onNotice ?? logNotice,
    onNotification: () => {}
  })
  for (const notice of session.startupNotices) (settings.onNotice ?? logNotice)(notice)
  const query = <Row>(text: string, params: ReadonlyArray<unknown> = []) =>
    runStatement(conn, text, params) as Effect.Effect<QueryResult<Row>, PgServerError | PgClientError>
  return {
    query,
    sql: makeSqlTag(query),
    parameter: (name) => conn.parameters.get(name),
    parameters: conn.parameters,
    processId: session.processId,
    types: registry,
    pipeline: Pipeline.make(conn),
    pipelineWith: (options) => Pipeline.make(conn, options),
    all: (statements) => Pipeline.all(conn, statements),
    pipelineTransaction: (body) => Pipeline.transaction(conn, body),
    connection: conn
  }
}

/** A layer from resolved session options (see PgClient.layer for URLs and libpq settings). */
export const layerSession = (
  options: Session.SessionOptions,
  settings: ClientSettings = {}
): Layer.Layer<PgClient, PgConnectError | PgServerError> =>
  Layer.effect(PgClient, openClient(options, settings))
