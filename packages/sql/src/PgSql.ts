/**
 * effect/sql's `SqlClient` (dialect "pg") on pgline: `PgSql.layer(options)` opens one pgline pool
 * and provides both `SqlClient` and pgline's `PgClient` over it, so effect/sql code (the `sql`
 * template, SqlSchema, SqlResolver, Migrator) and pgline's own API (pipelines, COPY, LISTEN,
 * scripts) share connections and transactions.
 *
 * How a statement travels: effect/sql compiles the template (internal/compiler.ts) and calls the
 * driver connection (internal/connection.ts), which is one `pg.query`; pgline's router picks the
 * connection (the transaction's, the fiber's pipeline's, or a pooled one, with concurrent calls
 * pipelined). `withTransaction` is pgline's: BEGIN on a leased connection, SAVEPOINT when nested,
 * COMMIT answered ROLLBACK a failure, ROLLBACK on failure or interruption, and every statement of
 * the effect and its child fibers (effect/sql's or pgline's) on that connection, concurrent ones
 * pipelined. On top of it this module keeps effect/sql's transaction context (its transaction
 * service, afterCommit, Reactivity invalidations deferred to the commit, the `sql.transaction`
 * span). Failures become `SqlError` with pgline's typed error as the reason's cause
 * (internal/errors.ts).
 *
 * It does not convert values: rows are pgline's (int8 as bigint, numeric as string, …; the
 * package README lists every difference from @effect/sql-pg).
 */
