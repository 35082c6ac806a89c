/**
 * PgClient: the public service. A Layer holds a pool of connections (internal/Pool.ts) and
 * offers statements (`query`, the `sql` template, `all`), pipelines, transactions and reserved
 * connections.
 *
 * Where a statement goes (decided per call, from the calling fiber):
 * 1. inside `withTransaction` (its fiber and the fibers it forks): the transaction's connection,
 *    when its level has the turn (internal/Transaction.ts);
 * 2. the fiber has a pipeline open: that pipeline's connection, between its segments;
 * 3. otherwise a shared connection of the pool: an idle one, a new one, or, once `max` are open,
 *    pipelined onto the least loaded one. Transaction-control statements are refused there
 *    (StatementRejected "TransactionControl"): on a shared connection they would capture other
 *    fibers' statements.
 * A reserved connection (`reserve`) has the same API and sends everything to its connection.
 *
 * Interrupting a running statement sends a CancelRequest and waits until the server has answered
 * the statement's Sync, so the connection is usable again afterwards. Nothing is retried that may
 * have run: only a statement that never left the client (its connection died first) is sent again.
 */
import { type ErrorFields, TypeRegistry } from "@pgline/codec"
import { type ConnectionLost, PgConfig, PgConnectError, type PgServerError, Session } from "@pgline/transport"
import {
  type Cause,
  type Config,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Queue,
  Schedule,
  Scope,
  Stream
} from "effect"
import { Connection, unreadableBy } from "./internal/Connection.ts"
import { Listener, type ListenerHooks, type Notification } from "./internal/Listener.ts"
import { blockEffect } from "./internal/outcome.ts"
import { type LeaseKind, Pool, Pooled } from "./internal/Pool.ts"
import { preparedStatement, type RunOn, statementName } from "./internal/prepared.ts"
import {
  type Bound,
  runDescribePortal,
  runPrepare,
  runScript,
  runSegment,
  runStatement,
  runStatementOf
} from "./internal/run.ts"
import { copyDirection, isCopyStdio, isTransactionControl, statementsOf } from "./internal/sqlText.ts"
import { copyIn, copyOut, hold, notCopy, rowStream } from "./internal/streams.ts"
import { tracingOn } from "./internal/tracing.ts"
import {
  CurrentTransaction,
  inTurn,
  nested,
  topLevel,
  topLevelWithin,
  runInTurn,
  statementInTurn,
  TxLevel,
  TxState,
  type TransactionOptions
} from "./internal/Transaction.ts"
import {
  type PgClientError,
  type PipelineAborted,
  type ScriptFailed,
  StatementRejected
} from "./PgClientError.ts"
import * as Pipeline from "./Pipeline.ts"
import type { PreparedStatement, PrepareOptions } from "./PreparedStatement.ts"
import type { FieldInfo, QueryResult } from "./QueryResult.ts"
import { makeSqlTag, rejectInvalid, type SqlTag, type Statement } from "./Statement.ts"

export type { TransactionOptions } from "./internal/Transaction.ts"

/** Options of one `query` or `queryValues` call. */
export interface QueryOptions {
  /**
   * Whether this call's text is prepared under a name and kept in the connection's statement cache
   * (parsed and planned once, then bound by name). Default: the layer's `prepare` (true unless set).
   * `false`: the unnamed statement, parsed and planned for this call only and not cached, for a
   * text run once (a generated statement, DDL) or one whose result columns change between runs
   * inside a transaction. `true` changes nothing on a layer with `prepare: false`, which caches no
   * named statement (behind a transaction-mode pooler one would reach other clients); only
   * `prepare`, which asks for one by name, prepares there.
   */
  readonly prepare?: boolean
}

