/**
 * Hermetic: the password file (~/.pgpass) and `lookupPassword`, against temp files with explicit
 * permissions. Nothing outside the temp directory is read.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import * as PgConfig from "../src/PgConfig.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pgline-pgpass-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const inTmp = (p: string): boolean => p === tmp || p.startsWith(tmp + path.sep)

let counter = 0
const passfile = (lines: ReadonlyArray<string>, mode = 0o600): string => {
  const p = path.join(tmp, `pgpass-${counter++}`)
  fs.writeFileSync(p, lines.join("\n") + "\n", { mode })
  fs.chmodSync(p, mode)
  return p
}

const system = (socketDirs: ReadonlyArray<string> = ["/var/run/postgresql"]): PgConfig.PgConfigSystem => ({
  userName: () => "alice",
  homeDir: () => undefined,
  readFile: (p) => (inTmp(p) && fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined),
  stat: (p) => {
    if (socketDirs.includes(p)) return { isFile: false, mode: 0o755 }
    if (!inTmp(p) || !fs.existsSync(p)) return undefined
    const st = fs.statSync(p)
    return { isFile: st.isFile(), mode: st.mode & 0o7777 }
  },
  checkPermissions: true
})

const provide = <A, E>(eff: Effect.Effect<A, E>, env: Record<string, string> = {}, sys = system()) =>
  eff.pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })),
    Effect.provideService(PgConfig.System, sys)
  )

/** Resolves `input` with `file` as PGPASSFILE and looks up the password of every host. */
const lookupAll = (
  input: PgConfig.PgConfigInput,
  file: string,
  env: Record<string, string> = {},
  sys = system()
) =>
  provide(
    Effect.gen(function* () {
      const options = yield* PgConfig.make(input)
      const out: Array<PgConfig.PgPasswordLookup> = []
      for (const h of options.hosts) out.push(yield* PgConfig.lookupPassword(options, h))
      return out
    }),
    { PGPASSFILE: file, ...env },
    sys
  )

const pw = (l: PgConfig.PgPasswordLookup): string | undefined =>
  l.password === undefined ? undefined : Redacted.value(l.password)

describe("password file matching", () => {
  it.effect("matches host, port, database and user exactly; first match wins", () =>
    Effect.gen(function* () {
      const file = passfile([
        "db.example:5432:app:alice:first",
        "db.example:5432:app:alice:second",
        "db.example:5433:app:alice:otherport"
      ])
      const [a] = yield* lookupAll("host=db.example dbname=app user=alice", file)
      expect(pw(a!)).toBe("first")
      expect(a!.source).toBe("passfile")
      const [b] = yield* lookupAll("host=db.example port=5433 dbname=app user=alice", file)
      expect(pw(b!)).toBe("otherport")
      const [c] = yield* lookupAll("host=db.example dbname=other user=alice", file)
      expect(c!.password).toBeUndefined()
      expect(c!.source).toBe("none")
    })
  )

  it.effect("* matches anything in the first four fields", () =>
    Effect.gen(function* () {
      const file = passfile(["*:*:special:*:special-pw", "*:*:*:bob:bob-pw", "*:*:*:*:fallback"])
      const [a] = yield* lookupAll("host=x dbname=special", file)
      expect(pw(a!)).toBe("special-pw")
      const [b] = yield* lookupAll("host=y user=bob", file)
      expect(pw(b!)).toBe("bob-pw")
      const [c] = yield* lookupAll("host=z port=1", file)
      expect(pw(c!)).toBe("fallback")
    })
  )

  it.effect("unescapes \\: and \\\\ in every field, and a \\* is a literal star", () =>
    Effect.gen(function* () {
      const file = passfile([
        "\\*:*:*:*:literal-star",
        "fe80\\:\\:1:*:*:*:ipv6-pw",
        "h:*:*:we\\\\ird\\:user:pa\\:ss\\\\word:with:colons"
      ])
      const [star] = yield* lookupAll("host=anything", file)
      expect(star!.password).toBeUndefined()
      const [v6] = yield* lookupAll("host=fe80::1", file)
      expect(pw(v6!)).toBe("ipv6-pw")
      const [odd] = yield* lookupAll({ host: "h", user: "we\\ird:user" }, file)
      expect(pw(odd!)).toBe("pa:ss\\word:with:colons")
    })
  )

  it.effect("skips comments, blank lines, CRLF endings and short lines", () =>
    Effect.gen(function* () {
      const file = passfile(["# h:*:*:*:commented", "", "h:*:*", "h:*:*:*:crlf\r"])
      const [a] = yield* lookupAll("host=h", file)
      expect(pw(a!)).toBe("crlf")
    })
  )

  it.effect("looks up each host of a multi-host string separately", () =>
    Effect.gen(function* () {
      const file = passfile(["a:1:*:*:pw-a", "b:2:*:*:pw-b"])
      const res = yield* lookupAll("postgresql://a:1,b:2,c:3/db", file)
      expect(res.map(pw)).toEqual(["pw-a", "pw-b", undefined])
    })
  )

  it.effect("matches localhost for the default socket directory and for no host at all", () =>
    Effect.gen(function* () {
      const file = passfile(["localhost:*:*:*:local-pw", "/srv/sock:*:*:*:sock-pw"])
      const [def] = yield* lookupAll({}, file)
      expect(pw(def!)).toBe("local-pw")
      const [explicitDefault] = yield* lookupAll("host=/var/run/postgresql", file)
      expect(pw(explicitDefault!)).toBe("local-pw")
      const [tmpDir] = yield* lookupAll("host=/tmp", file, {}, system(["/tmp"]))
      expect(pw(tmpDir!)).toBe("local-pw")
      const [tcp] = yield* lookupAll("host=localhost", file)
      expect(pw(tcp!)).toBe("local-pw")
      const [other] = yield* lookupAll("host=/srv/sock", file)
      expect(pw(other!)).toBe("sock-pw")
    })
  )

  it.effect("matches hostaddr when no host name is given", () =>
    Effect.gen(function* () {
      const file = passfile(["192.0.2.10:*:*:*:addr-pw", "named:*:*:*:named-pw"])
      const [a] = yield* lookupAll("hostaddr=192.0.2.10", file)
      expect(pw(a!)).toBe("addr-pw")
      const [b] = yield* lookupAll("host=named hostaddr=192.0.2.10", file)
      expect(pw(b!)).toBe("named-pw")
    })
  )

  it.effect("accepts a plain host string and port", () =>
    Effect.gen(function* () {
      const file = passfile(["h:7777:*:*:port-pw"])
      const res = yield* provide(
        Effect.flatMap(PgConfig.make("host=other"), (o) => PgConfig.lookupPassword(o, "h", 7777)),
        { PGPASSFILE: file }
      )
      expect(pw(res)).toBe("port-pw")
    })
  )

  it.effect("physical replication connections match the database field 'replication'", () =>
    Effect.gen(function* () {
      const file = passfile(["*:*:replication:*:repl-pw", "*:*:*:*:plain-pw"])
      const [a] = yield* lookupAll("host=h replication=true dbname=app", file)
      expect(pw(a!)).toBe("repl-pw")
      const [b] = yield* lookupAll("host=h replication=database dbname=app", file)
      expect(pw(b!)).toBe("plain-pw")
    })
  )
})

