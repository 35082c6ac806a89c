/**
 * Tracing: a pipeline is a span, each segment a child span ending at its sync's answer, each
 * statement a child of its segment ending when it settles, with the SQLSTATE on failure.
 */
import { expect, layer } from "@effect/vitest"
import { PgClient } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Layer, Option, Tracer } from "effect"

interface Recorded {
  readonly span: Tracer.NativeSpan
  ended: boolean
  failed: boolean
}

const recordingTracer = () => {
  const spans: Array<Recorded> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      const recorded: Recorded = { span, ended: false, failed: false }
      spans.push(recorded)
      const end = span.end.bind(span)
      span.end = (time, exit) => {
        recorded.ended = true
        recorded.failed = exit._tag === "Failure"
        end(time, exit)
      }
      return span
    }
  })
  return { tracer, spans }
}

const client = Layer.unwrap(
  Effect.map(PgServer, (info) => PgClient.layer({ url: info.url, sslmode: "disable" }))
).pipe(Layer.provide(PgServer.layer))

layer(client, { timeout: 60_000 })("pipeline tracing", (it) => {
  it.effect("records pipeline, segment and statement spans with the SQLSTATE of failures", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const { tracer, spans } = recordingTracer()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          yield* p.execute("select 1")
          yield* p.execute("select * from no_such_table")
          yield* p.execute("select 2")
          yield* Effect.exit(p.sync)
          yield* p.execute("select 3")
        })
      ).pipe(Effect.withTracer(tracer))

      const named = (name: string) => spans.filter((s) => s.span.name === name)
      const [pipeline] = named("pgline.pipeline")
      const segments = named("pgline.pipeline.segment")
      const statements = named("pgline.statement")
      expect(pipeline?.ended).toBe(true)
      expect(segments.map((s) => [s.ended, s.failed])).toEqual([
        [true, true],
        [true, false]
      ])
      expect(statements).toHaveLength(4)
      for (const s of segments) expect(Option.getOrUndefined(s.span.parent)).toBe(pipeline?.span)
      expect(Option.getOrUndefined(statements[0]!.span.parent)).toBe(segments[0]!.span)
      expect(Option.getOrUndefined(statements[3]!.span.parent)).toBe(segments[1]!.span)
      expect(statements.map((s) => s.failed)).toEqual([false, true, true, false])
      expect(statements[1]!.span.attributes.get("db.response.status_code")).toBe("42P01")
      expect(statements[2]!.span.attributes.get("pgline.aborted_by")).toBe("42P01")
      expect(statements[0]!.span.attributes.get("db.query.text")).toBe("select 1")
    })
  )

  it.effect(
    "a segment rolled back because the body failed: its span says so and counts the caller's statements",
    () =>
      Effect.gen(function* () {
        const pg = yield* PgClient
        const { tracer, spans } = recordingTracer()
        const exits: Array<string> = []
        yield* Effect.exit(
          pg
            .withPipeline((p) =>
              Effect.gen(function* () {
                const h = yield* p.execute("select 1")
                yield* p.flush
                yield* h
                return yield* Effect.fail("application error")
              })
            )
            .pipe(Effect.withTracer(tracer))
        )
        const segments = spans.filter((s) => s.span.name === "pgline.pipeline.segment")
        for (const s of segments)
          if (s.span.status._tag === "Ended") exits.push(JSON.stringify(s.span.status.exit))
        expect(segments.map((s) => [s.ended, s.failed, s.span.attributes.get("pgline.statements")])).toEqual([
          [true, true, 1]
        ])
        expect(exits[0]).toContain("TransactionRolledBack")
        expect(spans.filter((s) => s.span.name === "pgline.statement")).toHaveLength(1)
      })
  )

  it.effect("waiting for a pool connection (pipeline, transaction, reserve) is a span", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const { tracer, spans } = recordingTracer()
      yield* Effect.scoped(Effect.flatMap(pg.pipeline, (p) => p.execute("select 1"))).pipe(
        Effect.withTracer(tracer)
      )
      yield* pg.withTransaction(pg.query("select 1")).pipe(Effect.withTracer(tracer))
      yield* Effect.scoped(pg.reserve).pipe(Effect.withTracer(tracer))
      const acquires = spans.filter((s) => s.span.name === "pgline.pool.acquire")
      expect(acquires.map((s) => [s.ended, s.failed])).toEqual([
        [true, false],
        [true, false],
        [true, false]
      ])
    })
  )

  it.effect("makes no spans when tracing is switched off", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient
      const { tracer, spans } = recordingTracer()
      const rows = yield* pg
        .pipelineTransaction((p) => p.execute("select 1 as one"))
        .pipe(Effect.flatten, Effect.withTracer(tracer), Effect.withTracerEnabled(false))
      expect(rows.rows).toEqual([{ one: 1 }])
      expect(spans.filter((s) => s.span.name.startsWith("pgline."))).toEqual([])
    })
  )
})
