/**
 * sslmode=prefer (the default) against a server whose pg_hba treats TLS and plain connections
 * differently: the plain retry is for pg_hba's refusal of TLS, not for errors the plain connection
 * would get as well. A server that only accepts TLS (`hostssl` lines only, a common production
 * shape) refuses the retry with "no pg_hba.conf entry" (28000), which must not hide why the TLS
 * attempt failed: a wrong password stays InvalidPassword, a missing database InvalidCatalogName.
 * And where TLS is refused for a database and plain allowed, prefer still connects, in plain.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, expect, layer } from "@effect/vitest"
import { PgServer } from "@pgline/testing"
import { Effect } from "effect"
import { rolesOf, sslInUse, tcp } from "./support/integration.ts"

const dir = mkdtempSync(join(tmpdir(), "pgline-hba-"))
// The server may run as another user than the tests (as root they start it as a plain one).
chmodSync(dir, 0o755)
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const hba = join(dir, "pg_hba.conf")
writeFileSync(
  hba,
  [
    "local all all trust",
    // template1: TLS refused, plain accepted.
    "hostssl template1 all all reject",
    "host template1 all all scram-sha-256",
    // Everything else: TLS only.
    "hostssl all all all scram-sha-256",
    ""
  ].join("\n"),
  { mode: 0o644 }
)

layer(PgServer.layerWith({ settings: { hba_file: hba } }), { timeout: 120_000 })(
  "sslmode=prefer against a server that only accepts TLS",
  (it) => {
    it.effect("the right password connects over TLS", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        expect(yield* sslInUse(tcp(info, rolesOf(info).scram))).toBe(true)
      })
    )

    it.effect("a wrong password is InvalidPassword, not the plain retry's pg_hba refusal", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const scram = rolesOf(info).scram
        for (const sslmode of [undefined, "prefer", "allow"] as const) {
          const error = yield* Effect.flip(
            sslInUse({
              ...tcp(info, { user: scram.user, password: "wrong" }),
              ...(sslmode ? { sslmode } : {})
            })
          )
          expect(
            { tag: error._tag, code: "code" in error ? error.code : undefined },
            String(sslmode)
          ).toEqual({
            tag: "InvalidPassword",
            code: "28P01"
          })
        }
      })
    )

    it.effect("a database that does not exist is InvalidCatalogName", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        const error = yield* Effect.flip(
          sslInUse({ ...tcp(info, rolesOf(info).scram), database: "no_such_db" })
        )
        expect(error._tag).toBe("InvalidCatalogName")
      })
    )

    it.effect("where pg_hba refuses TLS and accepts plain, prefer connects in plain", () =>
      Effect.gen(function* () {
        const info = yield* PgServer
        expect(yield* sslInUse({ ...tcp(info, rolesOf(info).scram), database: "template1" })).toBe(false)
        // A wrong password there: the plain attempt's InvalidPassword, after TLS was refused.
        const error = yield* Effect.flip(
          sslInUse({
            ...tcp(info, { user: rolesOf(info).scram.user, password: "wrong" }),
            database: "template1"
          })
        )
        expect(error._tag).toBe("InvalidPassword")
        // require does not fall back: pg_hba's refusal of TLS is what it gets.
        const required = yield* Effect.flip(
          sslInUse({ ...tcp(info, rolesOf(info).scram), database: "template1", sslmode: "require" })
        )
        expect(required._tag).toBe("InvalidAuthorizationSpecification")
      })
    )
  }
)