describe("password file rules", () => {
  it.effect("is not consulted when a password is configured", () =>
    Effect.gen(function* () {
      const file = passfile(["*:*:*:*:from-file"])
      const [a] = yield* lookupAll("host=h password=given", file)
      expect(pw(a!)).toBe("given")
      expect(a!.source).toBe("options")
      const [b] = yield* lookupAll("host=h", file, { PGPASSWORD: "from-env" })
      expect(pw(b!)).toBe("from-env")
      const [c] = yield* lookupAll("host=h password=''", file)
      expect(pw(c!)).toBe("from-file")
    })
  )

  it.effect("ignores a file with group or world permissions, with a warning", () =>
    Effect.gen(function* () {
      for (const mode of [0o640, 0o604, 0o660, 0o644, 0o610]) {
        const file = passfile(["*:*:*:*:leaked"], mode)
        const [a] = yield* lookupAll("host=h", file)
        expect(a!.password).toBeUndefined()
        expect(a!.warnings).toHaveLength(1)
        expect(a!.warnings[0]).toContain(file)
        expect(a!.warnings[0]).toContain("0600")
      }
      const tight = passfile(["*:*:*:*:ok"], 0o400)
      const [b] = yield* lookupAll("host=h", tight)
      expect(pw(b!)).toBe("ok")
      expect(b!.warnings).toEqual([])
    })
  )

  it.effect("does not check permissions where the platform does not (Windows)", () =>
    Effect.gen(function* () {
      const file = passfile(["*:*:*:*:win"], 0o644)
      const [a] = yield* lookupAll("host=h", file, {}, { ...system(), checkPermissions: false })
      expect(pw(a!)).toBe("win")
    })
  )

  it.effect("warns about a password file that is not a regular file", () =>
    Effect.gen(function* () {
      const dir = path.join(tmp, "a-directory")
      fs.mkdirSync(dir, { recursive: true })
      const [a] = yield* lookupAll("host=h", dir)
      expect(a!.password).toBeUndefined()
      expect(a!.warnings[0]).toContain("not a regular file")
    })
  )

  it.effect("a missing file is silently no password", () =>
    Effect.gen(function* () {
      const [a] = yield* lookupAll("host=h", path.join(tmp, "does-not-exist"))
      expect(a).toEqual({ password: undefined, source: "none", warnings: [] })
    })
  )

  it.effect("passfile in the connection string beats PGPASSFILE, which beats ~/.pgpass", () =>
    Effect.gen(function* () {
      const home = path.join(tmp, "home")
      fs.mkdirSync(home, { recursive: true })
      fs.writeFileSync(path.join(home, ".pgpass"), "*:*:*:*:home-pw\n", { mode: 0o600 })
      const envFile = passfile(["*:*:*:*:env-pw"])
      const strFile = passfile(["*:*:*:*:str-pw"])
      const run = (input: string, env: Record<string, string>) =>
        provide(
          Effect.gen(function* () {
            const o = yield* PgConfig.make(input)
            return pw(yield* PgConfig.lookupPassword(o, o.hosts[0]!))
          }),
          env
        )
      expect(yield* run(`host=h passfile=${strFile}`, { PGPASSFILE: envFile, HOME: home })).toBe("str-pw")
      expect(yield* run("host=h", { PGPASSFILE: envFile, HOME: home })).toBe("env-pw")
      expect(yield* run("host=h", { HOME: home })).toBe("home-pw")
    })
  )
})