import { type ClientSettings, PgClient, type PgClientApi, PgConfig } from "@pgline/client"
import { Config, Context, Effect, Layer, References, Tracer } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { SqlError, UnknownError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import { makeCompiler } from "./internal/compiler.ts"
import { makeConnection } from "./internal/connection.ts"
import { toSqlError } from "./internal/errors.ts"

export { json } from "./internal/compiler.ts"
export { toSqlError } from "./internal/errors.ts"

/** What PgSql adds to pgline's client settings: @effect/sql-pg's name and JSON transforms. */
export interface PgSqlSettings extends ClientSettings {
  /** Applied to result column names (e.g. `String.snakeToCamel`); nested JSON keys too with transformJson. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Applied to identifiers the `sql` template quotes (`sql("userId")`, insert/update columns). */
  readonly transformQueryNames?: ((name: string) => string) | undefined
  /** Whether the name transforms reach into JSON values and results (default true). */
  readonly transformJson?: boolean | undefined
  /** Extra attributes on every statement span and transaction span. */
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Rows fetched per round trip by `sql\`…\`.stream` (a portal read; default 1,000). */
  readonly streamChunkSize?: number | undefined
}

/** Everything `PgSql.layer` accepts: what `PgClient.layer` accepts plus PgSqlSettings. */
export type PgSqlOptions = (PgConfig.PgConfigOptions & PgSqlSettings) | string

interface AfterCommitBuffer {
  readonly callbacks: Array<Effect.Effect<void>>
  readonly parent: AfterCommitBuffer | undefined
  open: boolean
}

/** One transaction service per client (effect/sql keys statements' transactions by it). */
let clients = 0

/**
 * effect/sql's record of the innermost transaction's service, which SqlResolver reads to keep a
 * request made inside a transaction out of a batch with requests from outside it (when the
 * request's context has no SqlClient). effect/sql keeps the reference internal and provides it
 * only from its own transactions; a reference is found by its key, so this one is the same.
 */
const CurrentTransactionService = Context.Reference<Context.Key<any, object> | undefined>(
  "effect/sql/CurrentTransactionService",
  { defaultValue: () => undefined }
)

/** A failure of the transaction's own effect, kept apart from BEGIN/COMMIT failures. */
class Own<E> {
  readonly error: E
  constructor(error: E) {
    this.error = error
  }
}

/**
 * pgline's TransactionOptions from effect/sql's `BeginTransaction` text (`BEGIN ISOLATION LEVEL
 * SERIALIZABLE, READ ONLY`, `START TRANSACTION …`); undefined when the text is something else. The
 * modes follow PostgreSQL's grammar: separated by commas or by whitespace alone.
 */
const beginOptions = (text: string): Parameters<PgClientApi["withTransaction"]>[1] | undefined => {
  const match =
    /^\s*(?:begin(?:\s+(?:work|transaction))?|start\s+transaction)(?![a-z_0-9$])(.*?);?\s*$/is.exec(text)
  if (match === null) return undefined
  const options: {
    isolation?: "serializable" | "repeatable read" | "read committed" | "read uncommitted"
    readOnly?: boolean
    deferrable?: boolean
  } = {}
  const tokens = match[1]!.toLowerCase().match(/[a-z_]+|,|\S/g) ?? []
  let i = 0
  const take = (...words: Array<string>): boolean => {
    if (!words.every((w, k) => tokens[i + k] === w)) return false
    i += words.length
    return true
  }
  while (i < tokens.length) {
    // A comma may separate two modes (none before the first, none after the last).
    if (i > 0 && take(",") && i === tokens.length) return undefined
    if (take("isolation", "level")) {
      const level = ["serializable", "repeatable read", "read committed", "read uncommitted"].find((l) =>
        take(...l.split(" "))
      )
      if (level === undefined) return undefined
      options.isolation = level as NonNullable<typeof options.isolation>
    } else if (take("read", "only")) options.readOnly = true
    else if (take("read", "write")) options.readOnly = false
    else if (take("deferrable")) options.deferrable = true
    else if (take("not", "deferrable")) options.deferrable = false
    else return undefined
  }
  return options
}

const runAfterCommit = (effect: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.ignoreCause(effect, {
    log: "Unhandled",
    message: "Unhandled error in SqlClient.afterCommit callback"
  })

/**
 * The SqlClient over the PgClient in context. Use it with a PgClient layer of your own; `layer`
 * builds both.
 */
export const make = (
  settings: PgSqlSettings = {}
): Effect.Effect<SqlClient.SqlClient, never, PgClient | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const pg = yield* PgClient
    const chunkSize = settings.streamChunkSize ?? 1000
    const connection = makeConnection(pg, chunkSize)
    const transactionService = Context.Service<
      SqlClient.TransactionConnection,
      SqlClient.TransactionConnection.Service
    >(`@pgline/sql/TransactionConnection/${clients++}`)
    const spanAttributes: ReadonlyArray<readonly [string, unknown]> = [
      ...Object.entries(settings.spanAttributes ?? {}),
      ["db.system.name", "postgresql"]
    ]
    const transformJson = settings.transformJson ?? true
    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(connection),
      // Statements borrow the connection for their own effect: no Scope per statement (pgline
      // routes each call itself, so there is nothing to lease or give back).
      borrower: (f) => f(connection),
      transactionAcquirer: Effect.map(
        Effect.mapError(pg.reserve, (e) => toSqlError(e, "reserve")),
        (reserved) => makeConnection(reserved, chunkSize)
      ),
      compiler: makeCompiler(settings.transformQueryNames, transformJson),
      driver: "pgline",
      spanAttributes,
      transactionService,
      transformRows:
        settings.transformResultNames === undefined
          ? undefined
          : Statement.defaultTransforms(settings.transformResultNames, transformJson).array
    })

    const buffers = new WeakMap<object, AfterCommitBuffer>()

    const afterCommit = <R>(effect: Effect.Effect<void, never, R>): Effect.Effect<void, never, R> =>
      Effect.withFiber((fiber) => {
        const level = Context.getOrUndefined(fiber.context, transactionService)
        const buffer = level === undefined ? undefined : buffers.get(level)
        if (buffer === undefined) return runAfterCommit(effect as Effect.Effect<void>)
        for (let b: AfterCommitBuffer | undefined = buffer; b !== undefined; b = b.parent) {
          if (!b.open)
            return Effect.die(new Error("SqlClient.afterCommit: the transaction has already ended"))
        }
        // Runs after the commit with the services of now, outside the transaction.
        buffer.callbacks.push(
          Effect.provideContext(effect, Context.omit(transactionService)(fiber.context) as Context.Context<R>)
        )
        return Effect.void
      })

    const withTransaction = <R, E, A>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
      Effect.withFiber((fiber) => {
        const parent = Context.getOrUndefined(fiber.context, transactionService)
        // A savepoint ignores BeginTransaction (as effect/sql's transactions do).
        const begin = parent === undefined ? fiber.getRef(SqlClient.BeginTransaction) : undefined
        const options = begin === undefined ? {} : beginOptions(begin)
        if (options === undefined) {
          const message = `PgSql: unsupported BeginTransaction statement ${JSON.stringify(begin)} (BEGIN or START TRANSACTION with isolation level, read only/write, [not] deferrable)`
          return Effect.fail(
            new SqlError({
              reason: new UnknownError({ cause: new Error(message), message, operation: "begin" })
            })
          )
        }
        const level: SqlClient.TransactionConnection.Service = [
          connection,
          parent === undefined ? 0 : parent[1] + 1
        ]
        const buffer: AfterCommitBuffer = {
          callbacks: [],
          parent: parent === undefined ? undefined : buffers.get(parent),
          open: true
        }
        buffers.set(level, buffer)
        const reactivity = Context.getOrUndefined(fiber.context, Reactivity.Reactivity)
        let inner: Effect.Effect<A, E, R> = Effect.provideService(
          Effect.provideService(effect, transactionService, level),
          CurrentTransactionService,
          transactionService
        )
        if (reactivity !== undefined) {
          // Invalidations inside the transaction wait for its commit (and vanish with a rollback).
          const invalidate = (keys: Parameters<Reactivity.Reactivity["invalidate"]>[0]) =>
            afterCommit(Effect.sync(() => reactivity.invalidateUnsafe(keys)))
          inner = Effect.provideService(inner, Reactivity.Reactivity, {
            ...reactivity,
            invalidate,
            mutation: (keys, mutation) => Effect.tap(mutation, invalidate(keys))
          })
        }
        // Whether the transaction committed (or its savepoint was released), told by pgline from
        // inside its uninterruptible end: an interruption that arrives while COMMIT is in flight
        // turns the exit into an interruption although the data committed, and afterCommit
        // callbacks follow the commit, not the exit.
        let committed = false
        const onCommit = () => {
          committed = true
        }
        const transaction = Effect.onExit(
          Effect.catch(
            pg.withTransaction(
              Effect.mapError(inner, (e) => new Own(e)),
              parent === undefined ? { ...options, onCommit } : { onCommit }
            ),
            (e) => Effect.fail(e instanceof Own ? (e.error as E) : toSqlError(e, "transaction"))
          ),
          (): Effect.Effect<void> => {
            buffer.open = false
            if (!committed || buffer.callbacks.length === 0) return Effect.void
            if (buffer.parent !== undefined) {
              buffer.parent.callbacks.push(...buffer.callbacks)
              return Effect.void
            }
            return Effect.forEach(buffer.callbacks, runAfterCommit, { discard: true })
          }
        )
        // The span only where a tracing backend can see it (as pgline's own spans).
        return fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer || !fiber.getRef(References.TracerEnabled)
          ? transaction
          : Effect.withSpan(transaction, "sql.transaction", {
              kind: "internal",
              attributes: Object.fromEntries(spanAttributes)
            })
      })

    return Object.assign(client, { withTransaction, afterCommit }) as SqlClient.SqlClient
  })

