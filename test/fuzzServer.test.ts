/**
 * Client-level fuzz (hermetic): a fake server answers every Sync with a random sequence of
 * well-formed backend messages in a random order (valid answers, errors with hostile codes,
 * notices, rows of any width, extra completions, ReadyForQuery in any state, garbage bytes), then
 * closes the connection. Whatever it sends, every statement must settle (success or a typed
 * error), nothing may throw out of the socket handlers, and nothing may hang. A fixed seed and a
 * fixed number of rounds, so every run does the same work.
 */
import { expect, it } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import type { BackendMessage } from "@pgline/codec"
import { ConfigProvider, Effect, Exit } from "effect"
import { acceptStartup, column, dataRow, fakeServer } from "@pgline/testing"

/** mulberry32: a small seeded PRNG, so a failing round can be replayed from its seed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// 1,000 rounds take 3–5 s here (measured with the machine otherwise busy).
const ROUNDS = 1_000

const CLIENT_TAGS = new Set([
  "ConnectionLost",
  "ProtocolFailure",
  "PipelineAborted",
  "ResultDecodeError",
  "StatementRejected",
  "ParameterError",
  "AcquireTimeout",
  "PgConnectError"
])

/** One random backend message (or raw bytes). */
const randomMessage = (random: () => number): BackendMessage | Uint8Array => {
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
  const codes = ["22012", "42P01", "XX000", "toString", "__proto__", "constructor", "", "99999", "57P01"]
  switch (Math.floor(random() * 16)) {
    case 0:
      return { type: "ParseComplete" }
    case 1:
      return { type: "BindComplete" }
    case 2:
      return { type: "ParameterDescription", parameterTypes: random() < 0.5 ? [] : [23, 25] }
    case 3:
      return {
        type: "RowDescription",
        fields: Array.from({ length: Math.floor(random() * 3) + 1 }, (_, i) =>
          column(`c${i}`, pick([23, 25, 16, 114]))
        )
      }
    case 4:
      return { type: "NoData" }
    case 5:
      return dataRow(
        ...Array.from({ length: Math.floor(random() * 4) }, () => pick(["1", "x", null, "{", "true", "-"]))
      )
    case 6:
      return { type: "CommandComplete", tag: pick(["SELECT 1", "INSERT 0 1", "", "ROLLBACK", "SELECT x"]) }
    case 7:
      return { type: "EmptyQueryResponse" }
    case 8:
      return {
        type: "ErrorResponse",
        fields: { severity: pick(["ERROR", "FATAL", "PANIC"]), code: pick(codes), message: "fuzz" }
      }
    case 9:
      return {
        type: "NoticeResponse",
        fields: { severity: "NOTICE", code: pick(codes), message: "fuzz notice" }
      }
    case 10:
      return { type: "ParameterStatus", name: pick(["TimeZone", "toString", "__proto__", "x"]), value: "v" }
    case 11:
      return { type: "NotificationResponse", processId: 1, channel: "c", payload: "p" }
    case 12:
      return { type: "ReadyForQuery", status: pick(["I", "T", "E"] as const) }
    case 13:
      return { type: "PortalSuspended" }
    case 14:
      return { type: "CloseComplete" }
    default:
      // Bytes that are not a message: an unknown type, or a length that lies.
      return pick([
        Uint8Array.of(0x21, 0, 0, 0, 4),
        Uint8Array.of(0x44, 0, 0, 0, 2),
        Uint8Array.of(0x5a, 0xff, 0xff, 0xff, 0xff)
      ])
  }
}

it.effect(
  `${ROUNDS} rounds of random answers: every statement settles typed, nothing throws or hangs`,
  () =>
    Effect.gen(function* () {
      const outcomes = new Map<string, number>()
      for (let round = 0; round < ROUNDS; round++) {
        const random = prng(20261201 + round)
        const server = yield* fakeServer((m, conn) => {
          if (acceptStartup(m, conn)) return
          if (m.type !== "Sync" && m.type !== "Flush") return
          const n = Math.floor(random() * 10)
          conn.send(...Array.from({ length: n }, () => randomMessage(random)))
          // Sometimes a well-formed end of the segment, always a close: the client must settle all.
          if (random() < 0.3) conn.send({ type: "ReadyForQuery", status: "I" })
          conn.close()
        })
        const statements = Math.floor(random() * 3) + 1
        const run = Effect.gen(function* () {
          const pg = yield* PgClient
          return yield* random() < 0.5
            ? Effect.all(
                Array.from({ length: statements }, (_, i) => Effect.exit(pg.query(`select ${i} as v`))),
                { concurrency: "unbounded" }
              )
            : pg.withPipeline((p) =>
                Effect.gen(function* () {
                  const handles = []
                  for (let i = 0; i < statements; i++) handles.push(yield* p.execute(`select ${i} as v`))
                  yield* Effect.exit(p.sync)
                  return yield* Effect.all(handles.map((h) => Effect.exit(h)))
                })
              )
        }).pipe(
          Effect.provide(
            PgClient.layer({
              host: "127.0.0.1",
              port: server.port,
              user: "u",
              database: "d",
              max: 1,
              sslmode: "disable",
              acquireTimeout: 2_000,
              onNotice: () => {}
            })
          ),
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })),
          Effect.timeout(10_000)
        )
        const exit = yield* Effect.exit(run)
        // A hang would be a TimeoutError; a defect (an exception) would be a Die.
        expect(Exit.hasDies(exit)).toBe(false)
        const results: ReadonlyArray<Exit.Exit<unknown, unknown>> = Exit.isSuccess(exit) ? exit.value : [exit]
        for (const r of results) {
          let tag = "success"
          if (Exit.isFailure(r)) {
            const error = yield* Effect.flip(r as Exit.Exit<unknown, { _tag: string; code?: string }>)
            tag = error._tag
            const typed = CLIENT_TAGS.has(tag) || typeof error.code === "string"
            expect({ round, tag, typed }).toMatchObject({ typed: true })
            expect(tag).not.toBe("TimeoutError")
          }
          outcomes.set(tag, (outcomes.get(tag) ?? 0) + 1)
        }
      }
      // Not vacuous: several kinds of outcome occurred.
      if (process.env["PGLINE_FUZZ_REPORT"]) console.log(Object.fromEntries(outcomes))
      expect(outcomes.size).toBeGreaterThan(3)
    }),
  120_000
)
