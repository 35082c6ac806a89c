/**
 * Pipeline edge cases against a real server: regressions for spec violations found by probing
 * (README "Pipelines"). One PgServer for the file; every test opens its own
 * clients. The expectations are the server's documented behaviour (protocol "Pipelining"):
 *
 * - after an ErrorResponse the server skips everything up to the next Sync and sends nothing for
 *   it; the driver reports each skipped statement as PipelineAborted naming the failed one by its
 *   position among the user's statements of the segment;
 * - the statements between two Syncs are one implicit transaction, committed at the Sync (where a
 *   deferred constraint can still fail it) and rolled back as a whole when one of them failed;
 * - a pipeline holds its connection for its scope: another fiber's statement cannot land inside
 *   one of its segments.
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { Pipeline } from "@pgline/client"
import { Effect, Exit, Fiber, Logger } from "effect"
import { PgServer } from "@pgline/testing"
import {
  backendState,
  connect,
  connectWith,
  errorOf,
  rowsOf,
  waitUntilRunning,
  within
} from "./support/pipeline.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("Pipeline edges", (it) => {
  // 1. A text first prepared in a segment that was aborted before its Parse ran.
  it.effect("a new text queued after an aborted statement is aborted, then runs in the next segment", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const zero = yield* p.execute("select 1/0 as z")
          // Its Parse is skipped by the server with the rest of the segment: the statement never exists.
          const first = yield* p.execute("select 42 as fresh")
          const s1 = yield* Effect.forkChild(p.sync, { startImmediately: true })
          // The same text in the next segment must be prepared again, not bound to a missing name.
          const second = yield* p.execute("select 42 as fresh")
          const s2 = yield* Effect.forkChild(p.sync, { startImmediately: true })
          const [e1, e2] = yield* within(10_000)(Fiber.awaitAll([s1, s2]))
          expect(e1 !== undefined && Exit.isFailure(e1)).toBe(true)
          if (e1 !== undefined && Exit.isFailure(e1)) {
            expect((yield* Effect.flip(e1))._tag).toBe("DivisionByZero")
          }
          expect(e2).toEqual(Exit.succeed("I"))
          expect((yield* errorOf(zero))._tag).toBe("DivisionByZero")
          expect(yield* errorOf(first)).toMatchObject({
            _tag: "PipelineAborted",
            index: 0,
            failedTag: "DivisionByZero",
            failedCode: "22012"
          })
          expect((yield* second).rows).toEqual([{ fresh: 42 }])
        })
      )
      expect(yield* rowsOf(pg, "select 42 as fresh")).toEqual([{ fresh: 42 }])
    })
  )

  // 2. Statement-cache evictions write Close messages into the segment; they are not statements.
  it.effect("PipelineAborted.index counts the user's statements only, not the driver's Close messages", () =>
    Effect.gen(function* () {
      const pg = yield* connectWith({ statementCacheSize: 2 })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const five = []
          for (let i = 0; i < 5; i++) five.push(yield* p.execute(`select ${i} as v`))
          const bad = yield* p.execute("select 1/0")
          const after = yield* p.execute("select 'after' as v")
          const syncError = yield* Effect.flip(within(10_000)(p.sync))
          expect(syncError._tag).toBe("DivisionByZero")
          for (let i = 0; i < 5; i++) expect((yield* five[i]!).rows).toEqual([{ v: i }])
          expect((yield* errorOf(bad))._tag).toBe("DivisionByZero")
          expect(yield* errorOf(after)).toMatchObject({
            _tag: "PipelineAborted",
            index: 5,
            failedTag: "DivisionByZero",
            failedCode: "22012"
          })
          // The cache still works after the evictions and the failure.
          const again = yield* p.execute("select 'after' as v")
          expect(yield* within(10_000)(p.sync)).toBe("I")
          expect((yield* again).rows).toEqual([{ v: "after" }])
        })
      )
    })
  )

  // 3. The unsent-bytes window, down to one byte, around the server's 8 KiB send buffer.
  for (const window of [1, 1024, 8 * 1024, 15 * 1024, 17 * 1024, 32 * 1024]) {
    it.effect(`maxPendingBytes ${window}: 3,000 statements and a sync complete, every result in place`, () =>
      Effect.gen(function* () {
        const pg = yield* connect
        const total = 3_000
        const results = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipelineWith({ maxPendingBytes: window })
            const handles = []
            for (let i = 0; i < total; i++) handles.push(yield* p.execute("select $1::int as n", [i]))
            const status = yield* p.sync
            const ns: Array<unknown> = []
            for (const h of handles) ns.push((yield* h).rows[0]!["n"])
            return { status, ns }
          })
        ).pipe(within(15_000))
        expect(results.status).toBe("I")
        expect(results.ns).toEqual(Array.from({ length: total }, (_, i) => i))
        expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      })
    )
  }

  it.effect(
    "maxPendingBytes below 1 or NaN is refused (a defect) instead of a pipeline that waits for good",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        for (const maxPendingBytes of [0, -1, Number.NaN]) {
          const exit = yield* Effect.exit(
            within(10_000)(
              Effect.scoped(
                Effect.flatMap(pg.pipelineWith({ maxPendingBytes }), (p) => p.execute("select 1"))
              )
            )
          )
          expect(String(exit)).toContain("maxPendingBytes must be 1 or more")
        }
        expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      })
  )

  // 4. Interruption while the owner waits for a sync.
  it.effect("interrupting a fiber waiting on p.sync returns promptly and leaves the connection clean", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const observer = yield* connect
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            yield* p.execute("select pg_sleep(5) as sync_sleep")
            return yield* p.sync
          })
        ),
        { startImmediately: true }
      )
      yield* waitUntilRunning(observer, pg.processId, "sync_sleep")
      // Well under the statement's 5 s: the scope's end cancels instead of waiting it out.
      yield* within(3_000)(Fiber.interrupt(fiber))
      expect(Exit.hasInterrupts(yield* Fiber.await(fiber))).toBe(true)
      expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      expect(yield* backendState(observer, pg.processId)).toBe("idle")
    })
  )

  // 5. Who may use the connection while a pipeline holds it.
  it.effect(
    "another fiber's query waits for the pipeline's scope: a ROLLBACK of its block does not undo it",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query("create table foreign_block (v int)")
        const foreign = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            yield* p.execute("begin")
            const inside = yield* p.execute("insert into foreign_block values (10)")
            // Were it written now, it would run inside the open block and be rolled back with it.
            const foreign = yield* Effect.forkChild(pg.query("insert into foreign_block values (11)"), {
              startImmediately: true
            })
            const rollback = yield* p.execute("rollback")
            expect(yield* within(10_000)(p.sync)).toBe("I")
            expect((yield* inside).rowCount).toBe(1)
            expect((yield* rollback).command).toBe("ROLLBACK")
            // The segment was answered: a foreign statement inside it would have been answered too.
            expect(foreign.pollUnsafe()).toBeUndefined()
            return foreign
          })
        )
        const inserted = yield* within(10_000)(Fiber.join(foreign))
        expect(inserted.rowCount).toBe(1)
        expect(yield* rowsOf(pg, "select v from foreign_block")).toEqual([{ v: 11 }])
      })
  )

  it.effect("another fiber's query does not split a segment's implicit transaction", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table foreign_implicit (v int)")
      const { foreign, first, second, bad } = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const first = yield* p.execute("insert into foreign_implicit values (1)")
          // With its own Sync inside the segment it would commit the first insert.
          const foreign = yield* Effect.forkChild(pg.query("insert into foreign_implicit values (100)"), {
            startImmediately: true
          })
          const second = yield* p.execute("insert into foreign_implicit values (2)")
          const bad = yield* p.execute("select 1/0")
          expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("DivisionByZero")
          expect(foreign.pollUnsafe()).toBeUndefined()
          return { foreign, first, second, bad }
        })
      )
      expect((yield* first).rowCount).toBe(1)
      expect((yield* second).rowCount).toBe(1)
      expect((yield* errorOf(bad))._tag).toBe("DivisionByZero")
      expect((yield* within(10_000)(Fiber.join(foreign))).rowCount).toBe(1)
      // Both pipeline inserts were rolled back together; the foreign one ran after the scope.
      expect(yield* rowsOf(pg, "select v from foreign_implicit order by v")).toEqual([{ v: 100 }])
    })
  )

  it.effect("the owner fiber: a query with statements in flight is refused, between segments it runs", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table owner_q (v int)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const first = yield* p.execute("insert into owner_q values (1)")
          // Waiting for its own pipeline would never end, and running it would split the segment.
          // Called directly: Effect.timeout would run it in another fiber (the scope has the bound).
          expect(yield* Effect.flip(pg.query("insert into owner_q values (99)"))).toMatchObject({
            _tag: "StatementRejected",
            reason: "PipelineOpen"
          })
          expect(yield* within(10_000)(p.sync)).toBe("I")
          expect((yield* first).rowCount).toBe(1)
          // Between segments (nothing pending) the owner's query runs normally, in its own transaction.
          expect((yield* pg.query("insert into owner_q values (2)")).rowCount).toBe(1)
          const third = yield* p.execute("insert into owner_q values (3)")
          const bad = yield* p.execute("select 1/0")
          expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("DivisionByZero")
          expect((yield* third).rowCount).toBe(1)
          expect((yield* errorOf(bad))._tag).toBe("DivisionByZero")
        })
      ).pipe(within(20_000))
      expect(yield* rowsOf(pg, "select v from owner_q order by v")).toEqual([{ v: 1 }, { v: 2 }])
    })
  )

  it.effect(
    "a second pipeline: joins the open one in the owner fiber, waits for the scope in another fiber",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query("create table second_pipe (v text)")
        // The other fiber lives in the test's scope: the bound below runs the pipeline's scope in a
        // fiber of its own, whose children end with it.
        const testScope = yield* Effect.scope
        const other = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            const mine = yield* p.execute("insert into second_pipe values ('first')")
            // Opened again by the owner fiber, pg.pipeline joins the open pipeline, and the inner
            // scope's end syncs what is queued. Called directly: Effect.timeout would run it in
            // another fiber (the scope has the bound).
            const joined = yield* Effect.scoped(
              Effect.map(pg.pipeline, (q) => [q === p, q.queued()] as const)
            )
            expect(joined).toEqual([true, 1])
            expect((yield* mine).rowCount).toBe(1)
            const other = yield* Effect.forkIn(
              Effect.scoped(
                Effect.gen(function* () {
                  const q = yield* pg.pipeline
                  const h = yield* q.execute("select array_agg(v order by v)::text as seen from second_pipe")
                  yield* q.sync
                  return yield* h
                })
              ),
              testScope,
              { startImmediately: true }
            )
            const later = yield* p.execute("insert into second_pipe values ('second')")
            expect(yield* within(10_000)(p.sync)).toBe("I")
            expect((yield* later).rowCount).toBe(1)
            expect(other.pollUnsafe()).toBeUndefined()
            return other
          })
        ).pipe(within(20_000))
        // It ran after the first pipeline's scope: it saw both of its segments.
        expect((yield* within(10_000)(Fiber.join(other))).rows).toEqual([{ seen: "{first,second}" }])
      })
  )

  // 6. Queue-time lexing.
  it.effect("COPY behind nested block comments is refused before anything is sent", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table nested_copy (v int)")
      const { before, after, bits, status, queuedBefore, queuedAfter } = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const before = yield* p.execute("insert into nested_copy values (1)")
          const queuedBefore = p.queued()
          expect(
            yield* Effect.flip(p.execute("/* a /* b */ c */ copy nested_copy from stdin"))
          ).toMatchObject({
            _tag: "StatementRejected",
            reason: "CopyInPipeline"
          })
          // E'\'' is a complete string (an escaped quote), so the semicolon after it ends a statement.
          expect(yield* Effect.flip(p.execute("select E'\\''; select 2"))).toMatchObject({
            _tag: "StatementRejected",
            reason: "MultipleStatements"
          })
          const queuedAfter = p.queued()
          // A bit-string literal is one statement and runs.
          const bits = yield* p.execute("select x'41'::bit(8)::text as b")
          const after = yield* p.execute("insert into nested_copy values (2)")
          const status = yield* within(10_000)(p.sync)
          return { before, after, bits, status, queuedBefore, queuedAfter }
        })
      )
      expect(queuedAfter).toBe(queuedBefore)
      expect(status).toBe("I")
      expect((yield* before).rowCount).toBe(1)
      expect((yield* bits).rows).toEqual([{ b: "01000001" }])
      expect((yield* after).rowCount).toBe(1)
      expect(yield* rowsOf(pg, "select v from nested_copy order by v")).toEqual([{ v: 1 }, { v: 2 }])
      // The server agrees the E'' text is two statements (one prepared statement cannot hold both).
      expect((yield* errorOf(pg.query("select E'\\''; select 2")))._tag).toBe("SyntaxError")
    })
  )

  // 7. After the connection is lost.
  it.effect(
    "after the backend was terminated, pg.pipeline and pg.query run on a replacement connection",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        const killer = yield* connect
        yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            const sleeper = yield* p.execute("select pg_sleep(10) as terminated_sleep")
            const next = yield* p.execute("select 1 as one")
            yield* p.flush
            yield* waitUntilRunning(killer, pg.processId, "terminated_sleep")
            expect(
              yield* rowsOf(killer, "select pg_terminate_backend($1::int) as ok", [pg.processId])
            ).toEqual([{ ok: true }])
            expect(["AdminShutdown", "ConnectionLost"]).toContain((yield* errorOf(sleeper))._tag)
            expect(yield* errorOf(next)).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
          })
        ).pipe(within(10_000))
        // The pool dropped the dead connection and opens another: nothing that may have run is
        // sent again, and later work runs on a new backend.
        const viaPipeline = yield* within(5_000)(
          Effect.scoped(
            Effect.gen(function* () {
              const p = yield* pg.pipeline
              const h = yield* p.execute("select pg_backend_pid() as pid")
              yield* p.sync
              return (yield* h).rows[0]!["pid"]
            })
          )
        )
        expect(viaPipeline).not.toBe(pg.processId)
        expect(yield* within(5_000)(rowsOf(pg, "select pg_backend_pid() as pid"))).toEqual([
          { pid: viaPipeline }
        ])
      })
  )

  // 8. A deferred constraint fails the implicit COMMIT at the Sync.
  it.effect(
    "a deferred constraint failing at the scope's final sync fails every handle; nothing is kept",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query(
          "create table deferred_end (id int, constraint deferred_end_once unique (id) deferrable initially deferred)"
        )
        const [a, b] = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            return [
              yield* p.execute("insert into deferred_end values (1)"),
              yield* p.execute("insert into deferred_end values (1)")
            ] as const
          })
        ).pipe(within(10_000))
        expect(yield* errorOf(a)).toMatchObject({ _tag: "UniqueViolation", constraint: "deferred_end_once" })
        expect(yield* errorOf(b)).toMatchObject({ _tag: "UniqueViolation", constraint: "deferred_end_once" })
        expect(yield* rowsOf(pg, "select count(*)::int as n from deferred_end")).toEqual([{ n: 0 }])
      })
  )

  it.effect("a deferred constraint failing at an explicit sync fails the sync and every handle", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query(
        "create table deferred_sync (id int, constraint deferred_sync_once unique (id) deferrable initially deferred)"
      )
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const a = yield* p.execute("insert into deferred_sync values (1)")
          const b = yield* p.execute("insert into deferred_sync values (1)")
          expect(yield* Effect.flip(within(10_000)(p.sync))).toMatchObject({
            _tag: "UniqueViolation",
            constraint: "deferred_sync_once"
          })
          expect(yield* errorOf(a)).toMatchObject({
            _tag: "UniqueViolation",
            constraint: "deferred_sync_once"
          })
          expect(yield* errorOf(b)).toMatchObject({
            _tag: "UniqueViolation",
            constraint: "deferred_sync_once"
          })
        })
      )
      expect(yield* rowsOf(pg, "select count(*)::int as n from deferred_sync")).toEqual([{ n: 0 }])
    })
  )

  // A statement queued after the server already reported the segment's error.
  it.effect("a statement queued after the segment's error arrived is aborted; the next segment works", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const bad = yield* p.execute("select 1/0 as z")
          yield* p.flush
          expect((yield* errorOf(bad))._tag).toBe("DivisionByZero")
          // Queued the moment the error is handed to its reader (while the driver still handles it)...
          const during = yield* p.execute("select 3 as three")
          // ...and once the driver is done with it: the server skips both until the Sync and sends
          // nothing for them.
          yield* Effect.yieldNow
          const late = yield* p.execute("select 4 as four")
          // The failure was read by its handle, so the sync succeeds (the transaction rolled back).
          expect(yield* within(10_000)(p.sync)).toBe("I")
          for (const skipped of [during, late]) {
            expect(yield* errorOf(skipped)).toMatchObject({
              _tag: "PipelineAborted",
              index: 0,
              failedTag: "DivisionByZero",
              failedCode: "22012"
            })
          }
          // The texts skipped above are prepared afresh in the next segment.
          const next = [yield* p.execute("select 3 as three"), yield* p.execute("select 4 as four")]
          expect(yield* within(10_000)(p.sync)).toBe("I")
          expect((yield* next[0]!).rows).toEqual([{ three: 3 }])
          expect((yield* next[1]!).rows).toEqual([{ four: 4 }])
        })
      )
    })
  )

  it.effect("a pipeline failing or interrupted before its last sync commits nothing of that segment", () =>
    Effect.gen(function* () {
      const pg = yield* connectWith({ max: 2 })
      yield* pg.query("create table unsynced (tag text, n int)")
      const count = (tag: string) =>
        Effect.map(
          rowsOf(pg, "select count(*)::int as n from unsynced where tag = $1", [tag]),
          (rows) => (rows[0] as { n: number }).n
        )
      // Each body queues inserts the server runs at once (a Flush makes sure of it) and then fails;
      // the Sync the scope's end sends would commit them.
      const ran = (p: Pipeline, tag: string) =>
        Effect.gen(function* () {
          const a = yield* p.execute("insert into unsynced values ($1, 1)", [tag])
          yield* p.execute("insert into unsynced values ($1, 2)", [tag])
          yield* p.flush
          yield* a
        })
      const failing = (p: Pipeline, tag: string) =>
        Effect.andThen(ran(p, tag), Effect.fail("application error" as const))
      // A scoped pipeline, withPipeline, an interruption, and a failure after a synced segment.
      expect(yield* errorOf(Effect.scoped(Effect.flatMap(pg.pipeline, (p) => failing(p, "scoped"))))).toBe(
        "application error"
      )
      expect(yield* errorOf(pg.withPipeline((p) => failing(p, "with")))).toBe("application error")
      const interrupted = yield* Effect.exit(
        pg.withPipeline((p) => Effect.andThen(ran(p, "interrupted"), Effect.never)).pipe(Effect.timeout(300))
      )
      expect(Exit.isFailure(interrupted)).toBe(true)
      yield* Effect.exit(
        pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.execute("insert into unsynced values ('synced', 1)")
            yield* p.sync
            return yield* failing(p, "after-sync")
          })
        )
      )
      // executeMany refusing its third row: the two before it go with the failed body.
      const refused = yield* errorOf(
        pg.withPipeline((p) =>
          p.executeMany("insert into unsynced values ($1, $2)", [
            ["many", 1],
            ["many", 2],
            ["many", new Date(Number.NaN)]
          ])
        )
      )
      expect(refused._tag).toBe("ParameterError")
      for (const tag of ["scoped", "with", "interrupted", "after-sync", "many"])
        expect(yield* count(tag), tag).toBe(0)
      // The segment synced before the failure stands.
      expect(yield* count("synced")).toBe(1)
      // On a reserved connection outside a block, the same; inside a block the caller began, the
      // statements are the block's: its owner commits them (or not).
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* Effect.exit(conn.withPipeline((p) => failing(p, "reserved")))
          yield* conn.query("begin")
          yield* Effect.exit(conn.withPipeline((p) => failing(p, "in-block")))
          yield* conn.query("commit")
        })
      )
      expect(yield* count("reserved")).toBe(0)
      expect(yield* count("in-block")).toBe(2)
      // Nothing is left behind: the next statements on the pool run normally.
      expect(yield* rowsOf(pg, "select 1 as one")).toEqual([{ one: 1 }])
    })
  )

  it.effect(
    "the rolled-back segment's handles and syncs say so; joined pipelines and syncs in flight are covered",
    () =>
      Effect.gen(function* () {
        const pg = yield* connectWith({ max: 2 })
        yield* pg.query("create table unsynced2 (tag text)")
        const count = (tag: string) =>
          Effect.map(
            rowsOf(pg, "select count(*)::int as n from unsynced2 where tag = $1", [tag]),
            (rows) => (rows[0] as { n: number }).n
          )
        const insertRan = (p: Pipeline, tag: string) =>
          Effect.gen(function* () {
            const h = yield* p.execute("insert into unsynced2 values ($1)", [tag])
            yield* p.flush
            yield* h
            return h
          })
        // A handle read after the scope ended: its insert answered, then the segment was rolled back.
        let handle: Effect.Effect<unknown, unknown> = Effect.void
        yield* Effect.exit(
          pg.withPipeline((p) =>
            Effect.gen(function* () {
              handle = yield* insertRan(p, "handle")
              return yield* Effect.fail("application error")
            })
          )
        )
        const rolledBack = yield* Effect.flip(handle)
        expect(rolledBack).toMatchObject({ _tag: "StatementRejected", reason: "TransactionRolledBack" })
        // A pipeline opened inside another's body joins it: its statements are the outer's. Its body
        // failing ends the outer body too (nothing commits) unless the outer catches it, which then
        // decides: here it syncs, and everything it queued commits, as in a transaction that caught.
        yield* Effect.exit(
          pg.withPipeline((p) =>
            Effect.andThen(
              p.execute("insert into unsynced2 values ('outer')"),
              pg.withPipeline((inner) =>
                Effect.andThen(insertRan(inner, "joined"), Effect.fail("inner error"))
              )
            )
          )
        )
        const caught = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            yield* p.execute("insert into unsynced2 values ('caught-outer')")
            yield* Effect.exit(
              Effect.scoped(
                Effect.flatMap(pg.pipeline, (inner) =>
                  Effect.andThen(insertRan(inner, "caught-inner"), Effect.fail("inner error"))
                )
              )
            )
            return yield* p.sync
          })
        )
        expect(caught).toBe("I")
        // Inside pipelineTransaction the same: the body's own error is what the caller gets.
        const txError = yield* errorOf(
          pg.pipelineTransaction(() =>
            pg.withPipeline((inner) =>
              Effect.andThen(insertRan(inner, "in-tx"), Effect.fail("body error" as const))
            )
          )
        )
        expect(txError).toBe("body error")
        // On reserve, a segment queued while an earlier Sync is still answered: the end waits for that
        // answer (idle) and rolls the segment back; a block the segment began is rolled back too.
        const status = yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* Effect.exit(
              conn.withPipeline((p) =>
                Effect.gen(function* () {
                  yield* p.execute("select pg_sleep(0.3)")
                  yield* p.sendSync
                  yield* p.execute("insert into unsynced2 values ('after-sync')")
                  return yield* Effect.fail("application error")
                })
              )
            )
            yield* Effect.exit(
              conn.withPipeline((p) =>
                Effect.andThen(
                  Effect.andThen(p.execute("begin"), insertRan(p, "in-own-block")),
                  Effect.fail("application error")
                )
              )
            )
            return (yield* conn.query<{ s: string }>("select 'idle' as s")).rows[0]!.s
          })
        )
        expect(status).toBe("idle")
        for (const tag of ["handle", "outer", "joined", "in-tx", "after-sync", "in-own-block"])
          expect(yield* count(tag), tag).toBe(0)
        expect([yield* count("caught-outer"), yield* count("caught-inner")]).toEqual([1, 1])
        // On reserve, a block another fiber began, its BEGIN still unanswered when the pipeline took
        // the connection: the pipeline's statements are in that block, which is its owner's.
        yield* Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* pg.reserve
            yield* Effect.all(
              [
                conn.query("begin"),
                Effect.exit(
                  conn.withPipeline((p) =>
                    Effect.andThen(insertRan(p, "in-user-block"), Effect.fail("application error"))
                  )
                )
              ],
              { concurrency: "unbounded" }
            )
            yield* conn.query("insert into unsynced2 values ('in-user-block')")
            yield* conn.query("commit")
          })
        )
        expect(yield* count("in-user-block")).toBe(2)
      })
  )

  it.effect("an interrupted pipeline does not log the cancel it sent as an error nobody read", () =>
    Effect.gen(function* () {
      const pg = yield* connectWith({ max: 2 })
      const logged: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logged.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      const exit = yield* Effect.exit(
        pg
          .withPipeline((p) =>
            Effect.andThen(p.execute("select pg_sleep(5)"), Effect.andThen(p.flush, Effect.never))
          )
          .pipe(Effect.timeout("300 millis"), Effect.provide(Logger.layer([capture])))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(logged.filter((m) => m.includes("nobody read"))).toEqual([])
      expect(yield* rowsOf(pg, "select 1 as one")).toEqual([{ one: 1 }])
    })
  )
})
