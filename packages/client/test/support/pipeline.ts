/**
 * Helpers shared by the pipeline integration tests: fresh clients with a hermetic environment,
 * liveness bounds, and views of the server's pg_stat_activity.
 */
import { PgClient, type PgClientApi } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { ConfigProvider, Context, Effect, Layer } from "effect"

/** A client with one connection, and that connection's backend pid. */
export type TestClient = PgClientApi & { readonly processId: number }

/** The backend pid of a one-connection client (asked once, right after connecting). */
export const withPid = (pg: PgClientApi): Effect.Effect<TestClient, unknown> =>
  Effect.map(pg.query<{ pid: number }>("select pg_backend_pid() as pid"), (r) =>
    Object.assign(pg, { processId: r.rows[0]!.pid })
  )

/**
 * A fresh client to `url`, closed with the test's scope; PG* variables ignored. One connection
 * (`max: 1`) unless the settings say otherwise, so `processId` names the backend it uses.
 */
export const connectTo = (
  url: string,
  settings: {
    readonly statementCacheSize?: number
    readonly max?: number
    readonly maxMessageSize?: number
  } = {}
) =>
  Effect.flatMap(
    Layer.build(PgClient.layer({ url, max: 1, ...settings })).pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
    ),
    (ctx) => withPid(Context.get(ctx, PgClient))
  )

/** A fresh client to the test server. */
export const connectWith = (settings: { readonly statementCacheSize?: number; readonly max?: number } = {}) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    return yield* connectTo(info.url, settings)
  })
export const connect = connectWith()

/** Fails with a TimeoutError when `self` does not finish in `ms`: a liveness bound only. */
export const within =
  (ms: number) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.timeout(self, ms)

/** The error of an effect expected to fail (a success fails the test). */
export const errorOf = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.flip(within(10_000)(self))

export const rowsOf = (pg: PgClientApi, text: string, params?: ReadonlyArray<unknown>) =>
  Effect.map(pg.query(text, params), (r) => r.rows)

/** Waits until `pid` is running a statement whose text contains `fragment` (seen from `observer`). */
export const waitUntilRunning = (observer: PgClientApi, pid: number, fragment: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      const rows = yield* rowsOf(
        observer,
        "select state, query from pg_stat_activity where pid = $1::int and state = 'active'",
        [pid]
      )
      if (rows.some((r) => String(r["query"]).includes(fragment))) return
      yield* Effect.sleep(25)
    }
    return yield* Effect.die(new Error(`backend ${pid} never started running ${fragment}`))
  })

export const backendState = (observer: PgClientApi, pid: number) =>
  Effect.map(
    rowsOf(observer, "select state from pg_stat_activity where pid = $1::int", [pid]),
    (rows) => rows[0]?.["state"]
  )
