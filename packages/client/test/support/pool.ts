/**
 * Helpers of the pool and transaction tests: a client with explicit pool settings (built in the
 * test's scope, PG* variables ignored), an application_name per client so pg_stat_activity shows
 * exactly its backends, and polling with a liveness bound.
 */
import { PgClient, type PgClientApi, type PgClientOptions } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { ConfigProvider, Context, Effect, Layer, type Scope } from "effect"

let clients = 0

export interface PoolClient {
  readonly pg: PgClientApi
  /** The application_name its connections report (unique per client). */
  readonly app: string
}

/** A fresh pool client to the test server, closed with the test's scope. */
export const poolClient = (
  settings: Exclude<PgClientOptions, string> = {}
): Effect.Effect<PoolClient, unknown, PgServer | Scope.Scope> =>
  Effect.gen(function* () {
    const info = yield* PgServer
    const app = `pgline_pool_test_${process.pid}_${++clients}`
    const ctx = yield* Layer.build(
      PgClient.layer({ url: info.url, sslmode: "disable", applicationName: app, ...settings })
    ).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))
    return { pg: Context.get(ctx, PgClient), app }
  })

/** Rows of pg_stat_activity for a client's backends (seen from `observer`). */
export const backendsOf = (observer: PgClientApi, app: string) =>
  Effect.map(
    observer.query<{ pid: number; state: string | null; query: string }>(
      "select pid, state, query from pg_stat_activity where application_name = $1",
      [app]
    ),
    (r) => r.rows
  )

/** Polls `check` every 20 ms until it holds; dies after `ms` (a liveness bound, not a timing claim). */
export const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  ms = 10_000,
  what = "condition"
): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep(20)
    }
    return yield* Effect.die(new Error(`${what} did not hold within ${ms} ms`))
  })

/** Waits until one of the client's backends is running a statement containing `fragment`. */
export const untilRunning = (observer: PgClientApi, app: string, fragment: string) =>
  eventually(
    Effect.map(backendsOf(observer, app), (rows) =>
      rows.some((r) => r.state === "active" && r.query.includes(fragment))
    ),
    10_000,
    `a backend running ${fragment}`
  )
