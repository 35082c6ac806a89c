/**
 * COPY through pg.copyFrom and pg.copyTo against a real server: 1,000,000 rows each way checked by
 * exact count and checksums, text / csv / binary formats, the source's failure and the fiber's
 * interruption (CopyFail: nothing inserted, connection usable), server errors typed with the line
 * they name, back-pressure on COPY TO (a sequence advanced per produced row shows how far the
 * server got), early stop, and the refusals (wrong direction, not a COPY, COPY through query).
 *
 * Timeouts are liveness bounds (a hang fails the test), never speed assertions.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientApi } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { Effect, Fiber, Stream } from "effect"
import { errorOf, within } from "./support/pipeline.ts"
import { backendsOf, eventually, poolClient } from "./support/pool.ts"

const count = (pg: PgClientApi, table: string) =>
  Effect.map(pg.query<{ n: number }>(`select count(*)::int as n from ${table}`), (r) => r.rows[0]!.n)

const allIdle = (observer: PgClientApi, app: string) =>
  eventually(
    Effect.map(backendsOf(observer, app), (rows) => rows.every((r) => r.state === "idle")),
    5_000,
    "every backend of the client idle"
  )

/** Text-format lines `i\tlabel-i\n` for i in [from, to), in chunks of `per` lines. */
const textLines = (from: number, to: number, per: number): Stream.Stream<string> =>
  Stream.fromIterable(
    (function* () {
      for (let start = from; start < to; start += per) {
        let chunk = ""
        for (let i = start; i < Math.min(to, start + per); i++) chunk += `${i}\tlabel-${i}\n`
        yield chunk
      }
    })()
  )

/** The binary COPY format for rows of (int4, text). */
const binaryCopy = (rows: ReadonlyArray<readonly [number, string | null]>): Uint8Array => {
  const parts: Array<Buffer> = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]
  for (const [n, s] of rows) {
    const head = Buffer.alloc(2 + 4 + 4)
    head.writeInt16BE(2, 0)
    head.writeInt32BE(4, 2)
    head.writeInt32BE(n, 6)
    parts.push(head)
    if (s === null) {
      const nul = Buffer.alloc(4)
      nul.writeInt32BE(-1, 0)
      parts.push(nul)
    } else {
      const bytes = Buffer.from(s, "utf8")
      const len = Buffer.alloc(4)
      len.writeInt32BE(bytes.length, 0)
      parts.push(len, bytes)
    }
  }
  const trailer = Buffer.alloc(2)
  trailer.writeInt16BE(-1, 0)
  parts.push(trailer)
  return new Uint8Array(Buffer.concat(parts))
}

class SourceBroke {
  readonly _tag = "SourceBroke"
  readonly message = "the file went away"
}

