/**
 * Session.toSessionOptions refuses the libpq settings Node cannot apply (requirepeer, the
 * keepalive interval and count, tcp_user_timeout) where libpq would apply them, instead of
 * connecting without them; where libpq ignores them (TCP for requirepeer, keepalives off, Unix
 * sockets for the TCP settings) they are accepted. Hermetic.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { PgConfig, Session } from "../src/index.ts"

const toOptions = (conninfo: string) =>
  Effect.flatMap(PgConfig.make(conninfo), (resolved) => Session.toSessionOptions(resolved)).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} }))
  )

describe("settings Node cannot apply", () => {
  it.effect("are refused where libpq would apply them, accepted where it would not either", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<[string, string]> = [
        ["host=/var/run/postgresql requirepeer=postgres", "requirepeer"],
        ["host=/tmp,db.example requirepeer=postgres", "requirepeer"],
        ["host=db.example keepalives_interval=10", "keepalives_interval"],
        ["host=db.example keepalives_count=3", "keepalives_count"],
        ["host=db.example tcp_user_timeout=5000", "tcp_user_timeout"],
        ["host=/tmp hostaddr=127.0.0.1 tcp_user_timeout=5000", "tcp_user_timeout"]
      ]
      for (const [conninfo, key] of cases) {
        const error = yield* Effect.flip(toOptions(conninfo))
        expect(error, conninfo).toMatchObject({ _tag: "PgConfigError", key, reason: "unsupported" })
      }
      for (const conninfo of [
        "host=db.example requirepeer=postgres",
        "host=/tmp hostaddr=127.0.0.1 requirepeer=postgres",
        "host=db.example keepalives=0 keepalives_interval=10 keepalives_count=3",
        "host=/var/run/postgresql keepalives_interval=10 keepalives_count=3 tcp_user_timeout=5000",
        "host=db.example tcp_user_timeout=0 keepalives_idle=30"
      ]) {
        const options = yield* toOptions(conninfo)
        expect(options.hosts.length, conninfo).toBeGreaterThan(0)
      }
    })
  )
})
