/**
 * Statements and typed server errors through PgClient against a real server: the QueryResult shape
 * (rows, command, rowCount for each DML verb, fields), the `sql` template (values bound as data,
 * sql.id quoting, sql.in, nested fragments, sql.unsafe), and more than twenty SQLSTATEs raised by
 * real statements, each caught by its tag with `Effect.catchTag` and classified with `isClass`;
 * an SQLSTATE unknown to the table arrives as UnknownServerError with its code. Needs the server.
 */
import { expect, layer } from "@effect/vitest"
import { isClass, type PgClientApi, type PgConnection } from "@pgline/client"
import { PgServer } from "@pgline/testing"
import { TypeRegistry } from "@pgline/codec"
import { Effect, Stream } from "effect"
import { rolesOf, tcp, withClient } from "./support/integration.ts"

/** A client for the whole file: the superuser over TCP. */
const superuser = <A, E, R = never>(f: (pg: PgClientApi) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const info = yield* PgServer
    return yield* withClient({ ...tcp(info), sslmode: "disable" }, f)
  })

/**
 * A reserved connection of a superuser client: transaction control (BEGIN … ROLLBACK as plain
 * statements) is refused on the shared connections of the pool and allowed on a reserved one.
 */
const reserved = <A, E, R = never>(f: (pg: PgConnection) => Effect.Effect<A, E, R>) =>
  superuser((pg) => Effect.scoped(Effect.flatMap(pg.reserve, f)))