/** The statement API of the pool (`PgClient`) and of a reserved connection (`PgConnection`). */
export interface PgStatements {
  /** Runs one statement with bound parameters ($1…$n) and returns its decoded rows. */
  readonly query: <Row = Record<string, unknown>>(
    text: string,
    params?: ReadonlyArray<unknown>,
    options?: QueryOptions
  ) => Effect.Effect<QueryResult<Row>, PgServerError | PgClientError>
  /**
   * `query` with each row as an array of values in column order (`rows[0][1]` is the second
   * column): every column stays when two share a name, and no object is built per row.
   */
  readonly queryValues: (
    text: string,
    params?: ReadonlyArray<unknown>,
    options?: QueryOptions
  ) => Effect.Effect<QueryResult<ReadonlyArray<unknown>>, PgServerError | PgClientError>
  /**
   * Prepares `text` under a name on the connection this call runs on and describes it: the
   * statement's parameter types and result fields, then `execute(params)` by name until `close`.
   * It needs a connection of its own: on `reserve`, inside withTransaction, or in a fiber with a
   * pipeline open; on the shared pool (which prepares and caches every text per connection by
   * itself) it fails with StatementRejected `SharedConnection`. The pool closes a connection's
   * named statements when its lease ends.
   */
  readonly prepare: (
    text: string,
    options?: PrepareOptions
  ) => Effect.Effect<PreparedStatement, PgServerError | PgClientError>
  /**
   * Describes a portal the session holds, such as a cursor declared with SQL `DECLARE … CURSOR`:
   * its result fields ([] when it returns no rows). Like `prepare` it needs a connection of its
   * own (reserve, a transaction, a pipeline's fiber); an unknown name is the server's
   * InvalidCursorName (34000).
   */
  readonly describePortal: (
    name: string
  ) => Effect.Effect<ReadonlyArray<FieldInfo>, PgServerError | PgClientError>
  /** The tagged template: values are bound, never interpolated. */
  readonly sql: SqlTag
  /** The current value of a server parameter reported by ParameterStatus (server_version, TimeZone, …). */
  readonly parameter: (name: string) => string | undefined
  /** Every ParameterStatus value as last reported. */
  readonly parameters: ReadonlyMap<string, string>
  /** The type registry of the layer's connections (register enum and extension codecs here). */
  readonly types: TypeRegistry
  /**
   * Opens a pipeline on a connection held for the scope; the scope's end syncs and drains it.
   * Opened again in a fiber that has one open, it joins that pipeline (its scope's end syncs).
   */
  readonly pipeline: Effect.Effect<Pipeline.Pipeline, PgClientError | PgServerError, Scope.Scope>
  /** The same with options (e.g. the unsent-bytes window). */
  readonly pipelineWith: (
    options: Pipeline.PipelineOptions
  ) => Effect.Effect<Pipeline.Pipeline, PgClientError | PgServerError, Scope.Scope>
  /**
   * A pipeline for the length of `body`, synced at its end: an error nobody read fails the
   * returned effect (a bare `pipeline` scope can only log it).
   */
  readonly withPipeline: <A, E, R>(
    body: (pipeline: Pipeline.Pipeline) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PgServerError | PgClientError, Exclude<R, Scope.Scope>>
  /** Runs a struct or tuple of statements in one round trip (one segment); results come back in the same shape. */
  readonly all: <const T extends Record<string, Statement<any>> | ReadonlyArray<Statement<any>>>(
    statements: T
  ) => Effect.Effect<Pipeline.Results<T>, PgServerError | PipelineAborted | PgClientError>
  /**
   * BEGIN, what `body` queues on the pipeline, COMMIT, in one round trip; ROLLBACK instead when
   * `body` fails or is interrupted. Inside a transaction it is a savepoint. Fails with the first
   * error; the connection is outside any failed block afterwards. A statement that would end the
   * block (COMMIT, ROLLBACK, …) is refused: StatementRejected "TransactionControl".
   */
  readonly pipelineTransaction: <A, E, R>(
    body: (pipeline: Pipeline.Pipeline) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PgServerError | PipelineAborted | PgClientError, R>
  /**
   * Runs `effect` in a transaction: every pgline statement of the effect (its fiber and the fibers
   * it forks) on one connection inside BEGIN … COMMIT, ROLLBACK on failure, defect, interruption
   * or timeout. BEGIN goes out with the first statement (k statements: k + 1 round trips; none
   * when the effect runs no statement); the other statements wait for its answer, so none can run
   * outside the block, and a BEGIN the server refuses fails them and the transaction with its
   * error. Nested, it is a savepoint. A COMMIT answered with ROLLBACK fails with StatementRejected
   * "TransactionRolledBack". A statement of the effect that would end the block (COMMIT,
   * ROLLBACK, END, ABORT, PREPARE TRANSACTION) is refused: StatementRejected "TransactionControl".
   */
  readonly withTransaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: TransactionOptions
  ) => Effect.Effect<A, E | PgServerError | PgClientError, R>
  /**
   * The rows of one statement as a Stream, read from the server `chunkSize` rows at a time (default
   * 1000) on a connection held until the stream ends: memory stays bounded however slow the
   * consumer; stopping early (Stream.take) closes the portal, so the server produces no more rows.
   * An error mid-stream fails the stream after the rows before it. Inside withTransaction it reads
   * on the transaction's connection. While the stream is open, statements of the consuming fiber
   * on the same connection are refused (StreamOpen) instead of waiting on the stream.
   */
  readonly stream: <Row = Record<string, unknown>>(
    statement: Statement<Row> | string,
    options?: StreamOptions
  ) => Stream.Stream<Row, PgServerError | PgClientError>
  /**
   * COPY … FROM STDIN fed from `source` (chunks of bytes or text in the COPY's format: text, csv or
   * binary). Returns the row count. The source's failure or the fiber's interruption sends CopyFail:
   * nothing is inserted and the connection stays usable; the source's error is what fails.
   */
  readonly copyFrom: <E = never, R = never>(
    text: string,
    source: Stream.Stream<Uint8Array | string, E, R>
  ) => Effect.Effect<{ readonly rowCount: number }, E | PgServerError | PgClientError, R>
  /**
   * COPY … TO STDOUT (or COPY (select …) TO STDOUT) as a Stream of byte blocks. A slow consumer
   * pushes back on the server; stopping early cancels the COPY.
   */
  readonly copyTo: (text: string) => Stream.Stream<Uint8Array, PgServerError | PgClientError>
  /**
   * Runs a script of several statements without parameters (migrations, psql-style files) with the
   * simple-query protocol: one QueryResult per statement. A failing statement fails the script
   * with ScriptFailed (its index and the server's typed error); the server's rules for a
   * multi-statement string apply: without BEGIN/COMMIT in it, the whole script is one transaction.
   * On a shared connection, a script that leaves a transaction block open is refused
   * (TransactionControl) and rolled back.
   */
  readonly script: (
    text: string | Statement<any>
  ) => Effect.Effect<ReadonlyArray<QueryResult>, ScriptFailed | PgServerError | PgClientError>
  /** NOTIFY: `select pg_notify(channel, payload)` (inside withTransaction, delivered at COMMIT). */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, PgServerError | PgClientError>
}

/** Options of `stream`. */
export interface StreamOptions {
  /** Rows asked of the server at a time (default 1000); at most about two chunks are held. */
  readonly chunkSize?: number
}

export type { Notification } from "./internal/Listener.ts"

/** A connection reserved for a scope (session state: SET, temporary tables, advisory locks). */
export interface PgConnection extends PgStatements {
  /** The backend's process id (pg_backend_pid()). */
  readonly processId: number
}

/** The pool's counts at one moment (`pg.stats()`). */
export interface PoolStats {
  /** Open connections. */
  readonly open: number
  /** Open connections with nothing in flight and no lease. */
  readonly idle: number
  /** Connections leased or with statements in flight. */
  readonly inUse: number
  /** Callers waiting for a connection. */
  readonly waiting: number
  /** Connections being opened. */
  readonly opening: number
}

/**
 * What `yield* PgClient` gives: the statement API over the pool, plus `reserve`, `stats`, `listen`
 * and `listenScoped`. Every method fails with `PgServerError` (the server's typed SQLSTATE class)
 * or `PgClientError` (connection, encoding, refusals), never with an untyped error.
 *
 * @example
 * ```ts
 * const pg = yield* PgClient
 * const { rows } = yield* pg.sql<{ n: number }>`select ${1}::int + 1 as n`
 * ```
 */
export interface PgClientApi extends PgStatements {
  /**
   * A connection of the pool for the scope, with the same statement API. Nothing else runs on it
   * meanwhile. When the scope ends, a transaction block left open is rolled back (or the connection
   * closed) before the connection goes back; other session state (SET, temporary tables) stays.
   */
  readonly reserve: Effect.Effect<PgConnection, PgClientError | PgServerError, Scope.Scope>
  /** The pool's current counts (also published as Effect metrics `db.client.connection.*`). */
  readonly stats: () => PoolStats
  /**
   * LISTEN: the notifications of `channel` (its exact name, quoted for the server) as a Stream, in
   * the order sent, received on a connection dedicated to listening (shared by every listen
   * stream, outside the pool's `max`). The stream's end UNLISTENs. After a lost connection it
   * reconnects and LISTENs again, logging that notifications may have been missed meanwhile.
   */
  readonly listen: (channel: string) => Stream.Stream<Notification, PgServerError | PgClientError>
  /**
   * The same, listening as soon as this effect completes (LISTEN has been answered) and until the
   * scope ends: notifications sent after it returns are never missed, even before the stream is
   * read. Use it when the code that follows sends or awaits notifications.
   */
  readonly listenScoped: (
    channel: string
  ) => Effect.Effect<Stream.Stream<Notification>, PgServerError | PgClientError, Scope.Scope>
}

/**
 * Pool settings of `PgClient.layer`. Durations are milliseconds or Effect Duration inputs;
 * "Infinity" (or beyond 24.8 days, the longest a timer waits) is no limit. A value out of range
 * fails the layer with PgConfigError.
 */
export interface PoolSettings {
  /** Most connections open at once (default 10). `1` gives the single-connection client. */
  readonly max?: number
  /** Connections kept open even when idle (default 0). */
  readonly min?: number
  /** An idle connection above `min` closes after this (default 60 seconds). */
  readonly idleTimeout?: Duration.Input
  /** A connection closes once idle after this (default 1 hour; 0 or "Infinity": never). */
  readonly maxLifetime?: Duration.Input
  /** How long a caller waits for a connection before failing with AcquireTimeout (default 30 seconds). */
  readonly acquireTimeout?: Duration.Input
  /** How long statements in flight may take to finish when the layer closes (default 5 seconds). */
  readonly closeTimeout?: Duration.Input
  /**
   * Once `max` connections are open and all are busy, pipeline shared statements onto the least
   * loaded one (default true) instead of waiting for a connection with nothing in flight. Either
   * way a statement goes to an idle connection first, so it waits behind a long one only when
   * every connection is busy.
   */
  readonly multiplex?: boolean
  /** The pool's name in its metrics (attribute db.client.connection.pool.name); default `pgline-<n>`. */
  readonly poolName?: string
}

/** Settings of `PgClient.layer` beyond the libpq connection settings: the pool's and the client's own. */
export interface ClientSettings extends PoolSettings {
  /**
   * Prepared statements kept per connection (default 256). 0: none, every statement is parsed as
   * the unnamed statement each time (as `prepare: false`, but `pg.prepare` still prepares by name).
   */
  readonly statementCacheSize?: number
  /**
   * false: no named prepared statements; every statement is parsed (and described) each time as
   * the unnamed statement, so pgline works behind transaction-mode poolers that do not track
   * prepared statements (PgBouncer before 1.21). Pipelines work the same way. Default true.
   */
  readonly prepare?: boolean
  /**
   * The largest message accepted from the server, in bytes (default 1 GiB + 4, the server's own
   * limit): a longer one closes the connection with ProtocolFailure "MessageTooLarge" before
   * anything is allocated for it.
   */
  readonly maxMessageSize?: number
  /**
   * How long an interrupted statement (or pipeline) may take to stop after its CancelRequest
   * before its connection is closed (default 5 seconds): interruption is bounded even when the
   * server or the network stalls. What was in flight then fails with ConnectionLost.
   */
  readonly cancelGrace?: Duration.Input
  /** Receives every NoticeResponse; by default notices go to Effect's logger at their severity. */
  readonly onNotice?: (notice: ErrorFields) => void
  /**
   * Receives each notification (NOTIFY) that reaches one of the pool's connections, which happens
   * only after a LISTEN run on it by hand (on `pg.reserve`, or in a script): a SQL shell prints
   * them as psql does. By default each is logged as a warning pointing to `pg.listen`, the way to
   * receive notifications, whose own connections this does not concern.
   */
  readonly onNotification?: (notification: Notification) => void
  /**
   * "arrays": every result's rows are arrays of values in column order (`rows[0][1]`), from
   * queries, scripts, pipelines and streams alike, so columns of the same name all stay; the row
   * types still say objects, so this is for code that reads results generically (a SQL shell,
   * a generic exporter). `queryValues` does the same for one call. Default "objects".
   */
  readonly rows?: "objects" | "arrays"
  readonly types?: TypeRegistry
}

/** Everything `PgClient.layer` accepts: libpq settings (a URL/conninfo string or explicit keys) plus client settings. */
export type PgClientOptions = (PgConfig.PgConfigOptions & ClientSettings) | string

/**
 * How building the layer fails: the configuration is invalid (PgConfigError), the first connection
 * cannot be opened (PgConnectError: network, TLS, authentication, target_session_attrs), or the
 * server refused the session (its typed error, e.g. InvalidCatalogName).
 */
export type PgClientLayerError = PgConnectError | PgServerError | PgConfig.PgConfigError

/**
 * The client as an Effect service: `PgClient.layer(options)` (or `layerConfig`) builds a pool, and
 * `yield* PgClient` gives its API (PgClientApi). The layer fails with PgClientLayerError when its
 * first connection cannot be opened; closing it closes every connection.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const pg = yield* PgClient
 *   return (yield* pg.query("select now() as now")).rows[0]
 * })
 * Effect.runPromise(program.pipe(Effect.provide(PgClient.layer("postgres://app@localhost/app"))))
 * ```
 */
export class PgClient extends Context.Service<PgClient, PgClientApi>()("@pgline/client/PgClient") {
  /**
   * A pool of connections, the first opened when the layer is built (so a wrong address or
   * password fails the layer), all closed with its scope. `options` is a connection string
   * (postgres:// URL or key=value) or libpq settings by name plus pool and client settings; PG*
   * environment variables, the service file and the password file fill in what is missing, as in
   * libpq.
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
): Effect.Effect<PgClientApi, PgClientLayerError, Scope.Scope> => {
  const invalid = invalidSetting(settings)
  if (invalid !== undefined) return Effect.fail(invalid)
  // Settings accepted with a caveat (a deprecated keyword, an ignored DateStyle part) are said once.
  const caveats = Effect.forEach(resolved.warnings, (w) => Effect.logWarning(`pgline: ${w}`), {
    discard: true
  })
  return Effect.andThen(
    caveats,
    Effect.flatMap(
      Session.toSessionOptions(resolved, { maxMessageSize: settings.maxMessageSize }),
      (options) => openPool(options, settings)
    )
  )
}

/** Timers cannot wait longer (Node fires a longer one at once): a duration beyond it is "never". */
const LONGEST_TIMER = 2 ** 31 - 1

/** A duration setting in milliseconds: Infinity (no limit) from "Infinity" or beyond LONGEST_TIMER. */
const millis = (input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  const ms = Math.max(0, Duration.toMillis(input))
  return ms > LONGEST_TIMER ? Number.POSITIVE_INFINITY : ms
}

/** The first pool or client setting out of its range, as the layer's PgConfigError. */
const invalidSetting = (settings: ClientSettings): PgConfig.PgConfigError | undefined => {
  const invalid = (key: string, message: string) =>
    new PgConfig.PgConfigError({ key, reason: "invalid-value", message })
  const integers: ReadonlyArray<readonly [string, number | undefined, number]> = [
    ["max", settings.max, 1],
    ["min", settings.min, 0],
    ["statementCacheSize", settings.statementCacheSize, 0],
    ["maxMessageSize", settings.maxMessageSize, 1]
  ]
  for (const [key, value, least] of integers)
    if (value !== undefined && (!Number.isSafeInteger(value) || value < least))
      return invalid(key, `${key} must be an integer of at least ${least}, got ${value}`)
  if ((settings.min ?? 0) > (settings.max ?? 10))
    return invalid("min", `min (${settings.min}) is more than max (${settings.max ?? 10})`)
  const durations: ReadonlyArray<readonly [string, Duration.Input | undefined]> = [
    ["idleTimeout", settings.idleTimeout],
    ["maxLifetime", settings.maxLifetime],
    ["acquireTimeout", settings.acquireTimeout],
    ["closeTimeout", settings.closeTimeout],
    ["cancelGrace", settings.cancelGrace]
  ]
  for (const [key, value] of durations) {
    if (value === undefined) continue
    let ms: number
    try {
      ms = Duration.toMillis(value)
    } catch (error) {
      return invalid(key, `${key} is not a duration: ${String(error)}`)
    }
    // Duration reads NaN as 0: refused here (Number(process.env.UNSET) must not mean "no wait").
    if (Number.isNaN(value) || ms < 0)
      return invalid(key, `${key} must be a duration of 0 or more, got ${String(value)}`)
  }
  return undefined
}

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

/**
 * A callback of the user's, called from the connection's message loop: what it throws is logged
 * (as an error, with the cause) instead of breaking the loop, which would lose the connection.
 */
const guarded =
  <A>(context: Context.Context<never>, name: string, f: (a: A) => void) =>
  (a: A): void => {
    try {
      f(a)
    } catch (cause) {
      Effect.runForkWith(context)(Effect.logError(`pgline: the ${name} callback threw`, cause))
    }
  }

let pools = 0

/** The longest a connection attempt may take when connect_timeout is unset or 0 (postgres.js: 30 s). */
const MAX_DEFAULT_CONNECT_MS = 30_000

/** Opens the pool (its first connection at once) and builds the client over it. */
const openPool = (
  options: Session.SessionOptions,
  settings: ClientSettings
): Effect.Effect<PgClientApi, PgConnectError | PgServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    // In range: checked by invalidSetting before the pool opens.
    const max = settings.max ?? 10
    const min = settings.min ?? 0
    const maxLifetime = millis(settings.maxLifetime, 3_600_000)
    const poolOptions = {
      max,
      min,
      idleTimeout: millis(settings.idleTimeout, 60_000),
      maxLifetime,
      acquireTimeout: millis(settings.acquireTimeout, 30_000),
      closeTimeout: millis(settings.closeTimeout, 5_000),
      multiplex: settings.multiplex ?? true
    }
    const onNotice =
      settings.onNotice === undefined
        ? noticeLogger(context)
        : guarded(context, "onNotice", settings.onNotice)
    const registry = settings.types ?? new TypeRegistry()
    const statementCacheSize = settings.statementCacheSize ?? 256
    const cancelGrace = millis(settings.cancelGrace, 5_000)
    let pool: Pool | undefined
    // A connection attempt the server never answers (a frozen host, a proxy in front of a dead
    // one) would hold a pool slot, or the listener, for good: without connect_timeout, each
    // attempt is bounded by acquireTimeout (what a caller waits for a connection at most), at most
    // 30 s and at least 2 s (libpq's shortest connect_timeout).
    const sessionOptions: Session.SessionOptions =
      options.connectTimeout !== undefined && options.connectTimeout > 0
        ? options
        : {
            ...options,
            connectTimeout: Math.max(
              2,
              Math.ceil(Math.min(poolOptions.acquireTimeout, MAX_DEFAULT_CONNECT_MS) / 1000)
            )
          }
    /** Opens one session as a Connection, closed with the returned scope. */
    const openConnection = (hooks: ListenerHooks) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const session = yield* Scope.provide(scope)(Session.open(sessionOptions)).pipe(
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, Exit.void)))
        )
        // A setting this client cannot read results in, from the start (a role's IntervalStyle).
        let unreadable: string | undefined
        for (const [name, value] of session.parameters) unreadable ??= unreadableBy(registry, name, value)
        if (unreadable !== undefined) {
          yield* Scope.close(scope, Exit.void)
          return yield* Effect.fail(
            new PgConnectError({
              reason: "Protocol",
              message: unreadable
            })
          )
        }
        const conn = new Connection(session, registry, {
          statementCacheSize,
          prepare: settings.prepare ?? true,
          cancelGrace,
          onNotice,
          onNotification: hooks.onNotification,
          onClosed: hooks.onClosed,
          arrays: settings.rows === "arrays"
        })
        for (const notice of session.startupNotices) onNotice(notice)
        return { conn, scope }
      })
    // A pool connection gets notifications only when a user LISTENed on it by hand (pg.reserve):
    // say so rather than drop them silently.
    const onNotification =
      settings.onNotification === undefined
        ? undefined
        : guarded(context, "onNotification", settings.onNotification)
    const unexpectedNotification = (processId: number, channel: string, payload: string) =>
      onNotification !== undefined
        ? onNotification({ channel, payload, processId })
        : Effect.runForkWith(context)(
            Effect.logWarning(
              `pgline: a notification on channel "${channel}" reached a pool connection; use pg.listen to receive notifications`
            ).pipe(Effect.annotateLogs({ channel, processId, payloadLength: payload.length }))
          )
    const openOne: Effect.Effect<Pooled, PgConnectError | PgServerError> = Effect.suspend(() => {
      let pooled: Pooled | undefined
      return Effect.map(
        openConnection({
          onNotification: unexpectedNotification,
          onClosed: () => {
            if (pooled !== undefined) pool?.lost(pooled)
          }
        }),
        ({ conn, scope }) => {
          pooled = new Pooled(conn, scope, maxLifetime)
          return pooled
        }
      )
    })
    const first = yield* openOne
    pool = new Pool(poolOptions, openOne, context, settings.poolName ?? `pgline-${++pools}`)
    pool.add(first)
    yield* Effect.addFinalizer(() => pool.close())
    const listener = new Listener(openConnection, context)
    yield* Effect.addFinalizer(() => listener.shutdown())
    // Idle and lifetime limits, `min`, and retries for waiters after a failed connection attempt.
    const period = Math.max(50, Math.min(500, poolOptions.idleTimeout / 2))
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.sync(() => pool.reap()),
        Schedule.spaced(period)
      )
    )
    pool.reap()
    return makeClient(pool, registry, listener)
  })

