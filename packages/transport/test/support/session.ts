/**
 * Helpers of the Session integration tests: open a session from libpq settings with a hermetic
 * environment (explicit ConfigProvider), and run a simple Query on its wire without the client.
 */
import { type BackendMessage, encodeQuery, type ErrorFields } from "@pgline/codec"
import { ConfigProvider, Effect } from "effect"
import { PgConfig, Session } from "../../src/index.ts"

/** Opens a session (closed with the scope) from settings, with no PG* variables in the environment. */
export const openSession = (input: PgConfig.PgConfigInput) =>
  Effect.gen(function* () {
    const resolved = yield* PgConfig.make(input)
    const options = yield* Session.toSessionOptions(resolved)
    return yield* Session.open(options)
  }).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))

export interface SimpleResult {
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
  readonly error: ErrorFields | undefined
  readonly messages: ReadonlyArray<BackendMessage["type"]>
}

const text = new TextDecoder()

/** Sends a simple Query and collects its text rows up to ReadyForQuery. */
export const simpleQuery = (session: Session.Session, sql: string): Promise<SimpleResult> =>
  new Promise((resolve, reject) => {
    const rows: Array<Array<string | null>> = []
    const messages: Array<BackendMessage["type"]> = []
    let error: ErrorFields | undefined
    session.wire.setHandler(
      (m) => {
        messages.push(m.type)
        if (m.type === "DataRow") {
          const row: Array<string | null> = []
          for (let i = 0; i < m.columnCount; i++) {
            const len = m.lengths[i]!
            row.push(len < 0 ? null : text.decode(m.bytes.subarray(m.offsets[i]!, m.offsets[i]! + len)))
          }
          rows.push(row)
        } else if (m.type === "ErrorResponse") error = m.fields
        else if (m.type === "ReadyForQuery") {
          session.wire.setHandler(undefined, undefined)
          resolve({ rows, error, messages })
        }
      },
      (closed) => reject(new Error(closed.message))
    )
    encodeQuery(session.wire.writer, sql)
    session.wire.flush()
  })

export const query = (session: Session.Session, sql: string) =>
  Effect.promise(() => simpleQuery(session, sql))

/**
 * Waits until the backend `processId` is running a statement, as `observer` sees it in
 * pg_stat_activity: a cancel that arrives before the statement starts is a no-op. The 10 s bound is
 * only a liveness limit: past it the test fails here, rather than going on to cancel too early.
 */
export const untilActive = (observer: Session.Session, processId: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    for (;;) {
      const r = yield* query(observer, `select state from pg_stat_activity where pid = ${processId}`)
      if (r.rows[0]?.[0] === "active") return
      if (Date.now() > deadline) throw new Error(`backend ${processId} never became active`)
      yield* Effect.sleep("10 millis")
    }
  })