const noError = Effect.map(() => "no error" as const)

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })(
  "statements and typed errors",
  (it) => {
    it.effect("queryValues: rows as arrays in column order, every column kept when names repeat", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          const result = yield* pg.queryValues("select 1 as a, $1::text as a, null::int as b, 3::int8 as c", [
            "two"
          ])
          expect(result.rows).toEqual([[1, "two", null, 3n]])
          expect(result.fields.map((f) => f.name)).toEqual(["a", "a", "b", "c"])
          expect(result).toMatchObject({ command: "SELECT", rowCount: 1 })
          // The same statement as objects: the later "a" wins, which is why arrays exist.
          const objects = yield* pg.query("select 1 as a, $1::text as a, null::int as b, 3::int8 as c", [
            "two"
          ])
          expect(objects.rows).toEqual([{ a: "two", b: null, c: 3n }])
          // Inside a transaction and on a reserved connection as well; a decode failure is typed.
          const inTx = yield* pg.withTransaction(pg.queryValues("select generate_series(1, 3) as g"))
          expect(inTx.rows).toEqual([[1], [2], [3]])
          const onReserve = yield* Effect.scoped(
            Effect.flatMap(pg.reserve, (conn) => conn.queryValues("select 'x' as v, 2 as w"))
          )
          expect(onReserve.rows).toEqual([["x", 2]])
          const failed = yield* Effect.flip(pg.queryValues("select 1 / $1::int", [0]))
          expect(failed._tag).toBe("DivisionByZero")
        })
      )
    )

    it.effect(
      'rows: "arrays": every result as arrays (query, script, pipeline, stream), text values with results: "text"',
      () =>
        Effect.gen(function* () {
          const info = yield* PgServer
          const out = yield* withClient(
            {
              ...tcp(info),
              sslmode: "disable",
              rows: "arrays",
              types: new TypeRegistry({ results: "text" })
            },
            (pg) =>
              Effect.gen(function* () {
                const query = (yield* pg.query(
                  "select 1 as a, 2.50::numeric as a, null::int as b, true as c"
                )).rows
                const script = (yield* pg.script("select 1, 2; select 'x'::text as t")).map((r) => r.rows)
                const piped = yield* pg.withPipeline((p) =>
                  Effect.gen(function* () {
                    const h = yield* p.execute("select $1::int8 as n, now()::date - now()::date as z", [7])
                    yield* p.sync
                    return (yield* h).rows
                  })
                )
                const streamed = yield* Stream.runCollect(
                  pg.stream("select g, g * 2 from generate_series(1, 3) g")
                )
                return { query, script, piped, streamed }
              })
          )
          expect(out).toEqual({
            query: [["1", "2.50", null, "t"]],
            script: [[["1", "2"]], [["x"]]],
            piped: [["7", "0"]],
            streamed: [
              ["1", "2"],
              ["2", "4"],
              ["3", "6"]
            ]
          })
        })
    )

    it.effect("QueryResult: rows, command, rowCount and fields for each verb", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          const created = yield* pg.query("create table shape (id int primary key, name text not null)")
          expect(created).toMatchObject({ command: "CREATE", tag: "CREATE TABLE", rowCount: 0, rows: [] })
          const inserted = yield* pg.query("insert into shape values (1, 'a'), (2, 'b'), (3, 'c')")
          expect(inserted).toMatchObject({ command: "INSERT", tag: "INSERT 0 3", rowCount: 3, rows: [] })
          const updated = yield* pg.query("update shape set name = upper(name) where id >= $1", [2])
          expect(updated).toMatchObject({ command: "UPDATE", rowCount: 2 })
          const selected = yield* pg.query<{ id: number; name: string }>(
            "select id, name from shape order by id"
          )
          expect(selected.command).toBe("SELECT")
          expect(selected.rowCount).toBe(3)
          expect(selected.rows).toEqual([
            { id: 1, name: "a" },
            { id: 2, name: "B" },
            { id: 3, name: "C" }
          ])
          expect(selected.fields.map((f) => [f.name, f.typeOid])).toEqual([
            ["id", 23],
            ["name", 25]
          ])
          expect(selected.fields[0]!.tableOid).toBeGreaterThan(0)
          expect(selected.fields[0]!.columnAttr).toBe(1)
          const deleted = yield* pg.query("delete from shape where id <> $1 returning id", [1])
          expect(deleted).toMatchObject({ command: "DELETE", rowCount: 2 })
          expect(deleted.rows.map((r) => r["id"]).sort()).toEqual([2, 3])
          const none = yield* pg.query("select 1 as one where false")
          expect(none).toMatchObject({ command: "SELECT", rowCount: 0, rows: [] })
          expect(none.fields.map((f) => f.name)).toEqual(["one"])
          const computed = yield* pg.query("select 1 + 1 as two")
          expect(computed.fields[0]).toMatchObject({ name: "two", tableOid: 0, columnAttr: 0, typeOid: 23 })
          expect(yield* pg.query("")).toMatchObject({ command: "", rowCount: 0, rows: [] })
          const nulls = yield* pg.query("select null::int as n, $1::text as t", [null])
          expect(nulls.rows).toEqual([{ n: null, t: null }])
        })
      )
    )

    it.effect("the sql template binds values: quotes and '; drop table' stay data", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          const { sql } = pg
          yield* sql`create table bobby (name text)`
          const evil = `Robert'); drop table bobby; --`
          const inserted = yield* sql`insert into bobby values (${evil}) returning name`
          expect(inserted.rows).toEqual([{ name: evil }])
          const back = yield* sql<{ name: string; n: number }>`
          select name, (select count(*)::int from bobby) as n from bobby where name = ${evil}`
          expect(back.rows).toEqual([{ name: evil, n: 1 }])
          const quoted = yield* sql`select ${'it\'s "quoted" \\ and $1'}::text as v, ${42}::int as n`
          expect(quoted.rows).toEqual([{ v: `it's "quoted" \\ and $1`, n: 42 }])
          // The text carries placeholders only.
          const statement = sql`select * from bobby where name = ${evil}`
          expect(statement.text).toBe("select * from bobby where name = $1")
          expect(statement.values).toEqual([evil])
        })
      )
    )

    it.effect("sql.id quotes identifiers, sql.in expands lists, fragments nest, sql.unsafe is raw", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          const { sql } = pg
          const weird = `we"ird table; drop`
          yield* sql`create table ${sql.id(weird)} (${sql.id("Mixed Case")} int)`
          yield* sql`insert into ${sql.id(["public", weird])} values (1), (2), (3)`
          const ids = yield* sql<{ v: number }>`
          select ${sql.id("Mixed Case")} as v from ${sql.id(weird)}
          where ${sql.id("Mixed Case")} in (${sql.in([1, 3])}) order by 1`
          expect(ids.rows).toEqual([{ v: 1 }, { v: 3 }])
          const tables = yield* sql`select relname from pg_class where relname = ${weird}`
          expect(tables.rowCount).toBe(1)
          const above = (n: number) => sql.fragment`${sql.id("Mixed Case")} > ${n}`
          const nested = yield* sql<{ v: number }>`
          select ${sql.id("Mixed Case")} as v from ${sql.id(weird)}
          where ${above(1)} and ${sql.id("Mixed Case")} in (${sql.in([2, 3, 4])}) order by ${sql.unsafe("1 desc")}`
          expect(nested.rows).toEqual([{ v: 3 }, { v: 2 }])
          // Invalid fragments fail the statement typed when it runs; nothing is sent.
          expect(yield* Effect.flip(sql`select 1 where 1 in (${sql.in([])})`)).toMatchObject({
            _tag: "StatementRejected",
            reason: "InvalidText"
          })
        })
      )
    )

    it.effect("typed errors: each SQLSTATE caught by its tag", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          yield* pg.query(`create table parent (id int primary key)`)
          yield* pg.query(`create table child (
          id int primary key,
          parent_id int references parent (id),
          name varchar(3) not null,
          qty int check (qty >= 0))`)
          yield* pg.query("insert into parent values (1)")
          yield* pg.query("insert into child values (1, 1, 'abc', 1)")

          const undefinedTable = yield* pg
            .query("select * from no_such_table")
            .pipe(noError, Effect.catchTag("UndefinedTable", Effect.succeed))
          expect(undefinedTable).toMatchObject({ _tag: "UndefinedTable", code: "42P01", severity: "ERROR" })
          expect(undefinedTable).toHaveProperty("position", "15")

          const undefinedColumn = yield* pg
            .query("select no_such_column from child")
            .pipe(noError, Effect.catchTag("UndefinedColumn", Effect.succeed))
          expect(undefinedColumn).toMatchObject({ code: "42703" })

          const unique = yield* pg
            .query("insert into child values (1, 1, 'x', 1)")
            .pipe(noError, Effect.catchTag("UniqueViolation", Effect.succeed))
          expect(unique).toMatchObject({
            _tag: "UniqueViolation",
            code: "23505",
            schema: "public",
            table: "child",
            constraint: "child_pkey",
            detail: "Key (id)=(1) already exists."
          })

          const foreignKey = yield* pg
            .query("insert into child values (2, 99, 'x', 1)")
            .pipe(noError, Effect.catchTag("ForeignKeyViolation", Effect.succeed))
          expect(foreignKey).toMatchObject({
            code: "23503",
            constraint: "child_parent_id_fkey",
            table: "child"
          })

          const notNull = yield* pg
            .query("insert into child (id, parent_id) values (3, 1)")
            .pipe(noError, Effect.catchTag("NotNullViolation", Effect.succeed))
          expect(notNull).toMatchObject({ code: "23502", column: "name", table: "child" })

          const check = yield* pg
            .query("insert into child values (4, 1, 'x', -1)")
            .pipe(noError, Effect.catchTag("CheckViolation", Effect.succeed))
          expect(check).toMatchObject({ code: "23514", constraint: "child_qty_check" })

          const truncation = yield* pg
            .query("insert into child values (5, 1, $1, 1)", ["abcdef"])
            .pipe(noError, Effect.catchTag("StringDataRightTruncation", Effect.succeed))
          expect(truncation).toMatchObject({ code: "22001" })

          const division = yield* pg
            .query("select 1 / 0")
            .pipe(noError, Effect.catchTag("DivisionByZero", Effect.succeed))
          expect(division).toMatchObject({ code: "22012", message: "division by zero" })

          const syntax = yield* pg
            .query("selec 1")
            .pipe(noError, Effect.catchTag("SyntaxError", Effect.succeed))
          expect(syntax).toMatchObject({ code: "42601", position: "1" })

          const text = yield* pg
            .query("select 'abc'::int")
            .pipe(noError, Effect.catchTag("InvalidTextRepresentation", Effect.succeed))
          expect(text).toMatchObject({ code: "22P02" })

          const range = yield* pg
            .query("select 2147483647::int + 1")
            .pipe(noError, Effect.catchTag("NumericValueOutOfRange", Effect.succeed))
          expect(range).toMatchObject({ code: "22003" })

          const fn = yield* pg
            .query("select no_such_function(1)")
            .pipe(noError, Effect.catchTag("UndefinedFunction", Effect.succeed))
          expect(fn).toMatchObject({ code: "42883" })
          expect(fn).toHaveProperty("hint")

          const duplicate = yield* pg
            .query("create table parent (id int)")
            .pipe(noError, Effect.catchTag("DuplicateTable", Effect.succeed))
          expect(duplicate).toMatchObject({ code: "42P07" })

          const raised = yield* pg
            .query(
              `do $$ begin raise exception 'custom failure %', 42 using detail = 'the detail', hint = 'the hint'; end $$`
            )
            .pipe(noError, Effect.catchTag("RaiseException", Effect.succeed))
          expect(raised).toMatchObject({
            code: "P0001",
            message: "custom failure 42",
            detail: "the detail",
            hint: "the hint"
          })

          const parameter = yield* pg
            .query("set statement_timeout = 'not a duration'")
            .pipe(noError, Effect.catchTag("InvalidParameterValue", Effect.succeed))
          expect(parameter).toMatchObject({ code: "22023" })

          const mismatch = yield* pg
            .query("select case when true then 1 else 'one'::text end")
            .pipe(noError, Effect.catchTag("DatatypeMismatch", Effect.succeed))
          expect(mismatch).toMatchObject({ code: "42804" })

          const undefinedObject = yield* pg
            .query("select 'x'::no_such_type")
            .pipe(noError, Effect.catchTag("UndefinedObject", Effect.succeed))
          expect(undefinedObject).toMatchObject({ code: "42704" })

          const cardinality = yield* pg
            .query("select (select 1 union all select 2)")
            .pipe(noError, Effect.catchTag("CardinalityViolation", Effect.succeed))
          expect(cardinality).toMatchObject({ code: "21000" })

          const datetime = yield* pg
            .query("select 'not a date'::date")
            .pipe(noError, Effect.catchTag("InvalidDatetimeFormat", Effect.succeed))
          expect(datetime).toMatchObject({ code: "22007" })

          const unknown = yield* pg
            .query(`do $$ begin raise exception using errcode = 'P9999', message = 'made up'; end $$`)
            .pipe(noError, Effect.catchTag("UnknownServerError", Effect.succeed))
          expect(unknown).toMatchObject({ _tag: "UnknownServerError", code: "P9999", message: "made up" })

          // 72000 snapshot_too_old: only PostgreSQL 14–16 send it; it keeps its class (the table is
          // the union of the supported majors' errcodes.txt).
          const old = yield* pg
            .query(
              `do $$ begin raise exception using errcode = '72000', message = 'snapshot too old'; end $$`
            )
            .pipe(noError, Effect.catchTag("SnapshotTooOld", Effect.succeed))
          expect(old).toMatchObject({ _tag: "SnapshotTooOld", code: "72000" })
          expect(isClass("SnapshotFailure")(old)).toBe(true)

          // The connection is fine after every one of them.
          expect((yield* pg.query("select count(*)::int as n from child")).rows).toEqual([{ n: 1 }])
        })
      )
    )

    it.effect("isClass: class membership of SQLSTATEs (23 integrity, 22 data, 42 syntax/access)", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          yield* pg.query("create table klass (id int primary key, v int not null)")
          yield* pg.query("insert into klass values (1, 1)")
          for (const bad of ["insert into klass values (1, 1)", "insert into klass values (2, null)"]) {
            const caught = yield* pg.query(bad).pipe(
              noError,
              Effect.catchIf(isClass("IntegrityConstraintViolation"), (e) => Effect.succeed(e.code))
            )
            expect(caught).toMatch(/^23/)
          }
          const data = yield* pg.query("select 1 / 0").pipe(
            noError,
            Effect.catchIf(isClass("DataException"), (e) => Effect.succeed(e._tag))
          )
          expect(data).toBe("DivisionByZero")
          const error = yield* Effect.flip(pg.query("select 1 / 0"))
          expect(isClass("IntegrityConstraintViolation")(error)).toBe(false)
          expect(isClass("SyntaxErrorOrAccessRuleViolation")(yield* Effect.flip(pg.query("selec")))).toBe(
            true
          )
        })
      )
    )

    it.effect("InFailedSqlTransaction after an error inside BEGIN, until ROLLBACK", () =>
      reserved((pg) =>
        Effect.gen(function* () {
          yield* pg.query("begin")
          yield* pg.query("select 1 / 0").pipe(noError, Effect.catchTag("DivisionByZero", Effect.succeed))
          const failed = yield* pg
            .query("select 1")
            .pipe(noError, Effect.catchTag("InFailedSqlTransaction", Effect.succeed))
          expect(failed).toMatchObject({ code: "25P02" })
          // COMMIT of a failed block reports ROLLBACK.
          expect(yield* pg.query("commit")).toMatchObject({ command: "ROLLBACK" })
          expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
        })
      )
    )

    it.effect("QueryCanceled from statement_timeout", () =>
      superuser((pg) =>
        Effect.gen(function* () {
          yield* pg.query("set statement_timeout = '50ms'")
          const canceled = yield* pg
            .query("select pg_sleep(10)")
            .pipe(noError, Effect.catchTag("QueryCanceled", Effect.succeed))
          expect(canceled).toMatchObject({
            code: "57014",
            message: "canceling statement due to statement timeout"
          })
          yield* pg.query("reset statement_timeout")
          expect((yield* pg.query("select 1 as one")).rows).toEqual([{ one: 1 }])
        })
      )
    )

    it.effect("LockNotAvailable from lock_timeout while another connection holds the lock", () =>
      reserved((holder) =>
        Effect.gen(function* () {
          yield* holder.query("create table locked (id int)")
          yield* holder.query("begin")
          yield* holder.query("lock table locked in access exclusive mode")
          const blocked = yield* superuser((waiter) =>
            Effect.gen(function* () {
              yield* waiter.query("set lock_timeout = '100ms'")
              return yield* waiter
                .query("select * from locked")
                .pipe(noError, Effect.catchTag("LockNotAvailable", Effect.succeed))
            })
          )
          yield* holder.query("rollback")
          expect(blocked).toMatchObject({ code: "55P03" })
        })
      )
    )

    it.effect("SerializationFailure: a repeatable-read update of a row changed since the snapshot", () =>
      reserved((a) =>
        Effect.gen(function* () {
          yield* a.query("create table account (id int primary key, balance int)")
          yield* a.query("insert into account values (1, 100)")
          yield* a.query("begin isolation level repeatable read")
          yield* a.query("select balance from account where id = 1") // takes the snapshot
          yield* superuser((b) => b.query("update account set balance = 50 where id = 1"))
          const failure = yield* a
            .query("update account set balance = balance - 10 where id = 1")
            .pipe(noError, Effect.catchTag("SerializationFailure", Effect.succeed))
          expect(failure).toMatchObject({ code: "40001" })
          yield* a.query("rollback")
        })
      )
    )

    it.effect("DeadlockDetected: two connections locking two rows in opposite order", () =>
      reserved((a) =>
        Effect.gen(function* () {
          yield* a.query("create table deadlock (id int primary key)")
          yield* a.query("insert into deadlock values (1), (2)")
          const outcome = yield* reserved((b) =>
            Effect.gen(function* () {
              yield* a.query("begin")
              yield* b.query("begin")
              yield* a.query("set local deadlock_timeout = '50ms'")
              yield* b.query("set local deadlock_timeout = '50ms'")
              yield* a.query("select * from deadlock where id = 1 for update")
              yield* b.query("select * from deadlock where id = 2 for update")
              // Both wait for each other; the server breaks the cycle by failing one of them.
              const [ra, rb] = yield* Effect.all(
                [
                  a.query("select * from deadlock where id = 2 for update").pipe(
                    Effect.as("locked" as const),
                    Effect.catchTag("DeadlockDetected", (e) => Effect.succeed(e.code))
                  ),
                  b.query("select * from deadlock where id = 1 for update").pipe(
                    Effect.as("locked" as const),
                    Effect.catchTag("DeadlockDetected", (e) => Effect.succeed(e.code))
                  )
                ],
                { concurrency: 2 }
              ).pipe(
                // The winner gets its lock once the loser's transaction aborts; end both blocks.
                Effect.ensuring(Effect.ignore(Effect.all([a.query("rollback"), b.query("rollback")])))
              )
              return [ra, rb].sort()
            })
          )
          expect(outcome).toEqual(["40P01", "locked"])
        })
      )
    )

    it.effect("InsufficientPrivilege for a role without the grant", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const roles = rolesOf(info)
        yield* superuser((pg) => pg.query("create table secret (v int)"))
        const denied = yield* withClient({ ...tcp(info, roles.trust), sslmode: "disable" }, (pg) =>
          pg
            .query("select * from secret")
            .pipe(noError, Effect.catchTag("InsufficientPrivilege", Effect.succeed))
        )
        expect(denied).toMatchObject({ code: "42501", message: "permission denied for table secret" })
      })
    )
  }
)