/** The span attributes OpenTelemetry's database conventions name, from the resolved settings. */
const connectionAttributes = (resolved: PgConfig.PgConnectOptions): Record<string, unknown> => {
  const host = resolved.hosts[0]
  return {
    "db.namespace": resolved.database,
    ...(host === undefined ? {} : { "server.address": host.host, "server.port": host.port })
  }
}

const build = (
  resolved: PgConfig.PgConnectOptions,
  settings: PgSqlSettings
): Layer.Layer<SqlClient.SqlClient | PgClient, SqlError> => {
  const pool = Layer.effectContext(
    Effect.mapError(Layer.build(PgClient.layerConfig(Config.succeed(resolved), settings)), (e) =>
      toSqlError(e, "connect")
    )
  )
  const sql = Layer.effect(
    SqlClient.SqlClient,
    make({ ...settings, spanAttributes: { ...connectionAttributes(resolved), ...settings.spanAttributes } })
  )
  return sql.pipe(Layer.provideMerge(pool), Layer.provide(Reactivity.layer))
}

/**
 * One pgline pool providing effect/sql's `SqlClient` and pgline's `PgClient`. The first connection
 * opens when the layer is built: an unreachable server or a wrong password fails the layer with a
 * SqlError (ConnectionError / AuthenticationError, pgline's PgConnectError as the cause).
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql<{ n: number }>`select ${41}::int + 1 as n`
 * })
 * Effect.runPromise(program.pipe(Effect.provide(PgSql.layer("postgres://app@localhost/app"))))
 * ```
 */
export const layer = (options: PgSqlOptions = {}): Layer.Layer<SqlClient.SqlClient | PgClient, SqlError> => {
  const settings: PgSqlSettings = typeof options === "string" ? {} : options
  return Layer.unwrap(
    Effect.map(
      Effect.mapError(PgConfig.make(options), (e) => toSqlError(e, "config")),
      (resolved) => build(resolved, settings)
    )
  )
}

/** The same from Effect Config, e.g. `PgConfig.config("APP")` (APP_URL, APP_PGHOST, …). */
export const layerConfig = (
  config: Config.Config<PgConfig.PgConnectOptions>,
  settings: PgSqlSettings = {}
): Layer.Layer<SqlClient.SqlClient | PgClient, SqlError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(config, (resolved) => build(resolved, settings)))

/** effect/sql's SqlClient over a PgClient layer you build yourself (shares its pool). */
export const layerFromClient = (
  settings: PgSqlSettings = {}
): Layer.Layer<SqlClient.SqlClient, never, PgClient> =>
  Layer.effect(SqlClient.SqlClient, make(settings)).pipe(Layer.provide(Reactivity.layer))
