/**
 * target_session_attrs and load_balance_hosts against a real primary and a real hot standby
 * streaming from it (PgReplicaPair): which server each value lands on with the hosts in either
 * order, with only one of them listed, and through a URL; writes on the standby fail typed;
 * load_balance_hosts=random reaches both hosts while disable always takes the first; the session's
 * in_hot_standby (ParameterStatus, PostgreSQL 14+) is on for the standby, off for the primary, and
 * turns off on a live session when its standby is promoted.
 */
import { expect, layer } from "@effect/vitest"
import type { PgClientOptions } from "@pgline/client"
import { PgReplicaPair, type ServerInfo } from "@pgline/testing"
import { Effect } from "effect"
import { withClient } from "./support/integration.ts"

type Attrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby"

/** Settings listing `servers` in order (all on 127.0.0.1, each on its own port), without TLS. */
const hosts = (servers: ReadonlyArray<ServerInfo>, more: Partial<Exclude<PgClientOptions, string>> = {}) => ({
  host: servers.map((s) => s.host),
  port: servers.map((s) => s.port),
  database: servers[0]!.database,
  user: servers[0]!.user,
  password: servers[0]!.password,
  // Dozens of connections per test: TLS would only add handshakes.
  sslmode: "disable" as const,
  ...more
})

interface Landed {
  readonly port: number
  readonly recovery: boolean
  readonly hotStandby: string | undefined
}

/** Connects a fresh client, asks the server where it is, disconnects. */
const landed = (options: PgClientOptions) =>
  withClient(options, (pg) =>
    Effect.map(
      pg.query<{ port: number; recovery: boolean }>(
        "select inet_server_port() as port, pg_is_in_recovery() as recovery"
      ),
      (r): Landed => ({ ...r.rows[0]!, hotStandby: pg.parameter("in_hot_standby") })
    )
  )

/** What a session on the primary, or on the standby, reports. */
const onPrimary = (pair: { primary: ServerInfo }): Landed => ({
  port: pair.primary.port,
  recovery: false,
  hotStandby: "off"
})
const onStandby = (pair: { standby: ServerInfo }): Landed => ({
  port: pair.standby.port,
  recovery: true,
  hotStandby: "on"
})

/**
 * Writes a row into `standby_seen` through the primary (creating the table if needed) and waits
 * until the standby shows it; returns the row's token.
 */
const replicated = (pair: { primary: ServerInfo; standby: ServerInfo }) =>
  Effect.gen(function* () {
    const token = `t${Date.now()}${Math.random()}`
    yield* withClient(hosts([pair.primary]), (pg) =>
      Effect.gen(function* () {
        const exists = yield* pg.query("select to_regclass('standby_seen') is not null as exists")
        if (!exists.rows[0]!["exists"]) yield* pg.query("create table standby_seen (token text)")
        yield* pg.query("insert into standby_seen values ($1)", [token])
      })
    )
    const deadline = Date.now() + 20_000
    for (;;) {
      const seen = yield* withClient(hosts([pair.standby]), (pg) =>
        Effect.gen(function* () {
          const table = yield* pg.query("select 1 from pg_class where relname = 'standby_seen'")
          if (table.rows.length === 0) return 0
          const c = yield* pg.query<{ n: number }>(
            "select count(*)::int as n from standby_seen where token = $1",
            [token]
          )
          return c.rows[0]!.n
        })
      )
      if (seen === 1) return token
      expect(Date.now()).toBeLessThan(deadline)
      yield* Effect.sleep("20 millis")
    }
  })

