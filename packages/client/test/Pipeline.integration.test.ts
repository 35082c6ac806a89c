/**
 * Pipelines against a real server (one PgServer for the file; every test opens its own client so
 * no test sees another's connection state). The expectations are the server's documented
 * behaviour (libpq "Pipeline Mode", protocol "Extended Query" and "Pipelining"):
 *
 * - the statements between two Syncs form one implicit transaction, committed at the Sync when
 *   all of them succeeded and rolled back when one failed;
 * - after an ErrorResponse the server discards every message up to the next Sync and sends nothing
 *   for the discarded statements (the driver reports them as PipelineAborted);
 * - exactly one ReadyForQuery answers each Sync;
 * - results are only sent at a Sync, a Flush or when the server's output buffer fills;
 * - BEGIN makes the segment part of an explicit block that outlives its Sync; in a failed block
 *   every command but ROLLBACK/COMMIT fails with 25P02, and COMMIT of a failed block answers with
 *   the tag ROLLBACK.
 *
 * Timeouts here are liveness bounds (a hang fails the test), never speed assertions. Needs any
 * supported server version (14+).
 */
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from "node:net"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { PgServer } from "@pgline/testing"
import type { PgClientApi } from "@pgline/client"
import {
  backendState,
  connect,
  connectTo,
  errorOf,
  rowsOf,
  waitUntilRunning,
  within
} from "./support/pipeline.ts"

/**
 * A TCP relay to the server whose `cut` drops both sides at once, the way a network failure does:
 * the client's socket closes with no message from the server (unlike pg_terminate_backend, which
 * sends FATAL 57P01 first). Returns the URL to connect through it.
 */