// ---------------------------------------------------------------------------------------------
// Routing

/** The pipelines opened through the API, by the fiber that owns them (for joining and routing). */
interface OwnPipeline {
  readonly conn: Connection
  readonly pipeline: Pipeline.Pipeline
}

/** A reserved connection's state: statements after its scope ended are refused. */
interface Fixed {
  readonly pooled: Pooled
  active: boolean
}

type Fiber = { getRef: <A>(ref: Context.Reference<A>) => A }

type Where =
  | { readonly kind: "shared" }
  | { readonly kind: "conn"; readonly conn: Connection }
  | { readonly kind: "own"; readonly own: OwnPipeline }
  | { readonly kind: "tx"; readonly level: TxLevel }
  | { readonly kind: "released" }

const SHARED: Where = { kind: "shared" }
const RELEASED: Where = { kind: "released" }

const released = () =>
  new StatementRejected({ reason: "Released", message: "this reserved connection's scope has ended" })

const transactionControl = () =>
  new StatementRejected({
    reason: "TransactionControl",
    message:
      "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, …) on a shared connection would capture other fibers' statements: use pg.withTransaction, pg.pipelineTransaction, or pg.reserve for a connection of your own"
  })

const copyRejected = () =>
  new StatementRejected({
    reason: "CopyInQuery",
    message:
      "COPY FROM STDIN / TO STDOUT uses the copy protocol, which query() cannot carry (the data would be lost): use pg.copyFrom or pg.copyTo"
  })