layer(PgReplicaPair.layer, { timeout: 120_000, excludeTestServices: true })(
  "target_session_attrs and load_balance_hosts with a primary and a standby",
  (it) => {
    it.effect("the pair: a primary, and a standby in recovery that streams its writes", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        expect(pair.standby.port).not.toBe(pair.primary.port)
        expect(yield* landed(hosts([pair.primary]))).toEqual(onPrimary(pair))
        expect(yield* landed(hosts([pair.standby]))).toEqual(onStandby(pair))
        // A row written through the primary reaches the standby.
        yield* replicated(pair)
      })
    )

    it.effect("hosts [primary, standby]: each target_session_attrs value lands where it should", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const expected: ReadonlyArray<readonly [Attrs, Landed]> = [
          ["any", onPrimary(pair)],
          ["read-write", onPrimary(pair)],
          ["primary", onPrimary(pair)],
          ["read-only", onStandby(pair)],
          ["standby", onStandby(pair)],
          ["prefer-standby", onStandby(pair)]
        ]
        for (const [targetSessionAttrs, where] of expected) {
          const got = yield* landed(hosts([pair.primary, pair.standby], { targetSessionAttrs }))
          expect({ targetSessionAttrs, ...got }).toEqual({ targetSessionAttrs, ...where })
        }
      })
    )

    it.effect("hosts [standby, primary]: each target_session_attrs value lands where it should", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const expected: ReadonlyArray<readonly [Attrs, Landed]> = [
          ["any", onStandby(pair)],
          ["read-write", onPrimary(pair)],
          ["primary", onPrimary(pair)],
          ["read-only", onStandby(pair)],
          ["standby", onStandby(pair)],
          ["prefer-standby", onStandby(pair)]
        ]
        for (const [targetSessionAttrs, where] of expected) {
          const got = yield* landed(hosts([pair.standby, pair.primary], { targetSessionAttrs }))
          expect({ targetSessionAttrs, ...got }).toEqual({ targetSessionAttrs, ...where })
        }
      })
    )

    it.effect(
      "one server listed: prefer-standby falls back, the others fail with reason TargetSessionAttrs",
      () =>
        Effect.gen(function* () {
          const pair = yield* PgReplicaPair
          expect(yield* landed(hosts([pair.primary], { targetSessionAttrs: "prefer-standby" }))).toEqual(
            onPrimary(pair)
          )
          expect(yield* landed(hosts([pair.standby], { targetSessionAttrs: "prefer-standby" }))).toEqual(
            onStandby(pair)
          )
          const refused: ReadonlyArray<readonly [ServerInfo, Attrs]> = [
            [pair.primary, "standby"],
            [pair.primary, "read-only"],
            [pair.standby, "primary"],
            [pair.standby, "read-write"]
          ]
          for (const [server, targetSessionAttrs] of refused) {
            const error = yield* Effect.flip(landed(hosts([server], { targetSessionAttrs })))
            expect(error).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
            expect(error.message).toContain(String(server.port))
          }
          // Both listed twice over, none matching: every attempt is named.
          const error = yield* Effect.flip(
            landed(hosts([pair.primary, pair.primary], { targetSessionAttrs: "standby" }))
          )
          expect(error).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
        })
    )

    it.effect("the same through connection URLs (host:port lists and host=…&port=… lists)", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const { primary: p, standby: s } = pair
        const auth = `${p.user}:${encodeURIComponent(p.password)}`
        const listed = `postgres://${auth}@${p.host}:${p.port},${s.host}:${s.port}/${p.database}`
        expect(yield* landed(`${listed}?target_session_attrs=standby`)).toEqual(onStandby(pair))
        expect(yield* landed(`${listed}?target_session_attrs=read-write`)).toEqual(onPrimary(pair))
        const params = `postgres://${auth}@/${p.database}?host=${s.host},${p.host}&port=${s.port},${p.port}`
        expect(yield* landed(`${params}&target_session_attrs=primary`)).toEqual(onPrimary(pair))
        expect(yield* landed(`${params}&target_session_attrs=any`)).toEqual(onStandby(pair))
      })
    )

    it.effect("a write on the standby fails typed (ReadOnlySqlTransaction); the session stays usable", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const token = yield* replicated(pair)
        yield* withClient(hosts([pair.primary, pair.standby], { targetSessionAttrs: "standby" }), (pg) =>
          Effect.gen(function* () {
            for (const statement of [
              "create table standby_never (v int)",
              "insert into standby_seen values ('never')",
              `update standby_seen set token = 'never' where token = '${token}'`,
              "create temporary table standby_never (v int)"
            ]) {
              const error = yield* Effect.flip(pg.query(statement))
              expect({ statement, tag: error._tag }).toEqual({ statement, tag: "ReadOnlySqlTransaction" })
            }
            const after = yield* pg.query<{ one: number }>("select 1 as one")
            expect(after.rows).toEqual([{ one: 1 }])
          })
        )
      })
    )

    it.effect(
      "a BEGIN the server refuses (serializable on a hot standby) fails the block: its first statement and the concurrent ones get its error, none runs outside a block",
      () =>
        Effect.gen(function* () {
          const pair = yield* PgReplicaPair
          yield* withClient(hosts([pair.standby]), (pg) =>
            Effect.gen(function* () {
              // set_config(…, false) outside a block would outlive the statement in the session.
              const mark = (i: number) =>
                pg.query("select set_config('pgline.mark', $1, false)", [`ran ${i}`])
              const serializable = { isolation: "serializable" } as const
              // The body catches each statement's error: the block still fails with the BEGIN's.
              const tags: Array<string> = []
              const caught = yield* Effect.flip(
                pg.withTransaction(
                  Effect.forEach(
                    [0, 1, 2, 3, 4],
                    (i) => Effect.catch(Effect.asVoid(mark(i)), (e) => Effect.sync(() => tags.push(e._tag))),
                    {
                      concurrency: "unbounded"
                    }
                  ),
                  serializable
                )
              )
              expect(caught._tag).toBe("FeatureNotSupported")
              expect(tags).toEqual(Array(5).fill("FeatureNotSupported"))
              // Not caught: the first statement's failure is the BEGIN's error.
              const failed = yield* Effect.flip(
                pg.withTransaction(
                  Effect.all([0, 1, 2].map(mark), { concurrency: "unbounded" }),
                  serializable
                )
              )
              expect(failed._tag).toBe("FeatureNotSupported")
              const setting = yield* pg.query<{ v: string | null }>(
                "select current_setting('pgline.mark', true) as v"
              )
              expect(setting.rows[0]!.v ?? "").toBe("")
              // The connection goes on, outside any block; REPEATABLE READ is allowed there.
              const ok = yield* pg.withTransaction(mark(9), { isolation: "repeatable read" })
              expect(ok.rows).toEqual([{ set_config: "ran 9" }])
            })
          )
        })
    )

    it.effect("load_balance_hosts: random reaches both servers, disable always the first", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const count = (options: PgClientOptions, n: number) =>
          Effect.gen(function* () {
            const ports = new Map<number, number>()
            for (let i = 0; i < n; i++) {
              const { port } = yield* landed(options)
              ports.set(port, (ports.get(port) ?? 0) + 1)
            }
            return ports
          })
        const random = yield* count(hosts([pair.primary, pair.standby], { loadBalanceHosts: "random" }), 40)
        // Each order has probability 1/2 per connection: all 40 on one server is a 2^-39 event.
        expect(random.get(pair.primary.port)).toBeGreaterThan(0)
        expect(random.get(pair.standby.port)).toBeGreaterThan(0)
        expect(random.get(pair.primary.port)! + random.get(pair.standby.port)!).toBe(40)
        const first = yield* count(hosts([pair.standby, pair.primary], { loadBalanceHosts: "disable" }), 20)
        expect([...first]).toEqual([[pair.standby.port, 20]])
        // Random order, but target_session_attrs still decides.
        const standby = yield* count(
          hosts([pair.primary, pair.standby], { loadBalanceHosts: "random", targetSessionAttrs: "standby" }),
          20
        )
        expect([...standby]).toEqual([[pair.standby.port, 20]])
      })
    )
  }
)

