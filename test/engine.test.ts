/**
 * The client's protocol state machine against a scripted server (hermetic): the exact frontend
 * messages a statement and a pipeline send, and how answers are attributed, including the
 * server's skip-to-Sync after an error, a statement prepared once and bound again, and a FATAL
 * error in the middle of a pipeline.
 */
import { expect, it } from "@effect/vitest"
import { PgClient, type PgClientApi } from "@pgline/client"
import type { BackendMessage } from "@pgline/codec"
import { ConfigProvider, Effect, Exit } from "effect"
import { column, dataRow, scriptedServer, statementSteps } from "@pgline/testing"

/** What a fresh one-column statement's answer looks like, up to its rows. */
const prepared = (name: string): ReadonlyArray<BackendMessage> => [
  { type: "ParseComplete" },
  { type: "ParameterDescription", parameterTypes: [] },
  { type: "RowDescription", fields: [column(name)] }
]

const withClient = <A, E>(port: number, f: (pg: PgClientApi) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    return yield* f(yield* PgClient)
  }).pipe(
    Effect.provide(
      PgClient.layer({ host: "127.0.0.1", port, user: "u", database: "d", max: 1, sslmode: "disable" })
    ),
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
  )

it.effect("a statement: Parse, Describe, Bind, Execute, Sync once; Bind, Execute, Sync when reused", () =>
  Effect.gen(function* () {
    const server = yield* scriptedServer([
      { expect: "Parse" },
      { expect: "Describe" },
      { expect: "Bind" },
      { expect: "Execute" },
      {
        expect: "Sync",
        send: [
          ...prepared("a"),
          { type: "BindComplete" },
          dataRow("7"),
          { type: "CommandComplete", tag: "SELECT 1" },
          { type: "ReadyForQuery", status: "I" }
        ]
      },
      { expect: "Bind" },
      { expect: "Execute" },
      {
        expect: "Sync",
        // Reused: the client asked for binary results now that it knows the type.
        send: [
          { type: "BindComplete" },
          dataRow(new Uint8Array([0, 0, 0, 8])),
          { type: "CommandComplete", tag: "SELECT 1" },
          { type: "ReadyForQuery", status: "I" }
        ]
      }
    ])
    const rows = yield* withClient(server.port, (pg) =>
      Effect.all([pg.query("select 7 as a"), pg.query("select 7 as a")])
    )
    expect(rows.map((r) => r.rows)).toEqual([[{ a: 7 }], [{ a: 8 }]])
    expect(server.mismatches).toEqual([])
    expect(server.remaining()).toBe(0)
  })
)

it.effect("a pipeline: an error skips the rest of its segment; the next segment runs", () =>
  Effect.gen(function* () {
    const server = yield* scriptedServer([
      ...statementSteps(),
      ...statementSteps(),
      {
        expect: "Sync",
        send: [
          {
            type: "ErrorResponse",
            fields: { severity: "ERROR", code: "22012", message: "division by zero" }
          },
          { type: "ReadyForQuery", status: "I" }
        ]
      },
      { expect: "Parse" },
      { expect: "Describe" },
      { expect: "Bind" },
      { expect: "Execute" },
      {
        expect: "Sync",
        send: [
          ...prepared("c"),
          { type: "BindComplete" },
          dataRow("3"),
          { type: "CommandComplete", tag: "SELECT 1" },
          { type: "ReadyForQuery", status: "I" }
        ]
      }
    ])
    const [first, second, third] = yield* withClient(server.port, (pg) =>
      pg.withPipeline((p) =>
        Effect.gen(function* () {
          const a = yield* p.execute("select 1/0 as a")
          const b = yield* p.execute("select 2 as b")
          yield* Effect.exit(p.sync)
          const c = yield* p.execute("select 3 as c")
          yield* p.sync
          return [yield* Effect.exit(a), yield* Effect.exit(b), yield* c] as const
        })
      )
    )
    expect(Exit.isFailure(first) && (yield* Effect.flip(first))._tag).toBe("DivisionByZero")
    expect(Exit.isFailure(second) && (yield* Effect.flip(second))).toMatchObject({
      _tag: "PipelineAborted",
      index: 0,
      failedTag: "DivisionByZero"
    })
    expect(third.rows).toEqual([{ c: 3 }])
    expect(server.mismatches).toEqual([])
  })
)

it.effect("a FATAL error mid-pipeline: the running statement gets it, the rest ConnectionLost, not run", () =>
  Effect.gen(function* () {
    const server = yield* scriptedServer([
      ...statementSteps(),
      ...statementSteps(),
      {
        expect: "Sync",
        send: [
          ...prepared("a"),
          { type: "BindComplete" },
          { type: "ErrorResponse", fields: { severity: "FATAL", code: "57P01", message: "terminating" } }
        ],
        close: true
      }
    ])
    const [a, b] = yield* withClient(server.port, (pg) =>
      Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const a = yield* p.execute("select 1 as a")
          const b = yield* p.execute("select 2 as b")
          yield* Effect.exit(p.sync)
          return [yield* Effect.flip(a), yield* Effect.flip(b)] as const
        })
      )
    )
    expect(a).toMatchObject({ _tag: "AdminShutdown", code: "57P01" })
    expect(b).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
    expect(server.mismatches).toEqual([])
  })
)

it.effect(
  "a server that starts copy-in for a plain statement: CopyFail and a Sync end it, the statement fails typed",
  () =>
    Effect.gen(function* () {
      const server = yield* scriptedServer([
        ...statementSteps(),
        {
          // The client's Sync arrives during copy-in: a real server ignores it.
          expect: "Sync",
          send: [
            { type: "ParseComplete" },
            { type: "ParameterDescription", parameterTypes: [] },
            { type: "NoData" },
            { type: "BindComplete" },
            { type: "CopyInResponse", format: 0, columnFormats: [0] }
          ]
        },
        {
          expect: "CopyFail",
          send: [
            {
              type: "ErrorResponse",
              fields: { severity: "ERROR", code: "57014", message: "COPY from stdin failed" }
            }
          ]
        },
        { expect: "Sync", send: [{ type: "ReadyForQuery", status: "I" }] }
      ])
      const error = yield* withClient(server.port, (pg) => Effect.flip(pg.query("insert into t select 1")))
      expect(error).toMatchObject({ _tag: "QueryCanceled", code: "57014" })
      expect(server.mismatches).toEqual([])
      expect(server.remaining()).toBe(0)
    })
)