const relay = Effect.gen(function* () {
  const info = yield* PgServer
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = tcpConnect(info.port, info.host)
    for (const [from, to] of [
      [client, upstream],
      [upstream, client]
    ] as const) {
      sockets.add(from)
      from.on("error", () => {})
      from.on("close", () => to.destroy())
      from.pipe(to)
    }
  })
  const cut = () => {
    for (const socket of sockets) socket.destroy()
  }
  const port = yield* Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () =>
      Effect.callback<void>((resume) => {
        cut()
        server.close(() => resume(Effect.void))
      })
  )
  const url = new URL(info.url)
  url.hostname = "127.0.0.1"
  url.port = String(port)
  return { url: url.toString(), cut }
})

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("Pipeline", (it) => {
  // 1. The psycopg documentation's error example.
  it.effect("psycopg example: a failed segment rolls back, the next statement runs on its own", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table psy (id serial primary key, value text)")
      const insert = "insert into psy (value) values ($1)"
      const { one, bad, three, syncExit, four } = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const one = yield* p.execute(insert, ["one"])
          const bad = yield* p.execute("insert into no_such_table (value) values ($1)", ["two"])
          const three = yield* p.execute(insert, ["three"])
          // Nobody read `bad` before this sync: the sync reports the segment's failure.
          const syncExit = yield* Effect.exit(within(10_000)(p.sync))
          const four = yield* p.execute(insert, ["four"])
          return { one, bad, three, syncExit, four }
        })
      )
      expect(Exit.isFailure(syncExit)).toBe(true)
      if (Exit.isFailure(syncExit)) {
        const error = yield* Effect.flip(syncExit)
        expect(error._tag).toBe("UndefinedTable")
      }
      // "one" ran (the server answered CommandComplete) and was then rolled back at the Sync.
      expect((yield* one).rowCount).toBe(1)
      const caught = yield* bad.pipe(
        Effect.map(() => "succeeded"),
        Effect.catchTag("UndefinedTable", (e) => Effect.succeed(`caught ${e.code}`))
      )
      expect(caught).toBe("caught 42P01")
      const skipped = yield* errorOf(three)
      expect(skipped).toMatchObject({
        _tag: "PipelineAborted",
        index: 1,
        failedTag: "UndefinedTable",
        failedCode: "42P01"
      })
      // "four" was synced by the scope's end.
      expect((yield* four).command).toBe("INSERT")
      // "one" consumed sequence value 1 (sequences are not transactional) and was rolled back.
      expect(yield* rowsOf(pg, "select id, value from psy order by id")).toEqual([{ id: 2, value: "four" }])
    })
  )

  it.effect("psycopg example: the sync succeeds when the failing handle was read first", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table psy_read (id serial primary key, value text)")
      const insert = "insert into psy_read (value) values ($1)"
      const status = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          yield* p.execute(insert, ["one"])
          const bad = yield* p.execute("insert into no_such_table (value) values ($1)", ["two"])
          const three = yield* p.execute(insert, ["three"])
          // Reading the failing handle before the sync hands its error to the reader...
          const error = yield* errorOf(bad)
          expect(error).toMatchObject({ _tag: "UndefinedTable", code: "42P01" })
          // ...the rest of the segment was skipped by the server...
          expect(yield* errorOf(three)).toMatchObject({ _tag: "PipelineAborted", index: 1 })
          // ...and the sync, whose error was consumed, succeeds (status idle: rolled back).
          const status = yield* within(10_000)(p.sync)
          yield* p.execute(insert, ["four"])
          return status
        })
      )
      expect(status).toBe("I")
      expect(yield* rowsOf(pg, "select id, value from psy_read order by id")).toEqual([
        { id: 2, value: "four" }
      ])
    })
  )

  // 2. Several syncs.
  it.effect("three syncs in flight: three independent segments, every handle settled", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table segs (v text)")
      const insert = "insert into segs (v) values ($1)"
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          // Segment 1 fails in its middle.
          const a = yield* p.execute(insert, ["a"])
          const zero = yield* p.execute("select 1/0 as z")
          const b = yield* p.execute(insert, ["b"])
          // The syncs are queued at once (not awaited), so all three segments are in flight together.
          const s1 = yield* Effect.forkChild(p.sync, { startImmediately: true })
          // Segment 2 sees none of segment 1 (rolled back) and is not affected by its error.
          const c = yield* p.execute(insert, ["c"])
          const count = yield* p.execute("select count(*)::int as n from segs")
          const s2 = yield* Effect.forkChild(p.sync, { startImmediately: true })
          const d = yield* p.execute(insert, ["d"])
          const s3 = yield* Effect.forkChild(p.sync, { startImmediately: true })
          expect(p.queued()).toBe(6)

          const [e1, e2, e3] = yield* within(10_000)(Fiber.awaitAll([s1, s2, s3]))
          expect(e1 !== undefined && Exit.isFailure(e1)).toBe(true)
          if (e1 !== undefined && Exit.isFailure(e1)) {
            expect((yield* Effect.flip(e1))._tag).toBe("DivisionByZero")
          }
          expect(e2).toEqual(Exit.succeed("I"))
          expect(e3).toEqual(Exit.succeed("I"))

          expect((yield* a).rowCount).toBe(1)
          expect((yield* errorOf(zero))._tag).toBe("DivisionByZero")
          expect(yield* errorOf(b)).toMatchObject({
            _tag: "PipelineAborted",
            index: 1,
            failedTag: "DivisionByZero",
            failedCode: "22012"
          })
          expect((yield* c).rowCount).toBe(1)
          expect((yield* count).rows).toEqual([{ n: 1 }])
          expect((yield* d).rowCount).toBe(1)
        })
      )
      expect(yield* rowsOf(pg, "select v from segs order by v")).toEqual([{ v: "c" }, { v: "d" }])
    })
  )

  it.effect("an error in one segment leaves the next segment's statements untouched", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const bad = yield* p.execute("select * from no_such_table_2")
          const skipped = yield* p.execute("select 1 as one")
          expect((yield* Effect.flip(within(10_000)(p.sync)))._tag).toBe("UndefinedTable")
          const after = yield* p.execute("select 2 as two")
          expect(yield* within(10_000)(p.sync)).toBe("I")
          expect((yield* errorOf(bad))._tag).toBe("UndefinedTable")
          expect((yield* errorOf(skipped))._tag).toBe("PipelineAborted")
          expect((yield* after).rows).toEqual([{ two: 2 }])
        })
      )
    })
  )

  // 3. Flush without sync, and reading with neither queued.
  it.effect("flush: a handle is readable before any sync (same implicit transaction after it)", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const first = yield* p.execute("select txid_current()::text as xid")
          yield* p.flush
          const r1 = yield* within(5_000)(first)
          // No Sync was sent: the next statement is still in the same transaction.
          const second = yield* p.execute("select txid_current()::text as xid")
          yield* p.flush
          const r2 = yield* within(5_000)(second)
          expect(r2.rows[0]!["xid"]).toBe(r1.rows[0]!["xid"])
          expect(yield* within(5_000)(p.sync)).toBe("I")
        })
      )
    })
  )

  it.effect("reading a handle with no flush or sync queued after it does not hang", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const a = yield* p.execute("select txid_current()::text as xid")
          expect((yield* within(5_000)(a)).rows).toHaveLength(1)
          // A second statement after the automatic flush needs its own.
          const b = yield* p.execute("select txid_current()::text as xid")
          const c = yield* p.execute("select 3 as three")
          expect((yield* within(5_000)(c)).rows).toEqual([{ three: 3 }])
          expect((yield* within(5_000)(b)).rows[0]).toEqual((yield* a).rows[0])
        })
      )
    })
  )

  // 4. Dependent statements.
  it.effect("a statement built from an earlier handle's result, in one explicit transaction", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const observer = yield* connect
      yield* pg.query("create table parents (id serial primary key, name text not null)")
      yield* pg.query(
        "create table children (id serial primary key, parent_id int not null references parents, name text)"
      )
      const { begin, child, commit, status } = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const begin = yield* p.execute("begin")
          const parent = yield* p.execute<{ id: number }>(
            "insert into parents (name) values ($1) returning id",
            ["p1"]
          )
          // Read mid-pipeline: no sync is queued, the pipeline flushes by itself.
          const parentId = (yield* within(5_000)(parent)).rows[0]!.id
          // Not committed yet: another session cannot see it.
          expect(yield* rowsOf(observer, "select count(*)::int as n from parents")).toEqual([{ n: 0 }])
          // A Statement from the sql template is queued like a text.
          const child = yield* p.execute(
            pg.sql`insert into children (parent_id, name) values (${parentId}, ${"c1"}) returning *`
          )
          const commit = yield* p.execute("commit")
          const status = yield* within(5_000)(p.sync)
          return { begin, child, commit, status }
        })
      )
      expect((yield* begin).command).toBe("BEGIN")
      expect((yield* child).rows).toMatchObject([{ name: "c1" }])
      expect((yield* commit).command).toBe("COMMIT")
      expect(status).toBe("I")
      expect(
        yield* rowsOf(
          observer,
          "select p.name as parent, c.name as child from children c join parents p on p.id = c.parent_id"
        )
      ).toEqual([{ parent: "p1", child: "c1" }])
    })
  )

  // 5. Transaction states across syncs.
  it.effect("a failed explicit block: 25P02 in later segments, COMMIT answers ROLLBACK", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table blk (id int primary key)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          // Segment 1: BEGIN leaves the block open across the Sync.
          yield* p.execute("begin")
          yield* p.execute("insert into blk (id) values (1)")
          expect(yield* within(5_000)(p.sync)).toBe("T")
          // Segment 2: a failure inside the block; read it so the sync reports the status.
          const dup = yield* p.execute("insert into blk (id) values (1)")
          expect((yield* errorOf(dup))._tag).toBe("UniqueViolation")
          expect(yield* within(5_000)(p.sync)).toBe("E")
          // Segment 3 and 4: every command is refused until the block ends.
          const refused = yield* p.execute("select 1 as one")
          const skipped = yield* p.execute("insert into blk (id) values (2)")
          const refusedSync = yield* Effect.flip(within(5_000)(p.sync))
          expect(refusedSync._tag).toBe("InFailedSqlTransaction")
          const refusedAgain = yield* p.execute("insert into blk (id) values (3)")
          yield* Effect.exit(within(5_000)(p.sync))
          expect(yield* errorOf(refused)).toMatchObject({ _tag: "InFailedSqlTransaction", code: "25P02" })
          // Within segment 3 the server skipped what followed the refused statement.
          expect(yield* errorOf(skipped)).toMatchObject({
            _tag: "PipelineAborted",
            index: 0,
            failedTag: "InFailedSqlTransaction",
            failedCode: "25P02"
          })
          expect((yield* errorOf(refusedAgain))._tag).toBe("InFailedSqlTransaction")
          // Segment 5: COMMIT ends the failed block as a rollback, and says so.
          const commit = yield* p.execute("commit")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          const result = yield* commit
          expect(result.command).toBe("ROLLBACK")
          expect(result.tag).toBe("ROLLBACK")
        })
      )
      expect(yield* rowsOf(pg, "select count(*)::int as n from blk")).toEqual([{ n: 0 }])
    })
  )

  it.effect("BEGIN and a failure in the same segment: the block stays failed until ROLLBACK", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table blk2 (id int primary key)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          yield* p.execute("begin")
          yield* p.execute("insert into blk2 (id) values (1)")
          const bad = yield* p.execute("insert into blk2 (id) values ('not a number')")
          const commit = yield* p.execute("commit")
          expect((yield* Effect.flip(within(5_000)(p.sync)))._tag).toBe("InvalidTextRepresentation")
          expect((yield* errorOf(bad))._tag).toBe("InvalidTextRepresentation")
          // The COMMIT was skipped with the rest of the segment: the block is still open, failed.
          expect(yield* errorOf(commit)).toMatchObject({ _tag: "PipelineAborted", index: 2 })
          const refused = yield* p.execute("select 1")
          yield* Effect.exit(within(5_000)(p.sync))
          expect((yield* errorOf(refused))._tag).toBe("InFailedSqlTransaction")
          const rollback = yield* p.execute("rollback")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* rollback).command).toBe("ROLLBACK")
          const works = yield* p.execute("select count(*)::int as n from blk2")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* works).rows).toEqual([{ n: 0 }])
        })
      )
    })
  )

  it.effect("an implicit transaction is rolled back as a whole when one statement fails", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table implicit_tx (id int primary key)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const first = yield* p.execute("insert into implicit_tx values (1)")
          const second = yield* p.execute("insert into implicit_tx values (2)")
          const bad = yield* p.execute("insert into implicit_tx values (1)")
          expect((yield* Effect.flip(within(5_000)(p.sync)))._tag).toBe("UniqueViolation")
          expect((yield* first).rowCount).toBe(1)
          expect((yield* second).rowCount).toBe(1)
          const error = yield* errorOf(bad)
          expect(error._tag).toBe("UniqueViolation")
          if (error._tag === "UniqueViolation") expect(error.constraint).toBe("implicit_tx_pkey")
        })
      )
      expect(yield* rowsOf(pg, "select count(*)::int as n from implicit_tx")).toEqual([{ n: 0 }])
    })
  )

  it.effect("SAVEPOINT and ROLLBACK TO SAVEPOINT across segments behave as on the server", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table sp (id int primary key)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          yield* p.execute("begin")
          yield* p.execute("insert into sp values (1)")
          const savepoint = yield* p.execute("savepoint s1")
          const dup = yield* p.execute("insert into sp values (1)")
          expect((yield* errorOf(dup))._tag).toBe("UniqueViolation")
          expect(yield* within(5_000)(p.sync)).toBe("E")
          expect((yield* savepoint).command).toBe("SAVEPOINT")
          // The failure is undone back to the savepoint; the block is usable again.
          const back = yield* p.execute("rollback to savepoint s1")
          yield* p.execute("insert into sp values (2)")
          const release = yield* p.execute("release savepoint s1")
          yield* p.execute("savepoint s2")
          yield* p.execute("insert into sp values (3)")
          yield* p.execute("rollback to s2")
          const commit = yield* p.execute("commit")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* back).command).toBe("ROLLBACK")
          expect((yield* release).command).toBe("RELEASE")
          expect((yield* commit).command).toBe("COMMIT")
        })
      )
      expect(yield* rowsOf(pg, "select id from sp order by id")).toEqual([{ id: 1 }, { id: 2 }])
    })
  )

  it.effect("a deferred constraint fails at the segment's implicit commit: the sync reports it", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query(
        "create table deferred (id int, constraint deferred_once unique (id) deferrable initially deferred)"
      )
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          // Both inserts succeed when they run; the check happens at the Sync's implicit COMMIT.
          yield* p.execute("insert into deferred values (1)")
          yield* p.execute("insert into deferred values (1)")
          const error = yield* Effect.flip(within(5_000)(p.sync))
          expect(error).toMatchObject({ _tag: "UniqueViolation", constraint: "deferred_once" })
          // The segment after it is a new transaction.
          const next = yield* p.execute("insert into deferred values (2)")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* next).rowCount).toBe(1)
        })
      )
      expect(yield* rowsOf(pg, "select id from deferred")).toEqual([{ id: 2 }])
    })
  )

  // 6. A failure in the middle of a long segment.
  it.effect("a unique violation at statement 500 of 1,000: before rolled back, after aborted", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table long_seg (id int primary key)")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const handles = []
          for (let i = 0; i < 1000; i++) {
            handles.push(yield* p.execute("insert into long_seg (id) values ($1)", [i === 500 ? 0 : i]))
          }
          const syncError = yield* Effect.flip(within(20_000)(p.sync))
          expect(syncError._tag).toBe("UniqueViolation")
          // The server ran statements 0-499 and answered CommandComplete for each, so their handles
          // succeed; the error then aborted the implicit transaction and the Sync rolled it back.
          for (let i = 0; i < 500; i++) expect((yield* handles[i]!).rowCount).toBe(1)
          const culprit = yield* Effect.flip(handles[500]!)
          expect(culprit._tag).toBe("UniqueViolation")
          // The server discarded 501-999 unseen.
          for (let i = 501; i < 1000; i++) {
            expect(yield* Effect.flip(handles[i]!)).toMatchObject({
              _tag: "PipelineAborted",
              index: 500,
              failedTag: "UniqueViolation",
              failedCode: "23505"
            })
          }
          expect(yield* rowsOf(pg, "select count(*)::int as n from long_seg")).toEqual([{ n: 0 }])
          // The next segment is a fresh implicit transaction.
          const next = yield* p.execute("insert into long_seg (id) values ($1)", [7])
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* next).rowCount).toBe(1)
        })
      )
      expect(yield* rowsOf(pg, "select id from long_seg")).toEqual([{ id: 7 }])
    })
  )

  // 7. Very large pipelines.
  const manyStatements = (pg: PgClientApi, options: { readonly maxPendingBytes?: number }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const p = yield* pg.pipelineWith(options)
        const total = 100_000
        const handles = new Array<
          Effect.Effect<{ readonly rows: ReadonlyArray<Record<string, unknown>> }, unknown>
        >(total)
        const syncs = []
        for (let i = 0; i < total; i++) {
          handles[i] = yield* p.execute("select $1::int as n", [i])
          if (i % 25_000 === 24_999) syncs.push(yield* Effect.forkChild(p.sync, { startImmediately: true }))
        }
        expect(p.queued()).toBe(total)
        const exits = yield* Fiber.awaitAll(syncs)
        expect(exits).toEqual([Exit.succeed("I"), Exit.succeed("I"), Exit.succeed("I"), Exit.succeed("I")])
        let sum = 0
        for (let i = 0; i < total; i++) sum += (yield* handles[i]!).rows[0]!["n"] as number
        expect(sum).toBe((total * (total - 1)) / 2)
      })
    ).pipe(within(40_000))

  it.effect(
    "100,000 statements with four syncs complete",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* manyStatements(pg, {})
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      }),
    60_000
  )

  it.effect(
    "100,000 statements under a 64 KiB unsent-bytes window complete",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* manyStatements(pg, { maxPendingBytes: 64 * 1024 })
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
      }),
    60_000
  )

  it.effect(
    "executeMany of 50,000 rows reports rowCount 50,000",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query("create table many_rows (id int primary key, label text not null)")
        const result = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            const rows = Array.from({ length: 50_000 }, (_, i) => [i, `row ${i}`])
            const handle = yield* p.executeMany("insert into many_rows (id, label) values ($1, $2)", rows)
            expect(yield* within(30_000)(p.sync)).toBe("I")
            return yield* handle
          })
        )
        expect(result).toEqual({ rowCount: 50_000, statements: 50_000 })
        expect(
          yield* rowsOf(pg, "select count(*)::int as n, sum(id)::int8::text as s from many_rows")
        ).toEqual([{ n: 50_000, s: String((50_000 * 49_999) / 2) }])
      }),
    60_000
  )

  // 8. Refusals at queue time.
  it.effect("COPY, several statements and FETCH/MOVE are refused before anything is sent", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table refusals (v text)")
      yield* pg.query("insert into refusals values ('seed')")
      const refusals: ReadonlyArray<readonly [string, string]> = [
        ["copy refusals from stdin", "CopyInPipeline"],
        ["COPY refusals TO STDOUT", "CopyInPipeline"],
        ["copy (select 1) to stdout with (format csv)", "CopyInPipeline"],
        ["  -- load it\n  /* quickly */ Copy refusals from stdin", "CopyInPipeline"],
        ["select 1; select 2", "MultipleStatements"],
        ["insert into refusals values ('x'); delete from refusals", "MultipleStatements"],
        ["fetch next from some_cursor", "PortalInPipeline"],
        ["FETCH ALL IN some_cursor", "PortalInPipeline"],
        ["move forward 2 in some_cursor", "PortalInPipeline"]
      ]
      const { first, last, status, queuedBefore, queuedAfter } = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const first = yield* p.execute("insert into refusals values ($1)", ["before"])
          const queuedBefore = p.queued()
          for (const [text, reason] of refusals) {
            const error = yield* Effect.flip(p.execute(text))
            expect(error).toMatchObject({ _tag: "StatementRejected", reason })
          }
          const queuedAfter = p.queued()
          // Nothing was sent: the segment is not aborted and the next statement runs in it.
          const last = yield* p.execute("insert into refusals values ($1)", ["after"])
          const status = yield* within(5_000)(p.sync)
          return { first, last, status, queuedBefore, queuedAfter }
        })
      )
      expect(queuedAfter).toBe(queuedBefore)
      expect(status).toBe("I")
      expect((yield* first).rowCount).toBe(1)
      expect((yield* last).rowCount).toBe(1)
      expect(yield* rowsOf(pg, "select v from refusals order by v")).toEqual([
        { v: "after" },
        { v: "before" },
        { v: "seed" }
      ])
    })
  )

  it.effect("semicolons inside strings, dollar quotes, comments and identifiers are one statement", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const handles = [
            yield* p.execute("select 'a;b' as v"),
            yield* p.execute("select 'it''s; fine' as v"),
            yield* p.execute("select E'back\\'slash;' as v"),
            yield* p.execute("select $$dollar; quoted$$ as v"),
            yield* p.execute("select $tag$ $$; $tag$ as v"),
            yield* p.execute("select $función$ a; b $función$ as v"),
            yield* p.execute("select 'comment' /* ; /* nested; */ ; */ as v -- trailing; comment"),
            yield* p.execute('select 1 as "semi;colon"'),
            yield* p.execute("select 'trailing' as v;"),
            yield* p.execute("select $1::text as v", ["param; value"]),
            yield* p.execute(
              "create function semi_atomic() returns text language sql begin atomic select 'x;y'; end"
            ),
            yield* p.execute("select semi_atomic() as v")
          ]
          expect(yield* within(5_000)(p.sync)).toBe("I")
          const rows = []
          for (const h of handles) rows.push((yield* h).rows[0])
          expect(rows).toEqual([
            { v: "a;b" },
            { v: "it's; fine" },
            { v: "back'slash;" },
            { v: "dollar; quoted" },
            { v: " $$; " },
            { v: " a; b " },
            { v: "comment" },
            { "semi;colon": 1 },
            { v: "trailing" },
            { v: "param; value" },
            undefined,
            { v: "x;y" }
          ])
        })
      )
    })
  )

  it.effect("a rule whose action list holds semicolons is one pipelined statement", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table rule_src (v int)")
      yield* pg.query("create table rule_a (v int)")
      yield* pg.query("create table rule_b (v int)")
      const counts = yield* pg.withPipeline((p) =>
        Effect.gen(function* () {
          yield* p.execute(
            "create rule rule_both as on insert to rule_src do also (insert into rule_a values (new.v); insert into rule_b values (new.v))"
          )
          yield* p.execute("insert into rule_src values (7)")
          const counted = yield* p.execute(
            "select (select count(*) from rule_a)::int as a, (select count(*) from rule_b)::int as b"
          )
          yield* p.sync
          return (yield* counted).rows
        })
      )
      expect(counts).toEqual([{ a: 1, b: 1 }])
    })
  )

  // 9. Scope semantics.
  it.effect("closing the scope without a sync syncs and drains; handles stay readable", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table scope_end (v text)")
      const { insert, select, pipeline } = yield* Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* pg.pipeline
          const insert = yield* pipeline.execute("insert into scope_end values ($1)", ["kept"])
          const select = yield* pipeline.execute("select count(*)::int as n from scope_end")
          return { insert, select, pipeline }
        })
      )
      // The scope's end sent the Sync: the implicit transaction committed.
      expect((yield* within(5_000)(insert)).rowCount).toBe(1)
      expect((yield* within(5_000)(select)).rows).toEqual([{ n: 1 }])
      expect(yield* rowsOf(pg, "select v from scope_end")).toEqual([{ v: "kept" }])
      // A closed pipeline refuses new statements instead of sending them.
      expect(yield* Effect.flip(pipeline.execute("select 1"))).toMatchObject({
        _tag: "StatementRejected",
        reason: "PipelineClosed"
      })
    })
  )

  it.effect(
    "withPipeline: the block's own scope closes before the pipeline ends (its finalizer can still queue)",
    () =>
      Effect.gen(function* () {
        const pg = yield* connect
        yield* pg.query("create table block_scope (v text)")
        const value = yield* pg.withPipeline((p) =>
          Effect.gen(function* () {
            // Runs when the block's scope closes: after withPipeline's sync, before the pipeline's
            // own end, whose final sync sends what the finalizer queued.
            yield* Effect.addFinalizer(() =>
              Effect.orDie(Effect.asVoid(p.execute("insert into block_scope values ($1)", ["at close"])))
            )
            yield* p.execute("insert into block_scope values ($1)", ["in block"])
            return "done"
          })
        )
        expect(value).toBe("done")
        expect(yield* rowsOf(pg, "select v from block_scope order by v")).toEqual([
          { v: "at close" },
          { v: "in block" }
        ])
        // Both ends released the connection: a plain statement runs on it.
        expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      })
  )

  it.effect("an interrupted pipeline returns promptly and leaves the connection clean", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const observer = yield* connect
      let sleeper: Effect.Effect<unknown, unknown> | undefined
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const p = yield* pg.pipeline
            const h = yield* p.execute("select pg_sleep(10) as interrupted_sleep")
            sleeper = h
            yield* p.execute("select 1")
            return yield* h
          })
        ),
        { startImmediately: true }
      )
      yield* waitUntilRunning(observer, pg.processId, "interrupted_sleep")
      yield* within(5_000)(Fiber.interrupt(fiber))
      // The sleeping statement was cancelled, not waited for.
      expect((yield* errorOf(sleeper!) as Effect.Effect<{ _tag: string }>)._tag).toBe("QueryCanceled")
      expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      expect(yield* backendState(observer, pg.processId)).toBe("idle")
    })
  )

  it.effect("Effect.timeout around a pipeline returns promptly and leaves the connection clean", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const observer = yield* connect
      const outcome = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const h = yield* p.execute("select pg_sleep(10) as timed_sleep")
          return yield* h
        })
      ).pipe(Effect.timeout(1_000), Effect.exit, within(6_000))
      expect(Exit.isFailure(outcome)).toBe(true)
      expect((yield* within(5_000)(pg.query("select 1 as one"))).rows).toEqual([{ one: 1 }])
      expect(yield* backendState(observer, pg.processId)).toBe("idle")
    })
  )

  it.effect("a pipeline opened after a failed one works", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const failed = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          yield* p.execute("begin")
          const bad = yield* p.execute("select * from no_such_table_3")
          yield* p.execute("select 1")
          return yield* bad
        })
      ).pipe(Effect.flip, within(5_000))
      expect(failed._tag).toBe("UndefinedTable")
      const result = yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          // The failed pipeline's BEGIN left an aborted block; its owner ends it.
          const rollback = yield* p.execute("rollback")
          const h = yield* p.execute("select 42 as answer")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* rollback).command).toBe("ROLLBACK")
          return yield* h
        })
      )
      expect(result.rows).toEqual([{ answer: 42 }])
    })
  )

  // 10. pg.all.
  it.effect("pg.all: struct and tuple forms, typed, in order, one segment", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const struct = yield* within(5_000)(
        pg.all({
          n: pg.sql<{ n: number }>`select ${1}::int as n`,
          s: pg.sql<{ s: string }>`select ${"x"}::text as s`,
          xid: pg.sql<{ xid: string }>`select txid_current()::text as xid`,
          xid2: pg.sql<{ xid: string }>`select txid_current()::text as xid`
        })
      )
      const n: number = struct.n.rows[0]!.n
      const s: string = struct.s.rows[0]!.s
      expect(n).toBe(1)
      expect(s).toBe("x")
      // One Sync for all of them: one implicit transaction.
      expect(struct.xid.rows[0]!.xid).toBe(struct.xid2.rows[0]!.xid)
      expect(Object.keys(struct)).toEqual(["n", "s", "xid", "xid2"])

      const tuple = yield* within(5_000)(
        pg.all([
          pg.sql<{ a: number }>`select 1 as a`,
          pg.sql<{ b: string }>`select 'two' as b`,
          pg.sql<{ c: boolean }>`select true as c`
        ])
      )
      const a: number = tuple[0].rows[0]!.a
      const b: string = tuple[1].rows[0]!.b
      const c: boolean = tuple[2].rows[0]!.c
      expect(Array.isArray(tuple)).toBe(true)
      expect([a, b, c]).toEqual([1, "two", true])
    })
  )

  it.effect("pg.all fails with the first error and runs nothing of its segment", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table all_fail (v int)")
      const error = yield* errorOf(
        pg.all({
          ins: pg.sql`insert into all_fail values (1)`,
          bad: pg.sql`select * from no_such_table_4`,
          later: pg.sql`select 1/0`
        })
      )
      expect(error._tag).toBe("UndefinedTable")
      const tupleError = yield* errorOf(pg.all([pg.sql`select 1/0`, pg.sql`select * from no_such_table_4`]))
      expect(tupleError._tag).toBe("DivisionByZero")
      expect(yield* rowsOf(pg, "select count(*)::int as n from all_fail")).toEqual([{ n: 0 }])
    })
  )

  // 11. Implicit pipelining.
  it.effect("concurrent queries on one client: all succeed, a failing one stays isolated", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* pg.query("create table concurrent (id int primary key)")
      const exits = yield* within(20_000)(
        Effect.all(
          Array.from({ length: 300 }, (_, i) =>
            Effect.exit(
              i === 150
                ? pg.query("select 1/0 as boom")
                : i === 200
                  ? pg.query("insert into concurrent values ($1)", [0])
                  : i % 2 === 0
                    ? pg.query("insert into concurrent values ($1)", [i])
                    : pg.query<{ n: number }>("select $1::int as n", [i])
            )
          ),
          { concurrency: "unbounded" }
        )
      )
      for (let i = 0; i < exits.length; i++) {
        const exit = exits[i]!
        if (i === 150 || i === 200) {
          expect(Exit.isFailure(exit)).toBe(true)
          const error = yield* Effect.flip(exit)
          expect(error._tag).toBe(i === 150 ? "DivisionByZero" : "UniqueViolation")
        } else if (i % 2 === 0) {
          expect(Exit.isSuccess(exit) && exit.value.rowCount).toBe(1)
        } else {
          expect(Exit.isSuccess(exit) && exit.value.rows).toEqual([{ n: i }])
        }
      }
      // Each statement had its own Sync: every successful insert (150 even ids, less the 1/0 and the duplicate) committed.
      expect(yield* rowsOf(pg, "select count(*)::int as n from concurrent")).toEqual([{ n: 148 }])
    })
  )

  // 12. Connection lost mid-pipeline.
  it.effect("the backend terminated mid-pipeline: every pending handle fails, nothing hangs", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      const killer = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const sleeper = yield* p.execute("select pg_sleep(10) as doomed_sleep")
          const sameSegment = yield* p.execute("select 0 as zero")
          const firstSync = yield* Effect.forkChild(p.sync, { startImmediately: true })
          const nextSegment = [yield* p.execute("select 1 as one"), yield* p.execute("select 2 as two")]
          yield* p.flush
          yield* waitUntilRunning(killer, pg.processId, "doomed_sleep")
          const killed = yield* rowsOf(killer, "select pg_terminate_backend($1::int) as ok", [pg.processId])
          expect(killed).toEqual([{ ok: true }])

          // The server says why before it closes the socket (FATAL 57P01); either report is fair
          // for the statement that was running.
          const sleeperError = yield* errorOf(sleeper)
          expect(["AdminShutdown", "ConnectionLost"]).toContain(sleeperError._tag)
          // The server runs a pipeline in order and died inside the sleeper: nothing after it ran,
          // although it had all been sent.
          for (const h of [sameSegment, ...nextSegment]) {
            expect(yield* errorOf(h)).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: false })
          }
          const syncExit = yield* within(5_000)(Fiber.await(firstSync))
          expect(Exit.isFailure(syncExit)).toBe(true)
          if (Exit.isFailure(syncExit)) {
            expect((yield* Effect.flip(syncExit))._tag).toBe("ConnectionLost")
          }
          // After the loss: refused at once, never sent.
          expect(yield* Effect.flip(p.execute("select 3 as three"))).toMatchObject({
            _tag: "ConnectionLost",
            mayHaveRun: false
          })
          expect(yield* errorOf(p.sync)).toMatchObject({ _tag: "ConnectionLost" })
        })
      ).pipe(within(10_000))
      // The pool dropped the dead connection: the next statement runs on a new backend.
      const after = yield* within(5_000)(rowsOf(pg, "select pg_backend_pid() as pid"))
      expect(after[0]!["pid"]).not.toBe(pg.processId)
    })
  )

  it.effect("the network cut mid-pipeline: sent statements may have run, unsent ones did not", () =>
    Effect.gen(function* () {
      const { url, cut } = yield* relay
      const pg = yield* connectTo(url)
      const observer = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const sent = [
            yield* p.execute("select pg_sleep(10) as cut_sleep"),
            yield* p.execute("select 1 as one"),
            yield* p.execute("select 2 as two")
          ]
          const firstSync = yield* Effect.forkChild(p.sync, { startImmediately: true })
          sent.push(yield* p.execute("select 3 as three"))
          yield* p.flush
          yield* waitUntilRunning(observer, pg.processId, "cut_sleep")
          cut()
          // With no word from the server, anything that reached the socket may have run.
          for (const h of sent) {
            expect(yield* errorOf(h)).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: true })
          }
          const syncExit = yield* within(5_000)(Fiber.await(firstSync))
          expect(Exit.isFailure(syncExit)).toBe(true)
          if (Exit.isFailure(syncExit)) {
            expect(yield* Effect.flip(syncExit)).toMatchObject({ _tag: "ConnectionLost", mayHaveRun: true })
          }
          expect(yield* Effect.flip(p.execute("select 4 as four"))).toMatchObject({
            _tag: "ConnectionLost",
            mayHaveRun: false
          })
        })
      ).pipe(within(10_000))
      // The relay still accepts connections: the pool opens a new one for later work.
      const after = yield* within(5_000)(rowsOf(pg, "select pg_backend_pid() as pid"))
      expect(after[0]!["pid"]).not.toBe(pg.processId)
      // The orphaned backend would sleep on; end it.
      yield* observer.query("select pg_terminate_backend($1::int)", [pg.processId])
    })
  )

  // Queue-time refusals that are not about the text, and degenerate segments.
  it.effect("an unencodable parameter is refused at queue time; the segment goes on", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          const before = yield* p.execute("select 1 as a")
          const refused = yield* Effect.flip(p.execute("select $1 as x", [Symbol("not a value")]))
          expect(refused).toMatchObject({ _tag: "ParameterError", index: 0 })
          const after = yield* p.execute("select 2 as b")
          expect(p.queued()).toBe(2)
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect((yield* before).rows).toEqual([{ a: 1 }])
          expect((yield* after).rows).toEqual([{ b: 2 }])
        })
      )
    })
  )

  it.effect("an empty segment syncs; an empty statement answers with an empty command", () =>
    Effect.gen(function* () {
      const pg = yield* connect
      yield* Effect.scoped(
        Effect.gen(function* () {
          const p = yield* pg.pipeline
          expect(yield* within(5_000)(p.sync)).toBe("I")
          const empty = yield* p.execute("")
          const comment = yield* p.execute("-- nothing to run")
          const after = yield* p.execute("select 1 as one")
          expect(yield* within(5_000)(p.sync)).toBe("I")
          expect(yield* empty).toMatchObject({ command: "", rowCount: 0, rows: [] })
          expect(yield* comment).toMatchObject({ command: "", rowCount: 0, rows: [] })
          expect((yield* after).rows).toEqual([{ one: 1 }])
        })
      )
    })
  )
})
