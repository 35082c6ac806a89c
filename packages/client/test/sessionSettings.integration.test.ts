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
  it.effect(
    "SET client_encoding, DateStyle or IntervalStyle to what pgline cannot read closes the connection",
    () =>
      Effect.gen(function* () {
        const { pg } = yield* poolClient({ max: 1 })
        yield* pg.query("create table settings_text (t text)")
        for (const set of [
          "set client_encoding = 'LATIN1'",
          "set datestyle = 'SQL, DMY'",
          "set intervalstyle = 'sql_standard'"
        ]) {
          const error = yield* errorOf(pg.query(set))
          expect(error).toMatchObject({ _tag: "ProtocolFailure", reason: "UnsupportedSetting" })
          expect(error.message).toContain("pgline reads")
          // The pool's next connection is pinned again: text, dates and intervals as before.
          const rows = (yield* pg.query<{ t: string; n: number; d: string; i: unknown }>(
            "insert into settings_text values ($1) returning t, length(t) as n, '2024-01-05'::date as d, interval '1 day' as i",
            ["é€"]
          )).rows
          expect(rows).toMatchObject([{ t: "é€", n: 2, d: "2024-01-05" }])
        }
        // Nothing was stored in another encoding: each row is the two characters sent.
        expect((yield* pg.query("select distinct length(t) as n from settings_text")).rows).toEqual([
          { n: 2 }
        ])
      })
  )

  it.effect("UTF8 under another spelling and the iso_8601 interval style are fine", () =>
    Effect.gen(function* () {
      const { pg } = yield* poolClient({ max: 1 })
      yield* pg.query("set client_encoding = 'unicode'")
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
})