layer(PgReplicaPair.layer, { timeout: 120_000, excludeTestServices: true })(
  "in_hot_standby on a session whose standby is promoted",
  (it) => {
    it.effect("the live session's in_hot_standby turns off, and the server now passes as a primary", () =>
      Effect.gen(function* () {
        const pair = yield* PgReplicaPair
        const before = yield* landed(hosts([pair.standby], { targetSessionAttrs: "standby" }))
        expect(before).toEqual(onStandby(pair))
        yield* withClient(hosts([pair.standby]), (pg) =>
          Effect.gen(function* () {
            expect(pg.parameter("in_hot_standby")).toBe("on")
            const promoted = yield* pg.query<{ done: boolean }>("select pg_promote(true, 60) as done")
            expect(promoted.rows).toEqual([{ done: true }])
            // The server reports the change (ParameterStatus) before its next ReadyForQuery.
            const now = yield* pg.query<{ recovery: boolean }>("select pg_is_in_recovery() as recovery")
            expect(now.rows).toEqual([{ recovery: false }])
            expect(pg.parameter("in_hot_standby")).toBe("off")
            // Writable now.
            yield* pg.query("create table promoted_writes (v int)")
          })
        )
        for (const targetSessionAttrs of ["primary", "read-write"] as const) {
          expect(yield* landed(hosts([pair.standby], { targetSessionAttrs }))).toEqual({
            port: pair.standby.port,
            recovery: false,
            hotStandby: "off"
          })
        }
        const error = yield* Effect.flip(landed(hosts([pair.standby], { targetSessionAttrs: "standby" })))
        expect(error).toMatchObject({ _tag: "PgConnectError", reason: "TargetSessionAttrs" })
        // With both listed, prefer-standby finds no standby left and takes the first.
        expect(
          yield* landed(hosts([pair.primary, pair.standby], { targetSessionAttrs: "prefer-standby" }))
        ).toMatchObject({ port: pair.primary.port, recovery: false })
      })
    )
  }
)
