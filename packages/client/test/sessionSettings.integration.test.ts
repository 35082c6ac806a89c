/**
 * Session settings pgline reads results with: client_encoding (UTF-8 both ways), DateStyle (ISO)
 * and IntervalStyle (postgres or iso_8601). The first two are pinned at start-up; a session that
 * starts with an IntervalStyle pgline cannot read (a role's default) is refused with
 * PgConnectError "Protocol", and a SET that changes one of the three to such a value closes the
 * connection before anything is written or read in it (ProtocolFailure "UnsupportedSetting"),
 * after which the pool goes on with a new one.
 */
import { expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { errorOf } from "./support/pipeline.ts"
import { poolClient } from "./support/pool.ts"

layer(PgServer.layer, { timeout: 120_000, excludeTestServices: true })("session settings", (it) => {
  it.effect("a statement setting client_encoding to anything but UTF8 is refused before it is sent", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("create table settings_enc (t text)")
      const insert = "insert into settings_enc values ('é')"
      for (const set of [
        "set client_encoding = 'LATIN1'",
        "SET SESSION client_encoding TO latin1",
        "set names 'SQL_ASCII'",
        `set "client_encoding" to 'LATIN1'`,
        "select set_config('client_encoding', 'WIN1252', false)"
      ]) {
        const error = yield* errorOf(pg.query(set))
        expect(error).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
        expect(error.message).toContain("pgline reads and writes UTF-8 only")
      }
      // Followed in the same round trip by a write (a pipeline, a transaction's SET LOCAL, a script):
      // refused as a whole, nothing written.
      const segment = yield* errorOf(
        pg.withPipeline((p) => Effect.andThen(p.execute("set client_encoding = 'LATIN1'"), p.execute(insert)))
      )
      expect(segment._tag).toBe("StatementRejected")
      const local = yield* errorOf(
        pg.pipelineTransaction((p) =>
          Effect.andThen(p.execute("set local client_encoding = 'LATIN1'"), p.execute(insert))
        )
      )
      expect(local._tag).toBe("StatementRejected")
      const script = yield* errorOf(pg.script(`set client_encoding = 'LATIN1'; ${insert}`))
      expect(script._tag).toBe("StatementRejected")
      // A statement prepared by name is checked as well, alone or in a pipeline.
      const prepared = yield* errorOf(
        Effect.scoped(Effect.flatMap(pg.reserve, (c) => c.prepare("set client_encoding to 'LATIN1'")))
      )
      expect(prepared._tag).toBe("StatementRejected")
      const pipelined = yield* errorOf(
        pg.withPipeline((p) =>
          Effect.andThen(p.prepare("set client_encoding to 'LATIN1'", { name: "enc" }), p.execute(insert))
        )
      )
      expect(pipelined._tag).toBe("StatementRejected")
      expect((yield* pg.query("select count(*)::int as n from settings_enc")).rows).toEqual([{ n: 0 }])
      // UTF8 in any spelling, and DEFAULT, are fine.
      for (const set of [
        "set client_encoding = 'utf-8'",
        "set names 'UNICODE'",
        "set client_encoding to 'U.T.F.8'",
        "set client_encoding to e'utf8'",
        "set client_encoding to default"
      ])
        yield* pg.query(set)
      yield* pg.query(insert)
      expect((yield* pg.query("select t, length(t) as n from settings_enc")).rows).toEqual([{ t: "é", n: 1 }])
    })
  )

  it.effect("extra_float_digits below 1 is refused before it is sent; from 1 up floats read back exact", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      const exact = 1.2345678901234567
      for (const set of [
        "set extra_float_digits = 0",
        "SET SESSION extra_float_digits TO -3",
        "set extra_float_digits = '0.4'",
        "select set_config('extra_float_digits', '0', false)"
      ]) {
        const error = yield* errorOf(pg.query(set))
        expect(error).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
        expect(error.message).toContain("extra_float_digits is")
      }
      const local = yield* errorOf(
        pg.pipelineTransaction((p) =>
          Effect.andThen(p.execute("set local extra_float_digits = 0"), p.execute("select 1"))
        )
      )
      expect(local._tag).toBe("StatementRejected")
      // The session kept its setting: a statement's first run (text results) reads the float whole.
      expect(yield* pg.query("show extra_float_digits")).toMatchObject({
        rows: [{ extra_float_digits: "1" }]
      })
      for (const [i, set] of ["set extra_float_digits = 2", "set extra_float_digits to default"].entries()) {
        yield* pg.query(set)
        const text = `select ${exact}::float8 as f, ${i} as i`
        expect((yield* pg.query(text)).rows).toEqual([{ f: exact, i }])
        expect((yield* pg.query(text)).rows).toEqual([{ f: exact, i }])
      }
      // Asked for in serverParams: refused before connecting below 1; from 1 up it overrides a
      // role's default, which the server does not report.
      const info = yield* PgServer
      const refused = yield* Effect.flip(
        Effect.scoped(
          Effect.flatMap(poolClient({ url: info.url, serverParams: { extra_float_digits: "0" } }), ({ pg }) =>
            pg.query("select 1")
          )
        )
      )
      expect(refused).toMatchObject({
        _tag: "PgConfigError",
        key: "extra_float_digits",
        reason: "unsupported"
      })
      for (const options of [
        "-c extra_float_digits=0",
        "--extra-float-digits=-1",
        "-c geqo=off -cextra_float_digits=0",
        "-c extra_float_digits=3 -c extra_float_digits=0"
      ]) {
        const viaOptions = yield* Effect.flip(
          Effect.scoped(
            Effect.flatMap(poolClient({ url: info.url, options }), ({ pg }) => pg.query("select 1"))
          )
        )
        expect(viaOptions).toMatchObject({ _tag: "PgConfigError", key: "extra_float_digits" })
      }
      // The server applies the last one: 0 then 3 is 3, read exact on a first run.
      const lastWins = (yield* poolClient({
        url: info.url,
        max: 1,
        options: "-c extra_float_digits=0 -c extra_float_digits=3"
      })).pg
      expect((yield* lastWins.query(`select ${exact}::float8 as f, 'last' as w`)).rows).toEqual([
        { f: exact, w: "last" }
      ])
      yield* pg.query("create role settings_floats login password 'pw'")
      yield* pg.query("alter role settings_floats set extra_float_digits = 0")
      const url = new URL(info.url)
      url.username = "settings_floats"
      url.password = "pw"
      const fixed = (yield* poolClient({
        url: url.toString(),
        max: 1,
        serverParams: { extra_float_digits: "1" }
      })).pg
      expect((yield* fixed.query(`select ${exact}::float8 as f`)).rows).toEqual([{ f: exact }])
    })
  )

  it.effect("a change the server reports (a function's SET, a DateStyle) closes the connection", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query(
        "create function settings_latin() returns void language sql as $$ select set_config('client_' || 'encoding', 'LATIN1', false) $$"
      )
      for (const set of [
        "select settings_latin()",
        "set datestyle = 'SQL, DMY'",
        "set intervalstyle = 'sql_standard'"
      ]) {
        const error = yield* errorOf(pg.query(set))
        expect(error).toMatchObject({ _tag: "ProtocolFailure", reason: "UnsupportedSetting" })
        expect(error.message).toContain("pgline reads")
        // The pool's next connection is as before: dates in ISO, intervals decoded.
        const rows = (yield* pg.query<{ d: string; i: { days: number } }>(
          "select '2024-01-05'::date as d, interval '1 day' as i"
        )).rows
        expect(rows[0]!.d).toBe("2024-01-05")
        expect(rows[0]!.i.days).toBe(1)
      }
    })
  )

  it.effect("UTF8 under another spelling and the iso_8601 interval style are fine", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("set client_encoding = 'unicode'")
      yield* pg.query("set client_encoding = 'UNICODE'")
      yield* pg.query("set intervalstyle = 'iso_8601'")
      const row = (yield* pg.query<{ i: { days: number } }>("select interval '3 days' as i")).rows[0]!
      expect(row.i.days).toBe(3)
      expect(pg.parameter("IntervalStyle")).toBe("iso_8601")
    })
  )

  it.effect("an unreadable IntervalStyle from start-up (a role's default) fails the connection clearly", () =>
    Effect.gen(function* () {
      const info = yield* PgServer
      const admin = (yield* poolClient({ max: 1 })).pg
      yield* admin.query("create role settings_role login password 'pw'")
      yield* admin.query("alter role settings_role set intervalstyle = 'sql_standard'")
      const url = new URL(info.url)
      url.username = "settings_role"
      url.password = "pw"
      const error = (yield* Effect.flip(
        Effect.scoped(
          Effect.flatMap(poolClient({ url: url.toString(), max: 1 }), ({ pg }) =>
            pg.query("select interval '1 day' as i")
          )
        )
      )) as { _tag: string; reason: string; message: string }
      expect(error).toMatchObject({ _tag: "PgConnectError", reason: "Protocol" })
      expect(error.message).toContain("IntervalStyle is sql_standard")
      // Asking for a readable style in serverParams overrides the role's.
      const fixed = (yield* poolClient({
        url: url.toString(),
        max: 1,
        serverParams: { IntervalStyle: "postgres" }
      })).pg
      const row = (yield* fixed.query<{ i: { days: number } }>("select interval '1 day' as i")).rows[0]!
      expect(row.i.days).toBe(1)
      // An unreadable style asked for is refused before connecting.
      const refused = yield* Effect.flip(
        Effect.scoped(
          Effect.flatMap(
            poolClient({ url: info.url, serverParams: { IntervalStyle: "sql_standard" } }),
            ({ pg }) => pg.query("select 1")
          )
        )
      )
      expect(refused).toMatchObject({ _tag: "PgConfigError", key: "IntervalStyle", reason: "unsupported" })
    })
  )

  it.effect(
    "standard_conforming_strings stays on: pinned at start-up, a SET to off refused before it is sent",
    () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const { pg } = yield* poolClient({ max: 1 })
        // With it off the server reads 'a\' as an unfinished string, so pgline would split scripts
        // and read DEALLOCATE where the server does not: a dropped statement would stay bindable.
        for (const set of [
          "set standard_conforming_strings = off",
          "SET SESSION standard_conforming_strings TO false",
          "set local standard_conforming_strings = 'no'",
          "select set_config('standard_conforming_strings', 'off', false)"
        ]) {
          const error = yield* errorOf(pg.query(set))
          expect(error).toMatchObject({ _tag: "StatementRejected", reason: "InvalidText" })
          expect(error.message).toContain("standard_conforming_strings is")
        }
        const script = yield* errorOf(
          pg.script("set standard_conforming_strings = off; select 'a\\'; deallocate x; select '' as b")
        )
        expect(script._tag).toBe("StatementRejected")
        for (const set of [
          "set standard_conforming_strings = on",
          "set standard_conforming_strings to true",
          "set standard_conforming_strings = 1",
          "set standard_conforming_strings to default"
        ])
          yield* pg.query(set)
        // A role whose default is off still gets it on: start-up parameters come first.
        const admin = (yield* poolClient({ max: 1 })).pg
        yield* admin.query("create role settings_scs login password 'pw'")
        yield* admin.query("alter role settings_scs set standard_conforming_strings = off")
        const url = new URL(info.url)
        url.username = "settings_scs"
        url.password = "pw"
        const role = (yield* poolClient({ url: url.toString(), max: 1 })).pg
        const shown = (yield* role.query<{ s: string; t: string }>(
          "select current_setting('standard_conforming_strings') as s, 'a\\b' as t"
        )).rows
        expect(shown).toEqual([{ s: "on", t: "a\\b" }])
        // A function that turns it off: the change is reported and the connection closed.
        yield* pg.query(
          "create function settings_scs_off() returns void language sql as $$ select set_config('standard_' || 'conforming_strings', 'off', false) $$"
        )
        const closed = yield* errorOf(pg.query("select settings_scs_off()"))
        expect(closed).toMatchObject({ _tag: "ProtocolFailure", reason: "UnsupportedSetting" })
        expect((yield* pg.query("select current_setting('standard_conforming_strings') as s")).rows).toEqual([
          { s: "on" }
        ])
        // Asked for off in the configuration: refused before connecting.
        for (const config of [
          { serverParams: { standard_conforming_strings: "off" } },
          { options: "-c standard_conforming_strings=off" }
        ]) {
          const refused = yield* Effect.flip(
            Effect.scoped(
              Effect.flatMap(poolClient({ url: info.url, ...config }), ({ pg }) => pg.query("select 1"))
            )
          )
          expect(refused).toMatchObject({
            _tag: "PgConfigError",
            key: "standard_conforming_strings",
            reason: "unsupported"
          })
        }
      })
  )
})