const copyInScript = () =>
  new StatementRejected({
    reason: "CopyInQuery",
    message:
      "the script holds COPY FROM STDIN / TO STDOUT, which a script cannot carry (nothing was sent): use pg.copyFrom or pg.copyTo"
  })

const scriptLeftBlockOpen = () =>
  new StatementRejected({
    reason: "TransactionControl",
    message:
      "the script left a transaction block open on a shared connection (it was rolled back): end it in the script, or run the script inside withTransaction or on pg.reserve"
  })

const streamInPipeline = () =>
  new StatementRejected({
    reason: "PipelineOpen",
    message:
      "this fiber has a pipeline open: a stream or COPY needs the connection to itself; start it outside the pipeline's scope"
  })

const badChannel = (message: string) => new StatementRejected({ reason: "InvalidText", message })

/** Why a channel name cannot be LISTENed exactly, if it cannot (the server truncates names to 63 bytes). */
const invalidChannel = (channel: string): string | undefined =>
  channel === ""
    ? "a channel name cannot be empty"
    : channel.includes("\u0000")
      ? "a channel name cannot contain a NUL character"
      : !channel.isWellFormed()
        ? "the channel name holds a lone UTF-16 surrogate"
        : Buffer.byteLength(channel) > 63
          ? `the channel name is ${Buffer.byteLength(channel)} bytes; the server keeps 63 (it would listen on a truncated name)`
          : undefined