layer(PgServer.layer, { timeout: 180_000, excludeTestServices: true })("copy", (it) => {
  it.effect(
    "COPY … TO STDIN and FROM STDOUT (the server reads either word as the client) are COPYs too",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table copy_syn (n int)")
        yield* pg.query("insert into copy_syn values (1), (2), (3)")
        yield* pg.query("create table copy_syn_log (n int)")
        // Through a statement: refused before anything is sent (the rows were dropped as "COPY 3").
        const refusals = [
          yield* errorOf(pg.query("copy copy_syn to stdin")),
          yield* errorOf(pg.sql`copy copy_syn to stdin`),
          yield* errorOf(Stream.runCollect(pg.stream("copy copy_syn to stdin"))),
          // It made the server wait for data, then answered two ReadyForQuery: the next query failed.
          yield* errorOf(Stream.runCollect(pg.stream("copy copy_syn from stdout"))),
          // It ran the whole script, the insert after the COPY included.
          yield* errorOf(pg.script("copy copy_syn to stdin; insert into copy_syn_log values (42)"))
        ]
        expect(refusals.map((e) => `${e._tag} ${(e as { reason?: string }).reason}`)).toEqual(
          Array(5).fill("StatementRejected CopyInQuery")
        )
        expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
        expect(yield* count(pg, "copy_syn_log")).toBe(0)
        // Through copyFrom / copyTo they work.
        const copied = yield* pg.copyFrom("copy copy_syn from stdout", Stream.make("9\n"))
        expect(copied.rowCount).toBe(1)
        const out = yield* Stream.runCollect(pg.copyTo("copy copy_syn to stdin"))
        expect(Buffer.concat(Array.from(out)).toString()).toBe("1\n2\n3\n9\n")
      })
  )

  it.effect(
    "a source that fails, or an interruption, while the server is busy inside the COPY cancels it at once",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1, cancelGrace: "20 seconds" })
        const other = (yield* poolClient({ max: 1 })).pg
        yield* pg.query("create table copy_locked (n int primary key)")
        const pid = (yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid
        // Another transaction holds key 1: the COPY's row 1 waits for its lock (5,000 rows make the
        // COPY flush its insert buffer, so it really waits) and reads no input meanwhile.
        const locker = yield* Effect.forkChild(
          Effect.exit(
            other.withTransaction(
              Effect.andThen(other.query("insert into copy_locked values (1)"), Effect.never)
            )
          )
        )
        yield* eventually(
          Effect.map(
            pg.query<{ n: number }>(
              "select count(*)::int as n from pg_locks where locktype = 'transactionid'"
            ),
            (r) => r.rows[0]!.n > 0
          ),
          10_000,
          "the lock held"
        )
        const rows = Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join("")
        class SourceBroke extends Error {
          readonly _tag = "SourceBroke"
        }
        const failing = pg.copyFrom(
          "copy copy_locked from stdin",
          Stream.concat(
            Stream.make(rows),
            Stream.fromEffect(
              Effect.andThen(Effect.sleep("300 millis"), Effect.fail(new SourceBroke("the file went away")))
            )
          )
        )
        const failed = yield* Effect.flip(within(8_000)(failing))
        expect(failed._tag).toBe("SourceBroke")
        const fiber = yield* Effect.forkChild(
          pg.copyFrom("copy copy_locked from stdin", Stream.concat(Stream.make(rows), Stream.never))
        )
        yield* Effect.sleep("500 millis")
        yield* within(8_000)(Fiber.interrupt(fiber))
        // The same backend serves on (it was not closed after cancelGrace), nothing was inserted.
        expect((yield* pg.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid).toBe(pid)
        yield* Fiber.interrupt(locker)
        expect(yield* count(pg, "copy_locked")).toBe(0)
      }),
    { timeout: 60_000 }
  )

  it.effect("copyFrom: 1,000,000 text rows, exact count and checksums; copyTo gives them back", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table cp_million (n int, label text)")
      const { rowCount } = yield* pg.copyFrom("copy cp_million from stdin", textLines(0, 1_000_000, 10_000))
      expect(rowCount).toBe(1_000_000)
      const server = (yield* pg.query<{ n: number; s: string; l: string }>(
        "select count(*)::int as n, sum(n)::text as s, sum(length(label))::text as l from cp_million"
      )).rows[0]!
      let expectedLength = 0
      for (let i = 0; i < 1_000_000; i++) expectedLength += `label-${i}`.length
      expect(server.n).toBe(1_000_000)
      expect(server.s).toBe(String((999_999 * 1_000_000) / 2))
      expect(server.l).toBe(String(expectedLength))

      // Back out as csv: every line, in order, byte for byte what the server formats.
      let lines = 0
      let sum = 0
      let tail = ""
      let inOrder = true
      yield* Stream.runForEach(
        pg.copyTo("copy (select n, label from cp_million order by n) to stdout with (format csv)"),
        (block) =>
          Effect.sync(() => {
            const text = tail + Buffer.from(block).toString("utf8")
            const parts = text.split("\n")
            tail = parts.pop()!
            for (const line of parts) {
              const comma = line.indexOf(",")
              const n = Number(line.slice(0, comma))
              if (n !== lines || line.slice(comma + 1) !== `label-${n}`) inOrder = false
              sum += n
              lines++
            }
          })
      )
      expect(tail).toBe("")
      expect(lines).toBe(1_000_000)
      expect(inOrder).toBe(true)
      expect(String(sum)).toBe(server.s)
    })
  )

  it.effect("copyFrom: csv with a header, quotes, commas, newlines and NULL; bytes and strings mixed", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_csv (id int, note text)")
      const csv = 'id,note\n1,"a, b"\n2,"line\nbreak"\n3,"say ""hi"""\n4,\n5,ünï😀\n'
      const bytes = new TextEncoder().encode(csv)
      // Split inside a multi-byte character and inside quoted fields: the server reassembles.
      const source = Stream.make(
        bytes.subarray(0, 13),
        csv.slice(0, 0),
        bytes.subarray(13, bytes.length - 3),
        bytes.subarray(bytes.length - 3)
      )
      const { rowCount } = yield* pg.copyFrom("copy cp_csv from stdin with (format csv, header true)", source)
      expect(rowCount).toBe(5)
      expect((yield* pg.query("select id, note from cp_csv order by id")).rows).toEqual([
        { id: 1, note: "a, b" },
        { id: 2, note: "line\nbreak" },
        { id: 3, note: 'say "hi"' },
        { id: 4, note: null },
        { id: 5, note: "ünï😀" }
      ])
      const out = yield* Stream.runCollect(pg.copyTo("copy cp_csv to stdout with (format csv, header true)"))
      const text = Buffer.concat(out).toString("utf8")
      expect(text.split("\n")[0]).toBe("id,note")
      // What the server writes reads back as the same rows.
      yield* pg.query("create table cp_csv2 (id int, note text)")
      yield* pg.copyFrom("copy cp_csv2 from stdin with (format csv, header true)", Stream.make(text))
      expect((yield* pg.query("select id, note from cp_csv2 order by id")).rows).toEqual(
        (yield* pg.query("select id, note from cp_csv order by id")).rows
      )
    })
  )

  it.effect("binary format both ways", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_bin (n int, s text)")
      const rows: Array<readonly [number, string | null]> = [
        [1, "one"],
        [-2, null],
        [2147483647, "max ✓"]
      ]
      const { rowCount } = yield* pg.copyFrom(
        "copy cp_bin from stdin with (format binary)",
        Stream.make(binaryCopy(rows))
      )
      expect(rowCount).toBe(3)
      expect((yield* pg.query("select n, s from cp_bin order by n")).rows).toEqual([
        { n: -2, s: null },
        { n: 1, s: "one" },
        { n: 2147483647, s: "max ✓" }
      ])
      const out = Buffer.concat(
        yield* Stream.runCollect(
          pg.copyTo("copy (select n, s from cp_bin order by n) to stdout with (format binary)")
        )
      )
      expect(new Uint8Array(out)).toEqual(binaryCopy([rows[1]!, rows[0]!, rows[2]!]))
    })
  )

  it.effect(
    "the source fails mid-copy: CopyFail, nothing inserted, the source's error, connection usable",
    () =>
      Effect.gen(function* () {
        const { pg, app } = yield* poolClient({ max: 1 })
        const observer = (yield* poolClient({ max: 1 })).pg
        yield* pg.query("create table cp_fail (n int, label text)")
        const error = yield* errorOf(
          pg.copyFrom(
            "copy cp_fail from stdin",
            Stream.concat(textLines(0, 50_000, 1_000), Stream.fail(new SourceBroke()))
          )
        )
        expect(error._tag).toBe("SourceBroke")
        expect(yield* count(pg, "cp_fail")).toBe(0)
        yield* allIdle(observer, app)
      })
  )

  it.effect("interrupting a copy whose source stalls: nothing inserted, connection usable", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table cp_interrupt (n int, label text)")
      let sent = false
      const fiber = yield* Effect.forkChild(
        pg.copyFrom(
          "copy cp_interrupt from stdin",
          Stream.concat(
            textLines(0, 10_000, 1_000),
            Stream.fromEffect(Effect.sync(() => (sent = true))).pipe(Stream.flatMap(() => Stream.never))
          )
        )
      )
      yield* eventually(
        Effect.sync(() => sent),
        10_000,
        "the first chunks sent"
      )
      yield* within(10_000)(Fiber.interrupt(fiber))
      expect(yield* within(10_000)(count(pg, "cp_interrupt"))).toBe(0)
      yield* allIdle(observer, app)
    })
  )

  it.effect("server errors are typed and name the line; the source stops being read", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_bad (n int primary key, label text)")
      const bad = yield* errorOf(
        pg.copyFrom("copy cp_bad from stdin", Stream.make("1\ta\n2\tb\nthree\tc\n4\td\n"))
      )
      expect(bad._tag).toBe("InvalidTextRepresentation")
      if (bad._tag === "InvalidTextRepresentation") expect(bad.where).toContain("line 3")
      const columns = yield* errorOf(pg.copyFrom("copy cp_bad from stdin", Stream.make("1\ta\textra\n")))
      expect(columns._tag).toBe("BadCopyFileFormat")
      const duplicate = yield* errorOf(pg.copyFrom("copy cp_bad from stdin", Stream.make("1\ta\n1\tb\n")))
      expect(duplicate._tag).toBe("UniqueViolation")
      expect(yield* count(pg, "cp_bad")).toBe(0)
      // A server error stops the feeding: an endless source does not keep the copy alive.
      let pulled = 0
      const endless = Stream.fromEffectRepeat(Effect.sync(() => `${++pulled}\tx\n`.repeat(1)))
      const stopped = yield* errorOf(
        pg.copyFrom("copy cp_bad from stdin", Stream.concat(Stream.make("x\ty\n"), endless))
      )
      expect(stopped._tag).toBe("InvalidTextRepresentation")
      expect(yield* count(pg, "cp_bad")).toBe(0)
      const missing = yield* errorOf(pg.copyFrom("copy cp_nowhere from stdin", Stream.make("1\n")))
      expect(missing._tag).toBe("UndefinedTable")
      expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
    })
  )

  it.effect("bad chunks are refused typed and nothing is inserted", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_chunks (v text)")
      const surrogate = yield* errorOf(
        pg.copyFrom("copy cp_chunks from stdin", Stream.make("ok\n", "bad \ud800\n"))
      )
      expect(surrogate._tag === "StatementRejected" && surrogate.reason).toBe("InvalidCopyData")
      const notBytes = yield* errorOf(
        pg.copyFrom("copy cp_chunks from stdin", Stream.make(42 as unknown as string))
      )
      expect(notBytes._tag === "StatementRejected" && notBytes.reason).toBe("InvalidCopyData")
      expect(yield* count(pg, "cp_chunks")).toBe(0)
    })
  )

  it.effect("copyTo: a slow consumer holds the server back; stopping early cancels the COPY", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create sequence cp_seq")
      const total = 20_000_000
      let blocks = 0
      yield* within(30_000)(
        Stream.runForEach(
          pg
            .copyTo(
              `copy (select nextval('cp_seq'), repeat('x', 40) from generate_series(1, 5000) a, generate_series(1, ${total / 5000}) b) to stdout`
            )
            .pipe(Stream.take(3)),
          () =>
            Effect.gen(function* () {
              blocks++
              if (blocks === 1) yield* Effect.sleep(500)
            })
        )
      )
      const produced = Number(
        (yield* observer.query<{ v: string }>("select last_value::text as v from cp_seq")).rows[0]!.v
      )
      // The server was held back by TCP while the consumer slept, then the COPY was cancelled.
      expect(produced).toBeLessThan(total)
      expect(blocks).toBe(3)
      expect((yield* within(10_000)(pg.query("select 6 as six"))).rows).toEqual([{ six: 6 }])
      yield* allIdle(observer, app)
    })
  )

  // The blocks are the socket's own reads, packed in place: plain TCP and TLS deliver them alike.
  it.effect.each(["disable", "require"] as const)(
    "copyTo: blocks the consumer keeps stay intact, sslmode %s (rows of 0 bytes to 90 KiB, cut anywhere by the socket)",
    (sslmode) =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1, sslmode })
        const ssl = yield* pg.query<{ ssl: boolean }>(
          "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
        )
        expect(ssl.rows[0]!.ssl).toBe(sslmode === "require")
        // Row i: i, a tab, then a letter repeated size(i) times (every 500th row 70-90 KiB, so it
        // spans socket chunks; the others 0-299 bytes, many per chunk).
        const rows = 20_000
        const size = (i: number) => (i % 500 === 0 ? 70_000 + i : (i * 37) % 300)
        const blocks = yield* Stream.runCollect(
          pg.copyTo(
            `copy (select i, repeat(chr(97 + i % 26), case when i % 500 = 0 then 70000 + i else (i * 37) % 300 end) from generate_series(1, ${rows}) i) to stdout`
          )
        )
        // Every block was kept until the end: a later row packed over an earlier block would show.
        const text = Buffer.concat(
          Array.from(blocks, (b) => Buffer.from(b.buffer, b.byteOffset, b.length))
        ).toString("latin1")
        const lines = text.split("\n")
        expect(lines.pop()).toBe("")
        expect(lines.length).toBe(rows)
        let wrong = 0
        for (let i = 1; i <= rows; i++) {
          if (lines[i - 1] !== `${i}\t${String.fromCharCode(97 + (i % 26)).repeat(size(i))}`) wrong++
        }
        expect(wrong).toBe(0)
      })
  )

  it.effect("copyTo: rows that arrive with the COPY's start are joined into blocks, not one per row", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      // ~3 KiB in all: the server sends it with CopyOutResponse in one write, which the parser
      // reads before the fast path is installed.
      const blocks = yield* Stream.runCollect(
        pg.copyTo("copy (select i, 'row ' || i from generate_series(1, 300) i) to stdout")
      )
      const text = Buffer.concat(Array.from(blocks)).toString("utf8")
      const expected = Array.from({ length: 300 }, (_, k) => `${k + 1}\trow ${k + 1}\n`).join("")
      expect(text).toBe(expected)
      expect(blocks.length).toBeLessThan(30)
    })
  )

  it.effect("copyTo: an error mid-copy fails the stream after the data before it", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      let bytes = 0
      const error = yield* errorOf(
        Stream.runForEach(
          pg.copyTo("copy (select 100000 / (50000 - g) from generate_series(1, 100000) g) to stdout"),
          (block) => Effect.sync(() => (bytes += block.length))
        )
      )
      expect(error._tag).toBe("DivisionByZero")
      expect(bytes).toBeGreaterThan(0)
      expect((yield* pg.query("select 7 as seven")).rows).toEqual([{ seven: 7 }])
    })
  )

  it.effect("wrong direction, not a COPY, or COPY through query: refused typed before anything is sent", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_refuse (v int)")
      const wrongIn = yield* errorOf(pg.copyFrom("copy cp_refuse to stdout", Stream.make("1\n")))
      expect(wrongIn._tag === "StatementRejected" && wrongIn.reason).toBe("NotCopy")
      const wrongOut = yield* errorOf(Stream.runCollect(pg.copyTo("copy cp_refuse from stdin")))
      expect(wrongOut._tag === "StatementRejected" && wrongOut.reason).toBe("NotCopy")
      const select = yield* errorOf(pg.copyFrom("select 1", Stream.make("1\n")))
      expect(select._tag === "StatementRejected" && select.reason).toBe("NotCopy")
      const two = yield* errorOf(pg.copyFrom("copy cp_refuse from stdin; select 1", Stream.make("1\n")))
      expect(two._tag === "StatementRejected" && two.reason).toBe("NotCopy")
      const query = yield* errorOf(within(10_000)(pg.query("copy cp_refuse from stdin")))
      expect(query._tag === "StatementRejected" && query.reason).toBe("CopyInQuery")
      expect(query.message).toContain("copyFrom")
      const queryOut = yield* errorOf(within(10_000)(pg.query("copy cp_refuse to stdout")))
      expect(queryOut._tag === "StatementRejected" && queryOut.reason).toBe("CopyInQuery")
      // Behind empty statements (the server drops them) it is the same COPY.
      const hidden = yield* errorOf(within(10_000)(pg.query(" ; ;copy cp_refuse from stdin")))
      expect(hidden._tag === "StatementRejected" && hidden.reason).toBe("CopyInQuery")
      expect(yield* count(pg, "cp_refuse")).toBe(0)
    })
  )

  it.effect("inside withTransaction the copy belongs to the transaction; on reserve to the session", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table cp_tx (n int, label text)")
      const exit = yield* Effect.exit(
        pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.copyFrom("copy cp_tx from stdin", textLines(0, 1000, 100))
            expect(yield* count(pg, "cp_tx")).toBe(1000)
            return yield* Effect.fail("roll back" as const)
          })
        )
      )
      expect(exit._tag).toBe("Failure")
      expect(yield* count(pg, "cp_tx")).toBe(0)
      const copied = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* pg.reserve
          yield* conn.query("create temp table cp_temp (n int, label text)")
          yield* conn.copyFrom("copy cp_temp from stdin", textLines(0, 500, 100))
          return (
            Buffer.concat(yield* Stream.runCollect(conn.copyTo("copy cp_temp to stdout")))
              .toString()
              .split("\n").length - 1
          )
        })
      )
      expect(copied).toBe(500)
    })
  )

  it.effect("stopping copyTo early inside a transaction block drains it instead of cancelling", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 2 })
      yield* pg.query("create table cp_txtake (n int)")
      const blocks = yield* within(30_000)(
        pg.withTransaction(
          Effect.gen(function* () {
            yield* pg.query("insert into cp_txtake values (1)")
            const taken = yield* Stream.runCollect(
              pg
                .copyTo("copy (select g, repeat('x', 100) from generate_series(1, 200000) g) to stdout")
                .pipe(Stream.take(1))
            )
            // A cancel would have aborted the block: this insert would fail InFailedSqlTransaction.
            yield* pg.query("insert into cp_txtake values (2)")
            return taken.length
          })
        )
      )
      expect(blocks).toBe(1)
      expect(yield* count(pg, "cp_txtake")).toBe(2)
    })
  )

  it.effect("a server error ends copyFrom at once, even while the source stays silent", () =>
    Effect.gen(function* () {
      const { pg, app } = yield* poolClient({ max: 1 })
      const observer = (yield* poolClient({ max: 1 })).pg
      yield* pg.query("create table cp_silent (v int)")
      const error = yield* errorOf(
        pg.copyFrom("copy cp_silent from stdin", Stream.concat(Stream.make("1\n", "oops\n"), Stream.never))
      )
      expect(error._tag).toBe("InvalidTextRepresentation")
      expect(yield* count(pg, "cp_silent")).toBe(0)
      yield* allIdle(observer, app)
    })
  )

  it.effect("a surrogate pair split across two string chunks is one character; a lone one is refused", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table cp_pair (n int, t text)")
      const line = "1\t\u{1F600}y\n"
      // "1\t" and the high surrogate, then the low surrogate and the rest.
      const result = yield* pg.copyFrom(
        "copy cp_pair from stdin",
        Stream.make(line.slice(0, 3), line.slice(3))
      )
      expect(result.rowCount).toBe(1)
      expect((yield* pg.query("select t from cp_pair")).rows).toEqual([{ t: "\u{1F600}y" }])
      const atEnd = yield* errorOf(pg.copyFrom("copy cp_pair from stdin", Stream.make("2\tx\ud83d")))
      expect(atEnd._tag === "StatementRejected" && atEnd.reason).toBe("InvalidCopyData")
      const unpaired = yield* errorOf(pg.copyFrom("copy cp_pair from stdin", Stream.make("3\t\ud83d", "x\n")))
      expect(unpaired._tag === "StatementRejected" && unpaired.reason).toBe("InvalidCopyData")
      const beforeBytes = yield* errorOf(
        pg.copyFrom(
          "copy cp_pair from stdin",
          Stream.make<[string, Uint8Array]>("4\t\ud83d", Buffer.from("x\n"))
        )
      )
      expect(beforeBytes._tag === "StatementRejected" && beforeBytes.reason).toBe("InvalidCopyData")
      expect(yield* count(pg, "cp_pair")).toBe(1)
    })
  )
})