const VERDICT_CACHE_SIZE = 1024
const COPY_STDIO = 1
const TRANSACTION_CONTROL = 2
const verdicts = new Map<string, number>()
/**
 * What a text is, as far as routing cares (COPY_STDIO, TRANSACTION_CONTROL bits), remembered per
 * text: one lookup per statement, the same texts recur.
 */
const verdictOf = (text: string): number => {
  let verdict = verdicts.get(text)
  if (verdict === undefined) {
    verdict = (isCopyStdio(text) ? COPY_STDIO : 0) | (isTransactionControl(text) ? TRANSACTION_CONTROL : 0)
    if (verdicts.size >= VERDICT_CACHE_SIZE) verdicts.clear()
    verdicts.set(text, verdict)
  }
  return verdict
}

const sharedPrepare = () =>
  new StatementRejected({
    reason: "SharedConnection",
    message:
      "a named prepared statement or a portal lives on one connection: use pg.reserve, withTransaction or a pipeline's fiber (on the pool every statement text is prepared and cached per connection already)"
  })

const makeClient = (pool: Pool, registry: TypeRegistry, listener: Listener): PgClientApi => {
  const owners = new Map<object, OwnPipeline>()
  /**
   * Makes `entry` the fiber's own pipeline; the function returned gives the fiber back the one it
   * had (its pipeline on another connection: a reserved one inside a pool pipeline), or none.
   */
  const takeOwner = (fiber: object, entry: OwnPipeline): (() => void) => {
    const previous = owners.get(fiber)
    owners.set(fiber, entry)
    return previous === undefined ? () => owners.delete(fiber) : () => owners.set(fiber, previous)
  }

  /**
   * A connection leased for the scope (span `pgline.pool.acquire` when tracing is on). The wait is
   * interruptible (a timeout or an interrupted caller ends it at once and leaves the queue); once
   * the connection is handed over, its release is registered before anything can interrupt.
   */
  const lease = (kind: LeaseKind): Effect.Effect<Pooled, PgClientError | PgServerError, Scope.Scope> =>
    Effect.withFiber((fiber) =>
      Effect.acquireRelease(
        tracingOn(fiber)
          ? Effect.withSpan(pool.wait(kind), "pgline.pool.acquire", { kind: "client" })
          : pool.wait(kind),
        (pooled) => pool.release(pooled),
        { interruptible: true }
      )
    )

  /**
   * `use` on a connection leased for it (as `lease`, without a Scope unless spans are made): the
   * wait is interruptible, and the release runs however `use` ends.
   */
  const leased = <A, E, R>(
    kind: LeaseKind,
    use: (pooled: Pooled) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PgClientError | PgServerError, R> =>
    Effect.withFiber((fiber) =>
      tracingOn(fiber)
        ? Effect.scoped(Effect.flatMap(lease(kind), use))
        : leasedWithin(kind, (pooled, restore, after) =>
            Effect.onExit(restore(blockEffect(() => use(pooled))), () => after() ?? Effect.void)
          )
    )

  /**
   * `f` on a connection leased for it, inside one uninterruptible region with the lease (without
   * a tracing backend; `leased` uses it, and the pool's pipelines and transactions build on it to
   * hold their connection in the same region): `f` gets the lease, the region's restore and what
   * gives the connection back, which it must call however it ends, and must not throw. A free
   * connection is leased without a wait (and without an Effect for it).
   */
  const leasedWithin = <A, E, R>(
    kind: LeaseKind,
    f: (
      pooled: Pooled,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
      after: () => Effect.Effect<void> | undefined
    ) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PgClientError | PgServerError, R> =>
    Effect.uninterruptibleMask((restore) => {
      const start = (pooled: Pooled) => f(pooled, restore, () => pool.releaseNow(pooled))
      const now = pool.leaseNow(kind)
      return now !== undefined ? start(now) : Effect.flatMap(restore(pool.wait(kind)), start)
    })

  const makeStatements = (fixed: Fixed | undefined): PgStatements => {
    const where = (fiber: { getRef: <A>(ref: Context.Reference<A>) => A }): Where => {
      const level = fiber.getRef(CurrentTransaction)
      if (fixed !== undefined) {
        if (!fixed.active) return RELEASED
        if (level !== undefined && level.tx.conn === fixed.pooled.conn) return { kind: "tx", level }
        const own = owners.get(fiber)
        if (own !== undefined && own.conn === fixed.pooled.conn) return { kind: "own", own }
        return { kind: "conn", conn: fixed.pooled.conn }
      }
      if (level !== undefined && level.tx.key === pool) return { kind: "tx", level }
      if (owners.size > 0) {
        const own = owners.get(fiber)
        if (own !== undefined) return { kind: "own", own }
      }
      return SHARED
    }

    /** `use` on a shared connection: at once when the pool has one, else once one is free. */
    const sharedConnection = <A, E>(
      use: (pooled: Pooled) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | PgClientError | PgServerError> => {
      const now = pool.shared()
      return now !== undefined ? use(now) : Effect.flatMap(pool.wait(undefined), use)
    }

    /**
     * The next attempt of a statement whose connection died before the statement left the client
     * (it cannot have run, so it is safe to send on another connection), or undefined when it is
     * not to be retried: the third loss, a closed pool, or a connection that is still open.
     */
    const retryUnsent = <A, E, E2>(
      pooled: Pooled,
      attempt: number,
      loss: E,
      again: () => Effect.Effect<A, E2>
    ): Effect.Effect<A, E | E2> | undefined =>
      attempt < 2 && !pool.isClosed && pooled.conn.isClosed
        ? Effect.suspend((): Effect.Effect<A, E | E2> => (pool.isClosed ? Effect.fail(loss) : again()))
        : undefined

    /** A shared connection for one use; `after` tells the pool when the use ended. */
    const onShared = <A, E>(
      use: (pooled: Pooled, after: () => void) => Effect.Effect<A, E>,
      attempt = 0
    ): Effect.Effect<A, E | PgClientError | PgServerError> =>
      sharedConnection((pooled) =>
        Effect.catchIf(
          use(pooled, () => pool.afterUse(pooled)),
          (e: unknown): e is ConnectionLost =>
            (e as { _tag?: string })._tag === "ConnectionLost" &&
            (e as { mayHaveRun?: boolean }).mayHaveRun === false,
          (loss) => retryUnsent(pooled, attempt, loss, () => onShared(use, attempt + 1)) ?? Effect.fail(loss)
        )
      )

    /**
     * One statement on a shared connection: `onShared` for the commonest call, without its error
     * handler and a second withFiber (the statement itself asks for `retryUnsent`).
     */
    const sharedStatement = (
      fiber: object,
      text: string,
      params: ReadonlyArray<unknown>,
      arrays: boolean,
      prepare: boolean | undefined,
      attempt: number
    ): Effect.Effect<QueryResult<any>, PgClientError | PgServerError> =>
      sharedConnection((pooled) =>
        runStatementOf(
          fiber,
          pooled.conn,
          text,
          params,
          () => pool.afterUse(pooled),
          false,
          arrays,
          prepare,
          (loss) =>
            retryUnsent(pooled, attempt, loss, () =>
              sharedStatement(fiber, text, params, arrays, prepare, attempt + 1)
            )
        )
      )

    const run = (
      text: string,
      params: ReadonlyArray<unknown>,
      arrays: boolean,
      prepare: boolean | undefined
    ) =>
      Effect.withFiber((fiber) => {
        const verdict = verdictOf(text)
        if ((verdict & COPY_STDIO) !== 0) return Effect.fail(copyRejected())
        const w = where(fiber)
        switch (w.kind) {
          case "shared":
            if ((verdict & TRANSACTION_CONTROL) !== 0) return Effect.fail(transactionControl())
            return sharedStatement(fiber, text, params, arrays, prepare, 0)
          case "conn":
            return runStatement(w.conn, text, params, undefined, false, arrays, prepare)
          case "own":
            return runStatement(w.own.conn, text, params, undefined, false, arrays, prepare)
          case "tx":
            return statementInTurn(fiber, w.level, text, params, arrays, prepare) as Effect.Effect<
              QueryResult<any>,
              PgServerError | PgClientError
            >
          case "released":
            return Effect.fail(released())
        }
      })
    const query = <Row>(text: string, params: ReadonlyArray<unknown> = [], options?: QueryOptions) =>
      run(text, params, false, options?.prepare) as Effect.Effect<
        QueryResult<Row>,
        PgServerError | PgClientError
      >
    const queryValues = (text: string, params: ReadonlyArray<unknown> = [], options?: QueryOptions) =>
      run(text, params, true, options?.prepare) as Effect.Effect<
        QueryResult<ReadonlyArray<unknown>>,
        PgServerError | PgClientError
      >

    const all = <const T extends Record<string, Statement<any>> | ReadonlyArray<Statement<any>>>(
      statements: T
    ) =>
      Effect.withFiber((fiber) => {
        const keys = Object.keys(statements)
        const list: Array<Bound> = keys.map((k) => (statements as Record<string, Statement<any>>)[k]!)
        for (const s of list) {
          const rejected = rejectInvalid(s as Statement<any>) ?? Pipeline.rejectText(s.text)
          if (rejected !== undefined) return Effect.fail(rejected)
        }
        const results = (
          run: Effect.Effect<Array<QueryResult<any>>, PgServerError | PgClientError | PipelineAborted>
        ) => Effect.flatMap(run, (rs) => Pipeline.shape(statements, keys, rs.map(Effect.succeed)))
        const w = where(fiber)
        switch (w.kind) {
          case "shared":
            // One segment is one implicit transaction, so BEGIN without its COMMIT would stay open.
            if (list.some((s) => (verdictOf(s.text) & TRANSACTION_CONTROL) !== 0))
              return Effect.fail(transactionControl())
            return onShared((pooled, after) => results(runSegment(pooled.conn, list, after)))
          case "conn":
            return results(runSegment(w.conn, list))
          case "own":
            return Pipeline.allIn(w.own.pipeline, statements)
          case "tx":
            return results(runInTurn(w.level, list))
          case "released":
            return Effect.fail(released())
        }
      })

    /** Opens a pipeline on `conn` owned by the calling fiber (joinable, and where its statements go). */
    const openOn = (conn: Connection, options: Pipeline.OpenOptions) =>
      Effect.flatMap(Effect.fiber, (fiber) =>
        Effect.tap(Pipeline.make(conn, options), (pipeline) =>
          Effect.acquireRelease(
            Effect.sync(() => takeOwner(fiber, { conn, pipeline })),
            (restore) => Effect.sync(restore)
          )
        )
      )

    /**
     * Joining the fiber's open pipeline: the inner scope's end syncs what it queued. Its statements
     * are the outer pipeline's: when the inner body fails they are left in the outer's segment, for
     * the outer to sync (it caught the failure) or to roll back (the failure ends its body too).
     */
    const join = (own: OwnPipeline) =>
      Effect.flatMap(
        Effect.sync(() => own.pipeline.queued()),
        (before) =>
          Effect.as(
            Effect.addFinalizer((exit) =>
              own.pipeline.queued() === before || exit._tag === "Failure"
                ? Effect.void
                : Effect.catch(Effect.asVoid(own.pipeline.sync), (e) =>
                    Effect.logWarning(
                      `pgline: a joined pipeline closed with an error nobody read: ${e._tag}: ${e.message}`
                    )
                  )
            ),
            own.pipeline
          )
      )

    /**
     * A pipeline on the transaction's connection, in a scope that ends with the caller's or with the
     * transaction, whichever ends first (see TxState.pipelines).
     */
    const openInTransaction = (tx: TxState, options: Pipeline.PipelineOptions) =>
      Effect.flatMap(Effect.scope, (outer) =>
        Effect.flatMap(Scope.fork(outer), (scope) => {
          tx.pipelines.add(scope)
          return Effect.andThen(
            Scope.addFinalizer(
              scope,
              Effect.sync(() => tx.pipelines.delete(scope))
            ),
            Scope.provide(openOn(tx.conn, options), scope)
          )
        })
      )

    const pipelineWith = (
      options: Pipeline.PipelineOptions
    ): Effect.Effect<Pipeline.Pipeline, PgClientError | PgServerError, Scope.Scope> =>
      Effect.withFiber((fiber) => {
        const limit = options.maxPendingBytes
        // Below 1 byte nothing could ever be written before waiting: execute would wait for good.
        if (limit !== undefined && !(limit >= 1))
          return Effect.die(new TypeError(`maxPendingBytes must be 1 or more, got ${limit}`))
        const w = where(fiber)
        switch (w.kind) {
          case "shared":
            return Effect.flatMap(lease("pipeline"), (pooled) =>
              openOn(pooled.conn, { ...options, leased: true })
            )
          case "conn":
            return openOn(w.conn, options)
          case "own":
            return join(w.own)
          case "tx":
            return inTurn(w.level, w.level.tx.asHolder(openInTransaction(w.level.tx, options)))
          case "released":
            return Effect.fail(released())
        }
      })
    const pipeline = pipelineWith({})

    const withPipeline = <A, E, R>(body: (p: Pipeline.Pipeline) => Effect.Effect<A, E, R>) =>
      Effect.withFiber((fiber) => {
        // On the pool: the lease and the pipeline end around the block (no Scope finalizers
        // unless spans are made: leased and Pipeline.use decide); the block still gets a scope of
        // its own, closed before the pipeline ends, as in the general path below.
        if (where(fiber) === SHARED) {
          const block = (conn: Connection) => (p: Pipeline.Pipeline) => {
            // Called as the block starts (its pipeline held); `ended` undoes it however it ends.
            owners.set(fiber, { conn, pipeline: p })
            return Effect.scoped(Effect.flatMap(body(p), (value) => Effect.as(p.sync, value)))
          }
          const ended = () => owners.delete(fiber)
          return tracingOn(fiber)
            ? leased("pipeline", (pooled) =>
                Pipeline.use(pooled.conn, block(pooled.conn), { leased: true }, ended)
              )
            : leasedWithin("pipeline", (pooled, restore, after) =>
                Pipeline.useWithin(pooled.conn, fiber, restore, block(pooled.conn), after, ended)
              )
        }
        return Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pipeline
            const value = yield* body(p)
            yield* p.sync
            return value
          })
        )
      })

    const pipelineTransaction = <A, E, R>(body: (p: Pipeline.Pipeline) => Effect.Effect<A, E, R>) =>
      Effect.withFiber((fiber) => {
        const w = where(fiber)
        // While the block runs, the fiber's own statements (pg.query) belong to its pipeline, as in
        // withPipeline: refused while a segment is unsynced, never run outside the transaction.
        let restore: (() => void) | undefined
        const owned = (conn: Connection) => (p: Pipeline.Pipeline) => {
          restore = takeOwner(fiber, { conn, pipeline: p })
          return body(p)
        }
        const ended = () => restore?.()
        switch (w.kind) {
          case "shared":
            return tracingOn(fiber)
              ? leased("transaction", (pooled) =>
                  Pipeline.transaction(pooled.conn, owned(pooled.conn), { leased: true }, ended)
                )
              : leasedWithin("transaction", (pooled, restore, after) =>
                  Pipeline.transactionWithin(pooled.conn, fiber, restore, owned(pooled.conn), after, ended)
                )
          case "conn":
            return Pipeline.transaction(w.conn, owned(w.conn), {}, ended)
          case "own":
            // The open segment is synced first, so the transaction starts on a known state.
            return Effect.andThen(
              w.own.pipeline.sync,
              Pipeline.transactionIn(w.own.conn, w.own.pipeline, body)
            )
          case "tx":
            return inTurn(w.level, w.level.tx.asHolder(Pipeline.transaction(w.level.tx.conn, body)))
          case "released":
            return Effect.fail(released())
        }
      })

    const withTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>, options?: TransactionOptions) =>
      Effect.withFiber((fiber) => {
        const w = where(fiber)
        switch (w.kind) {
          case "tx":
            return nested(w.level, effect, options?.onCommit)
          case "conn":
          case "own": {
            const conn = w.kind === "conn" ? w.conn : w.own.conn
            // Inside the fiber's pipeline ("own"), the transaction's statements are the holder's.
            const forHolder = w.kind === "own"
            if (conn.transactionStatus === "I") return topLevel(conn, pool, effect, options, forHolder)
            // A block the user began on this connection: the transaction is a savepoint in it.
            const outer = new TxLevel(new TxState(conn, pool))
            outer.tx.forHolder = forHolder
            outer.tx.push(outer)
            return nested(outer, effect, options?.onCommit)
          }
          case "shared":
            return tracingOn(fiber)
              ? leased("transaction", (pooled) => topLevel(pooled.conn, pool, effect, options))
              : leasedWithin("transaction", (pooled, restore, after) =>
                  Effect.onExit(
                    topLevelWithin(pooled.conn, pool, effect, options ?? {}, restore),
                    () => after() ?? Effect.void
                  )
                )
          case "released":
            return Effect.fail(released())
        }
      })

    /**
     * A connection held by `fiber` for the scope (a stream or a COPY): leased from the pool, or the
     * reserved or transaction's connection, which other statements then wait for.
     */
    const heldConnection = (
      fiber: Fiber,
      kind: LeaseKind
    ): Effect.Effect<Connection, PgClientError | PgServerError, Scope.Scope> => {
      const w = where(fiber)
      const held = (conn: Connection) => Effect.as(hold(conn, fiber), conn)
      switch (w.kind) {
        case "shared":
          return Effect.flatMap(lease(kind), (pooled) => held(pooled.conn))
        case "conn":
          return held(w.conn)
        case "own":
          return Effect.fail(streamInPipeline())
        case "tx":
          return inTurn(w.level, w.level.tx.asHolder(held(w.level.tx.conn)))
        case "released":
          return Effect.fail(released())
      }
    }

    const stream = <Row>(statement: Statement<Row> | string, options: StreamOptions = {}) =>
      Stream.unwrap(
        Effect.withFiber((fiber) => {
          const text = typeof statement === "string" ? statement : statement.text
          const values = typeof statement === "string" ? [] : statement.values
          const chunkSize = options.chunkSize ?? 1000
          // Execute's row limit is an int32 (0 would mean every row).
          if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 2 ** 31 - 1)
            return Effect.die(
              new TypeError(`chunkSize must be an integer from 1 to 2^31 - 1, got ${chunkSize}`)
            )
          const invalid = typeof statement === "string" ? undefined : rejectInvalid(statement)
          if (invalid !== undefined) return Effect.fail(invalid)
          const verdict = verdictOf(text)
          if ((verdict & COPY_STDIO) !== 0) return Effect.fail(copyRejected())
          // On a leased connection, as for pg.query: the lease's end would roll the block back.
          if ((verdict & TRANSACTION_CONTROL) !== 0 && where(fiber).kind === "shared")
            return Effect.fail(transactionControl())
          if (statementsOf(text).length > 1)
            return Effect.fail(
              new StatementRejected({
                reason: "MultipleStatements",
                message: "a stream reads one statement's rows; this text holds several"
              })
            )
          return Effect.flatMap(heldConnection(fiber, "stream"), (conn) =>
            rowStream(conn, text, values, chunkSize, fiber)
          )
        })
      ) as Stream.Stream<Row, PgServerError | PgClientError>

    /** The checks copyFrom and copyTo share: one COPY statement in the right direction. */
    const copyText = (text: string, direction: "in" | "out"): StatementRejected | undefined =>
      statementsOf(text).length !== 1 || copyDirection(text) !== direction ? notCopy(direction) : undefined

    const copyFrom = <E, R>(text: string, source: Stream.Stream<Uint8Array | string, E, R>) =>
      Effect.withFiber((fiber) => {
        const refused = copyText(text, "in")
        if (refused !== undefined) return Effect.fail(refused)
        return Effect.scoped(
          Effect.flatMap(heldConnection(fiber, "copy"), (conn) =>
            Effect.map(copyIn(conn, text, source, fiber), (rowCount) => ({ rowCount }))
          )
        )
      }) as Effect.Effect<{ readonly rowCount: number }, E | PgServerError | PgClientError, R>

    const copyTo = (text: string) =>
      Stream.unwrap(
        Effect.withFiber((fiber) => {
          const refused = copyText(text, "out")
          if (refused !== undefined) return Effect.fail(refused)
          return Effect.flatMap(heldConnection(fiber, "copy"), (conn) => copyOut(conn, text, fiber))
        })
      ) as Stream.Stream<Uint8Array, PgServerError | PgClientError>

    const script = (input: string | Statement<any>) =>
      Effect.withFiber((fiber) => {
        if (typeof input !== "string" && input.values.length > 0)
          return Effect.fail(
            new StatementRejected({
              reason: "ParametersInScript",
              message:
                "a script runs without parameters (the simple-query protocol has none): use query or sql for values"
            })
          )
        const text = typeof input === "string" ? input : input.text
        if (statementsOf(text).some((s) => copyDirection(s) !== undefined)) return Effect.fail(copyInScript())
        const w = where(fiber)
        switch (w.kind) {
          case "shared":
            // Leased, so a block the script leaves open captures nobody's statements; the lease's
            // release rolls it back.
            return Effect.scoped(
              Effect.flatMap(lease("script"), (pooled) =>
                Effect.flatMap(runScript(pooled.conn, text), (results) =>
                  pooled.conn.transactionStatus === "I"
                    ? Effect.succeed(results)
                    : Effect.fail(scriptLeftBlockOpen())
                )
              )
            )
          case "conn":
            return runScript(w.conn, text)
          case "own":
            return runScript(w.own.conn, text)
          case "tx":
            return inTurn(w.level, w.level.tx.asHolder(runScript(w.level.tx.conn, text)))
          case "released":
            return Effect.fail(released())
        }
      })

    const prepare = (text: string, options: PrepareOptions = {}) =>
      Effect.withFiber((fiber) => {
        const name = statementName(options.name)
        if (typeof name !== "string") return Effect.fail(name)
        if ((verdictOf(text) & COPY_STDIO) !== 0) return Effect.fail(copyRejected())
        const w = where(fiber)
        let on: RunOn
        switch (w.kind) {
          case "shared":
            return Effect.fail(sharedPrepare())
          case "released":
            return Effect.fail(released())
          case "conn": {
            const conn = w.conn
            on = (f) =>
              Effect.suspend(() => (fixed !== undefined && !fixed.active ? Effect.fail(released()) : f(conn)))
            break
          }
          case "own": {
            const conn = w.own.conn
            on = (f) => f(conn)
            break
          }
          case "tx": {
            const level = w.level
            on = (f) => inTurn(level, level.tx.asHolder(f(level.tx.conn)))
            break
          }
        }
        return on((conn) => Effect.map(runPrepare(conn, name, text), (p) => preparedStatement(p, conn, on)))
      })

    const describePortal = (name: string) =>
      Effect.withFiber((fiber) => {
        const w = where(fiber)
        const run = (conn: Connection) => Effect.map(runDescribePortal(conn, name), (r) => r.fields)
        switch (w.kind) {
          case "shared":
            return Effect.fail(sharedPrepare())
          case "released":
            return Effect.fail(released())
          case "conn":
            return run(w.conn)
          case "own":
            return run(w.own.conn)
          case "tx":
            return inTurn(w.level, w.level.tx.asHolder(run(w.level.tx.conn)))
        }
      })

    const notify = (channel: string, payload: string) =>
      Effect.asVoid(query("select pg_notify($1, $2)", [channel, payload]))

    const parameters = fixed !== undefined ? fixed.pooled.conn.parameters : undefined
    return {
      stream,
      copyFrom,
      copyTo,
      script,
      notify,
      query,
      queryValues,
      prepare,
      describePortal,
      sql: makeSqlTag(query),
      parameter: (name) => (parameters ?? pool.parameters).get(name),
      get parameters() {
        return parameters ?? pool.parameters
      },
      types: registry,
      pipeline,
      pipelineWith,
      withPipeline,
      all,
      pipelineTransaction,
      withTransaction
    }
  }

  const reserve: Effect.Effect<PgConnection, PgClientError | PgServerError, Scope.Scope> = Effect.flatMap(
    lease("reserve"),
    (pooled) => {
      const fixed: Fixed = { pooled, active: true }
      return Effect.as(
        Effect.addFinalizer(() => Effect.sync(() => (fixed.active = false))),
        Object.assign(makeStatements(fixed), { processId: pooled.conn.session.processId })
      )
    }
  )

  const listen = (channel: string) =>
    Stream.callback<Notification, PgServerError | PgClientError>((queue) => {
      const invalid = invalidChannel(channel)
      if (invalid !== undefined) return Effect.fail(badChannel(invalid))
      return Effect.acquireRelease(
        listener.subscribe(channel, queue),
        () => listener.unsubscribe(channel, queue),
        { interruptible: true }
      )
    })

  const listenScoped = (channel: string) =>
    Effect.gen(function* () {
      const invalid = invalidChannel(channel)
      if (invalid !== undefined) return yield* Effect.fail(badChannel(invalid))
      const queue = yield* Queue.unbounded<Notification, PgServerError | PgClientError | Cause.Done>()
      yield* Effect.acquireRelease(
        listener.subscribe(channel, queue),
        () => Effect.andThen(listener.unsubscribe(channel, queue), Queue.end(queue)),
        { interruptible: true }
      )
      return Stream.fromQueue(queue) as Stream.Stream<Notification>
    })

  return Object.assign(makeStatements(undefined), {
    reserve,
    stats: () => pool.stats(),
    listen,
    listenScoped
  })
}
